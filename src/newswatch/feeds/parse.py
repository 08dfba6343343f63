"""Feed bytes -> ``ParsedFeed``: RSS 0.9x/1.0/2.0, Atom, RDF and JSON Feed.

XML goes through feedparser, which is untyped and returns loosely shaped
dicts; this module is the only place that touches them, and hands on frozen
``ParsedEntry`` values. JSON Feed has its own small reader (``jsonfeed``).

feedparser runs with its HTML sanitizer and its relative-URI rewriter off
(``FEEDPARSER_OPTIONS``): both re-parse every HTML body, took two thirds of
its time on real feeds, and produce HTML that normalization reduces to text
anyway, without its links. On the measured corpus and on tests/data/feeds
the articles come out identical (docs/decisions.md, benchmarks/parse.py).
Entry links are still resolved against the document's URL and ``xml:base``.

feedparser is given the bytes wrapped in a file object, never a URL or a
bare string: a string that looks like a URL or a path makes it fetch or open
that resource itself, which a hostile feed body must never be able to cause.

One bad entry never costs the feed: character references that crash
feedparser are repaired first (``charrefs``); if feedparser still raises,
the document is re-read item by item and the items that fail are skipped
(``_salvage``); an entry whose conversion raises is skipped. Each skip is
logged with the feed and entry, and counted in ``ParsedFeed``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import feedparser

from newswatch.feeds.charrefs import repair_charrefs
from newswatch.feeds.jsonfeed import JsonFeedError, looks_like_json, parse_json_feed
from newswatch.feeds.normalize import html_to_text
from newswatch.model import ParsedEntry, ParsedFeed

__all__ = [
    "FEEDPARSER_OPTIONS",
    "FeedParseError",
    "body_digest",
    "declared_interval",
    "parse_feed",
    "parse_feed_async",
]

log = logging.getLogger(__name__)

# What feedparser is asked to do beyond parsing (see the module docstring).
FEEDPARSER_OPTIONS: Final = {"sanitize_html": False, "resolve_relative_uris": False}

# bozo exceptions that say nothing about the document's structure: a missing
# or non-XML Content-Type (every local file, many servers) and a charset
# declaration that disagrees with the bytes (text/xml without charset means
# us-ascii by RFC 3023, so nearly every feed served that way "disagrees").
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)

# Only the start of a document is sniffed to tell a web page from a feed.
_SNIFF_BYTES = 2048
_HTML_RE = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_SURROGATES_RE: Final = re.compile("[\ud800-\udfff]")

# Entry elements, for re-reading a document item by item (any prefix).
_ITEM_START_RE: Final = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(item|entry)[\s>/]")
_ITEM_END_RE: Final = {
    name: re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?" + name + rb"\s*>") for name in (b"item", b"entry")
}
# A document with more entries than this is not re-read one by one: each
# re-read parses the whole head of the document again.
_MAX_SALVAGE_ITEMS: Final = 1_000

# <ttl> is minutes; beyond a year it is a typo, not a polling hint.
_MAX_TTL_MINUTES: Final = 365 * 24 * 60
_UPDATE_PERIODS: Final = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
# sy:updateFrequency counts updates per period; more than one a second is noise.
_MAX_UPDATE_FREQUENCY: Final = 3_600 * 24 * 365


class FeedParseError(Exception):
    """The document holds nothing usable as a feed. ``str(exc)`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def body_digest(body: bytes) -> str:
    """A stable fingerprint of a fetched body (hex SHA-256).

    The poll layer stores it and skips parsing when a feed serves the same
    bytes again, with or without a 304.
    """
    return hashlib.sha256(body).hexdigest()


def declared_interval(feed: ParsedFeed) -> timedelta | None:
    """The shortest interval the feed asks pollers to keep, if it says.

    The larger of ``<ttl>`` and ``sy:updatePeriod`` / ``sy:updateFrequency``
    (both are "no sooner than" hints); None when the feed gives neither.
    """
    hints: list[timedelta] = []
    if feed.ttl is not None:
        hints.append(timedelta(minutes=feed.ttl))
    if feed.update_period is not None:
        hints.append(_UPDATE_PERIODS[feed.update_period] / (feed.update_frequency or 1))
    return max(hints, default=None)


def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    label: str | None = None,
    texts: bool = False,
) -> ParsedFeed:
    """Parse a fetched document. CPU-bound and synchronous: see ``parsepool``.

    ``url`` is where the bytes came from: relative links resolve against it.
    ``content_type`` (the HTTP header) helps detect the format and the
    character encoding. ``label`` names the feed in log lines (default: the
    URL without credentials or query). ``texts`` also extracts every entry's
    summary and content as plain text (``ParsedEntry.summary_text``), which
    a first poll needs of every entry: done here, it runs in the parse
    worker instead of the daemon's process.

    A malformed document that still yields entries gives a ``ParsedFeed``
    with ``warning`` set; one that yields nothing raises ``FeedParseError``.
    """
    if not body.strip():
        raise FeedParseError("empty document")
    where = label or _display(url)
    if looks_like_json(body, content_type):
        try:
            parsed = parse_json_feed(body, where=where)
        except JsonFeedError as exc:
            raise FeedParseError(f"not a feed: {exc}") from None
    else:
        parsed = parse_xml(body, url=url, content_type=content_type, where=where)
    return with_texts(parsed) if texts else parsed


def with_texts(parsed: ParsedFeed) -> ParsedFeed:
    """``parsed`` with each entry's summary and content text extracted."""
    entries = tuple(
        dataclasses.replace(
            e, summary_text=html_to_text(e.summary), content_text=html_to_text(e.content)
        )
        for e in parsed.entries
    )
    return dataclasses.replace(parsed, entries=entries)


def parse_xml(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    where: str = "feed",
    options: dict[str, bool] = FEEDPARSER_OPTIONS,
) -> ParsedFeed:
    """``parse_feed`` for XML documents, with feedparser ``options`` (the
    benchmark compares them; everything else uses the default)."""
    body = repair_charrefs(body, content_type)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    skipped = 0
    try:
        result = _feedparser(body, headers, options)
        raw_entries: list[Any] = list(_get(result, "entries") or ())
    except MemoryError:
        raise  # not this document's fault alone: the caller decides
    except Exception as exc:  # feedparser's loose parser raises on some input
        result, raw_entries, skipped = _salvage(body, headers, options, where, exc)
    problem = _structural_problem(result)
    converted, failed = _entries(raw_entries, where)
    skipped += failed
    entries = tuple(e for e in converted if _has_content(e))
    if not entries and not skipped:
        if not _get(result, "version"):
            raise FeedParseError(_not_a_feed(body, content_type, problem))
        if problem:
            raise FeedParseError(f"malformed feed, no entries could be read: {problem}")
    feed = _get(result, "feed")
    return ParsedFeed(
        title=_text(feed, "title"),
        link=_text(feed, "link") or None,
        entries=entries,
        warning=_warning(problem, skipped),
        skipped_entries=skipped,
        ttl=_bounded_int(_get(feed, "ttl"), _MAX_TTL_MINUTES),
        update_period=_update_period(feed),
        update_frequency=_bounded_int(_get(feed, "sy_updatefrequency"), _MAX_UPDATE_FREQUENCY),
    )


async def parse_feed_async(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """``parse_feed`` in a worker thread, so the event loop keeps running.

    The daemon uses ``parsepool`` instead, which also enforces a deadline.
    """
    return await asyncio.to_thread(parse_feed, body, url=url, content_type=content_type)


def _feedparser(body: bytes, headers: dict[str, str], options: dict[str, bool]) -> Any:
    return feedparser.parse(io.BytesIO(body), response_headers=headers, **options)


def _salvage(
    body: bytes, headers: dict[str, str], options: dict[str, bool], where: str, exc: Exception
) -> tuple[Any, list[Any], int]:
    """Re-read a document that made feedparser raise, one item at a time.

    Each item is parsed inside the document's own head and tail (so its
    namespaces and encoding declaration still apply); the items that still
    raise are skipped. Returns (feed-level result, raw entries, skipped).
    """
    spans = _item_spans(body)
    if not spans or len(spans) > _MAX_SALVAGE_ITEMS:
        raise FeedParseError(f"the parser failed on this document: {_describe(exc)}") from None
    head, tail = body[: spans[0][0]], body[spans[-1][1] :]
    try:
        result = _feedparser(head + tail, headers, options)
    except MemoryError:
        raise
    except Exception as head_exc:
        raise FeedParseError(f"the parser failed on this document: {_describe(head_exc)}") from None
    entries: list[Any] = []
    skipped = 0
    for n, (start, end) in enumerate(spans, 1):
        try:
            one = _feedparser(head + body[start:end] + tail, headers, options)
        except MemoryError:
            raise
        except Exception as item_exc:
            skipped += 1
            log.warning(
                "%s: entry %d skipped, the parser failed: %s", where, n, _describe(item_exc)
            )
            continue
        entries.extend(_get(one, "entries") or ())
    return result, entries, skipped


def _item_spans(body: bytes) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = 0
    while (start := _ITEM_START_RE.search(body, pos)) is not None:
        end = _ITEM_END_RE[start.group(1)].search(body, start.end())
        if end is None:
            spans.append((start.start(), len(body)))  # a truncated last item
            break
        spans.append((start.start(), end.end()))
        pos = end.end()
    return spans


def _entries(raw_entries: Iterable[Any], where: str) -> tuple[list[ParsedEntry], int]:
    """Convert each entry on its own: one that raises is logged and skipped."""
    entries: list[ParsedEntry] = []
    skipped = 0
    for n, raw in enumerate(raw_entries, 1):
        try:
            entries.append(_entry(raw))
        except MemoryError:
            raise
        except Exception as exc:
            skipped += 1
            ident = _text(raw, "id") or _text(raw, "link")
            named = f" ({_one_line(ident)})" if ident else ""
            log.warning("%s: entry %d%s skipped: %s", where, n, named, _describe(exc))
    return entries, skipped


def _warning(problem: str | None, skipped: int) -> str | None:
    parts = [f"malformed feed: {problem}"] if problem else []
    if skipped:
        parts.append(f"{skipped} entr{'y' if skipped == 1 else 'ies'} could not be read")
    return "; ".join(parts) or None


def _describe(exc: BaseException) -> str:
    return _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str, limit: int = 200) -> str:
    # Exception messages quote the offending character, maybe a lone surrogate.
    return _SURROGATES_RE.sub("\ufffd", " ".join(text.split())[:limit])


def _display(url: str) -> str:
    """``url`` as logs may show it: no user, password or query (they can hold
    credentials)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "feed"
    return urlunsplit((parts.scheme, host + port, parts.path, "", "")) or "feed"


def _structural_problem(result: Any) -> str | None:
    """Why the XML was not well-formed, e.g. "mismatched tag (line 12)"."""
    if not _get(result, "bozo"):
        return None
    exc = _get(result, "bozo_exception")
    if exc is None or isinstance(exc, _BENIGN_BOZO):
        return None
    get_message = getattr(exc, "getMessage", None)  # xml.sax.SAXParseException
    reason = str(get_message() if callable(get_message) else exc) or type(exc).__name__
    get_line = getattr(exc, "getLineNumber", None)
    line = get_line() if callable(get_line) else None
    return f"{reason} (line {line})" if isinstance(line, int) else reason


def _not_a_feed(body: bytes, content_type: str | None, problem: str | None) -> str:
    if _HTML_RE.search(body[:_SNIFF_BYTES]):
        return (
            "not a feed: the document is an HTML page "
            "(the URL may point to a web page instead of its RSS/Atom feed)"
        )
    if problem:
        return f"not a feed: {problem}"
    kind = f" ({content_type})" if content_type else ""
    return f"not a feed: no RSS, Atom, RDF or JSON Feed document found{kind}"


def _get(d: Any, key: str) -> Any:
    # dict.get, not FeedParserDict.get: the latter maps missing keys to
    # look-alikes (updated_parsed -> published_parsed) with a DeprecationWarning.
    return dict.get(d, key) if isinstance(d, dict) else None


def _text(d: Any, key: str) -> str:
    value = _get(d, key)
    if not isinstance(value, str):
        return ""
    # A lone surrogate cannot be encoded by anything downstream (SQLite, SMTP).
    return _SURROGATES_RE.sub("\ufffd", value) if _SURROGATES_RE.search(value) else value


def _bounded_int(value: Any, maximum: int) -> int | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text.isdecimal() or len(text) > len(str(maximum)):
        return None
    number = int(text)
    return number if 0 < number <= maximum else None


def _update_period(feed: Any) -> str | None:
    period = _text(feed, "sy_updateperiod").strip().lower()
    return period if period in _UPDATE_PERIODS else None


def _time(value: Any) -> datetime | None:
    # feedparser normalises every date it understands to a UTC struct_time.
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:5], min(value[5], 59), tzinfo=UTC)  # leap second -> :59
    except (ValueError, OverflowError):
        return None


def _content(raw: Any) -> str:
    blocks = _get(raw, "content")
    if not isinstance(blocks, list):
        return ""
    values = [_text(block, "value") for block in blocks]
    return max(values, key=len, default="")


def _categories(raw: Any) -> tuple[str, ...]:
    tags = _get(raw, "tags")
    if not isinstance(tags, list):
        return ()
    names = (_text(tag, "term") or _text(tag, "label") for tag in tags)
    return tuple(name for name in names if name.strip())


def _has_content(entry: ParsedEntry) -> bool:
    """False for the husk a truncated document leaves as its last entry."""
    return any(
        field.strip()
        for field in (entry.guid or "", entry.link or "", entry.title, entry.summary, entry.content)
    )


def _entry(raw: Any) -> ParsedEntry:
    published = _time(_get(raw, "published_parsed"))
    updated = _time(_get(raw, "updated_parsed"))
    return ParsedEntry(
        guid=_text(raw, "id").strip() or None,
        link=_text(raw, "link").strip() or None,
        title=_text(raw, "title"),
        summary=_text(raw, "summary"),
        content=_content(raw),
        author=_text(raw, "author"),
        categories=_categories(raw),
        published=published or updated,
        updated=updated,
    )
