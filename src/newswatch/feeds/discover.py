"""Feed autodiscovery: the feeds a web page links to. Pure.

A site announces its feeds in its head::

    <link rel="alternate" type="application/rss+xml" href="/feed.xml">

``discover_feeds(html, base_url)`` returns those hrefs, resolved against the
page's ``<base href>`` (if any) and URL, http(s) only, without credentials
or fragments, deduplicated, in document order. The page is hostile and often
broken; the stdlib tokenizer tolerates anything, and whatever was found
before a tokenizer failure is kept.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit, urlunsplit

from newswatch.feeds.signals import strip_userinfo

__all__ = ["FEED_TYPES", "discover_feeds"]

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",  # JSON Feed 1.0 pages often say just this
    }
)
# WordPress announces its REST API for every page as rel="alternate"
# type="application/json" (/wp-json/...): JSON, but not a feed.
_NOT_FEEDS = ("/wp-json/", "oembed")
# Browsers drop these from inside URLs (WHATWG URL parsing).
_URL_JUNK = str.maketrans("", "", "\t\n\r")
# A page with more links than this is not a site's head; stop collecting.
MAX_FEEDS = 50


def discover_feeds(html: bytes | str, base_url: str) -> list[str]:
    """The feed URLs ``html`` (the page at ``base_url``) links to."""
    text = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    finder = _LinkFinder()
    try:
        finder.feed(text)
        finder.close()
    except (AssertionError, ValueError):  # older tokenizers assert on some garbage
        pass
    base = (_absolute(finder.base, base_url) if finder.base else None) or base_url
    found: list[str] = []
    for href in finder.hrefs:
        url = _absolute(href, base)
        if url and url not in found:
            found.append(url)
            if len(found) >= MAX_FEEDS:
                break
    return found


def _absolute(href: str, base: str) -> str | None:
    """``href`` resolved against ``base``: an http(s) URL, or None."""
    href = href.strip().translate(_URL_JUNK)
    if not href:
        return None
    try:
        parts = urlsplit(urljoin(base, href))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return strip_userinfo(urlunsplit(parts._replace(fragment="")))


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "base" and self.base is None and values.get("href", "").strip():
            self.base = values["href"]
            return
        if tag != "link" or len(self.hrefs) >= MAX_FEEDS * 4:
            return
        rels = values.get("rel", "").lower().split()
        kind = values.get("type", "").split(";", 1)[0].strip().lower()
        href = values.get("href", "")
        if "alternate" not in rels or kind not in FEED_TYPES or not href.strip():
            return
        if kind == "application/json" and any(mark in href.lower() for mark in _NOT_FEEDS):
            return
        self.hrefs.append(href)

    handle_startendtag = handle_starttag
