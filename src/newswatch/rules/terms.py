"""A word or phrase of a query, compiled to a search over ``FieldText.joined``.

Each query token has a kind that says how it matches a text token:

- ``E`` exact: the whole token (scripts with spaces between words);
- ``P`` prefix: the text token starts with it (``russ*``; last token only);
- ``H`` Hangul: the text token starts with it, so particles attach
  (러시아 matches 러시아는, not 벨라러시아);
- ``S`` substring, for Chinese, Japanese, Thai, Lao, Khmer, Myanmar: alone it
  may sit anywhere in a run of such characters; first in a phrase it must end
  its run, last in a phrase it must begin one, in between be the whole run.

Because ``joined`` is ``" tok tok ... "``, every kind becomes a plain
substring test: ``" russia "`` (E), ``" russ"`` (P), ``" 러시아"`` (H),
``"北韩"`` (S), ``" north korea "`` (a phrase). Only a Hangul word in the
middle of a phrase (``"북한 핵"``: 북한 may carry a particle) needs a regex.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from newswatch.rules.doc import HANGUL_KEY_MAX, FieldText
from newswatch.rules.text import CJK, HANGUL, SEA, TOKEN_RE, fold_text, token_class

E, P, H, S = "E", "P", "H", "S"

# Presearch keys: ("x", token) is looked up among the article's tokens (plus
# Hangul prefixes and CJK/Thai 1-2-grams); ("p", abc) among tokens' first 3
# characters.
Key = tuple[str, str]

# Words so common that a rule indexed under them is a candidate for nearly
# every English article; any other required term is a better key.
# fmt: off
_STOPWORDS: Final = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "for", "from", "had", "has",
    "have", "he", "her", "his", "i", "in", "is", "it", "its", "not", "of", "on", "or", "said",
    "she", "that", "the", "their", "they", "this", "to", "was", "we", "were", "will", "with",
    "you",
})
# fmt: on


@dataclass(frozen=True, slots=True)
class TermPattern:
    """How to find one word or phrase in a ``FieldText``."""

    tokens: tuple[tuple[str, str], ...]  # (token, kind)
    single: str | None  # one exact token: a set lookup is enough
    search: str  # literal to find in ``joined`` (unused when ``rx`` is set)
    rx: re.Pattern[str] | None
    lead: bool  # ``search`` starts with the space before the first token
    trail: bool  # ``search`` ends with the space after the last token
    keys: tuple[tuple[float, Key], ...]  # (cost, key) per distinct token, cheapest first

    def occurrences(self, ft: FieldText) -> Iterator[tuple[int, int]]:
        """Every match as a [start, end) region of ``ft.joined`` (token text only)."""
        joined = ft.joined
        lead, trail = int(self.lead), int(self.trail)
        if self.rx is None:
            size = len(self.search)
            i = joined.find(self.search)
            while i >= 0:
                yield i + lead, i + size - trail
                i = joined.find(self.search, i + 1)
            return
        m = self.rx.search(joined)
        while m is not None:
            yield m.start() + lead, m.end() - trail
            m = self.rx.search(joined, m.start() + 1)


def key_cost(kind: str, token: str) -> float:
    """Estimated cost of indexing a rule under ``token``: lower is rarer.

    Without corpus statistics, long words are taken to be rarer than short
    ones; a 3-letter prefix key and stop words are the last resort.
    """
    if kind == P:
        return 12.0
    if kind == S:
        return 3.0 if len(token) >= 2 else 6.0
    if token in _STOPWORDS:
        return 30.0
    length = 2 * len(token) if kind == H else len(token)  # a syllable carries ~2 letters
    return 1.0 + 8.0 / length


def _key(kind: str, token: str) -> Key:
    if kind == P:
        return ("p", token[:3])
    if kind == H:
        return ("x", token[:HANGUL_KEY_MAX])
    if kind == S:
        return ("x", token[:2])
    return ("x", token)


def analyze(text: str, casefold: bool, *, prefix: bool, phrase: bool) -> list[tuple[str, str]]:
    """The (token, kind) list a query word or phrase stands for.

    In a phrase, CJK words separated only by spaces are joined ("北韩 核试验"
    finds 北韩核试验): Chinese and Japanese text has no spaces to match.
    """
    norm = fold_text(text, casefold)
    out: list[tuple[str, str]] = []
    classes: list[int] = []
    prev_end = 0
    for m in TOKEN_RE.finditer(norm):
        tok = m.group()
        cls = token_class(tok)
        gap = norm[prev_end : m.start()]
        prev_end = m.end()
        if phrase and classes and cls == CJK and classes[-1] == CJK and gap.isspace():
            out[-1] = (out[-1][0] + tok, S)
            continue
        kind = H if cls == HANGUL else S if cls in (CJK, SEA) else E
        out.append((tok, kind))
        classes.append(cls)
    if prefix and out and out[-1][1] == E:
        out[-1] = (out[-1][0], P)
    return out


def compile_term(tokens: list[tuple[str, str]]) -> TermPattern:
    """Build the search for a non-empty (token, kind) list."""
    last = len(tokens) - 1
    needs_rx = any(kind == H for _, kind in tokens[:last])
    literal: list[str] = []
    pattern: list[str] = []
    for i, (tok, kind) in enumerate(tokens):
        space = "" if i == 0 and kind == S else " "
        literal.append(space + tok)
        pattern.append(space + re.escape(tok) + ("[^ \\n]*" if kind == H and i < last else ""))
    lead = tokens[0][1] != S
    trail = tokens[last][1] == E
    if trail:
        literal.append(" ")
        pattern.append(" ")
    keys = sorted({(key_cost(k, t), _key(k, t)) for t, k in tokens})
    single = tokens[0][0] if len(tokens) == 1 and tokens[0][1] == E else None
    return TermPattern(
        tokens=tuple(tokens),
        single=single,
        search="".join(literal),
        rx=re.compile("".join(pattern)) if needs_rx else None,
        lead=lead,
        trail=trail,
        keys=tuple(keys),
    )
