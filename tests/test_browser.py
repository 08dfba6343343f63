"""The status page in a real headless Chromium (Debian's `chromium`), driven
over the DevTools protocol (tests/cdp.py): a daemon with failing feeds, a
config error, a dead letter and a mute; the page at 375 px and at desktop
width, no console errors, no request leaving 127.0.0.1.

Skipped, with the reason, where chromium is not installed (`.ci/run`
installs it). With NEWSWATCH_SCREENSHOTS=docs the screenshots are written
there (docs/status-phone.png, docs/status-desktop.png).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cdp import Chromium, find_chromium
from feedserver import FeedServer
from newswatch.config import load_config
from ops_helpers import BAD_RULES, ENV, SECRETS, running, scenario, settle_scenario, wait_until

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium is not installed (apt-get install chromium; .ci/run does)",
)

PHONE_WIDTH = 375


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def _look(base: str, shots: Path) -> dict[str, object]:
    """Load the page at phone and desktop width; what a person would check."""
    found: dict[str, object] = {}
    with Chromium.launch() as browser:
        phone = browser.new_page(width=PHONE_WIDTH, height=800)
        phone.goto(base + "/")
        found["title"] = phone.evaluate("document.title")
        found["width"] = phone.evaluate("document.documentElement.scrollWidth")
        found["body_width"] = phone.evaluate("document.body.scrollWidth")
        found["text"] = phone.evaluate("document.body.innerText")
        found["scripts"] = phone.evaluate("document.scripts.length")
        found["styled"] = phone.evaluate(
            "getComputedStyle(document.querySelector('#config-error')).borderTopStyle"
        )
        found["sparks"] = phone.evaluate("document.querySelectorAll('svg.spark rect').length")
        (shots / "status-phone.png").write_bytes(phone.screenshot())
        desktop = browser.new_page(width=1200, height=900, mobile=False)
        desktop.goto(base + "/?feeds=failing")
        (shots / "status-desktop.png").write_bytes(desktop.screenshot(full_page=False))
        found["errors"] = phone.console_errors + desktop.console_errors
        found["failed"] = phone.failed_requests + desktop.failed_requests
        found["requests"] = phone.requests + desktop.requests
    return found


async def test_status_page_in_chromium(tmp_path: Path, feeds: FeedServer) -> None:
    rules = scenario(tmp_path, feeds)
    loaded = load_config(tmp_path / "newswatch.yaml")
    shots = Path(os.environ.get("NEWSWATCH_SCREENSHOTS") or tmp_path)
    async with running(loaded) as run:
        await settle_scenario(run, feeds)
        now = run.app.clock()
        run.app.store.add_mute(
            "channel", "mail", now, now + timedelta(hours=4), comment="mail server move"
        )
        rules.write_text(BAD_RULES, encoding="utf-8")
        await wait_until(lambda: run.daemon.reloader.problems)
        base = run.base
        seen = await asyncio.to_thread(_look, base, shots)

    assert seen["title"] == "newswatch — configuration error"
    # Readable on a phone: nothing wider than the screen.
    assert seen["width"] == PHONE_WIDTH, seen["width"]
    assert seen["body_width"] == PHONE_WIDTH
    text = str(seen["text"])
    assert "Configuration error" in text and f"{rules}:2" in text
    assert "Down Daily" in text and "HTTP 500" in text
    assert '<img src=x onerror="alert(1)"> Herald & Co' in text  # shown as text
    assert "mail server move" in text
    assert "THAAD was not issue" in text
    assert seen["scripts"] == 0
    assert seen["styled"] == "solid"  # the stylesheet loaded under the CSP
    assert seen["sparks"] == 2 * 14
    assert seen["errors"] == [], seen["errors"]
    assert seen["failed"] == [], seen["failed"]
    outside = [u for u in seen["requests"] if not str(u).startswith(base + "/")]  # type: ignore[attr-defined]
    assert outside == []
    for secret in SECRETS:
        assert secret not in text
    assert (shots / "status-phone.png").stat().st_size > 10_000
