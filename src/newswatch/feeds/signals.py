"""Pure readings of URLs and response headers for fetching and pacing.

- ``host_key``: which host a URL's fetch counts against (per-host limits).
- ``strip_userinfo``: a URL without ``user:password@``, even when malformed.
- ``parse_max_age``: a Cache-Control ``max-age`` in seconds.
- ``keeps_credentials``: whether a redirect hop may carry the configured
  URL's credentials.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

__all__ = ["host_key", "keeps_credentials", "parse_max_age", "strip_userinfo"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_AGE = re.compile(r'^max-age\s*=\s*"?(\d+)"?$')
# A Cache-Control max-age above this is treated as this: RFC 9111 5.2.2.1
# suggests 2**31 as "infinity", and a float of a huge digit string is silly.
MAX_AGE_CAP = 2**31


def host_key(url: str) -> str:
    """The lower-cased host of an http(s) URL, for per-host limits.

    The same for every spelling of one host (case, a trailing dot, the port,
    credentials, IDNA in Unicode or punycode). ``""`` for local files and for
    URLs without a readable host, which take no host slot.
    """
    try:
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in _DEFAULT_PORTS:
            return ""
        host = httpx.URL(strip_userinfo(url.strip())).raw_host.decode("ascii")
    except (ValueError, httpx.InvalidURL, UnicodeError):
        return ""
    return host.lower().rstrip(".")


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` in its authority.

    String surgery rather than a URL parser, so that it also works on URLs a
    parser rejects: those are exactly the ones that end up in error reports.
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return url
    start = scheme_end + 3
    end = len(url)
    for mark in "/?#\\":  # browsers and httpx end the authority at a backslash too
        found = url.find(mark, start)
        if found >= 0:
            end = min(end, found)
    at = url.rfind("@", start, end)
    if at < 0:
        return url
    return url[:start] + url[at + 1 :]


def parse_max_age(cache_control: str | None) -> float | None:
    """Seconds of ``max-age`` in a Cache-Control header, or None.

    None when absent, malformed, or given twice with different values (RFC
    9111 says to treat such a response as stale). ``no-store`` and
    ``no-cache`` say nothing about how often to poll, so they do not count;
    ``s-maxage`` is for shared caches, which we are not.
    """
    if not cache_control:
        return None
    found: set[int] = set()
    for directive in cache_control.split(","):
        match = _MAX_AGE.match(directive.strip().lower())
        if match:
            found.add(min(int(match.group(1)), MAX_AGE_CAP))
    if len(found) != 1:
        return None
    return float(found.pop())


def keeps_credentials(configured: httpx.URL, hop: httpx.URL) -> bool:
    """Whether a redirect hop may send the configured URL's credentials.

    Only to the same origin, or to its https upgrade on the default port (the
    rule httpx and browsers follow): a redirect elsewhere must not learn the
    password.
    """
    if configured.host != hop.host:
        return False
    if configured.scheme == hop.scheme:
        return _port(configured) == _port(hop)
    return (
        configured.scheme == "http"
        and _port(configured) == _DEFAULT_PORTS["http"]
        and hop.scheme == "https"
        and _port(hop) == _DEFAULT_PORTS["https"]
    )


def _port(url: httpx.URL) -> int | None:
    return url.port or _DEFAULT_PORTS.get(url.scheme)
