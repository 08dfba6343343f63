"""One article, analysed once for every rule that looks at it.

For each field a ``FieldText`` holds the display text (what a renderer
highlights), the folded text, the tokens, and ``joined``: the tokens as one
string, ``" tok1 tok2 ... "``, values of a multi-valued field separated by
``" \\n"``. Matching a word, a phrase, a Korean prefix or a Chinese substring
is then one ``in`` test on ``joined`` (C speed), and a single word is one set
lookup. Word positions, token offsets and the like are computed only when a
NEAR rule or an explanation asks for them.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate, count
from operator import add
from typing import Final

from newswatch.model import Article, Hit
from newswatch.rules.query import DEFAULT_FIELDS
from newswatch.rules.text import (
    _CLASS_TABLE,
    CJK,
    HANGUL,
    MAX_FIELD_CHARS,
    SEA,
    char_class,
    fast_tokens,
    fold,
    to_original,
)

# Position gap between the values of a multi-valued field (tags,
# categories): larger than any NEAR distance, so NEAR never pairs two values.
VALUE_GAP: Final = 1000
# Korean keys are indexed by at most this many leading syllables; the article
# side offers every prefix of its Hangul words up to this length.
HANGUL_KEY_MAX: Final = 6
# Above one extra UTF-8 byte in this many characters, a field's non-ASCII
# tokens are found by testing every token rather than by searching for them.
MOSTLY_NON_ASCII: Final = 20
# Separator of multi-valued fields in their display text.
VALUE_SEPARATOR: Final = ", "


def field_values(article: Article) -> dict[str, tuple[str, ...]]:
    """The matchable fields of an article, each as a tuple of values."""
    urls = [article.canonical_url]
    if article.link and article.link != article.canonical_url:
        urls.append(article.link)
    return {
        "title": (article.title,),
        "summary": (article.summary,),
        "content": (article.content,),
        "author": (article.author,),
        "source": tuple(v for v in (article.source, *article.tags) if v),
        "url": tuple(v for v in urls if v),
        "category": tuple(v for v in article.categories if v),
    }


def _class_at(text: str, i: int) -> int:
    """``char_class(text[i])``, with the table lookup inlined for the BMP."""
    cp = ord(text[i])
    return _CLASS_TABLE[cp] if cp < 0x10000 else char_class(text[i])


class _Places:
    """Where one token occurs as a whole token, in ``joined`` and in the folded
    text, in the same order: the m-th of one is the m-th of the other. Both
    lists grow only as far as a lookup needs."""

    __slots__ = ("cls", "in_joined", "in_norm", "needle", "norm_done", "token")

    def __init__(self, token: str) -> None:
        self.token = token
        self.needle = f" {token} "
        self.cls = char_class(token[0])
        self.in_joined: list[int] = []
        self.in_norm: list[int] = []
        self.norm_done = False  # every occurrence in the folded text is in ``in_norm``

    def _next_in_norm(self, norm: str) -> bool:
        """Append the next whole-token occurrence in ``norm``; False when there is none."""
        in_norm, token, cls = self.in_norm, self.token, self.cls
        size, end = len(token), len(norm)
        i = norm.find(token, in_norm[-1] + 1 if in_norm else 0)
        while i >= 0 and not (
            (i == 0 or _class_at(norm, i - 1) != cls)
            and (i + size == end or _class_at(norm, i + size) != cls)
        ):
            i = norm.find(token, i + 1)
        if i < 0:
            self.norm_done = True
            return False
        in_norm.append(i)
        return True

    def first_in_norm(self, norm: str, limit: int) -> list[int]:
        """Offsets in ``norm`` of the first ``limit`` occurrences (fewer if there are not)."""
        in_norm = self.in_norm
        while len(in_norm) < limit and not self.norm_done and self._next_in_norm(norm):
            pass
        return in_norm[:limit]

    def norm_offset(self, joined: str, norm: str, jstart: int) -> int:
        """Offset in ``norm`` of the token that starts at ``joined[jstart]``."""
        in_joined = self.in_joined
        while not in_joined or in_joined[-1] < jstart:
            i = joined.find(self.needle, in_joined[-1] if in_joined else 0)
            if i < 0:
                raise ValueError(f"{self.token!r} is not a token at {jstart}")  # pragma: no cover
            in_joined.append(i + 1)
        m = bisect_left(in_joined, jstart)
        while len(self.in_norm) <= m:
            if self.norm_done or not self._next_in_norm(norm):
                problem = "folded text and tokens disagree"
                raise ValueError(f"{self.token!r}: {problem}")  # pragma: no cover
        return self.in_norm[m]


class FieldText:
    """One field of one article, folded (case-folded or not) and tokenized."""

    __slots__ = (
        "_folded",
        "_jstarts",
        "_places",
        "_positions",
        "casefold",
        "display",
        "joined",
        "tokens",
        "value_counts",
    )

    def __init__(self, values: tuple[str, ...], casefold: bool) -> None:
        values = tuple(v[:MAX_FIELD_CHARS] for v in values)
        self.display = VALUE_SEPARATOR.join(values)
        self.casefold = casefold
        self.value_counts: list[int] | None = None
        self._folded: tuple[str, list[int] | None] | None = None
        self._jstarts: list[int] | None = None
        self._positions: list[int] | None = None
        self._places: dict[str, _Places] = {}
        if len(values) <= 1:
            self.tokens: list[str] = fast_tokens(self.display, casefold)
            self.joined = " " + " ".join(self.tokens) + " " if self.tokens else " "
            return
        tokens: list[str] = []
        pieces: list[str] = []
        counts: list[int] = []
        for j, value in enumerate(values):
            found = fast_tokens(value, casefold)
            tokens.extend(found)
            counts.append(len(found))
            if j:
                pieces.append(" \n")
            if found:
                pieces.append(" " + " ".join(found))
        pieces.append(" ")
        self.tokens = tokens
        self.joined = "".join(pieces)
        self.value_counts = counts

    def folded(self) -> tuple[str, list[int] | None]:
        """The folded display text and its offset map (see ``text.fold``)."""
        if self._folded is None:
            self._folded = fold(self.display, self.casefold)
        return self._folded

    def jstarts(self) -> list[int]:
        """Offset of each token in ``joined``."""
        if self._jstarts is None:
            lengths = map(len, self.tokens)
            if self.value_counts is None:
                # token k starts after k+1 spaces and the k tokens before it
                self._jstarts = list(map(add, accumulate(lengths, initial=0), count(1)))
                self._jstarts.pop()
            else:
                out: list[int] = []
                pos = 0
                k = 0
                for j, n in enumerate(self.value_counts):
                    if j:
                        pos += 2
                    for tok in self.tokens[k : k + n]:
                        out.append(pos + 1)
                        pos += 1 + len(tok)
                    k += n
                self._jstarts = out
        return self._jstarts

    def positions(self) -> list[int]:
        """Word position of each token (multi-valued fields leave a gap)."""
        if self._positions is None:
            if self.value_counts is None:
                self._positions = list(range(len(self.tokens)))
            else:
                out: list[int] = []
                for j, n in enumerate(self.value_counts):
                    base = len(out) + j * VALUE_GAP
                    out.extend(range(base, base + n))
                self._positions = out
        return self._positions

    def token_at(self, joffset: int) -> int:
        """Index of the token that holds ``joined[joffset]``."""
        return bisect_right(self.jstarts(), joffset) - 1

    def _token_places(self, token: str) -> _Places:
        places = self._places.get(token)
        if places is None:
            places = self._places[token] = _Places(token)
        return places

    def token_spans(self, token: str, limit: int) -> list[tuple[int, int]]:
        """Display spans of the first ``limit`` occurrences of the whole token
        ``token``: the same ones, in the same order, as its occurrences in
        ``joined``, but found in the folded text directly (the common case of
        an explanation: a single word)."""
        norm, offmap = self.folded()
        size = len(token)
        offsets = self._token_places(token).first_in_norm(norm, limit)
        if offmap is None:
            return [(i, i + size) for i in offsets]
        return [to_original(offmap, i, i + size) for i in offsets]

    def _to_norm(self, joffset: int) -> int:
        """Map an offset inside a token of ``joined`` to the folded text."""
        joined = self.joined
        start = joined.rfind(" ", 0, joffset + 1) + 1
        token = joined[start : joined.find(" ", start)]
        places = self._token_places(token)
        return places.norm_offset(joined, self.folded()[0], start) + (joffset - start)

    def display_span(self, jstart: int, jend: int) -> tuple[int, int]:
        """Map a [start, end) region of ``joined`` (inside tokens) to the display text."""
        start = self._to_norm(jstart)
        if self.joined.find(" ", jstart, jend) < 0:
            end = start + (jend - jstart)  # one token: no need to look it up again
        else:
            end = self._to_norm(jend - 1) + 1
        return to_original(self.folded()[1], start, end)


# Hangul, CJK and Thai/Lao/Khmer/Myanmar all lie at or above U+0E00: a token
# without such a character (accented Latin, say) adds no lookup keys.
_FROM_U0E00: Final = re.compile("[\u0e00-\U0010ffff]")


def _non_ascii_tokens(joined: str) -> list[str]:
    """The tokens of ``joined`` that may be Hangul, CJK or SEA (a superset:
    every token holding a character from U+0E00 up)."""
    out: list[str] = []
    m = _FROM_U0E00.search(joined)
    while m is not None:
        i = m.start()
        start = joined.rfind(" ", 0, i) + 1
        end = joined.find(" ", i)
        out.append(joined[start:end])
        m = _FROM_U0E00.search(joined, end)
    return out


def _lookup_extras(tokens: list[str]) -> set[str]:
    """Keys that non-spaced scripts add: Hangul word prefixes, CJK/Thai 1- and 2-grams."""
    extra: set[str] = set()
    for tok in tokens:
        cls = char_class(tok[0])
        if cls == HANGUL:
            extra.update(tok[:k] for k in range(1, min(len(tok), HANGUL_KEY_MAX) + 1))
        elif cls in (CJK, SEA):
            extra.update(tok)
            extra.update(tok[k : k + 2] for k in range(len(tok) - 1))
    return extra


_EMPTY: Final[dict[bool, FieldText]] = {}


def _field_text(values: tuple[str, ...], casefold: bool) -> FieldText:
    if any(values):
        return FieldText(values, casefold)
    empty = _EMPTY.get(casefold)  # most articles have no author or categories
    if empty is None:
        empty = _EMPTY[casefold] = FieldText((), casefold)
    return empty


class _FieldSets(dict[str, set[str]]):
    """Token set per field, built on first use. Unfielded terms (nearly all)
    look at ``"*"``, built up front; a set per field is built only when a
    ``title:``/``url:``/... term or an explanation asks for it."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, FieldText], default: set[str]) -> None:
        super().__init__()
        self._fields = fields
        self["*"] = default

    def __missing__(self, name: str) -> set[str]:
        found = self[name] = set(self._fields[name].tokens)
        return found


