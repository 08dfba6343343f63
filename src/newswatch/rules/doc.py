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

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Final

from newswatch.model import Article, Hit
from newswatch.rules.query import DEFAULT_FIELDS
from newswatch.rules.text import (
    CJK,
    HANGUL,
    MAX_FIELD_CHARS,
    SEA,
    TOKEN_RE,
    char_class,
    fold,
    to_original,
)

# Position gap between the values of a multi-valued field (tags,
# categories): larger than any NEAR distance, so NEAR never pairs two values.
VALUE_GAP: Final = 1000
# Korean keys are indexed by at most this many leading syllables; the article
# side offers every prefix of its Hangul words up to this length.
HANGUL_KEY_MAX: Final = 6
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


class FieldText:
    """One field of one article, folded (case-folded or not) and tokenized."""

    __slots__ = ("_jstarts", "_positions", "_spans", "display", "joined", "norm", "offmap")
    __slots__ += ("tokens", "value_counts")

    def __init__(self, values: tuple[str, ...], casefold: bool) -> None:
        values = tuple(v[:MAX_FIELD_CHARS] for v in values)
        self.display = VALUE_SEPARATOR.join(values)
        self.norm, self.offmap = fold(self.display, casefold)
        self.value_counts: list[int] | None = None
        self._jstarts: list[int] | None = None
        self._positions: list[int] | None = None
        self._spans: list[tuple[int, int]] | None = None
        if len(values) <= 1:
            self.tokens: list[str] = TOKEN_RE.findall(self.norm)
            self.joined = " " + " ".join(self.tokens) + " " if self.tokens else " "
            return
        tokens: list[str] = []
        pieces: list[str] = []
        counts: list[int] = []
        for j, (lo, hi) in enumerate(self._value_bounds(values)):
            found = TOKEN_RE.findall(self.norm, lo, hi)
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

    def _value_bounds(self, values: tuple[str, ...]) -> list[tuple[int, int]]:
        """Each value's [start, end) in ``norm``."""
        bounds: list[tuple[int, int]] = []
        start = 0
        for v in values:
            end = start + len(v)
            if self.offmap is None:
                bounds.append((start, end))
            else:
                bounds.append((bisect_left(self.offmap, start), bisect_left(self.offmap, end)))
            start = end + len(VALUE_SEPARATOR)
        return bounds

    def jstarts(self) -> list[int]:
        """Offset of each token in ``joined``."""
        if self._jstarts is None:
            out: list[int] = []
            pos = 0
            counts = self.value_counts or [len(self.tokens)]
            k = 0
            for j, count in enumerate(counts):
                if j:
                    pos += 2
                for tok in self.tokens[k : k + count]:
                    out.append(pos + 1)
                    pos += 1 + len(tok)
                k += count
            self._jstarts = out
        return self._jstarts

    def positions(self) -> list[int]:
        """Word position of each token (multi-valued fields leave a gap)."""
        if self._positions is None:
            if self.value_counts is None:
                self._positions = list(range(len(self.tokens)))
            else:
                out: list[int] = []
                for j, count in enumerate(self.value_counts):
                    base = len(out) + j * VALUE_GAP
                    out.extend(range(base, base + count))
                self._positions = out
        return self._positions

    def spans(self) -> list[tuple[int, int]]:
        """Each token's [start, end) in ``norm``."""
        if self._spans is None:
            # Tokens never span the value separator: one scan finds the same tokens.
            self._spans = [m.span() for m in TOKEN_RE.finditer(self.norm)]
        return self._spans

    def token_at(self, joffset: int) -> int:
        """Index of the token that holds ``joined[joffset]``."""
        return bisect_right(self.jstarts(), joffset) - 1

    def display_span(self, jstart: int, jend: int) -> tuple[int, int]:
        """Map a [start, end) region of ``joined`` (inside tokens) to the display text."""
        js = self.jstarts()
        spans = self.spans()
        k0 = bisect_right(js, jstart) - 1
        k1 = bisect_right(js, jend - 1) - 1
        start = spans[k0][0] + (jstart - js[k0])
        end = spans[k1][0] + (jend - js[k1])
        return to_original(self.offmap, start, end)


def _lookup_extras(tokens: set[str]) -> set[str]:
    """Keys that non-spaced scripts add: Hangul word prefixes, CJK/Thai 1- and 2-grams."""
    extra: set[str] = set()
    for tok in tokens:
        if tok.isascii():
            continue
        cls = char_class(tok[0])
        if cls == HANGUL:
            extra.update(tok[:k] for k in range(1, min(len(tok), HANGUL_KEY_MAX) + 1))
        elif cls == CJK or cls == SEA:
            extra.update(tok)
            extra.update(tok[k : k + 2] for k in range(len(tok) - 1))
    return extra


class View:
    """All fields of one article, folded one way (case-insensitive or not)."""

    __slots__ = ("_prefix3", "doc", "fields", "hits", "joins", "lookup", "sets")

    def __init__(self, doc: Doc, casefold: bool) -> None:
        self.doc = doc
        fields = {name: FieldText(vals, casefold) for name, vals in doc.values.items()}
        self.fields = fields
        sets = {name: set(ft.tokens) for name, ft in fields.items()}
        default = sets["title"] | sets["summary"] | sets["content"]
        lookup = default.union(sets["author"], sets["source"], sets["url"], sets["category"])
        sets["*"] = default
        self.sets = sets
        joins = {name: ft.joined for name, ft in fields.items()}
        joins["*"] = "\n".join([joins[f] for f in DEFAULT_FIELDS])
        self.joins = joins
        if not all(ft.norm.isascii() for ft in fields.values()):
            lookup |= _lookup_extras(lookup)
        self.lookup = lookup
        self._prefix3: set[str] | None = None
        # Explanations of many rules share terms: (term label, field) -> hits.
        self.hits: dict[tuple[str, str], tuple[Hit, ...]] = {}

    def prefix3(self) -> set[str]:
        """First three characters of every token (the key of prefix* terms)."""
        if self._prefix3 is None:
            self._prefix3 = {t[:3] for t in self.lookup if len(t) >= 3}
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
                ft = self._cs.fields[name]
                found = (ft.norm, ft.offmap)
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
