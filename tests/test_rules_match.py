"""Matching articles: the seed story, every term kind, scripts, scope, explanations."""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pytest

from newswatch.model import Article, Explanation, Hit
from newswatch.rules import RuleIndex, RuleSpec, compile_rules
from samples import SEED_PATH

SEED = SEED_PATH
SEED_TITLE = "THAAD was not issue during S. Korea-Russia talks: official"


def article(
    content: str = "",
    *,
    title: str = "",
    summary: str = "",
    author: str = "",
    source: str = "Korea Herald",
    tags: tuple[str, ...] = ("korea",),
    categories: tuple[str, ...] = (),
    url: str = "https://www.koreaherald.com/view.php?ud=20160616000692",
    feed_key: str = "https://www.koreaherald.com/rss/national.xml",
) -> Article:
    return Article(
        feed_key=feed_key,
        entry_key="e1",
        story_key="s1",
        title=title,
        summary=summary,
        content=content,
        link=url,
        canonical_url=url,
        author=author,
        categories=categories,
        published=datetime(2016, 6, 16, tzinfo=UTC),
        source=source,
        tags=tags,
    )


def seed_text() -> str:
    if SEED.exists():
        return SEED.read_text(encoding="utf-8")
    pytest.skip("the shared seed article is not here")  # pragma: no cover


