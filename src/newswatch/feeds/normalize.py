"""Parsed entries -> ``Article``: plain text, canonical URLs, stable keys.

Everything here is pure: no I/O, no clock. Feed text is hostile, so every
function accepts any string (garbage HTML, plain text, megabytes of it) and
returns something bounded and usable instead of raising.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit

from newswatch.feeds.googlenews import unwrap_google_news
from newswatch.identity import normalize_title
from newswatch.model import Article, ParsedEntry, ParsedFeed

__all__ = [
    "MAX_CATEGORIES",
    "MAX_FIELD_CHARS",
    "MAX_HTML_CHARS",
    "MAX_KEY_CHARS",
    "MAX_LINE_CHARS",
    "REDIRECT_PARAMS",
    "TRACKING_PARAMS",
    "canonical_url",
    "entry_key",
    "html_to_text",
    "normalize_entry",
    "normalize_feed",
    "story_key",
]

# --------------------------------------------------------------------------- limits

# Text kept per field (summary, content). A news article is a few thousand
# characters; beyond 100k it is a scraped page or an attack, and matching it
# costs time without finding anything a reader would want alerted.
MAX_FIELD_CHARS = 100_000
# HTML read per field before conversion. Markup is bulky (often 5x the text),
# so this leaves room for MAX_FIELD_CHARS of text while bounding parse time.
MAX_HTML_CHARS = 1_000_000
# Single-line fields (title, author, category): they end up in subject lines
# and chat headers, where anything longer is noise.
MAX_LINE_CHARS = 1_000
# Categories kept per entry; some CMSs emit hundreds of SEO tags.
MAX_CATEGORIES = 50
# An entry key longer than this (a GUID that is a whole paragraph) is replaced
# by its hash so keys stay index-friendly in the store.
MAX_KEY_CHARS = 512

# Query parameters that identify a campaign or a click, never the article.
# Removing them lets the same story shared via a newsletter and via social
# media collapse into one canonical URL (and so one alert). ``utm_*`` is
# matched as a prefix.
TRACKING_PARAMS = frozenset(
    {
        "_ga",
        "_gl",
        "at_campaign",
        "at_medium",
        "cmpid",
        "dclid",
        "fbclid",
        "gclid",
        "gclsrc",
        "icid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "msclkid",
        "ocid",
        "ref",
        "ref_src",
        "spm",
        "twclid",
        "yclid",
    }
)
_TRACKING_PREFIXES = ("utm_",)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Links go into alert messages as clickable hrefs: only web links survive
# (no javascript:, data:, file:).
_SAFE_LINK_SCHEMES = frozenset({"http", "https"})

# --------------------------------------------------------------------------- html -> text

# Elements whose content is never reader-visible text, in a fragment (what a
# feed's summary or content is). The document-only ones (head, title, ...)
# are not skipped there: feed HTML about HTML often holds a literal, unescaped
# "<head>" or "<template>" in its code samples, and skipping those would drop
# the rest of the article (feedparser's sanitizer used to hide this by
# deleting such tags while keeping their text, which is what happens now).
_FRAGMENT_SKIP = frozenset({"script", "style", "svg"})
# In a whole HTML page (``newswatch test`` on a web page), also the head.
_DOCUMENT_SKIP = _FRAGMENT_SKIP | {"head", "title", "noscript", "template"}
# Start tags that end an unclosed <head> (a page's body has begun).
_HEAD_ENDERS = frozenset({"body", "main", "article", "h1", "p", "div"})
_DOCUMENT_RE = re.compile(r"\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])", re.I | re.S)
# Elements that start a new line of text.
_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
# Elements that separate words without breaking the line (table cells).
_SPACE_TAGS = frozenset({"td", "th"})
_VOID_TAGS = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "source", "area"})

_TAG_RE = re.compile(r"<[^>]*>")
# The elements html.parser reads as raw text up to their end tag.
_RAW_TEXT_TAG_RE = re.compile(r"<(/?)(script|style)\b", re.IGNORECASE)
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")  # soft hyphen, zero-widths
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _TextExtractor(HTMLParser):
    """Collects text; what sits inside a skipped element is set aside and
    dropped when the element closes. A skipped element that never closes
    gives its text back at the end (``text``): a stray "<svg>" or "<script>"
    must not swallow the rest of an article."""

    def __init__(self, skip: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = skip
        self._open: list[str] = []  # skipped elements now open, outermost first
        self._kept: list[str] = []  # the text before the outermost skipped element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._open and self._open[0] == "head" and tag in _HEAD_ENDERS:
            self._close_skip(0)  # the body started without a </head>
        if tag in self._skip:
            if not self._open:
                self._kept, self.parts = self.parts, []
            self._open.append(tag)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag in _SPACE_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <hr/>, and a self-closed <script/> that must not open a skip.
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            # Close it and whatever was left open inside it.
            self._close_skip(len(self._open) - 1 - self._open[::-1].index(tag))
        elif tag in _BLOCK_TAGS and tag not in _VOID_TAGS:
            self.parts.append("\n")
        elif tag in _SPACE_TAGS:
            self.parts.append(" ")

    def _close_skip(self, depth: int) -> None:
        del self._open[depth:]
        if not self._open:
            self.parts = self._kept  # drop what the skipped element held
            self._kept = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):
            self.parts.append(data[len("CDATA[") :])

    def text(self) -> str:
        """Everything collected, after ``close()``."""
        parts = self.parts
        if self._open:  # never closed: not a skipped element after all
            parts = [*self._kept, *parts]
        if self.cdata_elem is not None and self.rawdata:
            # An unclosed <script>/<style> holds the rest of the input as raw
            # text: read it again as markup, with those tags made harmless.
            parts.append(_extract(_RAW_TEXT_TAG_RE.sub(r"<\1x-\2", self.rawdata), self._skip))
        return "".join(parts)


# What the quick reader of feed markup takes apart: a comment as html.parser
# (CPython 3.11) ends one, at the first "--" and ">" after "<!--"; or a tag
# as html.parser reads one, a name that starts with a letter, then
# attributes whose quoted values may hold ">".
_SIMPLE_TOKEN_RE = re.compile(
    r"""<!--.*?--\s*>|<(/?)([a-zA-Z][^\t\n\r\f />\x00]*)((?:[^>"']|"[^"]*"|'[^']*')*)>""",
    re.S,
)


def _extract_simple(html: str, skip: frozenset[str]) -> str | None:
    """The text ``_TextExtractor`` gives, for the markup nearly every feed
    entry is: tags and comments, and no skipped element. None for anything
    else (a "<" that starts neither, e.g. CDATA, "a < b" or a broken tag),
    which the full parser then reads.

    html.parser runs several regex steps and Python calls per tag; this is
    one C-level scan and a set lookup per tag (``benchmarks/text.py``
    measures both on real feeds). ``tests/test_feeds_normalize.py`` checks
    that both give the same text."""
    parts: list[str] = []
    last = 0
    for m in _SIMPLE_TOKEN_RE.finditer(html):
        if m.start() > last:
            data = html[last : m.start()]
            if "<" in data:
                return None  # a "<" that starts no tag or comment
            parts.append(unescape(data) if "&" in data else data)
        last = m.end()
        raw = m.group(2)
        if raw is None:
            continue  # a comment
        name = raw.lower()
        if name in skip or "<" in m.group(3):
            return None  # a skipped element; a "<" in a tag, which html.parser may end there
        if m.group(1):  # an end tag
            if name in _BLOCK_TAGS and name not in _VOID_TAGS:
                parts.append("\n")
            elif name in _SPACE_TAGS:
                parts.append(" ")
        elif m.group(3).endswith("/"):  # <br/>: html.parser's startendtag
            if name in _BLOCK_TAGS:
                parts.append("\n")
        elif name in _BLOCK_TAGS:
            parts.append("\n")
        elif name in _SPACE_TAGS:
            parts.append(" ")
    data = html[last:]
    if "<" in data:
        return None
    # Each run of text is unescaped on its own, as html.parser does it.
    parts.append(unescape(data) if "&" in data else data)
    return "".join(parts)


def _extract(html: str, skip: frozenset[str]) -> str:
    if "<" not in html and "&" not in html:
        return html  # plain text: nothing to parse
    simple = _extract_simple(html, skip)
    if simple is not None:
        return simple
    parser = _TextExtractor(skip)
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient, but this is hostile input
        return unescape(_TAG_RE.sub(" ", html))
    return parser.text()


def _clean(text: str, limit: int) -> str:
    text = _CONTROL_RE.sub(" ", _INVISIBLE_RE.sub("", text))
    # Each run of whitespace (NBSP and the other Unicode spaces included)
    # becomes one space within a line, and blank lines go: str.split in C,
    # 2.3x faster on real feed text than the two regex passes it replaced.
    text = "\n".join(joined for line in text.split("\n") if (joined := " ".join(line.split())))
    if len(text) > limit:
        text = text[:limit].rstrip()
    return text


def html_to_text(html: str, *, limit: int = MAX_FIELD_CHARS) -> str:
    """HTML (or plain text) -> readable plain text.

    Drops scripts, styles and inline SVG (and, in a whole page that starts
    with ``<!doctype html>`` or ``<html>``, the head and other non-content
    elements); block elements become line breaks, table cells spaces;
    entities are unescaped; runs of whitespace collapse to one space and
    blank lines disappear. A dropped element that is never closed drops
    nothing. The result is at most ``limit`` characters.
    """
    html = html[:MAX_HTML_CHARS]
    skip = _DOCUMENT_SKIP if _DOCUMENT_RE.match(html) else _FRAGMENT_SKIP
    return _clean(_extract(html, skip), limit)


def _text(html: str, extracted: str | None) -> str:
    # The parse worker may have extracted it already (a first poll).
    return html_to_text(html) if extracted is None else extracted


def _one_line(html: str) -> str:
    return html_to_text(html, limit=MAX_LINE_CHARS).replace("\n", " ")


# --------------------------------------------------------------------------- urls

_PERCENT_RE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(s: str) -> str:
    # %2f and %2F are the same octet; pick one spelling (RFC 3986 6.2.2.1).
    return _PERCENT_RE.sub(lambda m: m.group(0).upper(), s)


def _is_tracking(param: str) -> bool:
    name = param.split("=", 1)[0].strip().lower()
    return name in TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES)


def _netloc(parts: SplitResult, scheme: str) -> str:
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: keep what was written, lower-cased
        return parts.netloc.lower()
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    return netloc


# Query parameters of redirect wrappers that carry the article's address
# (news aggregators, mail and social "click" links: ?url=, ?u=, ?q=). Only a
# value that is itself an absolute http(s) URL is taken.
REDIRECT_PARAMS = frozenset(
    {"url", "u", "q", "target", "dest", "destination", "redirect", "redirect_url", "goto", "link"}
)
# Wrappers inside wrappers are unwrapped this deep (a loop of redirects
# cannot recurse for ever).
_MAX_UNWRAP = 3
_GOOGLE_NEWS_PATH = re.compile(r"^/(?:rss/)?(?:articles|read)/([A-Za-z0-9_-]{8,2000})")


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while i < len(raw) and shift < 35:
        byte = raw[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
    raise ValueError("bad varint")


def _google_news_target(parts: SplitResult) -> str | None:
    """The article URL inside a Google News link (``news.google.com/rss/
    articles/CBMi...``): base64url of a small protobuf whose first string
    field is the URL. Newer links carry an opaque id instead, which only
    Google can resolve: those stay as they are."""
    if (parts.hostname or "").lower() != "news.google.com":
        return None
    m = _GOOGLE_NEWS_PATH.match(parts.path)
    if m is None:
        return None
    token = m.group(1)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        i = 0
        while i < len(raw):
            key, i = _varint(raw, i)
            kind = key & 7
            if kind == 0:
                _, i = _varint(raw, i)
            elif kind == 2:
                length, i = _varint(raw, i)
                value = raw[i : i + length]
                i += length
                if value.startswith((b"http://", b"https://")):
                    return value.decode("utf-8")
            else:
                return None
    except (ValueError, UnicodeDecodeError):
        return None
    return None


def _redirect_target(parts: SplitResult) -> str | None:
    """The wrapped URL of a redirect link, if it is one."""
    found = _google_news_target(parts)
    if found is not None:
        return found
    for param in parts.query.split("&"):
        name, eq, value = param.partition("=")
        if not eq or name.strip().lower() not in REDIRECT_PARAMS:
            continue
        target = unquote(value.replace("+", " ")).strip()
        try:
            inner = urlsplit(target)
        except ValueError:
            continue
        if inner.scheme.lower() in _SAFE_LINK_SCHEMES and inner.netloc:
            return target
    return None


def canonical_url(url: str, *, unwrap_redirects: bool = True) -> str:
    """One spelling per article URL, so the same story compares equal.

    Unwraps redirect links (a Google News article link, ``?url=``/``?u=``
    click trackers: the article's own URL is canonical), lower-cases scheme
    and host, drops default ports and the fragment (a ``#!`` route is kept:
    it addresses content), removes tracking parameters (``utm_*``,
    ``fbclid`` ... see ``TRACKING_PARAMS``), sorts the remaining query
    parameters without re-encoding them, and upper-cases percent escapes. A
    string that is not an absolute URL comes back stripped.
    """
    url = url.strip()
    for _ in range(_MAX_UNWRAP + 1):
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an invalid IPv6 literal
            return url
        target = _redirect_target(parts) if unwrap_redirects else None
        if target is None or target == url:
            break
        url = target
    scheme = parts.scheme.lower()
    if not scheme or not parts.netloc:
        return url
    path = _upper_escapes(parts.path) or ("/" if scheme in _DEFAULT_PORTS else "")
    params = [p for p in parts.query.split("&") if p and not _is_tracking(p)]
    query = "&".join(sorted(_upper_escapes(p) for p in params))
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    return urlunsplit((scheme, _netloc(parts, scheme), path, query, fragment))


def _safe_link(link: str | None, base_url: str | None) -> str:
    link = (link or "").strip()
    if not link:
        return ""
    if base_url:
        try:
            link = urljoin(base_url, link)
        except ValueError:
            return ""
    try:
        scheme = urlsplit(link).scheme.lower()
    except ValueError:
        return ""
    if scheme and scheme not in _SAFE_LINK_SCHEMES:
        return ""
    return link


# --------------------------------------------------------------------------- keys


def _sha256(*parts: str) -> str:
    # JSON keeps the parts apart: ("ab", "c") and ("a", "bc") cannot collide.
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def entry_key(entry: ParsedEntry) -> str:
    """Identity of an entry within its feed.

    The GUID when there is one, else the canonical link, else
    ``sha256:<hex>`` of the normalized title (case, accents and punctuation
    folded: ``identity.normalize_title``) and the UTC publication date, so
    a retitled "Seoul: talks end" / "Seoul - talks end" or a re-stamped
    time the same day is the same entry. Over-long keys are hashed.
    """
    key = (entry.guid or "").strip() or canonical_url(entry.link or "")
    if not key:
        published = _utc(entry.published or entry.updated)
        day = published.date().isoformat() if published else ""
        key = "sha256:" + _sha256(normalize_title(_one_line(entry.title)), day)
    if len(key) > MAX_KEY_CHARS:
        key = "sha256:" + _sha256(key)
    return key


def story_key(*, canonical_url: str, feed_key: str, entry_key: str) -> str:
    """Identity of a story across GUID changes and feeds (alerts dedup on it).

    The hash of the canonical URL when it is absolute; a relative or missing
    link says nothing across feeds, so then the hash of feed and entry key.
    """
    try:
        parts = urlsplit(canonical_url)
        absolute = bool(parts.scheme and parts.netloc)
    except ValueError:
        absolute = False
    if absolute:
        return _sha256("url", canonical_url)
    return _sha256("entry", feed_key, entry_key)


# --------------------------------------------------------------------------- articles


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # the parser should not produce these; assume UTC
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _categories(raw: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for category in raw:
        text = _one_line(category)
        if text:
            seen.setdefault(text, None)
        if len(seen) >= MAX_CATEGORIES:
            break
    return tuple(seen)


def normalize_entry(
    entry: ParsedEntry,
    *,
    feed_key: str,
    source: str,
    tags: tuple[str, ...] = (),
    base_url: str | None = None,
) -> Article:
    """One parsed entry -> an ``Article`` (plain text, resolved link, UTC).

    ``base_url`` (the fetched document's URL) resolves relative links; links
    that are not http(s) are dropped because they end up clickable in alerts.
    """
    # A Google News entry links through Google; identity needs the publisher.
    link = unwrap_google_news(_safe_link(entry.link, base_url))
    canonical = canonical_url(link) if link else ""
    key = entry_key(entry)
    return Article(
        feed_key=feed_key,
        entry_key=key,
        story_key=story_key(canonical_url=canonical, feed_key=feed_key, entry_key=key),
        title=_one_line(entry.title),
        summary=_text(entry.summary, entry.summary_text),
        content=_text(entry.content, entry.content_text),
        link=link,
        canonical_url=canonical,
        author=_one_line(entry.author),
        categories=_categories(entry.categories),
        published=_utc(entry.published or entry.updated),
        source=source,
        tags=tags,
    )


def _is_empty(entry: ParsedEntry) -> bool:
    return not (entry.title.strip() or entry.link or entry.summary.strip() or entry.content.strip())


def normalize_feed(
    parsed: ParsedFeed,
    *,
    feed_key: str,
    source: str,
    tags: tuple[str, ...] = (),
    base_url: str | None = None,
) -> list[Article]:
    """Every usable entry of a document as an ``Article``, in document order.

    Entries with nothing in them (a truncated document's last item) are
    skipped, and so is a repeated entry key: the first occurrence wins, so
    one document can never yield two alerts for one entry.
    """
    articles: list[Article] = []
    seen: set[str] = set()
    for entry in parsed.entries:
        if _is_empty(entry):
            continue
        article = normalize_entry(
            entry, feed_key=feed_key, source=source, tags=tags, base_url=base_url
        )
        if article.entry_key in seen:
            continue
        seen.add(article.entry_key)
        articles.append(article)
    return articles
