"""Property: the index returns exactly the reference evaluator's matches.

Queries are generated as ASTs, printed with ``describe`` and parsed back by
both sides; texts mix English, accented, Korean, Chinese, Japanese and Thai
words with assorted separators so that whole-word, prefix, particle and
substring rules all get exercised.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from datetime import UTC, datetime

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from newswatch.model import Article, Hit
from newswatch.rules import RuleSpec, compile_rules, describe, parse_query
from newswatch.rules.doc import Doc
from newswatch.rules.explain import ELLIPSIS, make_snippet, snippet_window
from newswatch.rules.index import text_article
from newswatch.rules.query import FIELDS, And, Field, Near, Node, Not, Or, Phrase, Regex, Word
from rules_reference import Reference, field_values

TEXT_WORDS = [
    "Russia", "russia", "RUSSIA", "Russian", "Korea", "korea", "North", "north", "Pyŏngyang",
    "Pyongyang", "café", "cafe", "THAAD", "thaad", "sanctions", "sanction", "Straße",
    "strasse", "ＲＵＳＳＩＡ", "U.S.", "e-mail", "don't", "naïve", "and", "or", "not", "x",
    "2016", "러시아", "러시아는", "러시아와", "벨라러시아", "북한", "북한의", "핵", "핵실험",
    "THAAD는", "北韩", "中国", "北韩中国", "東京", "とうきょう", "中国人", "ไทย", "ภาษาไทย",
    "ประเทศไทย",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", ", ", ". ", "\n", "-", "", "“", "” ", " – ", "'s "]
QUERY_WORDS = [
    "Russia", "russia", "korea", "north", "Pyongyang", "pyŏngyang", "cafe", "THAAD",
    "sanctions", "strasse", "U.S.", "e-mail", "and", "not", "러시아", "북한", "핵", "北韩",
    "中国", "ไทย", "Straße", "x", "2016", "s",
]  # fmt: skip
PREFIXES = ["russ", "kor", "sanct", "pyong", "러시아", "핵실험", "thaa"]
REGEXES = ["russ", r"Kor\w+", "러시아", "a.e", r"\bnorth\b", "中国|北韩", "^x"]
ALIASES = {"nk": ["North Korea", "북한", "DPRK"], "ru": ["russ*", "러시아", "@nk"]}


def texts() -> st.SearchStrategy[str]:
    piece = st.tuples(st.sampled_from(TEXT_WORDS), st.sampled_from(SEPARATORS))
    return st.lists(piece, max_size=12).map(lambda ps: "".join(w + s for w, s in ps))


def articles() -> st.SearchStrategy[Article]:
    return st.builds(
        lambda title, summary, content, author, source, tags, cats: Article(
            feed_key="feed",
            entry_key="e",
            story_key="s",
            title=title,
            summary=summary,
            content=content,
            link="https://example.org/north-korea",
            canonical_url="https://example.org/north-korea",
            author=author,
            categories=cats,
            published=datetime(2024, 1, 1, tzinfo=UTC),
            source=source,
            tags=tags,
        ),
        texts(),
        texts(),
        texts(),
        st.sampled_from(["", "Kim Korea", "러시아 기자"]),
        st.sampled_from(["Korea Herald", "Yonhap", ""]),
        st.lists(st.sampled_from(["korea", "russia", "north"]), max_size=2).map(tuple),
        st.lists(st.sampled_from(["North Korea", "Russia", "中国"]), max_size=2).map(tuple),
    )


def phrases() -> st.SearchStrategy[Phrase]:
    return st.lists(st.sampled_from(QUERY_WORDS + TEXT_WORDS), min_size=1, max_size=3).map(
        lambda ws: Phrase(" ".join(ws))
    )


def positional() -> st.SearchStrategy[Node]:
    word = st.sampled_from(QUERY_WORDS).map(Word)
    prefix = st.sampled_from(PREFIXES).map(lambda p: Word(p, prefix=True))
    simple = st.one_of(word, prefix, phrases())
    group = st.lists(simple, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))
    return st.one_of(simple, group, st.builds(Field, st.sampled_from(FIELDS), simple))


def leaves() -> st.SearchStrategy[Node]:
    near = st.builds(Near, positional(), positional(), st.integers(0, 3))
    regex = st.builds(Regex, st.sampled_from(REGEXES), st.booleans())
    alias = st.sampled_from(["@nk", "@ru"]).map(parse_query)
    return st.one_of(positional(), positional(), near, regex, alias)


def queries() -> st.SearchStrategy[Node]:
    return st.recursive(
        leaves(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
            inner.map(Not),
            st.builds(Field, st.sampled_from(FIELDS), inner),
        ),
        max_leaves=6,
    )


def specs() -> st.SearchStrategy[list[RuleSpec]]:
    spec = st.builds(
        lambda q, cs, scope: RuleSpec("", describe(q), case_sensitive=cs, scope=scope),
        queries(),
        st.booleans(),
        st.sampled_from([(), (), ("tag:korea",), ("Yonhap", "tag:north")]),
    )
    return st.lists(spec, min_size=1, max_size=5).map(
        lambda xs: [
            RuleSpec(f"r{i}", s.query, case_sensitive=s.case_sensitive, scope=s.scope)
            for i, s in enumerate(xs)
        ]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), articles())
def test_index_agrees_with_reference(rules: list[RuleSpec], art: Article) -> None:
    index = compile_rules(rules, ALIASES)
    got = index.match(art)
    expected = Reference(ALIASES).matches(rules, art)
    event(f"matches: {min(len(expected), 2)}")
    assert [m.rule for m in got] == expected
    for m in got:
        for hit in m.explanation.hits:
            display = ", ".join(field_values(art, hit.field))
            assert 0 <= hit.start < hit.end <= len(display)
        assert index.explain(m.rule, art).matched


@settings(max_examples=200, deadline=None)
@given(queries())
def test_describe_parses_back(node: Node) -> None:
    parsed = parse_query(describe(node))  # nested ANDs and ORs come back flattened
    assert parse_query(describe(parsed)) == parsed


def _snippet_by_regex(text: str, own: list[Hit]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The snippet as first written: collapse with a regex, map offsets by runs
    (the window is chosen by the same code; only the collapsing is re-done)."""
    start, end = snippet_window(text, own[0] if own else None)
    window = text[start:end]
    pieces: list[str] = []
    run_ends: list[int] = []
    removed: list[int] = []
    last = 0
    for m in re.finditer(r"\s{2,}|[^\S ]", window):
        pieces.append(window[last : m.start()])
        pieces.append(" ")
        last = m.end()
        run_ends.append(m.end())
        removed.append((removed[-1] if removed else 0) + m.end() - m.start() - 1)
    pieces.append(window[last:])

    def where(k: int) -> int:
        i = bisect_right(run_ends, k) - 1
        return k - (removed[i] if i >= 0 else 0)

    lead = ELLIPSIS if start > 0 else ""
    tail = ELLIPSIS if end < len(text) else ""
    spans = tuple(
        (where(h.start - start) + len(lead), where(h.end - start) + len(lead))
        for h in own
        if h.start >= start and h.end <= end
    )
    return lead + "".join(pieces) + tail, spans


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(["word", "Korea", "é", " ", "  ", "\n", "\n\n", "\t ", "x,"]), max_size=60
    ),
    st.lists(st.tuples(st.floats(0, 1), st.integers(1, 12)), max_size=4),
)
def test_snippet_agrees_with_the_regex_collapse(
    parts: list[str], spans: list[tuple[float, int]]
) -> None:
    # Hits may start or end anywhere (a regex hit can end inside whitespace).
    text = "".join(parts)
    view = Doc(text_article(text)).ci
    starts = [(int(f * len(text)), n) for f, n in spans]
    own = sorted(
        {Hit("t", "content", s, min(s + n, len(text))) for s, n in starts if s < len(text)},
        key=lambda h: (h.start, -h.end),
    )
    assert make_snippet(view, own) == _snippet_by_regex(text, own)
