"""Metrics, readiness and reload decisions: the pure parts, table by table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from newswatch.clitable import fit, when
from newswatch.config import Config
from newswatch.health import Beat, Heartbeats, loop_limit, stale_loops
from newswatch.metrics import Metrics, PollCycle, cycle_from_outcomes, error_kind
from newswatch.reloads import RESTART_ONLY, config_diff, restart_only_changes
from newswatch.store._stats import OutboxDepth
from newswatch.store.base import FeedState
from newswatch.web.pages import human_interval, pager, safe_href, sparkline

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("HTTP 404 Not Found", "http_4xx"),
        ("HTTP 429 Too Many Requests (Retry-After: 60)", "http_429"),
        ("HTTP 503 Service Unavailable", "http_5xx"),
        ("HTTP 304 Not Modified", "http_other"),
        ("example.org stopped responding (timed out)", "timeout"),
        ("connecting to example.org timed out", "timeout"),
        ("DNS lookup for nope.invalid failed: Name or service not known", "dns"),
        ("TLS certificate of example.org not accepted: expired", "tls"),
        ("connection to example.org refused", "connect"),
        ("refused: redirect to 10.0.0.1, a non-public address", "refused"),
        ("example.org broke the HTTP protocol: illegal status line", "protocol"),
        ("body larger than 10.0 MiB limit", "too_large"),
        ("invalid URL: bad port", "invalid_url"),
        ("not a feed: no RSS, Atom or RDF document found", "parse"),
        ("internal error: KeyError: 'x'", "internal"),
        ("something new", "other"),
    ],
)
def test_error_kind(error: str, kind: str) -> None:
    assert error_kind(error) == kind


@dataclass(frozen=True)
class _M:
    rule: str


@dataclass(frozen=True)
class _O:
    status: str
    error: str | None = None
    new_articles: int = 0
    matches: tuple[_M, ...] = ()
    parse_seconds: float | None = None


def test_cycle_from_outcomes_counts() -> None:
    cycle = cycle_from_outcomes(
        [
            _O("updated", new_articles=2, matches=(_M("a"), _M("b"), _M("a")), parse_seconds=0.01),
            _O("not_modified"),
            _O("failed", error="HTTP 500 Internal Server Error"),
            _O("failed", error="HTTP 502 Bad Gateway"),
        ],
        1.25,
    )
    assert cycle.duration_s == 1.25
    assert cycle.outcomes == {"updated": 1, "not_modified": 1, "failed": 2}
    assert cycle.errors == {"http_5xx": 2}
    assert cycle.new_articles == 2
    assert cycle.matches == {"a": 2, "b": 1}
    assert cycle.parse_s == (0.01,)


class _Store:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def outbox_depths(self) -> dict[str, OutboxDepth]:
        if self.fail:
            raise OSError("down")
        return {"desk": OutboxDepth(pending=2, queued=1, oldest_at=T0 - timedelta(minutes=5))}

    def feed_states(self, *, active_only: bool = False) -> list[FeedState]:
        def state(key: str, label: str, errors: int) -> FeedState:
            return FeedState(key, None, None, None, None, errors, None, None, T0, 0, label=label)

        return [state("k1", "Same", 0), state("k2", "Same", 3)]


def test_metrics_render_counters_and_store_gauges() -> None:
    m = Metrics(version="1.2.3", store=_Store(), clock=lambda: T0)
    m.ticks = lambda: {"poll": 1.5}
    m.poll_cycle(PollCycle(1.0, {"failed": 1}, {"timeout": 1}, 3, {"korea": 2}, parse_s=(0.02,)))
    m.notification("desk", "sent")
    m.notification("desk", "dead")
    m.reloaded(False, T0)
    text = m.render().decode()
    assert 'newswatch_polls_total{outcome="failed"} 1.0' in text
    assert 'newswatch_fetch_errors_total{kind="timeout"} 1.0' in text
    assert "newswatch_articles_new_total 3.0" in text
    assert 'newswatch_matches_total{rule="korea"} 2.0' in text
    assert 'newswatch_notifications_total{channel="desk",outcome="dead"} 1.0' in text
    assert 'newswatch_outbox_depth{channel="desk",state="pending"} 2.0' in text
    assert 'newswatch_outbox_oldest_age_seconds{channel="desk"} 300.0' in text
    assert 'newswatch_feed_failing{feed="Same (k2)"} 1.0' in text  # no duplicate samples
    assert 'newswatch_feed_failing{feed="Same"} 0.0' in text
    assert 'newswatch_loop_last_tick_age_seconds{loop="poll"} 1.5' in text
    assert "newswatch_config_last_reload_successful 0.0" in text
    assert 'newswatch_build_info{python="' in text and 'version="1.2.3"' in text
    assert "newswatch_store_up 1.0" in text


def test_a_scrape_survives_a_store_that_is_down() -> None:
    text = Metrics(version="x", store=_Store(fail=True), clock=lambda: T0).render().decode()
    assert "newswatch_store_up 0.0" in text
    assert "newswatch_outbox_depth" not in text.split("# HELP newswatch_store_up")[1]


# --------------------------------------------------------------------------- readiness


@pytest.mark.parametrize(
    ("beat", "now", "stale"),
    [
        (Beat(since=0), 5, False),  # just started, nothing ran yet
        (Beat(since=0), 31, True),  # nothing ever ran: the scheduler is not ticking
        (Beat(since=0, started=10, finished=11), 40, False),
        (Beat(since=0, started=10, finished=11), 42, True),  # idle too long
        (Beat(since=0, started=10), 39, False),  # a run in progress
        (Beat(since=0, started=10), 41, True),  # stuck in a run
        (Beat(since=0, started=50, finished=11), 70, False),  # running again
    ],
)
def test_stale_loops(beat: Beat, now: float, stale: bool) -> None:
    assert stale_loops({"poll": beat}, {"poll": 30.0}, now) == (["poll"] if stale else [])


def test_loop_limit_is_three_periods_of_the_tick_or_the_budget() -> None:
    assert loop_limit(timedelta(seconds=5)) == 15
    assert loop_limit(timedelta(seconds=5), timedelta(seconds=40)) == 120


def test_heartbeats_on_a_given_clock() -> None:
    now = [100.0]
    beats = Heartbeats(("poll",), clock=lambda: now[0])
    beats.started("poll")
    now[0] = 110
    assert beats.ages() == {"poll": 10}
    beats.finished("poll")
    now[0] = 112
    assert beats.ages() == {"poll": 2}
    assert beats.stale({"poll": 1}) == ["poll"]


# --------------------------------------------------------------------------- reloads


def _config(**data: object) -> Config:
    return Config.model_validate(data)


def test_config_diff_names_what_changed() -> None:
    old = _config(
        feeds=[{"url": "https://a.org/rss", "name": "A"}, {"url": "https://b.org/rss"}],
        channels={"c": {"type": "console"}, "d": {"type": "console"}},
        rules=[{"name": "r1", "query": "x"}, {"name": "r2", "query": "y"}],
    )
    new = _config(
        timezone="Asia/Seoul",
        feeds=[
            {"url": "https://a.org/rss", "name": "A", "every": "5m"},
            {"url": "https://c.org/x"},
        ],
        channels={"c": {"type": "console", "format": "json"}, "e": {"type": "console"}},
        rules=[
            {"name": "r1", "query": "x"},
            {"name": "r2", "query": "z"},
            {"name": "r3", "query": "q"},
        ],
        poll={"concurrency": 4},
    )
    diff = config_diff(old, new)
    assert diff.rules_added == ("r3",) and diff.rules_changed == ("r2",) and not diff.rules_removed
    assert diff.feeds_added == ("https://c.org/x",) and diff.feeds_removed == ("https://b.org/rss",)
    assert diff.feeds_changed == ("A",)
    assert diff.channels_added == ("e",) and diff.channels_removed == ("d",)
    assert diff.channels_changed == ("c",)
    assert diff.settings_changed == ("timezone", "poll")
    assert diff.restart_only == ("poll.concurrency",)
    assert diff.describe() == (
        "rules +r3 ~r2; feeds +https://c.org/x -https://b.org/rss ~A; "
        "channels +e -d ~c; settings timezone, poll"
    )
    assert config_diff(old, old).empty and config_diff(old, old).describe() == "no changes"


def test_every_restart_only_setting_is_noticed() -> None:
    base = _config()
    changed: dict[str, dict[str, Any]] = {
        "state": {"state": "sqlite:///other.db"},
        "poll.concurrency": {"poll": {"concurrency": 2}},
        "poll.per_host": {"poll": {"per_host": 3}},  # 2 is the default
        "poll.timeout": {"poll": {"timeout": "3s"}},
        "poll.max_bytes": {"poll": {"max_bytes": "1MiB"}},
        "poll.user_agent": {"poll": {"user_agent": "x"}},
        "http.listen": {"http": {"listen": "127.0.0.1:9999"}},
    }
    assert set(changed) == set(RESTART_ONLY)
    for name, data in changed.items():
        assert restart_only_changes(base, _config(**data)) == [name]
    assert restart_only_changes(base, _config(timezone="Asia/Seoul")) == []


# --------------------------------------------------------------------------- views


def test_sparkline_bars_and_zero_days() -> None:
    days = [f"2026-05-{d:02d}" for d in range(1, 15)]
    svg = str(sparkline([0] * 13 + [4], days))
    assert svg.count('class="zero"') == 13 and svg.count('class="bar"') == 1
    assert 'height="20"><title>2026-05-14: 4</title>' in svg
    assert 'aria-label="4 matches in 14 days"' in svg
    assert str(sparkline([0] * 14, days)).count('class="bar"') == 0


def test_pager_and_links_and_intervals() -> None:
    assert (pager(1, 0).pages, pager(1, 0).prev, pager(1, 0).next) == (1, None, None)
    p = pager(9, 120)
    assert (p.page, p.pages, p.offset, p.prev, p.next) == (3, 3, 100, 2, None)
    assert safe_href("https://e.org/a") == "https://e.org/a"
    for bad in ("javascript:alert(1)", "data:text/html,x", "JaVaScRiPt:x", "", None, "//e.org"):
        assert safe_href(bad) is None
    assert human_interval(timedelta(minutes=10)) == "10m"
    assert human_interval(timedelta(hours=1)) == "1h"
    assert human_interval(timedelta(seconds=90)) == "1.5m"


def test_tables_fit_the_terminal() -> None:
    rows = [("FEED", "ERROR"), ("Korea Herald", "x" * 80)]
    lines = fit(rows, 40)
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].endswith("…")
    assert fit(rows, 200)[1] == "Korea Herald  " + "x" * 80
    assert fit([("a\nb", "c")], 20) == ["a b  c"]  # one line per row


def test_times_in_the_configured_zone() -> None:
    from zoneinfo import ZoneInfo

    seoul = ZoneInfo("Asia/Seoul")
    assert when(T0, seoul, T0) == "18:00"
    assert when(T0 - timedelta(days=3), seoul, T0) == "04-28 18:00"
    assert when(T0 - timedelta(days=400), seoul, T0) == "2025-03-27 18:00"
    assert when(None, seoul, T0) == "never"
