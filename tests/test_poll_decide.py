"""The poll decider (newswatch.poll.decide): table tests, clock and
randomness passed in, no store and no network."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from newswatch.feeds.normalize import normalize_entry
from newswatch.model import Article, FetchResult, Match, ParsedEntry, Route
from newswatch.poll.decide import (
    KEY_REWRITE_MIN_NEW,
    Candidate,
    Document,
    FeedPolicy,
    Fresh,
    PollIntent,
    PollSettings,
    candidates,
    decide_poll,
    derived_lookups,
    select_entries,
    url_credentials,
)
from newswatch.store.base import KEEP, FeedState, KnownEntry

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)
SETTINGS = PollSettings(
    every=10 * M,
    min_interval=5 * M,
    max_interval=6 * H,
    jitter=0.0,
    max_backoff=6 * H,
    alert_after=24 * H,
    admin_channel=None,
)
FEED = FeedPolicy(
    key="f-1",
    label="Wire",
    named=True,
    every=None,
    backfill=None,
    source="https://user:hunter22@news.example.org/rss?token=SECRET123",
)


class FakeRules:
    """Matches "Russia" in the title; one route per match."""

    def match(self, article: Article) -> list[Match]:
        return [Match("russia", article)] if "Russia" in article.title else []

    def routes(self, match: Match, now: datetime) -> tuple[Route, ...]:
        return (Route(match.rule, "desk"),)


RULES = FakeRules()


def state(**changes: object) -> FeedState:
    base = FeedState(
        feed_key=FEED.key,
        etag='"v1"',
        last_modified=None,
        next_poll_at=NOW,
        lease_until=NOW + M,
        consecutive_errors=0,
        last_error=None,
        last_attempt_at=NOW - H,
        last_success_at=NOW - H,
        articles=5,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def fetched(**changes: object) -> FetchResult:
    base = FetchResult(FEED.key, "https://news.example.org/rss", NOW, status=200, body=b"<rss/>")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def entry(n: int | str, title: str = "", link: str = "", **changes: object) -> ParsedEntry:
    base = ParsedEntry(
        guid=f"g{n}",
        link=link or f"https://news.example.org/{n}",
        title=title or f"Story number {n} about Russia",
        summary="text",
        content="",
        author="",
        categories=(),
        published=NOW - timedelta(minutes=30),
        updated=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def known_of(e: ParsedEntry, *, content_hash: str | None = None) -> KnownEntry:
    article = normalize_entry(e, feed_key=FEED.key, source="Wire")
    [cand] = candidates([e])
    return KnownEntry(
        entry_key=cand.key,
        article_id=1,
        story_id=1,
        content_hash=content_hash if content_hash is not None else cand.content_hash,
        canonical_url=article.canonical_url,
        title=article.title,
    )


def document(
    entries: Sequence[ParsedEntry], known: dict[str, KnownEntry], **changes: object
) -> Document:
    """What the executor builds: sorted, and only the fresh ones normalized."""
    found = candidates(entries)
    selection = select_entries(found, known)

    def art(c: Candidate) -> Article:
        return normalize_entry(c.entry, feed_key=FEED.key, source="Wire")

    fresh = [Fresh(art(c), c.content_hash, "new") for c in selection.new]
    fresh += [Fresh(art(c), c.content_hash, "changed") for c in selection.changed]
    fresh += [Fresh(art(c), c.content_hash, "repeated") for c in selection.repeated]
    firsts = {}
    for c in selection.repeated:
        first = next(x for x in found if x.key == c.key)
        firsts[c.key] = art(first)
    doc = Document(
        title="Wire feed",
        warning=None,
        fresh=tuple(fresh),
        seen=selection.seen,
        entries=len(found),
        published=tuple(e.published for e in entries if e.published),
        declared=None,
        body_hash="b1",
        firsts=firsts,
    )
    return dataclasses.replace(doc, **changes)  # type: ignore[arg-type]


def decide(
    st: FeedState | None,
    fetch: FetchResult,
    doc: Document | None,
    known: dict[str, KnownEntry] | None = None,
    *,
    feed: FeedPolicy = FEED,
    settings: PollSettings = SETTINGS,
    seed: int = 1,
    parse_error: str | None = None,
) -> PollIntent:
    return decide_poll(
        feed,
        st,
        fetch,
        doc,
        known or {},
        RULES,
        NOW,
        random.Random(seed),
        settings,
        parse_error=parse_error,
    )


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("errors_before", "retry_after", "delay"),
    [
        (0, None, 10 * M),
        (1, None, 20 * M),
        (2, None, 40 * M),
        (9, None, 6 * H),  # the cap
        (0, 7200.0, 2 * H),  # 429/503 Retry-After
    ],
)
def test_failure_backs_off_and_is_recorded(
    errors_before: int, retry_after: float | None, delay: timedelta
) -> None:
    intent = decide(
        state(consecutive_errors=errors_before),
        fetched(body=None, status=503, error="HTTP 503", retry_after=retry_after),
        None,
    )
    assert intent.outcome == "failed"
    update = intent.update
    assert update.ok is False and update.status == "failing" and update.error == "HTTP 503"
    assert update.next_poll_at == NOW + delay
    assert update.etag is KEEP  # a failure keeps the validators


def test_parse_failure_is_a_failure_of_the_document() -> None:
    intent = decide(state(), fetched(), None, parse_error="not a feed")
    assert intent.outcome == "failed" and intent.parse_failed
    assert intent.error == "not a feed"


def test_gone_disables_the_feed_with_that_status() -> None:
    intent = decide(state(), fetched(body=None, status=410, error="HTTP 410 Gone", gone=True), None)
    assert intent.outcome == "gone"
    assert intent.update.status == "gone"
    [(level, text)] = intent.logs
    assert level == logging.ERROR and "gone" in text


def test_long_failure_tells_the_admin_once_then_the_recovery() -> None:
    settings = dataclasses.replace(SETTINGS, admin_channel="ops")
    failing = state(consecutive_errors=30, failing_since=NOW - 25 * H)
    intent = decide(failing, fetched(body=None, error="HTTP 500"), None, settings=settings)
    [notice] = intent.notices
    assert notice.channel == "ops" and "failing for 25 h" in notice.text and "Wire" in notice.text
    assert intent.update.alerted_at == NOW
    # Already told: no second notice while it keeps failing.
    told = dataclasses.replace(failing, alerted_at=NOW - H)
    again = decide(told, fetched(body=None, error="HTTP 500"), None, settings=settings)
    assert again.notices == ()
    # Not long enough yet: nothing.
    young = state(consecutive_errors=3, failing_since=NOW - 2 * H)
    assert decide(young, fetched(body=None, error="x"), None, settings=settings).notices == ()
    # Back: one recovery notice, alerted_at cleared.
    back = decide(told, fetched(not_modified=True, body=None, status=304), None, settings=settings)
    [notice] = back.notices
    assert "is back" in notice.text and notice.key != intent.notices[0].key
    assert back.update.alerted_at is None


def test_no_admin_channel_no_notice() -> None:
    failing = state(consecutive_errors=30, failing_since=NOW - 25 * H)
    intent = decide(failing, fetched(body=None, error="HTTP 500"), None)
    assert intent.notices == () and intent.update.alerted_at is KEEP


# --------------------------------------------------------------------------- success


def test_not_modified_keeps_validators_and_interval() -> None:
    intent = decide(state(interval_s=1800), fetched(not_modified=True, body=None, status=304), None)
    assert intent.outcome == "not_modified" and not intent.ingests
    update = intent.update
    assert update.ok and update.etag is KEEP and update.last_modified is KEEP
    assert update.next_poll_at == NOW + 30 * M


def test_max_age_is_a_floor_on_the_interval() -> None:
    intent = decide(
        state(), fetched(not_modified=True, body=None, status=304, max_age=3600.0), None
    )
    assert intent.update.next_poll_at == NOW + H


def test_declared_ttl_is_a_floor_and_every_is_kept() -> None:
    feed = dataclasses.replace(FEED, every=15 * M)
    doc = document([entry(1)], {}, declared=45 * M)
    assert decide(state(), fetched(), doc, feed=feed).update.next_poll_at == NOW + 45 * M
    doc = document([entry(1)], {})
    assert decide(state(), fetched(), doc, feed=feed).update.next_poll_at == NOW + 15 * M


def test_adaptive_interval_from_the_document() -> None:
    hourly = [entry(i, published=NOW - i * H) for i in range(5)]
    intent = decide(state(), fetched(), document(hourly, {}))
    assert intent.update.interval_s == 1800


def test_jitter_moves_the_next_poll_with_the_rng() -> None:
    settings = dataclasses.replace(SETTINGS, jitter=0.1)
    fetch = fetched(not_modified=True, body=None, status=304)
    times = {
        decide(state(), fetch, None, settings=settings, seed=s).update.next_poll_at
        for s in range(5)
    }
    assert len(times) == 5
    assert all(NOW + 9 * M <= t <= NOW + 11 * M for t in times)


def test_permanent_move_is_stored_and_logged() -> None:
    moved = "https://new.example.org/rss"
    intent = decide(
        state(), fetched(not_modified=True, body=None, status=304, moved_to=moved), None
    )
    update = intent.update
    assert update.moved_to == moved and update.status == "moved"
    assert any("moved permanently" in text for _, text in intent.logs)


def test_move_carrying_the_configured_secrets_is_not_stored() -> None:
    moved = "https://new.example.org/rss?token=SECRET123"
    intent = decide(
        state(), fetched(not_modified=True, body=None, status=304, moved_to=moved), None
    )
    update = intent.update
    assert update.moved_to is KEEP and update.status == "ok"
    [(level, text)] = [log for log in intent.logs if "moved" in log[1]]
    assert level == logging.WARNING and "update the feed's url" in text
    assert "SECRET123" not in text


def test_url_credentials_are_user_password_and_query_values() -> None:
    assert url_credentials(FEED.source) == ["SECRET123", "hunter22", "user"]
    assert url_credentials("https://e.org/feed.xml?x=1") == []


# --------------------------------------------------------------------------- entries


def test_first_poll_is_silent_and_later_polls_alert() -> None:
    entries = [entry(1), entry(2, title="Other news, no match")]
    first = decide(None, fetched(), document(entries, {}))
    assert [i.evaluated for i in first.items] == [False, False]
    assert first.matches == ()
    later = decide(state(), fetched(), document(entries, {}))
    assert [i.evaluated for i in later.items] == [True, True]
    assert [m.article.entry_key for m in later.matches] == ["g1"]
    [item] = [i for i in later.items if i.matches]
    assert item.routes == (Route("russia", "desk"),)
    assert item.identity_keys and item.content_hash


@pytest.mark.parametrize(
    ("backfill", "alerting"),
    [
        (None, []),
        ("all", ["g1", "g2"]),
        (24 * H, ["g1"]),  # g2 was published in 2019: outside the window
    ],
)
def test_feed_backfill_window_on_first_poll(
    backfill: timedelta | Literal["all"] | None, alerting: list[str]
) -> None:
    entries = [entry(1), entry(2, published=datetime(2019, 3, 1, tzinfo=UTC))]
    feed = dataclasses.replace(FEED, backfill=backfill)
    intent = decide(None, fetched(), document(entries, {}), feed=feed)
    assert [m.article.entry_key for m in intent.matches] == alerting


def test_seen_entries_are_not_normalized_or_stored_again() -> None:
    one, two = entry(1), entry(2)
    known = {"g1": known_of(one)}
    doc = document([one, two], known)
    assert [f.article.entry_key for f in doc.fresh] == ["g2"]
    intent = decide(state(), fetched(), doc, known)
    assert [i.article.entry_key for i in intent.items] == ["g2"]
    assert intent.seen_again == ("g1",)


def test_edit_is_stored_as_an_edit_and_matched_again() -> None:
    old = entry(1, title="Story number 1 about trade")
    edited = dataclasses.replace(old, title="Story number 1 about Russia and trade")
    known = {"g1": known_of(old)}
    intent = decide(state(), fetched(), document([edited], known), known)
    [item] = intent.items
    assert item.edit and item.article.entry_key == "g1"
    assert [m.rule for m in item.matches] == ["russia"]  # the store alerts only new rules


def test_old_rows_without_hash_count_as_seen() -> None:
    e = entry(1)
    known = {"g1": known_of(e, content_hash="")}
    known["g1"] = dataclasses.replace(known["g1"], content_hash=None)
    changed = dataclasses.replace(e, summary="new text")
    assert decide(state(), fetched(), document([changed], known), known).items == ()


def test_reused_guid_with_another_link_and_title_is_a_new_story() -> None:
    old = entry(1, title="Local election results are in")
    reused = entry(1, title="Russia sends envoy to Pyongyang", link="https://news.example.org/x")
    known = {"g1": known_of(old)}
    doc = document([reused], known)
    derived = derived_lookups(doc, known)
    assert len(derived) == 1 and derived[0].startswith("g1#")
    intent = decide(state(), fetched(), doc, known)
    [item] = intent.items
    assert not item.edit and item.article.entry_key == derived[0]
    assert [m.rule for m in item.matches] == ["russia"]
    # Next poll: the derived key is stored: nothing new, and it stays seen.
    [cand] = candidates([reused])
    stored = KnownEntry(derived[0], 2, 2, cand.content_hash, item.article.canonical_url, "x")
    known2 = {**known, derived[0]: stored}
    again = decide(state(), fetched(), document([reused], known2), known2)
    assert again.items == () and derived[0] in again.seen_again


def test_repeated_guid_within_one_document_keeps_both_stories() -> None:
    a = entry(1, title="Local election results are in")
    b = entry(1, title="Russia sends envoy to Pyongyang", link="https://news.example.org/x")
    same = dataclasses.replace(a, summary="a little different")  # same story: dropped
    intent = decide(state(), fetched(), document([a, b, same], {}), {})
    keys = [i.article.entry_key for i in intent.items]
    assert keys[0] == "g1" and keys[1].startswith("g1#") and len(keys) == 2


def _rewrite(n: int) -> tuple[list[ParsedEntry], dict[str, KnownEntry]]:
    """n stored entries, then a document where every GUID changed."""
    old = [entry(i, published=NOW - timedelta(hours=3 + i)) for i in range(n)]
    known: dict[str, KnownEntry] = {}  # none of the new keys is stored
    new = [dataclasses.replace(e, guid=f"https-{e.guid}") for e in old]
    return new, known


def test_key_rewrite_storm_is_recorded_silently_and_logged_once() -> None:
    new, known = _rewrite(KEY_REWRITE_MIN_NEW)
    fresh_one = entry(99, published=NOW - M)  # published after the last poll: may alert
    intent = decide(state(articles=50), fetched(), document([*new, fresh_one], known), known)
    assert intent.storm
    assert [m.article.entry_key for m in intent.matches] == ["g99"]
    warnings = [t for level, t in intent.logs if level == logging.WARNING]
    assert len(warnings) == 1 and "rewrite" in warnings[0]


def test_fewer_new_keys_than_the_limit_is_normal_turnover() -> None:
    new, known = _rewrite(KEY_REWRITE_MIN_NEW - 1)
    intent = decide(state(articles=50), fetched(), document(new, known), known)
    assert not intent.storm
    assert len(intent.matches) == KEY_REWRITE_MIN_NEW - 1


def test_unnamed_feed_takes_its_title() -> None:
    feed = dataclasses.replace(FEED, named=False, label="https://news.example.org/rss")
    intent = decide(state(), fetched(), document([entry(1)], {}), feed=feed)
    assert intent.label == "Wire feed"
    assert intent.update.title == "Wire feed"
    known_title = state(title="Wire feed")
    assert decide(known_title, fetched(), document([entry(1)], {}), feed=feed).update.title is KEEP


def test_only_routed_matches_keep_an_explanation() -> None:
    from newswatch.model import Explanation

    class HalfRouted(FakeRules):
        def match(self, article: Article) -> list[Match]:
            found = Explanation(snippet="…Russia…")
            return [Match("routed", article, found), Match("unrouted", article, found)]

        def routes(self, match: Match, now: datetime) -> tuple[Route, ...]:
            return (Route(match.rule, "desk"),) if match.rule == "routed" else ()

    intent = decide_poll(
        FEED,
        state(),
        fetched(),
        document([entry(1)], {}),
        {},
        HalfRouted(),
        NOW,
        random.Random(1),
        SETTINGS,
    )
    [item] = intent.items
    by_rule = {m.rule: m.explanation.snippet for m in item.matches}
    assert by_rule == {"routed": "…Russia…", "unrouted": ""}
