"""Article text -> shingles: the units near-duplicate detection compares. Pure.

The tokens are the matcher's own (``newswatch.rules.text.fast_tokens``:
NFKC, casefold, accents folded), so "the same word" means the same thing to
a rule and to story clustering. Two streams, because scripts differ in what
a word is:

- words of scripts written with spaces (Latin, Cyrillic, ...) make
  ``WORD_SHINGLE``-word shingles ("russia north korea");
- Hangul, CJK and the south-east Asian scripts make ``CHAR_SHINGLE``-
  character shingles over their characters with the spaces left out:
  Korean attaches particles to words (러시아는, 러시아와) and outlets space
  compounds differently, so whole-word shingles would differ where the
  text does not.

Each shingle is a 32-bit hash, stable across processes and machines (no
``hash()``, which is salted per process): bands derived from them live in
the store and are compared across replicas.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np

from newswatch.rules.text import WORD, fast_tokens, token_class

# Words per shingle. Three is the usual choice for news near-duplicates:
# two-word shingles ("north korea", "said on") are shared by unrelated
# stories of one topic, four-word ones break at every edited word.
WORD_SHINGLE: Final = 3
# Characters per shingle in Hangul/CJK text: a Korean syllable or a Han
# character carries about what a short Latin word does, so three of them
# are about one to two words.
CHAR_SHINGLE: Final = 3
# Characters of an article read for shingling. A news story is a few
# thousand characters; what lies beyond is a scraped page's furniture, and
# bounding it bounds the CPU per article.
MAX_TEXT_CHARS: Final = 20_000
# Token hashes remembered (news vocabulary repeats); past this the memory
# starts over, so a hostile feed cannot grow it without bound.
_TOKEN_CACHE_MAX: Final = 200_000

# Odd multipliers that mix a window of token hashes into one shingle hash
# (order matters: "korea north russia" is another shingle).
_MIX: Final = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1)
# Separates the two streams' hash spaces.
_CHAR_SALT: Final = 0x5BD1E995

_token_hash: dict[str, int] = {}


def _hash(token: str) -> int:
    found = _token_hash.get(token)
    if found is None:
        if len(_token_hash) >= _TOKEN_CACHE_MAX:
            _token_hash.clear()
        found = zlib.crc32(token.encode())
        _token_hash[token] = found
    return found


@dataclass(frozen=True, slots=True, eq=False)
class Shingled:
    """A text's shingles per stream, in document order (a lead is a
    prefix), and all of them as a sorted array of distinct values (4 bytes
    each: a cache of thousands stays small)."""

    words: np.ndarray
    chars: np.ndarray
    set: np.ndarray

    def __len__(self) -> int:
        return len(self.set)

    def lead(self, n: int) -> np.ndarray:
        """The first ``n`` shingles of each stream: an article's opening,
        which a truncated summary and a full copy share."""
        return np.unique(np.concatenate((self.words[:n], self.chars[:n])))


_NONE = np.zeros(0, dtype=np.uint32)


def _windows(hashes: list[int], k: int, salt: int) -> np.ndarray:
    """Hashes of every ``k`` consecutive tokens (vectorized: a few
    microseconds for a whole article)."""
    if not hashes:
        return _NONE
    if len(hashes) < k:
        # A text shorter than one shingle is still one shingle: a two-word
        # title must not come out empty.
        hashes = hashes + [0] * (k - len(hashes))
    h = np.asarray(hashes, dtype=np.uint64)
    n = len(h) - k + 1
    acc = np.full(n, salt, dtype=np.uint64)
    for j in range(k):
        acc ^= h[j : j + n] * np.uint64(_MIX[j])
    return (acc & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def shingle(text: str) -> Shingled:
    """The shingles of ``text`` (see the module doc)."""
    words: list[int] = []
    chars: list[int] = []
    for token in fast_tokens(text[:MAX_TEXT_CHARS]):
        if token.isascii() or token_class(token) == WORD:
            words.append(_hash(token))
        else:
            chars.extend(_hash(ch) for ch in token)
    word_sh = _windows(words, WORD_SHINGLE, 0)
    char_sh = _windows(chars, CHAR_SHINGLE, _CHAR_SALT)
    return Shingled(words=word_sh, chars=char_sh, set=np.unique(np.concatenate((word_sh, char_sh))))
