"""Folding and tokenization: the one definition of "the same word".

Queries and articles go through the same two steps, so a query word matches a
text word exactly when their folded tokens agree.

1. ``fold(text, casefold)`` -> ``(norm, offmap)``: NFKC, casefold (unless the
   rule is case-sensitive), diacritics removed from Latin/Greek/Cyrillic
   letters (Pyŏngyang -> pyongyang), curly quotes and dashes made plain,
   invisible joiners and soft hyphens dropped. Folding is defined per
   character, which makes it a ``str.translate`` on the hot path; ``offmap``
   maps each ``norm`` index back to the original index and is ``None`` when
   the two are aligned one to one (nearly always).
2. ``tokenize(norm)``: maximal runs of word characters (letters, digits,
   combining marks; not ``_``), split where the script class changes. The
   classes are: other scripts with spaces between words (Latin, Cyrillic,
   Greek, Arabic, Devanagari, ...), Hangul, CJK (Han, kana), and the
   south-east Asian scripts written without spaces (Thai, Lao, Khmer,
   Myanmar). "THAAD는" is two tokens, ``thaad`` and ``는``.

How a query token matches a text token depends on its class (see
``docs/rules.md``): other scripts match whole words, Hangul matches at the
start of a word (particles attach), CJK and SEA match anywhere inside a run.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# Token classes (values of the per-code-point class table).
NONE: Final = 0
WORD: Final = 1  # scripts that separate words with spaces
HANGUL: Final = 2
CJK: Final = 3
SEA: Final = 4  # Thai, Lao, Khmer, Myanmar: no spaces between words

# A hostile feed can send megabytes of "content"; matching reads at most this
# many characters of one field so one article cannot stall the matcher.
MAX_FIELD_CHARS: Final = 256 * 1024

_HANGUL_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF))
_CJK_RANGES = (
    (0x2E80, 0x2FDF),  # radicals
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3021, 0x3029),
    (0x3031, 0x3035),
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # hiragana, katakana, ー
    (0x31F0, 0x31FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF9F),
)
_SEA_RANGES = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF))
# CJK extension planes; other astral characters are treated as separators.
_CJK_ASTRAL = (0x20000, 0x3FFFF)

# Diacritics are folded only on these scripts' letters: elsewhere (Thai vowel
# signs, Devanagari matras) a combining mark is part of the spelling.
_FOLD_MARKS_ON = ((0x0000, 0x052F), (0x1D00, 0x1FFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF))
# Combining marks that are dropped even without a base letter before them
# (text in decomposed form: "e" + U+0301).
_LOOSE_MARKS = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF))

_PUNCT = str.maketrans(
    {
        **dict.fromkeys("‘’‚‛′‵", "'"),
        **dict.fromkeys("“”„‟″‶«»", '"'),
        **dict.fromkeys("‐‑‒–—―−﹘﹣－", "-"),
        # Invisible: soft hyphen, zero-width space / non-joiner / joiner, word
        # joiner, BOM. Dropping them keeps "Rus\xadsia" one word and keeps runs
        # of Thai (which uses U+200B as a word-break hint) in one piece.
        **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
    }
)


def _in(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= cp <= hi for lo, hi in ranges)


def _build_class_table() -> bytes:
    table = bytearray(0x10000)
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if not (ch.isalnum() or unicodedata.category(ch).startswith("M")):
            continue
        if _in(cp, _HANGUL_RANGES):
            table[cp] = HANGUL
        elif _in(cp, _CJK_RANGES):
            table[cp] = CJK
        elif _in(cp, _SEA_RANGES):
            table[cp] = SEA
        else:
            table[cp] = WORD
    return bytes(table)


_CLASS_TABLE: Final = _build_class_table()


def char_class(ch: str) -> int:
    """The token class of one character (``NONE`` for separators)."""
    cp = ord(ch)
    if cp < 0x10000:
        return _CLASS_TABLE[cp]
    lo, hi = _CJK_ASTRAL
    return CJK if lo <= cp <= hi else NONE


def _char_set(cls: int) -> str:
    """A regex character-set body for every BMP code point of ``cls``."""
    parts: list[str] = []
    cp = 0
    while cp < 0x10000:
        if _CLASS_TABLE[cp] != cls:
            cp += 1
            continue
        start = cp
        while cp < 0x10000 and _CLASS_TABLE[cp] == cls:
            cp += 1
        parts.append(f"\\u{start:04x}" if cp - 1 == start else f"\\u{start:04x}-\\u{cp - 1:04x}")
    return "".join(parts)


TOKEN_RE: Final = re.compile(
    f"[{_char_set(WORD)}]+"
    f"|[{_char_set(HANGUL)}]+"
    f"|[{_char_set(CJK)}\\U{_CJK_ASTRAL[0]:08x}-\\U{_CJK_ASTRAL[1]:08x}]+"
    f"|[{_char_set(SEA)}]+"
)


def token_class(token: str) -> int:
    """The class of a token produced by ``TOKEN_RE`` (all its characters share it)."""
    return WORD if token.isascii() else char_class(token[0])


def _fold_char(ch: str, casefold: bool) -> str:
    s = unicodedata.normalize("NFKC", ch)
    if casefold:
        s = unicodedata.normalize("NFKC", s.casefold())
    s = s.translate(_PUNCT)
    out: list[str] = []
    base_folds = False
    for c in unicodedata.normalize("NFD", s):
        cp = ord(c)
        if unicodedata.category(c).startswith("M"):
            if base_folds or _in(cp, _LOOSE_MARKS):
                continue
        else:
            base_folds = _in(cp, _FOLD_MARKS_ON)
        out.append(c)
    return unicodedata.normalize("NFC", "".join(out))


NON_ASCII: Final = re.compile(r"[^\x00-\x7f]")
# Below this share of extra UTF-8 bytes a text counts as mostly ASCII, and
# the ASCII stretches are handled in bulk.
_MOSTLY_ASCII: Final = 0.1
# Characters whose folding is remembered; past this the memory starts over.
_FOLD_CACHE_MAX: Final = 50_000


_ASCII_BYTES: Final = bytes(range(128))
_LOWER_ASCII: Final = bytes(b + 32 if 65 <= b <= 90 else b for b in range(256))


class _Learned:
    """What a folder has learned so far. Never cleared in place: a reset
    swaps in a new one, so a thread still holding the old one keeps every
    mapping it learned (ingest threads share the folders)."""

    __slots__ = ("odd", "seen", "table")

    def __init__(self) -> None:
        self.table: dict[int, str] = {}
        self.seen: set[str] = set()
        self.odd: set[str] = set()  # characters whose folded length is not 1


class _Folder:
    """Per-character folding, cached as a ``str.translate`` table.

    Safe to share between threads without a lock: ``learn`` returns the
    state that holds the requested characters, and callers read only that
    state. Two threads learning the same character write the same value;
    a character is added to ``seen`` only after its mapping, so a thread
    that finds it seen also finds its mapping.
    """

    __slots__ = ("_state", "casefold")

    def __init__(self, casefold: bool) -> None:
        self.casefold = casefold
        self._state = _Learned()

    def reset(self) -> None:
        self._state = _Learned()

    def learn(self, chars: set[str]) -> _Learned:
        state = self._state
        if len(state.seen) > _FOLD_CACHE_MAX:  # a feed sending all of Unicode
            state = self._state = _Learned()
        for ch in chars - state.seen:
            folded = _fold_char(ch, self.casefold)
            if folded != ch:
                state.table[ord(ch)] = folded
            if len(folded) != 1:
                state.odd.add(ch)
            state.seen.add(ch)
        return state

    def fold(self, text: str) -> tuple[str, list[int] | None]:
        if text.isascii():
            return (text.lower() if self.casefold else text), None
        raw = text.encode()
        if len(raw) - len(text) <= len(text) * _MOSTLY_ASCII:
            replaced = self._fold_replacing(text, raw)
            if replaced is not None:
                return replaced, None
            return self._fold_sparse(text)
        chars = set(text)
        state = self.learn(chars)
        if state.odd.isdisjoint(chars):
            return text.translate(state.table), None
        table = state.table
        parts: list[str] = []
        offmap: list[int] = []
        for i, ch in enumerate(text):
            folded = table.get(ord(ch), ch)
            parts.append(folded)
            offmap.extend([i] * len(folded))
        return "".join(parts), offmap

    def _fold_replacing(self, text: str, raw: bytes) -> str | None:
        """Mostly ASCII, and each non-ASCII character folds to itself or to one
        ASCII character (é -> e, ’ -> '): lower the ASCII letters in bulk and
        replace each distinct other character everywhere at once, all in C.
        None when some character folds otherwise (``_fold_sparse`` then)."""
        chars = set(raw.translate(None, _ASCII_BYTES).decode())
        table = self.learn(chars).table
        replacements: list[tuple[str, str]] = []
        for ch in chars:
            folded = table.get(ord(ch))
            if folded is None:
                continue  # folds to itself (Hangul, Han, ...)
            if len(folded) != 1 or not folded.isascii():
                return None
            replacements.append((ch, folded))
        out = raw.translate(_LOWER_ASCII).decode() if self.casefold else text
        for ch, folded in replacements:
            out = out.replace(ch, folded)  # ASCII output: later replacements leave it alone
        return out

    def _fold_sparse(self, text: str) -> tuple[str, list[int] | None]:
        """Mostly ASCII: fold the ASCII stretches with str.lower, the rest one by one."""
        spots = [m.start() for m in NON_ASCII.finditer(text)]
        table, lower = self.learn({text[i] for i in spots}).table, self.casefold
        parts: list[str] = []
        aligned = True
        last = 0
        for i in spots:
            parts.append(text[last:i].lower() if lower else text[last:i])
            folded = table.get(ord(text[i]), text[i])
            aligned = aligned and len(folded) == 1
            parts.append(folded)
            last = i + 1
        parts.append(text[last:].lower() if lower else text[last:])
        if aligned:
            return "".join(parts), None
        offmap: list[int] = []
        last = 0
        for i in spots:
            offmap.extend(range(last, i))
            offmap.extend([i] * len(table.get(ord(text[i]), text[i])))
            last = i + 1
        offmap.extend(range(last, len(text)))
        return "".join(parts), offmap


_FOLDERS: Final = {True: _Folder(True), False: _Folder(False)}


def fold(text: str, casefold: bool = True) -> tuple[str, list[int] | None]:
    """Fold ``text``; return the folded text and its offset map (see module doc)."""
    return _FOLDERS[casefold].fold(text)


def fold_text(text: str, casefold: bool = True) -> str:
    """Just the folded text."""
    return _FOLDERS[casefold].fold(text)[0]


def tokenize(text: str, casefold: bool = True) -> list[str]:
    """Fold and tokenize ``text``: ``TOKEN_RE.findall(fold_text(text))``."""
    return TOKEN_RE.findall(fold_text(text, casefold))


# --- the fast path: the same tokens without building the folded text ------
#
# An article is mostly ASCII. Its UTF-8 bytes go through one bytes.translate
# (ASCII letters lowered, ASCII punctuation made spaces, other bytes kept),
# then str.split; the few whitespace-delimited chunks that still hold
# non-ASCII characters are folded and re-tokenized one by one, through a
# cache. Text that is mostly non-ASCII (Korean, Chinese) is folded whole and
# scanned with TOKEN_RE instead. Both give exactly ``tokenize(text)``.

_ASCII_SEP = bytes(b if chr(b).isalnum() or b >= 0x80 else 0x20 for b in range(256))
_BYTE_TABLES: Final = {
    False: _ASCII_SEP,
    True: bytes(b + 32 if 65 <= b <= 90 else b for b in _ASCII_SEP),
}
_CHUNK_CACHE_MAX: Final = 100_000
_CHUNK_CACHE_LEN: Final = 64
_CHUNKS: Final[dict[bool, dict[str, str]]] = {True: {}, False: {}}


def _fold_chunks(spaced: str, casefold: bool) -> str:
    """Replace each space-delimited chunk holding non-ASCII text by its tokens.

    The cache is shared by threads: another thread's ``clear`` only costs a
    miss here (single dict operations are atomic), never a wrong answer.
    """
    cache = _CHUNKS[casefold]
    out: list[str] = []
    last = 0
    m = NON_ASCII.search(spaced)
    while m is not None:
        i = m.start()
        space = spaced.rfind(" ", last, i)
        lo = space + 1 if space >= 0 else last
        hi = spaced.find(" ", i)
        if hi < 0:
            hi = len(spaced)
        chunk = spaced[lo:hi]
        found = cache.get(chunk)
        if found is None:
            found = " ".join(tokenize(chunk, casefold))
            if len(chunk) <= _CHUNK_CACHE_LEN:  # words recur; a hostile blob need not
                if len(cache) >= _CHUNK_CACHE_MAX:
                    cache.clear()
                cache[chunk] = found
        out.append(spaced[last:lo])
        out.append(found)
        last = hi
        m = NON_ASCII.search(spaced, hi)
    out.append(spaced[last:])
    return "".join(out)


def fast_tokens(text: str, casefold: bool = True) -> list[str]:
    """``tokenize(text, casefold)``, computed faster."""
    raw = text.encode()
    extra = len(raw) - len(text)
    if extra > len(text) * _MOSTLY_ASCII:
        return tokenize(text, casefold)
    spaced = raw.translate(_BYTE_TABLES[casefold]).decode()
    if extra:
        spaced = _fold_chunks(spaced, casefold)
    return spaced.split()


def to_original(offmap: list[int] | None, start: int, end: int) -> tuple[int, int]:
    """Map a folded span back to the original text (``end`` exclusive)."""
    if offmap is None:
        return start, end
    if end <= start:
        pos = offmap[start] if start < len(offmap) else (offmap[-1] + 1 if offmap else 0)
        return pos, pos
    return offmap[start], offmap[end - 1] + 1


def display_width(text: str) -> int:
    """Terminal columns of ``text`` (wide CJK characters count twice)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
