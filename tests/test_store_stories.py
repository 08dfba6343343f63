"""Stories in the store, on real SQLite files and a real PostgreSQL: the
StoryFinder's reads, the band index, the race between replicas, merges,
the window, pruning, restarts and updates.

Articles go the real way: ``StoryFinder.annotate`` (outside the
transaction), then ``store.ingest``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from newswatch.identity import identity_keys
from newswatch.model import Article, Explanation, Match, Route
from newswatch.store import IngestItem, IngestResult, OutboxStatus, SqlStore, open_store
from newswatch.store.schema import stories, story_bands
from newswatch.stories import StoryFinder
from samples import seed_body
from store_helpers import MIN, T0, claim, compose_each, race, update

SEED = seed_body()
PARAS = [p for p in SEED.split("\n") if p.strip()]
HOUR = timedelta(hours=1)
OTHER_MEETING = (
    "South Korean Foreign Minister Yun Byung-se and his Russian counterpart Sergey Lavrov "
    "agreed on Monday that they would never accept North Korea as a nuclear weapons state, "
    "and pledged to work together for the denuclearization of the Korean Peninsula.\n"
    "The two ministers met in Moscow for about three hours, their first talks in Russia in "
    "five years. Lavrov said Moscow would strictly carry out the U.N. Security Council "
    "resolution adopted in March after the North's fourth nuclear test.\n"
    "\"We share the view that North Korea's nuclear and missile programmes are a direct "
    'threat to peace in Northeast Asia," Yun told reporters.'
)


def copy(
    entry: str,
    text: str,
    *,
    feed: str = "yonhap",
    title: str = "THAAD was not issue during S. Korea-Russia talks: official",
    source: str = "Yonhap",
    summary: str = "",
) -> Article:
    link = f"https://{feed}.example/{entry}"
    return Article(
        feed_key=feed,
        entry_key=entry,
        story_key=f"s-{entry}",
        title=title,
        summary=summary,
        content=text,
        link=link,
        canonical_url=link,
        author="",
        categories=(),
        published=T0,
        source=source,
    )


def matched(
    a: Article, rules: Sequence[str] = ("r1",), *, updates: bool = False, matches: bool = True
) -> IngestItem:
    return IngestItem(
        article=a,
        matches=tuple(Match(r, a, Explanation()) for r in rules) if matches else (),
        routes=tuple(Route(r, "desk", updates=updates) for r in rules) if matches else (),
        identity_keys=identity_keys(a),
    )


def run(
    store: SqlStore,
    finder: StoryFinder,
    items: Sequence[IngestItem],
    at: datetime = T0,
    feed: str | None = None,
) -> IngestResult:
    annotated = finder.annotate(items, at)
    return store.ingest(update(feed or items[0].article.feed_key, at=at), annotated)


def bands_of(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(story_bands)).scalar_one())


WIRE = copy("wire-1", "SEOUL, June 16 (Yonhap) -- " + SEED)
HERALD = copy(
    "kh-77",
    "By Herald staff\n" + "\n".join(PARAS[:-3]) + "\nⓒ The Korea Herald.",
    feed="herald",
    title="THAAD barely came up in Yun-Lavrov talks, Seoul official says",
    source="Korea Herald",
)
TIMES = copy(
    "kt-5",
    "",
    summary=SEED[:260].rsplit(" ", 1)[0] + "…",
    feed="times",
    title="Russia focused on bilateral ties, not THAAD, in talks with Seoul",
    source="Korea Times",
)


# --------------------------------------------------------------------------- joining


def test_copies_with_other_urls_headlines_and_footers_join_one_story(store: SqlStore) -> None:
    finder = StoryFinder(store)
    first = run(store, finder, [matched(WIRE)])
    second = run(store, finder, [matched(HERALD)], T0 + MIN)
    third = run(store, finder, [matched(TIMES)], T0 + 2 * MIN)
    assert first.story_ids["wire-1"] == second.story_ids["kh-77"] == third.story_ids["kt-5"]
    assert (first.new_outbox, second.new_outbox, third.new_outbox) == (1, 0, 0)
    assert (second.joined, third.joined) == (1, 1)
    compose_each(store, T0 + HOUR)
    [notification] = claim(store, T0 + HOUR)
    [story] = notification.items
    assert story.article.entry_key == "wire-1"
    assert [(o.source, o.link) for o in story.also] == [
        ("Korea Herald", HERALD.link),
        ("Korea Times", TIMES.link),
    ]
    # One entry per outlet: a second Korea Herald copy is not listed again,
    # and neither is the lead's own outlet.
    kh_again = dataclasses.replace(HERALD, entry_key="kh-78", link="https://herald.example/78")
    yonhap_again = dataclasses.replace(WIRE, entry_key="w-2", link="https://yonhap.example/2")
    for n, a in enumerate((kh_again, yonhap_again)):
        a = dataclasses.replace(a, canonical_url=a.link)
        assert run(store, finder, [matched(a)], T0 + (3 + n) * MIN).joined == 1
    store.release_notifications([notification.id])
    [again] = claim(store, T0 + 2 * HOUR)
    assert [o.source for o in again.items[0].also] == ["Korea Herald", "Korea Times"]


def test_a_story_about_the_same_meeting_stays_apart(store: SqlStore) -> None:
    finder = StoryFinder(store)
    first = run(store, finder, [matched(WIRE)])
    other = copy("wire-2", OTHER_MEETING, title="S. Korea, Russia agree on N. Korea")
    second = run(store, finder, [matched(other)], T0 + MIN)
    assert first.story_ids["wire-1"] != second.story_ids["wire-2"]
    assert second.new_outbox == 1


def test_only_matched_articles_are_signed(store: SqlStore) -> None:
    finder = StoryFinder(store)
    run(store, finder, [matched(WIRE, matches=False)])
    assert bands_of(store) == 0
    # ...so a matched copy later founds its own story by text (the unmatched
    # one never alerted anybody).
    result = run(store, finder, [matched(HERALD)], T0 + MIN)
    assert result.joined == 0 and result.new_outbox == 1
    assert bands_of(store) > 0


def test_copies_in_one_batch_are_one_story(store: SqlStore) -> None:
    finder = StoryFinder(store)
    items = [matched(copy("a", SEED)), matched(copy("b", "\n".join(PARAS[:-2])))]
    result = run(store, finder, items)
    assert result.story_ids["a"] == result.story_ids["b"]
    assert result.new_outbox == 1


def test_a_batch_item_sharing_a_band_by_chance_stays_apart(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two different stories in one batch that share an LSH band by chance:
    the finder names the earlier one ``story_apart``, and the store does not
    join them on that band (as it would a story founded concurrently)."""
    import newswatch.stories.finder as finder_module
    from newswatch.stories.sketch import Signature, signature

    real = signature
    first_band = real(WIRE).bands[0]

    def colliding(article: Article) -> Signature:
        sig = real(article)
        if article.entry_key == "w2":
            sig = dataclasses.replace(sig, bands=(first_band, *sig.bands[1:]))
        return sig

    monkeypatch.setattr(finder_module, "signature", colliding)
    other = copy("w2", OTHER_MEETING, title="S. Korea, Russia agree on N. Korea")
    annotated = StoryFinder(store).annotate([matched(WIRE), matched(other)], T0)
    assert annotated[1].story_apart == ("wire-1",)
    result = store.ingest(update("yonhap"), annotated)
    assert result.story_ids["wire-1"] != result.story_ids["w2"]


