"""Keep secrets out of descriptions, errors and logs.

A webhook URL's path and query usually *are* the credential (Slack, Discord,
Teams), so only scheme, host and port are ever shown. Errors raised by
transports may quote the URL or echo what we sent; ``scrub`` removes every
known secret fragment from such text before it is stored or logged.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

MASK = "****"

# Fragments shorter than this are not scrubbed: masking every "a" or "v1" in
# an error would make it unreadable, and real tokens are much longer.
_MIN_SECRET_LEN = 4

# Errors are stored in the outbox and shown by the CLI: one line, bounded.
ERROR_MAX = 300

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _origin(url: str) -> tuple[SplitResult, str] | None:
    """The split URL and its ``scheme://host[:port]`` without credentials;
    None when it has no scheme or host (or does not parse)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return parts, f"{parts.scheme}://{netloc}"


def mask_url(url: str) -> str:
    """``https://hooks.example.com/****``: scheme, host and port; the rest masked."""
    found = _origin(url)
    if found is None:
        return MASK
    parts, origin = found
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment or parts.password
    return f"{origin}/{MASK}" if hidden else f"{origin}/"


def mask_feed_url(url: str) -> str:
    """A feed URL fit to show people: no credentials, every query value
    masked, the path kept (it names the feed): ``host/rss.xml?token=****``."""
    found = _origin(url)
    if found is None:
        return MASK
    parts, origin = found
    query = "&".join(
        f"{key}={MASK}" if value else key
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return f"{origin}{parts.path or '/'}" + (f"?{query}" if query else "")


def link_base(url: str) -> str:
    """``url`` as a base for relative links: without credentials, query and
    fragment. Only an empty or ``#fragment`` reference would take the base's
    query (RFC 3986, 5.2.2), and a feed URL's query may be its token; every
    other reference resolves the same."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url.split("?", 1)[0].split("#", 1)[0]
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# A path segment is scrubbed on its own only when it could be a token: long
# enough and not a plain word. Scrubbing "hook" or "services" would mangle
# every error ("web**** ..."), and tokens are long random strings.
_TOKEN_MIN_LEN = 8
_PLAIN_WORD = re.compile(r"[a-z]+")


def _looks_like_token(segment: str) -> bool:
    return len(segment) >= _TOKEN_MIN_LEN and not _PLAIN_WORD.fullmatch(segment)


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may carry a credential, for ``scrub``: the
    whole URL, its path, query and fragment, userinfo, query values, and
    path segments that look like tokens."""
    found = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    found += [parts.path, parts.query, parts.fragment]
    found += [parts.username or "", parts.password or ""]
    found += [seg for seg in parts.path.split("/") if _looks_like_token(seg)]
    found += [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    found += [unquote(s) for s in list(found)]
    return found


def login_secrets(username: str | None, password: str) -> list[str]:
    """A password and the base64 forms SMTP AUTH PLAIN/LOGIN put on the wire
    (a server may echo them back in an error)."""
    user = username or ""
    forms = [password, f"\0{user}\0{password}"]
    return forms + [base64.b64encode(f.encode()).decode() for f in forms]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (longest first) that occurs in ``text``."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def clean_error(text: str, secrets: Iterable[str] = (), limit: int = ERROR_MAX) -> str:
    """An error fit to store and log: secrets scrubbed, one line, bounded."""
    text = " ".join(_CONTROL_RE.sub(" ", scrub(text, secrets)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
