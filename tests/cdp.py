"""A small Chrome DevTools Protocol client over a pipe, for browser tests.

Debian's ``chromium`` runs headless with ``--remote-debugging-pipe``: it
reads protocol messages (JSON, each ended by a NUL byte) on fd 3 and
writes on fd 4. No driver, no WebSocket library, no browser download:

    with Chromium.launch() as browser:
        page = browser.new_page(width=375, height=800)
        page.goto("http://127.0.0.1:8787/")
        assert page.evaluate("document.title") == "newswatch"
        png = page.screenshot()
        page.console_errors, page.requests   # what the page logged and asked for

Everything has a timeout, and ``close`` kills the browser for sure.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

EXECUTABLES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Flags for a closed network (see the machine notes): no background traffic,
# no first-run or component updates, no sandbox as root.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)
TIMEOUT_S = 20.0


def find_chromium() -> str | None:
    for path in EXECUTABLES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def _above(fd: int, floor: int = 10) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, floor)
    os.close(fd)
    return high


class CdpError(RuntimeError):
    pass


class Chromium:
    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self._proc = proc
        self._out = to_browser
        self._in = from_browser
        self._next_id = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, name="cdp-reader", daemon=True)
        self._reader.start()

    @classmethod
    def launch(cls, executable: str | None = None) -> Chromium:
        exe = executable or find_chromium()
        if exe is None:
            raise FileNotFoundError("chromium is not installed")
        profile = tempfile.mkdtemp(prefix="nw-chromium-")
        cmd_r, cmd_w = os.pipe()  # we write commands, chromium reads fd 3
        ev_r, ev_w = os.pipe()  # chromium writes fd 4, we read
        # Above 4, so `3<&N 4>&M` cannot overwrite one with the other (bash:
        # dash takes one-digit fds only).
        cmd_r, ev_w = _above(cmd_r), _above(ev_w)
        args = " ".join(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"]  # no shell metachars
        )
        proc = subprocess.Popen(
            ["/bin/bash", "-c", f"exec {args} 3<&{cmd_r} 4>&{ev_w}"],
            pass_fds=(cmd_r, ev_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(ev_w)
        browser = cls(proc, cmd_w, ev_r)
        browser._profile = profile
        return browser

    _profile: str = ""

    # ------------------------------------------------------------------ wire

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._in, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._replies[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = TIMEOUT_S,
    ) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            call_id = self._next_id
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while call_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self._proc.poll() is not None:
                    raise CdpError(f"{method}: no answer within {timeout:g}s")
                self._cond.wait(left)
            reply = self._replies.pop(call_id)
        if "error" in reply:
            raise CdpError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(
        self, method: str, *, session: str | None = None, after: int = 0, timeout: float = TIMEOUT_S
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if event.get("method") == method and (
                        session is None or event.get("sessionId") == session
                    ):
                        params: dict[str, Any] = event.get("params", {})
                        return params
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CdpError(f"no {method} event within {timeout:g}s")
                self._cond.wait(left)

    # ------------------------------------------------------------------ pages

    def new_page(self, *, width: int, height: int, mobile: bool = True) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
            session=session,
        )
        return page

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=3)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Page:
    def __init__(self, browser: Chromium, session: str) -> None:
        self._b = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._b.send(method, params, session=self.session)

    def goto(self, url: str) -> None:
        mark = len(self._b.events)
        self.send("Page.navigate", {"url": url})
        self._b.wait_event("Page.loadEventFired", session=self.session, after=mark)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, *, full_page: bool = True) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
            params["captureBeyondViewport"] = True
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def _events(self) -> Iterator[dict[str, Any]]:
        for event in list(self._b.events):
            if event.get("sessionId") == self.session:
                yield event

    @property
    def console_errors(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and browser log
        entries of level error or warning (CSP violations, failed loads)."""
        found = []
        for event in self._events():
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
                found.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                found.append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(params["entry"].get("text", ""))
        return found

    @property
    def requests(self) -> list[str]:
        """Every URL the page asked for."""
        return [
            e["params"]["request"]["url"]
            for e in self._events()
            if e.get("method") == "Network.requestWillBeSent"
        ]

    @property
    def failed_requests(self) -> list[str]:
        return [
            str(e["params"].get("errorText"))
            for e in self._events()
            if e.get("method") == "Network.loadingFailed"
        ]