# Fields outside the default ("*") set: their tokens are presearch keys too.
OTHER_FIELDS: Final = ("author", "source", "url", "category")


class View:
    """All fields of one article, folded one way (case-insensitive or not).

    ``sets`` and ``joins`` are keyed by field name and by ``"*"`` (title,
    summary and content together). The presearch keys an article offers are
    ``lookup`` (the ``"*"`` set itself, not a copy) plus ``extra``: the
    tokens of the other fields and the Hangul/CJK keys, usually a few.
    """

    __slots__ = (
        "_prefix3",
        "doc",
        "extra",
        "fields",
        "hits",
        "joins",
        "lookup",
        "sets",
    )

    def __init__(self, doc: Doc, casefold: bool) -> None:
        self.doc = doc
        fields = {name: _field_text(vals, casefold) for name, vals in doc.values.items()}
        self.fields = fields
        # One set for title, summary and content, built from the token lists
        # (content first: it is the largest), rather than a set per field and
        # then their union: most rules never look at one field alone.
        default = set(fields["content"].tokens)
        default.update(fields["title"].tokens, fields["summary"].tokens)
        self.sets = _FieldSets(fields, default)
        extra: set[str] = set()
        for name in OTHER_FIELDS:
            tokens = fields[name].tokens
            if tokens:
                extra.update(tokens)
        extra -= default
        joins = {name: ft.joined for name, ft in fields.items()}
        joins["*"] = "\n".join([joins[f] for f in DEFAULT_FIELDS])
        self.joins = joins
        odd: list[str] = []
        for ft in fields.values():
            joined = ft.joined
            if not joined.isascii():
                if len(joined.encode()) - len(joined) > len(joined) // MOSTLY_NON_ASCII:
                    odd.extend(t for t in set(ft.tokens) if not t.isascii())
                else:
                    odd.extend(_non_ascii_tokens(joined))
        if odd:
            extra |= _lookup_extras(odd)
        self.lookup = default
        self.extra = extra
        self._prefix3: set[str] | None = None
        # Explanations of many rules share terms: (term label, field) -> hits.
        self.hits: dict[tuple[str, str], tuple[Hit, ...]] = {}

    def prefix3(self) -> set[str]:
        """First three characters of every token (the key of prefix* terms)."""
        if self._prefix3 is None:
            self._prefix3 = {t[:3] for t in self.lookup if len(t) >= 3}
            self._prefix3.update(t[:3] for t in self.extra if len(t) >= 3)
        return self._prefix3


