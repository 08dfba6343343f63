"""An article's story signature: its shingles, MinHash sketches of two views
of them, and the LSH bands the store indexes. Pure.

Two views, because the copies of one story differ in two ways:

- the **lead** (the first ``LEAD_SHINGLES`` shingles of the body) is what a
  truncated RSS summary and the full article share, whatever follows;
- the **whole body** is what two full copies share when one outlet
  rewrote the opening paragraph or added its own.

Each view is sketched with MinHash (``datasketch``) and cut into bands of
``ROWS`` values (``LEAD_BANDS`` for the lead, ``BODY_BANDS`` for the whole
text); a band's hash is what ``story_bands`` stores. Two articles that
share a band are candidates, which the finder then confirms on the exact
shingle sets (``similar.compare``): the bands only have to be cheap,
numerous enough for recall, and rare enough by chance that few false
candidates need confirming.

Band numbers: lead bands are ``0 ..``, body bands ``BODY_BAND_OFFSET ..``,
and the scheme's version is folded into each band hash, so sketches made
with other parameters never collide with these.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Final

import numpy as np

from newswatch.model import Article
from newswatch.stories.shingles import Shingled, shingle

if TYPE_CHECKING:
    from datasketch import MinHash

# Shingles of the body's opening that make its lead: about the first two
# sentences, which is what feeds that truncate their summaries keep.
LEAD_SHINGLES: Final = 25
# Bands per view and MinHash values per band. The chance that a pair of
# Jaccard similarity s shares at least one of b bands of r rows is
# 1 - (1 - s**r)**b: for the body's 9 x 3, 0.89 at s = 0.6 and 0.03 at
# s = 0.15 (two stories of one topic). Each band is a row in story_bands
# (12 per article: docs/benchmarks.md has the storage and the measured
# recall; D50 why not 2 or 4 rows).
LEAD_BANDS: Final = 3
BODY_BANDS: Final = 9
ROWS: Final = 3
# Body bands are numbered from here (lead bands from 0).
BODY_BAND_OFFSET: Final = 100
# A body with fewer shingles than this says too little to be a story on
# its own (a one-line teaser): the title is added to it.
MIN_BODY_SHINGLES: Final = 12
# Bumped whenever the shingles, the hashing or the parameters change: old
# bands in the store then never match new ones (they age out of the window).
SCHEME: Final = 1
# datasketch's permutation seed: fixed, since bands are compared across
# processes and replicas.
_SEED: Final = 20160616


@dataclass(frozen=True, slots=True, eq=False)
class Signature:
    """What story clustering knows of one article. The shingle sets are
    sorted arrays of distinct uint32 values (``similar`` intersects them)."""

    shingles: np.ndarray  # every shingle of the text compared
    lead: np.ndarray  # the opening's shingles
    bands: tuple[tuple[int, int], ...]  # (band number, 32-bit signed hash)

    @property
    def empty(self) -> bool:
        return not len(self.shingles)


def story_text(article: Article) -> str:
    """The body an article is compared on: the longer of content and
    summary (feeds put the full text in either)."""
    return article.content if len(article.content) >= len(article.summary) else article.summary


def shingles_of(article: Article) -> Shingled:
    """The body's shingles, with the title's added when the body is too
    short to stand alone."""
    body = shingle(story_text(article))
    if len(body) >= MIN_BODY_SHINGLES:
        return body
    return shingle(f"{article.title}\n{story_text(article)}")


@cache
def _permutations(num_perm: int) -> tuple[object, ...]:
    from datasketch import MinHash

    probe = MinHash(num_perm=num_perm, seed=_SEED)
    return tuple(probe.permutations)


def _minhash(values: np.ndarray, num_perm: int) -> MinHash:
    # Imported here: datasketch loads scipy at import (a third of a
    # second), which commands that never cluster need not pay.
    from datasketch import MinHash

    sketch = MinHash(
        num_perm=num_perm,
        seed=_SEED,
        permutations=_permutations(num_perm),
        scheme="affine32",
        hashfunc=_identity,
    )
    sketch.update_batch(values.tolist())
    return sketch


def _identity(value: int) -> int:
    return value  # shingles are hashes already


def _band_hashes(values: Sequence[int], offset: int, rows: int) -> list[tuple[int, int]]:
    out = []
    for band in range(len(values) // rows):
        chunk = values[band * rows : (band + 1) * rows]
        raw = struct.pack(f"<H{rows}I", SCHEME, *chunk)
        digest = hashlib.blake2b(raw, digest_size=4).digest()
        out.append((offset + band, int.from_bytes(digest, "little", signed=True)))
    return out


def bands_of(
    lead: np.ndarray,
    shingles: np.ndarray,
    *,
    lead_bands: int = LEAD_BANDS,
    body_bands: int = BODY_BANDS,
    rows: int = ROWS,
) -> tuple[tuple[int, int], ...]:
    """The LSH bands of the two views (none for an empty text)."""
    if not len(shingles):
        return ()
    lead_hash = _minhash(lead if len(lead) else shingles, lead_bands * rows).hashvalues.tolist()
    body_hash = _minhash(shingles, body_bands * rows).hashvalues.tolist()
    out = _band_hashes(lead_hash, 0, rows)
    out += _band_hashes(body_hash, BODY_BAND_OFFSET, rows)
    return tuple(out)


def signature(article: Article) -> Signature:
    """The article's signature (a few hundred microseconds for a long story)."""
    shingled = shingles_of(article)
    lead = shingled.lead(LEAD_SHINGLES)
    return Signature(shingles=shingled.set, lead=lead, bands=bands_of(lead, shingled.set))


def text_signature(text: str) -> Signature:
    """The signature of bare text (tests, benchmarks)."""
    shingled = shingle(text)
    lead = shingled.lead(LEAD_SHINGLES)
    return Signature(shingles=shingled.set, lead=lead, bands=bands_of(lead, shingled.set))


def bands(sig: Signature) -> tuple[tuple[int, int], ...]:
    return sig.bands


__all__ = [
    "BODY_BANDS",
    "LEAD_BANDS",
    "LEAD_SHINGLES",
    "ROWS",
    "SCHEME",
    "Signature",
    "bands",
    "bands_of",
    "shingles_of",
    "signature",
    "story_text",
    "text_signature",
]
