"""Google News links -> the publisher's URL. Pure.

A Google News search feed (``google_news:`` in the configuration) links
every entry through Google: ``https://news.google.com/rss/articles/<id>``,
where ``<id>`` is URL-safe base64 of a small protobuf that holds the
publisher's URL (field 4: ``0x22``, a varint length, the URL), or, in older
feeds, ``news.google.com/url?url=<publisher URL>``. Story identity and
dedup need the publisher's URL: the same story found through Google and in
the publisher's own feed is one story.

Ids of the newer, opaque kind (they decode to no URL) are left as they are:
turning those into URLs takes a request to Google, which a parser must not
make.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final
from urllib.parse import parse_qs, urlsplit

__all__ = ["unwrap_google_news"]

_HOSTS: Final = frozenset({"news.google.com"})
_ARTICLE_ID = re.compile(r"/articles/([A-Za-z0-9_-]{8,4096})")
_URL_FIELD: Final = 0x22  # protobuf field 4, length-delimited
_PRINTABLE_URL = re.compile(rb"https?://[\x21-\x7e]+")


def unwrap_google_news(link: str) -> str:
    """The publisher's URL behind a Google News link, else ``link`` itself."""
    if "news.google." not in link:
        return link  # the usual case, without parsing anything
    try:
        parts = urlsplit(link)
    except ValueError:
        return link
    if (parts.hostname or "") not in _HOSTS:
        return link
    query = parse_qs(parts.query)
    for name in ("url", "q"):
        for value in query.get(name, []):
            if value.startswith(("http://", "https://")):
                return value
    found = _ARTICLE_ID.search(parts.path)
    if found is None:
        return link
    return _from_article_id(found.group(1)) or link


def _from_article_id(article_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (binascii.Error, ValueError):
        return None
    url = _length_prefixed(raw)
    if url is None:
        match = _PRINTABLE_URL.search(raw)
        url = match.group(0) if match else None
    if url is None:
        return None
    try:
        text = url.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.startswith(("http://", "https://")) else None


def _length_prefixed(raw: bytes) -> bytes | None:
    """The URL field of the protobuf: 0x22, a varint length, that many bytes."""
    at = raw.find(bytes([_URL_FIELD]))
    while at >= 0:
        length, shift, i = 0, 0, at + 1
        while i < len(raw) and shift < 35:
            byte = raw[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
        value = raw[i : i + length]
        if len(value) == length and value.startswith((b"http://", b"https://")):
            return value
        at = raw.find(bytes([_URL_FIELD]), at + 1)
    return None