def names(
    queries: Mapping[str, str] | Sequence[RuleSpec],
    art: Article,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    specs = (
        [RuleSpec(n, q) for n, q in queries.items()] if isinstance(queries, Mapping) else queries
    )
    return [m.rule for m in compile_rules(specs, aliases).match(art)]


def hits_text(index: RuleIndex, rule: str, art: Article) -> list[tuple[str, str]]:
    [match] = [m for m in index.match(art) if m.rule == rule]
    return [(h.field, getattr(art, h.field)[h.start : h.end]) for h in match.explanation.hits]


def test_seed_article() -> None:
    seed = article(seed_text(), title=SEED_TITLE)
    queries = {
        "russia-north-korea": 'Russia AND "North Korea"',
        "russia-bulgaria-no-thaad": "Russia AND Bulgaria NOT THAAD",
        "thaad-or-sanctions": "THAAD OR sanctions",
        "bulgaria": "Bulgaria Mitov",
        "japan-annexation": "Japan* NEAR/2 annexation",
    }
    assert names(queries, seed) == [
        "russia-north-korea",
        "thaad-or-sanctions",
        "bulgaria",
        "japan-annexation",
    ]


def test_and_or_not_and_minus() -> None:
    art = article("Russia and China oppose the THAAD deployment.")
    assert names(
        {
            "a": "Russia China",
            "b": "Russia -THAAD",
            "c": "Japan OR China",
            "d": "NOT Japan",
            "e": "(Japan OR Korea) Russia",
            "f": "Russia NOT (Japan OR THAAD)",
        },
        art,
    ) == ["a", "c", "d"]


def test_words_are_whole_words() -> None:
    art = article("The Russians met in Pyongyang's embassy; e-mail and U.S. officials.")
    assert names(
        {
            "russia": "Russia",
            "russians": "Russians",
            "pyongyang": "Pyongyang",
            "email": "e-mail",
            "us": "U.S.",
            "mail": "mail",
            "u-s-phrase": '"u s officials"',
        },
        art,
    ) == ["russians", "pyongyang", "email", "us", "mail", "u-s-phrase"]


def test_phrases_and_prefixes() -> None:
    art = article("North Korea's denuclearization talks; the north. Korea later.")
    assert names(
        {
            "phrase": '"North Korea"',
            "across-punctuation": '"north korea later"',
            "not-adjacent": '"Korea talks"',
            "prefix": "denuclear*",
            "prefix-exact": "talks*",
            "prefix-miss": "denuclearizations*",
        },
        art,
    ) == ["phrase", "across-punctuation", "prefix", "prefix-exact"]


def test_near_both_orders_and_with_phrases() -> None:
    art = article("Russia, after long talks with officials from North Korea, agreed.")
    # Russia [after long talks with officials from] North Korea: 6 words between
    assert names(
        {
            "near6": 'Russia NEAR/6 "North Korea"',
            "near5": 'Russia NEAR/5 "North Korea"',
            "reversed": '"North Korea" NEAR/6 Russia',
            "phrases": '"long talks" NEAR/3 "North Korea"',
            "phrases-too-far": '"long talks" NEAR/2 "North Korea"',
            "adjacent": "officials NEAR/0 from",
            "adjacent-reversed": "from NEAR/0 officials",
            "group": "(China OR Russia) NEAR/1 after",
            "prefix": "offic* NEAR/1 north",
        },
        art,
    ) == ["near6", "reversed", "phrases", "adjacent", "adjacent-reversed", "group", "prefix"]


def test_near_stays_within_one_field_and_needs_two_places() -> None:
    art = article("Korea talks", title="Russia")
    assert names({"x": "Russia NEAR/5 talks", "same": "talks NEAR/3 talks"}, art) == []
    assert names({"same": "talks NEAR/3 talks"}, article("talks and talks")) == ["same"]


def test_regex_over_folded_text() -> None:
    art = article("Sergey Lavrov met Yun Byung-se in Pyŏngyang.", title="Talks")
    assert names(
        {
            "word": r"/\bLavrov\b/",
            "any-case": "/lavrov/",
            "accents-folded": "/Pyongyang/",
            "i-flag": "/BYUNG-SE/i",
            "field": "title:/^Tal/",
            "miss": r"/Lavrov\d/",
        },
        art,
    ) == ["word", "any-case", "accents-folded", "i-flag", "field"]
    cs = [
        RuleSpec("cs", "/lavrov/", case_sensitive=True),
        RuleSpec("cs-i", "/lavrov/i", case_sensitive=True),
    ]
    assert names(cs, art) == ["cs-i"]


def test_fields() -> None:
    art = article(
        "Body text about sanctions.",
        title="THAAD row",
        summary="Missile defense",
        author="Lim Jeong-yo",
        categories=("North Korea", "Diplomacy"),
        tags=("korea", "asia"),
    )
    assert names(
        {
            "title": "title:THAAD",
            "title-miss": "title:sanctions",
            "group": 'title:(sanctions OR "THAAD row")',
            "summary": 'summary:"missile defense"',
            "content": "content:sanctions",
            "author": "author:Lim",
            "source-name": 'source:"Korea Herald"',
            "source-tag": "source:asia",
            "url": "url:koreaherald.com",
            "category": 'category:"north korea"',
            "category-across-values": 'category:"korea diplomacy"',
            "default-is-text": "Lim",
        },
        art,
    ) == [
        "title",
        "group",
        "summary",
        "content",
        "author",
        "source-name",
        "source-tag",
        "url",
        "category",
    ]


def test_case_and_accent_insensitive_by_default_and_case_sensitive_option() -> None:
    art = article("PYŎNGYANG and the US said; the us said.", title="Ｔｏｋｙｏ café")
    assert names({"a": "pyongyang", "b": "Tokyo", "c": "CAFE"}, art) == ["a", "b", "c"]
    specs = [
        RuleSpec("US", '"US said"', case_sensitive=True),
        RuleSpec("us-lower", "us NOT US", case_sensitive=True),
        RuleSpec("Pyongyang", "Pyongyang", case_sensitive=True),
        RuleSpec("PYONGYANG", "PYONGYANG", case_sensitive=True),
    ]
    assert names(specs, art) == ["US", "PYONGYANG"]


def test_korean_particles_attach_but_not_inside_words() -> None:
    art = article("러시아는 북한과 회담했다. 러시아와 중국도 참석. THAAD는 배치됐다.")
    other = article("벨라러시아 대통령이 방문했다.")
    queries = {"russia": "러시아", "nk": "북한", "thaad": "THAAD", "phrase": '"러시아 중국"'}
    assert names(queries, art) == ["russia", "nk", "thaad", "phrase"]
    assert names(queries, other) == []
    assert names({"belarus": "벨라러시아"}, other) == ["belarus"]


def test_chinese_japanese_thai_match_substrings() -> None:
    zh = article("中国和北韩的关系。东京在日本。")
    assert names(
        {
            "nk": "北韩",
            "rel": "关系",
            "phrase": '"北韩 的关系"',
            "miss": "韩中",
            "across": "关系东京",
        },
        zh,
    ) == ["nk", "rel", "phrase"]
    ja = article("東京都とうきょうで会談が行われた")
    assert names({"tokyo": "東京", "kana": "きょう", "talks": "会談"}, ja) == [
        "tokyo",
        "kana",
        "talks",
    ]
    th = article("ประเทศไทยและเกาหลีเหนือ")
    assert names({"thai": "ไทย", "korea": "เกาหลี", "miss": "ลาว"}, th) == ["thai", "korea"]


def test_aliases() -> None:
    aliases = {
        "north_korea": ["North Korea", "DPRK", "Pyongyang", "북한"],
        "russia": ["Russia*", "러시아", "@moscow"],
        "moscow": ["Moscow", "Kremlin"],
    }
    specs = [
        RuleSpec("en", "@north_korea AND @russia"),
        RuleSpec("ko", "@north_korea @russia"),
        RuleSpec("near", "@north_korea NEAR/3 @russia"),
        RuleSpec("kremlin", "@moscow"),
    ]
    assert names(specs, article("The Kremlin and the DPRK signed."), aliases) == [
        "en",
        "ko",
        "near",
        "kremlin",
    ]
    assert names(specs, article("러시아와 북한이 회담"), aliases) == ["en", "ko", "near"]
    assert names(specs, article("North and Korea; Russians"), aliases) == []


def test_list_forms() -> None:
    specs = [
        RuleSpec("all", all=("Russia", "North Korea")),
        RuleSpec("any", any=("THAAD", "sanctions OR embargo")),
        RuleSpec("none", query="Russia", none=("sports", "football")),
        RuleSpec("none-only", none=("sports",)),
        RuleSpec("mixed", query="Russia", all=("talks",), any=("China", "Japan"), none=("war",)),
    ]
    art = article("Russia and North Korea held talks on the embargo with China.")
    assert names(specs, art) == ["all", "any", "none", "none-only", "mixed"]
    assert names(specs, article("Russia sports")) == []


def test_scope() -> None:
    specs = [
        RuleSpec("all-feeds", "Russia"),
        RuleSpec("by-tag", "Russia", scope=("tag:KOREA",)),
        RuleSpec("by-name", "Russia", scope=("korea herald",)),
        RuleSpec("by-key", "Russia", scope=("https://www.koreaherald.com/rss/national.xml",)),
        RuleSpec("other", "Russia", scope=("tag:japan", "Yonhap")),
    ]
    art = article("Russia")
    assert names(specs, art) == ["all-feeds", "by-tag", "by-name", "by-key"]
    verdict = compile_rules(specs).explain("other", art)
    assert not verdict.matched
    assert verdict.reason == "out of scope (feeds: tag:japan, Yonhap)"


def test_explanation_offsets_point_at_the_original_text() -> None:
    content = (
        "Intro.\n\nThe “North  Korea” talks — Pyŏngyang’s envoy met RUSSIA’s envoy; 러시아는 동의."
    )
    art = article(content, title="Straße: Russia and ＮＯＲＴＨ ＫＯＲＥＡ")
    index = compile_rules(
        [RuleSpec("r", 'Russia "north korea" pyongyang 러시아 strasse NOT sports')]
    )
    assert hits_text(index, "r", art) == [
        ("title", "Straße"),
        ("title", "Russia"),
        ("title", "ＮＯＲＴＨ ＫＯＲＥＡ"),
        ("content", "North  Korea"),
        ("content", "Pyŏngyang"),
        ("content", "RUSSIA"),
        ("content", "러시아"),
    ]


def test_snippet_and_highlights() -> None:
    filler = "word " * 60
    content = (
        f"{filler}The top diplomats of South Korea and Russia barely\n\n  discussed it. {filler}"
    )
    art = article(content, title="Russia")
    [m] = compile_rules([RuleSpec("r", "Russia discussed")]).match(art)
    ex = m.explanation
    assert ex.snippet.startswith("…") and ex.snippet.endswith("…")
    assert "Russia barely discussed it." in ex.snippet  # whitespace collapsed
    assert len(ex.snippet) <= 210
    assert [ex.snippet[s:e] for s, e in ex.highlights] == ["Russia", "discussed"]
    assert ex.terms == ("Russia", "discussed")


def test_explanation_for_near_and_regex_and_multi_value_fields() -> None:
    art = article(
        "x North Korea y z Russia",
        categories=("World", "North Korea"),
    )
    index = compile_rules(
        [
            RuleSpec("near", '"north korea" NEAR/3 russia'),
            RuleSpec("rx", "/Nor\\w+/"),
            RuleSpec("cat", 'category:"north korea"'),
        ]
    )
    assert hits_text(index, "near", art) == [("content", "North Korea"), ("content", "Russia")]
    assert hits_text(index, "rx", art) == [("content", "North")]
    [cat] = [m for m in index.match(art) if m.rule == "cat"]
    [hit] = cat.explanation.hits
    assert hit == Hit('category:"north korea"', "category", 7, 18)
    assert "World, North Korea"[hit.start : hit.end] == "North Korea"


def test_not_only_rule_has_a_snippet_without_highlights() -> None:
    [m] = compile_rules([RuleSpec("r", "NOT sports")]).match(article("Plain news.", title="T"))
    assert m.explanation.hits == ()
    assert m.explanation.snippet == "Plain news."
    assert m.explanation.highlights == ()


def test_lazy_explanation_behaves_like_a_plain_one() -> None:
    [m] = compile_rules([RuleSpec("r", "Russia")]).match(article("Russia and Russia"))
    ex = m.explanation
    plain = Explanation(hits=ex.hits, snippet=ex.snippet, highlights=ex.highlights)
    assert ex == plain and plain == ex and hash(ex) == hash(plain)
    assert type(pickle.loads(pickle.dumps(ex))) is Explanation
    assert pickle.loads(pickle.dumps(m)) == m
    assert dataclasses.replace(ex, snippet="s").snippet == "s"
    assert dataclasses.asdict(ex)["hits"][1] == {
        "term": "Russia",
        "field": "content",
        "start": 11,
        "end": 17,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.snippet = "x"  # type: ignore[misc]


def test_explain_verdicts() -> None:
    seed = article(seed_text(), title=SEED_TITLE)
    index = compile_rules(
        [
            RuleSpec("rnk", 'Russia AND "North Korea"'),
            RuleSpec("rb", "Russia AND Bulgaria NOT THAAD"),
            RuleSpec("missing", 'Russia AND "South Africa"'),
            RuleSpec("any", "Brazil OR Chile"),
            RuleSpec("near", "Yun NEAR/0 Bulgaria"),
            RuleSpec("rx", "/Argentina/"),
        ]
    )
    verdict = index.explain("rnk", seed)
    assert verdict.matched and verdict.reason == 'matched: Russia, "North Korea"'
    assert index.explain("rb", seed).reason == "excluded by NOT THAAD (found in title, content)"
    assert index.explain("missing", seed).reason == 'missing "South Africa"'
    assert index.explain("any", seed).reason == "missing all of: Brazil, Chile"
    assert index.explain("near", seed).reason == "not within 0 words: Yun NEAR/0 Bulgaria"
    assert index.explain("rx", seed).reason == "no match for /Argentina/"
    data = index.explain("rb", seed).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["matched"] is False
    assert {"term": "Russia", "field": "title", "start": 36, "end": 42} in data["hits"]
    with pytest.raises(KeyError):
        index.explain("nope", seed)


def test_stats_and_presearch() -> None:
    index = compile_rules(
        [
            RuleSpec("a", 'Russia "North Korea"'),
            RuleSpec("b", "NOT sports"),
            RuleSpec("c", "/regex/"),
            RuleSpec("d", "THAAD OR sanctions", scope=("tag:korea",)),
            RuleSpec("e", "Russia", case_sensitive=True),
            RuleSpec("f", "denuc*"),
        ]
    )
    stats = index.stats()
    assert (stats.rules, stats.always_candidates, stats.case_sensitive_rules) == (6, 2, 1)
    assert stats.scoped_rules == 1
    assert stats.indexed_terms >= 5
    assert index.rule_names == ("a", "b", "c", "d", "e", "f")
    assert [m.rule for m in index.match_text("Russia and North Korea on denuclearization")] == [
        "a",
        "b",
        "e",
        "f",
    ]


def test_hostile_text_does_not_break_matching() -> None:
    index = compile_rules([RuleSpec("r", "Russia"), RuleSpec("k", "러시아")])
    weird = "<b>Russia</b>&amp;\x00\u200b러시아\ufeff"
    assert [m.rule for m in index.match(article(weird))] == ["r", "k"]
    huge = "x " * 300_000 + "Russia"
    assert [m.rule for m in index.match(article(huge))] == []  # past MAX_FIELD_CHARS
    assert index.match(article("")) == []


def test_many_prefix_only_rules() -> None:
    # Past a few dozen prefix keys the index lists the article's 3-letter starts.
    stems = [f"{a}{b}{c}" for a in "bcd" for b in "aeiou" for c in "lmn"]
    specs = [RuleSpec(stem, f"{stem}x*") for stem in stems]
    index = compile_rules(specs)
    assert index.stats().indexed_terms == len(stems)
    assert [m.rule for m in index.match(article("Calxyz and bonxo, not dulx; calm."))] == [
        "bon",
        "cal",
        "dul",
    ]


def test_presearch_keys_from_fields_outside_the_default_ones() -> None:
    # An article offers the tokens of title, summary and content as one set and
    # those of author, source, url and category (and Korean prefixes) as a
    # second: a rule keyed on words from either, or from both, is a candidate.
    art = article("Talks on THAAD.", title="Seoul", author="김철수 Lim", categories=("Diplomacy",))
    queries = {
        "url-and-content": "url:koreaherald AND THAAD",
        "two-outside": "url:koreaherald AND category:diplomacy",
        "source-tag-and-title": "source:korea title:seoul",
        "korean-author": "author:김철",
        "korean-author-phrase": 'author:"김철수 lim"',
        "absent": "url:koreaherald AND category:sports",
        "content-not-url": "content:koreaherald",
    }
    assert names(queries, art) == [
        "url-and-content",
        "two-outside",
        "source-tag-and-title",
        "korean-author",
        "korean-author-phrase",
    ]
