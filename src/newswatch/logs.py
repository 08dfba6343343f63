"""Logging: one line per event, an ISO time with its zone, text or JSON, and
one summary line per poll cycle.

``setup_logging`` is called once by the CLI. ``--log-format json`` writes
one JSON object per line (time, level, logger, message, and the exception
text if any) for journald, Loki or ``jq``. ``SecretMask`` is a last line of
defence: every configured secret value (SMTP passwords, tokens, webhook
URLs, feed URLs carrying credentials) is replaced by ``***`` in any line,
should some code path ever format one.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal, Protocol, TextIO
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, SecretStr

LogFormat = Literal["text", "json"]

# Third-party loggers that chatter at INFO (per request, per job run).
NOISY = ("httpx", "httpcore", "apscheduler", "aiosmtplib", "uvicorn", "uvicorn.error", "watchfiles")
# Failing feeds named in a cycle's summary line; the rest are counted.
NAMED_FEEDS = 3
# Secrets shorter than this are not masked: "a" would mask every "a".
MIN_SECRET_LEN = 4
MASK = "***"
# Query values of feed URLs at least this long are treated as tokens.
MIN_QUERY_TOKEN_LEN = 8


def iso_time(created: float) -> str:
    """A record's time in the local zone, with its offset (2026-05-01T09:30:00.123+09:00)."""
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return iso_time(record.created)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": iso_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


class SecretMask(logging.Filter):
    """Replaces known secret values in a record's final message with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()

    def set(self, secrets: Iterable[str]) -> None:
        # Longest first, so a URL is masked whole before a token inside it.
        found = {s for s in secrets if len(s) >= MIN_SECRET_LEN}
        self._secrets = tuple(sorted(found, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        return True

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def config_secrets(config: BaseModel) -> set[str]:
    """Every secret a configuration holds: each ``SecretStr`` value, and of
    feed URLs carrying credentials or a query, the URL, its password and
    its long query values."""
    found: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            found.add(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(config)
    for feed in getattr(config, "feeds", ()):
        url = getattr(feed, "url", None)
        if not url:
            continue
        parts = urlsplit(url)
        if parts.password:
            found.add(parts.password)
        tokens = [v for _, v in parse_qsl(parts.query) if len(v) >= MIN_QUERY_TOKEN_LEN]
        found.update(tokens)
        if parts.username or parts.password or tokens:
            found.add(url)
    return found


# The process's mask: setup_logging installs it on the root handler; the
# daemon feeds it each configuration's secrets.
secret_mask = SecretMask()


def setup_logging(level: str, fmt: LogFormat = "text", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(secret_mask)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


# --------------------------------------------------------------------------- poll cycles


class _Outcome(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def new_articles(self) -> int: ...
    @property
    def new_alerts(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def recovered(self) -> bool: ...
    @property
    def silent_first_poll(self) -> bool: ...


def cycle_line(outcomes: Sequence[_Outcome], seconds: float) -> tuple[int, str]:
    """The one line (level, message) a poll cycle logs; per-feed lines are DEBUG.

    WARNING when a feed started failing in this cycle (named, up to
    ``NAMED_FEEDS``); INFO when something happened (new articles, alerts, a
    recovery, a first poll); DEBUG for a quiet cycle (only 304s, unchanged
    feeds, feeds that keep failing), so a daemon that polls every few
    seconds does not write a line each time nothing changed. Feeds that
    keep failing are counted only; ``newswatch feeds`` lists them.
    """
    ok = sum(o.status not in ("failed", "deferred") for o in outcomes)
    new = sum(o.new_articles for o in outcomes)
    alerts = sum(o.new_alerts for o in outcomes)
    parts = [
        f"poll: {len(outcomes)} feeds in {seconds:.1f}s ({ok} ok), "
        f"{new} new articles, {alerts} alerts queued"
    ]
    started = [o.name for o in outcomes if o.status == "failed" and o.failures <= 1]
    still = sum(o.status == "failed" and o.failures > 1 for o in outcomes)
    recovered = [o.name for o in outcomes if o.recovered]
    silent = sum(o.silent_first_poll for o in outcomes)
    # Fetched, but the state database stayed locked by another process.
    deferred = sum(o.status == "deferred" for o in outcomes)
    if deferred:
        parts.append(f"{deferred} not recorded (state database locked), polled again soon")
    if started:
        parts.append(f"{len(started)} started failing: {_names(started)}")
    if still:
        parts.append(f"{still} still failing")
    if recovered:
        parts.append(f"{len(recovered)} recovered: {_names(recovered)}")
    if silent:
        parts.append(f"{silent} first polls recorded without alerting (backfill: to alert)")
    if started or deferred:
        level = logging.WARNING
    elif new or alerts or recovered or silent:
        level = logging.INFO
    else:
        level = logging.DEBUG
    return level, "; ".join(parts)


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMED_FEEDS])
    return shown + (f" and {len(names) - NAMED_FEEDS} more" if len(names) > NAMED_FEEDS else "")
