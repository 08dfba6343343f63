"""Is this article a copy of that story, and does it add to it? Pure.

A candidate (found through a shared LSH band) is confirmed on the exact
shingle sets, by whichever of three measures fits how copies differ:

- **Jaccard** of the whole texts: two full copies with different
  headlines, datelines and footers;
- **containment** of the smaller in the larger: a truncated RSS summary
  inside the full article, a trimmed copy inside the original.

Neither is trusted on a text of fewer than ``min_contained`` shingles (a
headline, a one-line teaser): such articles join stories by their exact
identity keys only. The openings' similarity (``lead``) finds candidates
but confirms nothing: outlets open unrelated stories with the same
boilerplate.

Thresholds are configuration (``stories:``); the defaults and their
measured precision and recall are in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from newswatch.stories.sketch import Signature


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a candidate is the same story, and when a copy is an update."""

    jaccard: float = 0.5
    containment: float = 0.7
    min_contained: int = 20
    # An update adds at least this share of new shingles to everything the
    # story's stored copies said, and at least ``update_min_shingles`` of
    # them (a corrected typo or a new footer is not news).
    update_share: float = 0.3
    update_min_shingles: int = 40


@dataclass(frozen=True, slots=True)
class Similarity:
    jaccard: float
    containment: float
    lead: float
    smaller: int  # shingles of the smaller set

    def same_story(self, t: Thresholds) -> bool:
        # Below min_contained shingles (a headline, a one-line teaser) a
        # text says too little: "Russia and North Korea, part 1" and
        # "part 2" share most of their shingles and are two stories.
        if self.smaller < t.min_contained:
            return False
        return self.jaccard >= t.jaccard or self.containment >= t.containment

    @property
    def score(self) -> float:
        return max(self.jaccard, self.containment, self.lead)


NO_SIMILARITY = Similarity(0.0, 0.0, 0.0, 0)


def _common(a: np.ndarray, b: np.ndarray) -> int:
    """Values in both sorted arrays of distinct values."""
    return int(np.intersect1d(a, b, assume_unique=True).size)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if not len(a) or not len(b):
        return 0.0
    inter = _common(a, b)
    return inter / (len(a) + len(b) - inter)


def compare(new: Signature, other: Signature) -> Similarity:
    a, b = new.shingles, other.shingles
    if not len(a) or not len(b):
        return NO_SIMILARITY
    inter = _common(a, b)
    smaller = min(len(a), len(b))
    return Similarity(
        jaccard=inter / (len(a) + len(b) - inter),
        containment=inter / smaller,
        lead=_jaccard(new.lead, other.lead),
        smaller=smaller,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the comparisons decided for one article.

    ``story_id``: the known story it belongs to (None: no stored story
    matched). ``rejected``: candidates compared and found to be other
    stories. ``new_shingles``/``new_share``: what it adds to the story's
    stored copies; ``update`` when that is substantial.
    """

    story_id: int | None
    similarity: Similarity = NO_SIMILARITY
    rejected: tuple[int, ...] = ()
    also: tuple[int, ...] = ()  # other stories it copies too: one story with it
    new_shingles: int = 0
    new_share: float = 0.0
    update: bool = False


def decide(
    new: Signature,
    candidates: Mapping[int, Sequence[Signature]],
    thresholds: Thresholds,
) -> Verdict:
    """Pick the most similar confirmed candidate story, if any.

    ``candidates``: story id -> the signatures of some of its stored copies;
    a story is the same when any of its copies is. Ties go to the older
    (smaller) story id, so every replica decides alike.
    """
    best: tuple[float, int] | None = None
    best_sim = NO_SIMILARITY
    rejected = []
    confirmed = []
    for story_id in sorted(candidates):
        copies = candidates[story_id]
        sims = [compare(new, copy) for copy in copies]
        same = [s for s in sims if s.same_story(thresholds)]
        if not same:
            rejected.append(story_id)
            continue
        confirmed.append(story_id)
        top = max(same, key=lambda s: s.score)
        if best is None or top.score > best[0]:
            best = (top.score, story_id)
            best_sim = top
    if best is None:
        return Verdict(story_id=None, rejected=tuple(rejected))
    story_id = best[1]
    seen = np.unique(np.concatenate([c.shingles for c in candidates[story_id]]))
    added = int(np.setdiff1d(new.shingles, seen, assume_unique=True).size)
    share = added / len(new.shingles) if len(new.shingles) else 0.0
    update = added >= thresholds.update_min_shingles and share >= thresholds.update_share
    return Verdict(
        story_id=story_id,
        similarity=best_sim,
        rejected=tuple(rejected),
        also=tuple(s for s in confirmed if s != story_id),
        new_shingles=added,
        new_share=share,
        update=update,
    )
