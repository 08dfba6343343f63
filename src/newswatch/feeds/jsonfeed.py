"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1) -> ``ParsedFeed``.

The fields map onto the same ``ParsedEntry`` an RSS or Atom item gives:

==================================  =====================================
JSON Feed                           ParsedEntry
==================================  =====================================
``id`` (string; numbers tolerated)  ``guid``
``url``, else ``external_url``      ``link``
``title``                           ``title``
``content_html``, else text         ``content``
``summary``                         ``summary``
``authors`` (1.1), ``author`` (1.0) ``author`` (names joined by ", ")
``tags``                            ``categories``
``date_published``                  ``published`` (else ``date_modified``)
``date_modified``                   ``updated``
==================================  =====================================

``ParsedEntry`` text fields may hold HTML, and normalization reads them as
HTML. JSON Feed's plain-text fields (``title``, ``summary``,
``content_text``, author names) are therefore HTML-escaped here, so that
"x < y" or "<title> tags" in a title survive as written.

One item that is not an object, or has no usable field, is skipped and
counted; the rest of the feed is kept (``ParsedFeed.warning`` says how many).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import escape
from typing import Any, Final

from newswatch.model import ParsedEntry, ParsedFeed

__all__ = ["JSONFEED_TYPES", "JsonFeedError", "looks_like_json", "parse_json_feed"]

log = logging.getLogger(__name__)

# Media types a server may label a JSON Feed with (application/feed+json is
# the registered one; the others are what servers actually send).
JSONFEED_TYPES: Final = frozenset({"application/feed+json", "application/json", "text/json"})
# "version" must be one of https://jsonfeed.org/version/1 and /1.1; early
# feeds wrote http://, which readers accept.
_VERSION_RE: Final = re.compile(r"^https?://jsonfeed\.org/version/1(\.\d+)?/?$")
# What a JSON document starts with, after an optional UTF-8 BOM and blanks
# (an array is no feed, but gets a JSON error rather than an XML one).
_JSON_START_RE: Final = re.compile(rb"^(?:\xef\xbb\xbf)?[ \t\r\n]*[{\[]")
_SURROGATES_RE: Final = re.compile("[\ud800-\udfff]")
# More authors than this on one item is a list of everyone who ever edited.
_MAX_AUTHORS: Final = 20


class JsonFeedError(ValueError):
    """The document is JSON but not a usable JSON Feed (``str()`` says why)."""


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    """Whether to read ``body`` as JSON: it starts with ``{`` or ``[`` (XML cannot), or
    the server says it is JSON and it does not start like XML."""
    if _JSON_START_RE.match(body):
        return True
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in JSONFEED_TYPES and not body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _clean(text: str) -> str:
    # json.loads accepts "\ud83d" alone and returns a lone surrogate, which no
    # encoder (SQLite, SMTP, HTTP) will write later on.
    return _SURROGATES_RE.sub("\ufffd", text) if _SURROGATES_RE.search(text) else text


def _str(value: Any) -> str:
    return _clean(value) if isinstance(value, str) else ""


def _plain(value: Any) -> str:
    """A plain-text field, escaped so that HTML normalization keeps it as is."""
    return escape(_str(value), quote=False)


def _id(value: Any) -> str | None:
    # The spec says string; some generators write numbers. Keep both stable.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return _str(value).strip() or None


def _time(value: Any) -> datetime | None:
    """RFC 3339 (the spec), else an RFC 822 date (what some generators write)."""
    text = _str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 with a positive offset, say
        return None


def _authors(item: dict[str, Any]) -> str:
    found = item.get("authors")
    if not isinstance(found, list):
        found = [item.get("author")]
    names = [_str(a.get("name")).strip() for a in found[:_MAX_AUTHORS] if isinstance(a, dict)]
    return escape(", ".join(name for name in names if name), quote=False)


def _tags(item: dict[str, Any]) -> tuple[str, ...]:
    tags = item.get("tags")
    if not isinstance(tags, list):
        return ()
    return tuple(escape(t, quote=False) for t in map(_str, tags) if t.strip())


def _entry(item: Any) -> ParsedEntry:
    if not isinstance(item, dict):
        raise JsonFeedError(f"an item is a JSON {type(item).__name__}, not an object")
    content = _str(item.get("content_html")) or _plain(item.get("content_text"))
    published = _time(item.get("date_published"))
    updated = _time(item.get("date_modified"))
    return ParsedEntry(
        guid=_id(item.get("id")),
        link=_str(item.get("url")).strip() or _str(item.get("external_url")).strip() or None,
        title=_plain(item.get("title")),
        summary=_plain(item.get("summary")),
        content=content,
        author=_authors(item),
        categories=_tags(item),
        published=published or updated,
        updated=updated,
    )


def _load(body: bytes) -> Any:
    try:
        # bytes: json detects UTF-8/16/32 itself; a UTF-8 BOM is tolerated.
        return json.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except json.JSONDecodeError as exc:
        raise JsonFeedError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise JsonFeedError(f"not valid JSON: {type(exc).__name__}") from None


def parse_json_feed(body: bytes, *, where: str = "") -> ParsedFeed:
    """Parse a JSON Feed document; raise ``JsonFeedError`` when it is not one.

    ``where`` names the feed in the log line written for a skipped item.
    """
    doc = _load(body)
    if not isinstance(doc, dict):
        raise JsonFeedError(f"a JSON {type(doc).__name__}, not a JSON Feed object")
    version = doc.get("version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise JsonFeedError(
            'a JSON document without a JSON Feed "version" '
            '(expected "https://jsonfeed.org/version/1.1")'
        )
    items = doc.get("items")
    if not isinstance(items, list):
        raise JsonFeedError('a JSON Feed without an "items" list')
    entries: list[ParsedEntry] = []
    skipped = 0
    for n, item in enumerate(items, 1):
        try:
            entry = _entry(item)
        except MemoryError:
            raise
        except Exception as exc:  # one bad item never costs the feed
            skipped += 1
            log.warning("%s: JSON Feed item %d skipped: %s", where or "feed", n, exc)
            continue
        if any((entry.guid, entry.link, entry.title, entry.summary, entry.content)):
            entries.append(entry)
    return ParsedFeed(
        title=_str(doc.get("title")),
        link=_str(doc.get("home_page_url")).strip() or None,
        entries=tuple(entries),
        warning=f"{skipped} entr{'y' if skipped == 1 else 'ies'} could not be read"
        if skipped
        else None,
        skipped_entries=skipped,
    )