class Doc:
    """An article and its lazily built views."""

    __slots__ = ("_cs", "_regex", "_scope", "article", "ci", "values")

    def __init__(self, article: Article) -> None:
        self.article = article
        self.values = field_values(article)
        self._cs: View | None = None
        self._regex: dict[str, tuple[str, list[int] | None]] = {}
        self._scope: frozenset[str] | None = None
        self.ci = View(self, casefold=True)

    @property
    def cs(self) -> View:
        """The case-preserving view (built only when a case-sensitive rule needs it)."""
        if self._cs is None:
            self._cs = View(self, casefold=False)
        return self._cs

    def view(self, casefold: bool) -> View:
        return self.ci if casefold else self.cs

    def regex_text(self, name: str) -> tuple[str, list[int] | None]:
        """What ``/regex/`` searches: the field folded but with case kept."""
        found = self._regex.get(name)
        if found is None:
            if self._cs is not None:
                found = self._cs.fields[name].folded()
            else:
                found = fold(self.ci.fields[name].display, casefold=False)
            self._regex[name] = found
        return found

    def scope_keys(self) -> frozenset[str]:
        """What a rule's ``scope`` entries are compared with (casefolded)."""
        if self._scope is None:
            a = self.article
            keys = {a.feed_key.casefold(), a.source.casefold()}
            keys.update("tag:" + t.casefold() for t in a.tags)
            self._scope = frozenset(keys)
        return self._scope


Predicate = Callable[[View], bool]
