"""Near-duplicate stories: one alert per story across outlets.

    finder = StoryFinder(store, window=timedelta(hours=72), thresholds=Thresholds())
    items = finder.annotate(items, now)      # before the ingest transaction
    store.ingest(update, items)

``signature(article)`` (shingles, MinHash, LSH bands) and
``similar.decide`` are pure; ``StoryFinder`` reads the store and writes
nothing. See docs/decisions.md (D-stories-*) and docs/benchmarks.md for
the measured precision and recall.
"""

from newswatch.stories.finder import StoryFinder
from newswatch.stories.similar import Similarity, Thresholds, Verdict, compare, decide
from newswatch.stories.sketch import Signature, bands, signature, text_signature

__all__ = [
    "Signature",
    "Similarity",
    "StoryFinder",
    "Thresholds",
    "Verdict",
    "bands",
    "compare",
    "decide",
    "signature",
    "text_signature",
]
