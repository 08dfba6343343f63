"""Feed bytes -> ``ParsedFeed`` with feedparser (RSS 0.9x/1.0/2.0, Atom, RDF).

feedparser is untyped and returns loosely shaped dicts; this module is the
only place that touches them, and hands on frozen ``ParsedEntry`` values.

feedparser is given the bytes wrapped in a file object, never a URL or a
bare string: a string that looks like a URL or a path makes it fetch or open
that resource itself, which a hostile feed body must never be able to cause.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from newswatch.model import ParsedEntry, ParsedFeed

__all__ = ["FeedParseError", "parse_feed", "parse_feed_async"]

# bozo exceptions that say nothing about the document's structure: a missing
# or non-XML Content-Type (every local file, many servers) and a charset
# declaration that disagrees with the bytes (text/xml without charset means
# us-ascii by RFC 3023, so nearly every feed served that way "disagrees").
_BENIGN_BOZO = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)

# Only the start of a document is sniffed to tell a web page from a feed.
_SNIFF_BYTES = 2048
_HTML_RE = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)


class FeedParseError(Exception):
    """The document holds nothing usable as a feed. ``str(exc)`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched document. CPU-bound and synchronous: run it in a thread.

    ``url`` is where the bytes came from: relative links resolve against it.
    ``content_type`` (the HTTP header) helps detect the character encoding.

    A malformed document that still yields entries gives a ``ParsedFeed``
    with ``warning`` set; one that yields nothing raises ``FeedParseError``.
    """
    if not body.strip():
        raise FeedParseError("empty document")
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    result: Any = feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        resolve_relative_uris=True,
        sanitize_html=True,
    )
    problem = _structural_problem(result)
    entries = tuple(e for e in map(_entry, _get(result, "entries") or ()) if _has_content(e))
    if not entries:
        if not _get(result, "version"):
            raise FeedParseError(_not_a_feed(body, content_type, problem))
        if problem:
            raise FeedParseError(f"malformed feed, no entries could be read: {problem}")
    feed = _get(result, "feed")
    return ParsedFeed(
        title=_text(feed, "title"),
        link=_text(feed, "link") or None,
        entries=entries,
        warning=f"malformed feed: {problem}" if problem else None,
    )


async def parse_feed_async(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """``parse_feed`` in a worker thread, so the event loop keeps running."""
    return await asyncio.to_thread(parse_feed, body, url=url, content_type=content_type)


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
    return f"not a feed: no RSS, Atom or RDF document found{kind}"


def _get(d: Any, key: str) -> Any:
    # dict.get, not FeedParserDict.get: the latter maps missing keys to
    # look-alikes (updated_parsed -> published_parsed) with a DeprecationWarning.
    return dict.get(d, key) if isinstance(d, dict) else None


def _text(d: Any, key: str) -> str:
    value = _get(d, key)
    return value if isinstance(value, str) else ""


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
