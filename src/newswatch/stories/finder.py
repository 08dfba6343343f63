"""The StoryFinder: which known story each matched article copies, decided
before the ingest transaction.

    items = finder.annotate(items, now)   # reads the store, writes nothing
    store.ingest(update, items)           # the transaction: lookups by key only

Only items that matched some rule are looked at (the rest never alert, so
their story does not matter beyond the exact keys). For each, in one pass
over the batch:

1. its signature (``sketch.signature``): shingles, MinHash, bands;
2. one store read for every band of the batch (``band_owners``); owners
   last seen within the window are candidates, most shared bands first,
   at most ``MAX_CANDIDATES`` per article;
3. one store read for a few copies of every candidate story
   (``story_copies``: first and latest), whose signatures are cached;
4. ``similar.decide`` confirms on the exact shingle sets. Copies within
   one batch find each other in the transaction, through the band the
   first one recorded; an earlier item that shares a band but is another
   story is named in ``story_apart``.

The store work inside the transaction then stays what it was: a few
indexed statements per article (``store._stories``).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from newswatch.model import Article
from newswatch.store.base import IngestItem, StoryIndex
from newswatch.stories.similar import Thresholds, Verdict, compare, decide
from newswatch.stories.sketch import Signature, signature

if TYPE_CHECKING:
    from newswatch.config.models import StorySettings

# Candidate stories compared per article: copies of one story share most
# bands, so the true story is near the top; more only costs reads.
MAX_CANDIDATES: Final = 5
# Stored copies read per candidate story (its first and latest).
COPIES_PER_STORY: Final = 3
# Signatures kept between batches, by (feed, entry): the articles this
# finder saw arrive, which later copies are compared with. Copies of a story
# come within hours, and shingling a stored copy again is the main cost of a
# comparison. A few KB each (4 bytes a shingle): 10-20 MB at most.
CACHE_SIZE: Final = 4096
DEFAULT_WINDOW: Final = timedelta(hours=72)


class StoryFinder:
    """Near-duplicate lookups against the store's band index (read only)."""

    def __init__(
        self,
        store: StoryIndex,
        *,
        window: timedelta = DEFAULT_WINDOW,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.store = store
        self.window = window
        self.thresholds = thresholds or Thresholds()
        # (feed key, entry key) -> signature of that entry's latest text.
        self._cache: OrderedDict[tuple[str, str], Signature] = OrderedDict()

    @classmethod
    def from_settings(cls, store: StoryIndex, settings: StorySettings) -> StoryFinder | None:
        """The finder the configuration's ``stories:`` asks for (None: off)."""
        if not settings.enabled:
            return None
        return cls(store, window=settings.window, thresholds=thresholds_of(settings))

    def annotate(self, items: Sequence[IngestItem], now: datetime) -> list[IngestItem]:
        """``items`` with ``story_hint``, ``bands``, ``story_rejected``,
        ``story_apart``, ``story_merge`` and ``new_text`` filled in for those
        that matched."""
        # Cached only after the comparisons: an edited entry is compared
        # with its stored (older) text, not with itself.
        matched = {i: signature(item.article) for i, item in enumerate(items) if item.matches}
        # Too short to be compared (see similar.Thresholds.min_contained):
        # exact keys only, and no bands to store.
        sigs = {
            i: s for i, s in matched.items() if len(s.shingles) >= self.thresholds.min_contained
        }
        wanted = sorted(sigs)
        if not wanted:
            for i, sig in matched.items():
                self._remember(items[i].article, sig)
            return list(items)
        verdicts = self._verdicts(sigs, now)
        for i, sig in matched.items():
            self._remember(items[i].article, sig)
        out = list(items)
        for i in wanted:
            verdict, sig = verdicts[i], sigs[i]
            out[i] = dataclasses.replace(
                items[i],
                story_hint=verdict.story_id,
                bands=sig.bands,
                story_rejected=verdict.rejected,
                story_apart=self._apart(i, sig, sigs, items),
                story_merge=verdict.also,
                new_text=verdict.new_shingles if verdict.update else None,
            )
        return out

    def _verdicts(self, sigs: dict[int, Signature], now: datetime) -> dict[int, Verdict]:
        all_bands = sorted({b for sig in sigs.values() for b in sig.bands})
        owners = self.store.band_owners(all_bands) if all_bands else []
        since = now - self.window
        holder = {o.band: o for o in owners}
        candidates: dict[int, list[int]] = {}
        rejected: dict[int, set[int]] = {}
        for i, sig in sigs.items():
            shared: dict[int, int] = {}
            for band in sig.bands:
                owner = holder.get(band)
                if owner is None:
                    continue
                if owner.last_seen_at < since:  # out of the window: never joined
                    rejected.setdefault(i, set()).add(owner.story_id)
                    continue
                shared[owner.story_id] = shared.get(owner.story_id, 0) + 1
            ranked = sorted(shared, key=lambda sid: (-shared[sid], sid))
            candidates[i] = ranked[:MAX_CANDIDATES]
            rejected.setdefault(i, set()).update(ranked[MAX_CANDIDATES:])
        copies = self._copies(sorted({sid for c in candidates.values() for sid in c}))
        verdicts = {}
        for i, sig in sigs.items():
            found = {sid: copies.get(sid, []) for sid in candidates[i]}
            verdict = decide(sig, found, self.thresholds)
            extra = rejected.get(i, set()) - {verdict.story_id, *verdict.also}
            if extra:
                verdict = dataclasses.replace(
                    verdict, rejected=tuple(sorted(set(verdict.rejected) | extra))
                )
            verdicts[i] = verdict
        return verdicts

    def _copies(self, story_ids: Sequence[int]) -> dict[int, list[Signature]]:
        if not story_ids:
            return {}
        stored = self.store.story_copies(story_ids, COPIES_PER_STORY)
        out: dict[int, list[Signature]] = {}
        for sid, copies in stored.items():
            out[sid] = [self._signature_of(c.article) for c in copies]
        return out

    def _signature_of(self, article: Article) -> Signature:
        """A stored copy's signature: cached, since this finder computed it
        when the copy arrived (or read it before)."""
        key = (article.feed_key, article.entry_key)
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        return self._remember(article, signature(article))

    def _remember(self, article: Article, sig: Signature) -> Signature:
        """Cache (replacing an edited entry's older text)."""
        key = (article.feed_key, article.entry_key)
        self._cache[key] = sig
        self._cache.move_to_end(key)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return sig

    def _apart(
        self, i: int, sig: Signature, sigs: dict[int, Signature], items: Sequence[IngestItem]
    ) -> tuple[str, ...]:
        """Earlier items of the batch that share a band with this one but
        are other stories: the store must not join them on that band (it
        joins the ones that are the same through their shared band)."""
        bands = set(sig.bands)
        return tuple(
            items[j].article.entry_key
            for j, other in sigs.items()
            if j < i
            and not bands.isdisjoint(other.bands)
            and not compare(sig, other).same_story(self.thresholds)
        )


def thresholds_of(settings: StorySettings) -> Thresholds:
    return Thresholds(
        jaccard=settings.jaccard,
        containment=settings.containment,
        min_contained=settings.min_contained,
        update_share=settings.update_share,
        update_min_shingles=settings.update_min_shingles,
    )