def test_a_copy_after_the_window_is_a_new_story(store: SqlStore) -> None:
    finder = StoryFinder(store, window=timedelta(hours=72))
    first = run(store, finder, [matched(WIRE)])
    late = run(store, finder, [matched(HERALD)], T0 + 73 * HOUR)
    assert late.story_ids["kh-77"] != first.story_ids["wire-1"]
    assert late.new_outbox == 1


def test_a_restart_keeps_the_clusters(store_url: str) -> None:
    first = open_store(store_url)
    result = run(first, StoryFinder(first), [matched(WIRE)])
    first.close()
    again = open_store(store_url)  # a new process: nothing cached
    try:
        later = run(again, StoryFinder(again), [matched(HERALD)], T0 + HOUR)
    finally:
        again.close()
    assert later.story_ids["kh-77"] == result.story_ids["wire-1"]
    assert later.new_outbox == 0


# --------------------------------------------------------------------------- replicas


def test_a_band_of_a_story_founded_since_the_lookup_joins_it(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    """Two replicas look up at the same moment (neither sees a story), then
    ingest one after the other: the second collides on the first one's band."""
    a, b = open_stores(2)
    items_a = StoryFinder(a).annotate([matched(WIRE)], T0)
    items_b = StoryFinder(b).annotate([matched(HERALD)], T0)
    assert items_a[0].story_hint is None and items_b[0].story_hint is None
    ra = a.ingest(update("yonhap"), items_a)
    rb = b.ingest(update("herald"), items_b)
    assert ra.story_ids["wire-1"] == rb.story_ids["kh-77"]
    assert (ra.new_outbox, rb.new_outbox) == (1, 0)


def _ingest(store: SqlStore, items: list[IngestItem], feed: str, at: datetime) -> list[str | int]:
    result = store.ingest(update(feed, at=at), items)
    return [*result.story_ids.values(), f"outbox:{result.new_outbox}"]


def test_two_replicas_ingesting_two_copies_at_once_found_one_story(
    open_stores: Callable[[int], list[SqlStore]],
) -> None:
    a, b = open_stores(2)
    for n in range(3):
        wire = dataclasses.replace(WIRE, entry_key=f"w{n}", link=f"https://y.example/{n}")
        herald = dataclasses.replace(HERALD, entry_key=f"h{n}", link=f"https://h.example/{n}")
        # Titles of their own: no exact title key links the rounds.
        wire = dataclasses.replace(
            wire, canonical_url=wire.link, title=f"Round {n}: THAAD was not an issue in talks"
        )
        herald = dataclasses.replace(
            herald, canonical_url=herald.link, title=f"Round {n}: THAAD barely came up in talks"
        )
        at = T0 + n * 100 * HOUR  # each round outside the last one's window
        items_a = StoryFinder(a).annotate([matched(wire)], at)
        items_b = StoryFinder(b).annotate([matched(herald)], at)

        got = race(
            [
                functools.partial(_ingest, a, items_a, "yonhap", at),
                functools.partial(_ingest, b, items_b, "herald", at),
            ]
        )
        ids = {x for x in got if isinstance(x, int)}
        assert len(ids) == 1, f"round {n}: two stories {ids}"
        assert sorted(x for x in got if isinstance(x, str)) == ["outbox:0", "outbox:1"]
    with a.engine.connect() as conn:
        live = conn.execute(
            sa.select(sa.func.count()).select_from(stories).where(stories.c.merged_into.is_(None))
        ).scalar_one()
    assert live == 3


# --------------------------------------------------------------------------- merges


def test_a_copy_like_two_stories_merges_them(store: SqlStore) -> None:
    """A truncated summary and a copy whose lead was rewritten share no text,
    so they found two stories; the full copy resembles both and makes them one."""
    finder = StoryFinder(store)
    summary = copy(
        "sum", "", summary=SEED[:400].rsplit(" ", 1)[0] + "…", feed="times", title="Summary copy"
    )
    rest = copy(
        "rest",
        "Context paragraph written by the outlet.\n" + "\n".join(PARAS[4:]),
        title="Rewritten copy",
    )
    r1 = run(store, finder, [matched(summary, ("r1",))])
    r2 = run(store, finder, [matched(rest, ("r2",))], T0 + MIN)
    assert r1.story_ids["sum"] != r2.story_ids["rest"]
    r3 = run(store, finder, [matched(WIRE, ("r1", "r2"))], T0 + 2 * MIN)
    kept = min(r1.story_ids["sum"], r2.story_ids["rest"])
    assert r3.story_ids["wire-1"] == kept
    assert r3.new_outbox == 0  # both rules alerted the story already
    # One story from now on: its rows, and a later copy.
    assert {r.rule for r in store.pending_due(T0 + HOUR, 10)} == {"r1", "r2"}
    assert {r.story_id for r in store.pending_due(T0 + HOUR, 10)} == {kept}
    r4 = run(store, StoryFinder(store), [matched(HERALD, ("r1", "r2"))], T0 + 3 * MIN)
    assert r4.story_ids["kh-77"] == kept and r4.new_outbox == 0


# --------------------------------------------------------------------------- pruning


def test_bands_of_stories_outside_the_window_are_pruned(store: SqlStore) -> None:
    finder = StoryFinder(store)
    run(store, finder, [matched(WIRE)])
    other = copy("w2", OTHER_MEETING, title="S. Korea, Russia agree on N. Korea")
    run(store, finder, [matched(other)], T0 + 10 * HOUR)
    before = bands_of(store)
    gone = store.prune_story_bands(T0 + 5 * HOUR)
    assert 0 < gone < before
    assert bands_of(store) == before - gone
    # The pruned story's bands find nothing; the live one's still do.
    assert store.band_owners(list(finder.annotate([matched(WIRE)], T0)[0].bands)) == []
    assert store.band_owners(list(finder.annotate([matched(other)], T0)[0].bands))
    assert store.prune_story_bands(T0 + 5 * HOUR) == 0


# --------------------------------------------------------------------------- updates


def _longer() -> Article:
    """The trimmed wire copy grown by the outlet's own reporting."""
    added = (
        "Later on Thursday the foreign ministry released the transcript of the luncheon, "
        "in which the official also described a planned visit by Russian trade officials "
        "to Seoul in the autumn, talks on a gas pipeline across the peninsula, and the "
        "possibility of visa-free travel for tourists from both countries next year.\n"
        "Opposition lawmakers in Seoul questioned why the minister had not pressed Moscow "
        "harder on shipments of coal from North Korean ports, which they said breached the "
        "sanctions that Russia had voted for at the Security Council in March.\n"
    )
    return copy(
        "kh-update",
        "\n".join(PARAS[:10]) + "\n" + added + OTHER_MEETING,
        feed="herald",
        source="Korea Herald",
    )


def test_a_copy_adding_substantial_text_is_an_update_after_the_alert_went_out(
    store: SqlStore,
) -> None:
    finder = StoryFinder(store)
    trimmed = copy("wire-1", "\n".join(PARAS[:10]))
    run(store, finder, [matched(trimmed, updates=True)])
    # While the alert waits, a longer copy only joins it ("also reported by").
    early = run(store, finder, [matched(HERALD, updates=True)], T0 + MIN)
    assert early.new_outbox == 0 and early.joined == 1
    compose_each(store, T0 + 2 * MIN)
    [first] = claim(store, T0 + 2 * MIN)
    store.mark_sent(first.id, T0 + 2 * MIN, thread_ref="1718000000.000100")
    grown = run(store, finder, [matched(_longer(), updates=True)], T0 + HOUR)
    assert grown.new_outbox == 1
    # Another outlet's copy of the same longer text adds nothing new.
    again = dataclasses.replace(_longer(), entry_key="kt-9", feed_key="times")
    assert run(store, finder, [matched(again, updates=True)], T0 + HOUR).new_outbox == 0
    [row] = store.pending_due(T0 + 2 * HOUR, 10)
    assert row.update and row.revision != 0
    compose_each(store, T0 + 2 * HOUR)
    [update_n] = claim(store, T0 + 2 * HOUR)
    assert [i.update for i in update_n.items] == [True]
    assert update_n.items[0].article.entry_key == "kh-update"
    assert update_n.thread is not None
    assert (update_n.thread.key, update_n.thread.ref) == (first.key, "1718000000.000100")
    # Copies that added text are listed (the status page), sent or not.
    listed = {u.article_id: u for u in store.story_updates(T0)}
    assert row.revision in listed and listed[row.revision].new_text > 0


def test_without_updates_an_update_is_only_listed(store: SqlStore) -> None:
    finder = StoryFinder(store)
    run(store, finder, [matched(copy("wire-1", "\n".join(PARAS[:10])))])
    compose_each(store, T0 + MIN)
    [first] = claim(store, T0 + MIN)
    store.mark_sent(first.id, T0 + MIN)
    grown = run(store, finder, [matched(_longer())], T0 + HOUR)
    assert grown.new_outbox == 0
    assert [u.title for u in store.story_updates(T0)] == [_longer().title]
    assert {r.status for r in store.outbox()} == {OutboxStatus.SENT}


def test_an_edit_that_adds_substantial_text_is_an_update(store: SqlStore) -> None:
    finder = StoryFinder(store)
    short = copy("wire-1", "\n".join(PARAS[:10]))
    run(store, finder, [matched(short, updates=True)])
    compose_each(store, T0 + MIN)
    [first] = claim(store, T0 + MIN)
    store.mark_sent(first.id, T0 + MIN)
    grown = dataclasses.replace(_longer(), feed_key="yonhap", entry_key="wire-1")
    edit = dataclasses.replace(matched(grown, updates=True), edit=True, content_hash="v2")
    [annotated] = finder.annotate([edit], T0 + HOUR)
    assert annotated.new_text is not None  # compared with its stored text, not itself
    assert store.ingest(update("yonhap", at=T0 + HOUR), [annotated]).new_outbox == 1
