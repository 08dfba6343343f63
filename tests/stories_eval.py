"""Pairwise evaluation of same-story decisions on a labelled set (shared by
tests/test_stories_eval.py and benchmarks/stories.py).

Every article is ingested, in a shuffled order and all within one
clustering window, through the real path: ``StoryFinder.annotate`` and
``SqlStore.ingest`` on a SQLite file. Two articles are "the same story"
for newswatch when the store gave them one story id. The baselines decide
on the same articles: exact canonical URL (what newswatch did before) and
normalized-title equality.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

from newswatch.feeds.normalize import canonical_url, story_key
from newswatch.identity import identity_keys, normalize_title
from newswatch.model import Article, Explanation, Match, Route
from newswatch.store import FeedSpec, FeedUpdate, IngestItem, SqlStore, open_store
from newswatch.stories import StoryFinder, Thresholds

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
from make_stories import BASE, OUT, Labelled, build, load, parse_base, to_jsonl

__all__ = ["BASE", "OUT", "Labelled", "build", "load", "parse_base", "to_jsonl"]

T0 = datetime(2025, 6, 1, tzinfo=UTC)
# The whole set is ingested within this span, inside one 72-hour window, so
# every story competes with every other.
SPAN = timedelta(hours=48)


def article_of(row: Labelled, *, unwrap: bool = True) -> Article:
    link = row.link
    canonical = canonical_url(link, unwrap_redirects=unwrap)
    feed = "f-" + row.outlet
    return Article(
        feed_key=feed,
        entry_key=row.id,
        story_key=story_key(canonical_url=canonical, feed_key=feed, entry_key=row.id),
        title=row.title,
        summary=row.summary,
        content=row.content,
        link=link,
        canonical_url=canonical,
        author="",
        categories=(),
        published=datetime.fromisoformat(row.published),
        source=row.outlet,
    )


@dataclass
class Run:
    """Story ids newswatch gave, and what it cost."""

    story_of: dict[str, int]
    annotate_s: float = 0.0  # CPU time in StoryFinder.annotate (signatures, confirmation)
    signature_s: float = 0.0
    ingest_s: float = 0.0
    articles: int = 0


def ingest_all(
    rows: Sequence[Labelled],
    url: str,
    *,
    thresholds: Thresholds | None = None,
    seed: int = 9,
    finder: bool = True,
) -> Run:
    order = list(rows)
    random.Random(seed).shuffle(order)
    store = open_store(url)
    try:
        return _ingest(store, order, thresholds, finder)
    finally:
        store.close()


def _ingest(
    store: SqlStore, order: Sequence[Labelled], thresholds: Thresholds | None, finder: bool
) -> Run:
    outlets = sorted({r.outlet for r in order})
    store.sync_feeds([FeedSpec(key="f-" + o, label=o) for o in outlets], T0)
    stories = StoryFinder(store, thresholds=thresholds) if finder else None
    run = Run(story_of={})
    step = SPAN / max(1, len(order))
    for n, row in enumerate(order):
        now = T0 + n * step
        art = article_of(row)
        match = Match("rule", art, Explanation())
        item = IngestItem(
            article=art,
            matches=(match,),
            routes=(Route("rule", "desk"),),
            identity_keys=identity_keys(art),
        )
        if stories is not None:
            started = time.process_time()
            [item] = stories.annotate([item], now)
            run.annotate_s += time.process_time() - started
        started = time.process_time()
        result = store.ingest(FeedUpdate(art.feed_key, now, now + step, ok=True), [item])
        run.ingest_s += time.process_time() - started
        run.story_of[row.id] = result.story_ids[row.id]
        run.articles += 1
    return run


@dataclass
class Scores:
    name: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def score(
    name: str,
    rows: Sequence[Labelled],
    same: Callable[[Labelled, Labelled], bool],
    *,
    pairs: Callable[[Labelled, Labelled], bool] = lambda a, b: True,
) -> Scores:
    """Pairwise precision and recall of ``same`` over the pairs ``pairs``
    admits; errors counted by kind (which copies were missed, which topics
    were merged)."""
    s = Scores(name)
    for a, b in combinations(rows, 2):
        if not pairs(a, b):
            continue
        truth = a.story == b.story
        said = same(a, b)
        if truth and said:
            s.tp += 1
        elif said:
            s.fp += 1
            kind = "same topic" if a.topic == b.topic else "other topic"
            s.errors[f"merged ({kind}): {min(a.story, b.story)} + {max(a.story, b.story)}"] += 1
        elif truth:
            s.fn += 1
            pair = " / ".join(sorted((a.variant, b.variant)))
            s.errors[f"missed: {pair}"] += 1
    return s


def same_language(a: Labelled, b: Labelled) -> bool:
    return a.lang == b.lang


def cross_language(a: Labelled, b: Labelled) -> bool:
    return a.lang != b.lang


def methods(rows: Sequence[Labelled], run: Run) -> dict[str, Callable[[Labelled, Labelled], bool]]:
    urls = {r.id: canonical_url(r.link, unwrap_redirects=False) for r in rows}
    titles = {r.id: normalize_title(r.title) for r in rows}
    return {
        "exact canonical URL (before)": lambda a, b: urls[a.id] == urls[b.id],
        "normalized title": lambda a, b: titles[a.id] == titles[b.id],
        "newswatch stories": lambda a, b: run.story_of[a.id] == run.story_of[b.id],
    }
