"""PollStats: the counters the metrics and the status page read."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedserver import FeedServer
from newswatch.config import load_config
from newswatch.daemon import App
from newswatch.poll.stats import error_kind
from samples import Item, rss


@pytest.mark.parametrize(
    ("error", "status", "parse", "kind"),
    [
        ("HTTP 404 Not Found", 404, False, "http_404"),
        ("server said HTTP 503", None, False, "http_503"),
        ("no complete response within 20.0s", None, False, "timeout"),
        ("the document is larger than the 10 MiB limit", 200, False, "too_large"),
        ("cannot connect to e.org: connection refused", None, False, "connect"),
        ("internal error: ValueError", None, False, "internal"),
        ("not a feed: the document is an HTML page", 200, True, "parse"),
        ("something odd", None, False, "other"),
    ],
)
def test_error_kinds(error: str, status: int | None, parse: bool, kind: str) -> None:
    assert error_kind(error, status=status, parse=parse) == kind


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


async def test_counts_after_a_cycle(tmp_path: Path, server: FeedServer) -> None:
    server.route("/ok.xml", body=rss(Item("Russia and North Korea", "http://e.org/1")))
    server.route("/bad.xml", status=404)
    server.route("/html.xml", body=b"<html><body>no</body></html>", content_type="text/html")
    cfg = tmp_path / "nw.yaml"
    cfg.write_text(
        f"state: sqlite:///{tmp_path}/s.db\n"
        + textwrap.dedent(
            f"""
            feeds:
              - {{url: "{server.url("/ok.xml")}", backfill: all}}
              - {{url: "{server.url("/bad.xml")}"}}
              - {{url: "{server.url("/html.xml")}"}}
            rules: [{{name: rnk, query: 'Russia AND "North Korea"'}}]
            """
        )
    )
    async with App.open(load_config(cfg, env={})) as app:
        await app.poller.poll_all()
        snap = app.poller.stats.snapshot()
    assert snap["polls"] == {"updated": 1, "failed": 2}
    assert snap["errors"] == {"http_404": 1, "parse": 1}
    assert snap["articles_new"] == 1 and snap["matches"] == {"rnk": 1}
    assert snap["fetch_seconds"]["count"] == 3 and snap["parse_seconds"]["count"] == 2
    assert snap["in_flight"] == 0 and 1 <= snap["peak_in_flight"] <= 32
    [cycle] = snap["cycles"]
    assert cycle["feeds"] == 3 and cycle["failed"] == 2
    json.dumps(snap)  # JSON-ready, and no URL in it
    assert "127.0.0.1" not in json.dumps(snap)
