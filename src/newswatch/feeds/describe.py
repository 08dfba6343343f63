"""Error texts of failed fetches: one short sentence for ``newswatch feeds``.

They never quote a URL, a request header or an exception text that may
hold one, so a credential or token in a feed URL cannot leak through them.
Host names and addresses are shown: they are what an operator needs, and a
URL's host carries no secret.
"""

from __future__ import annotations

import errno
import http
import re
import socket
import ssl
from collections.abc import Iterator

import httpx

__all__ = [
    "MAX_ECHO_CHARS",
    "describe_http_error",
    "describe_invalid_url",
    "first_line",
    "format_size",
    "status_error",
    "too_large",
]

# Servers say when to come back on these; the hint goes into the error text.
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Characters of a server-chosen value (Retry-After, a reason phrase) echoed.
MAX_ECHO_CHARS = 64
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH})
_QUOTED = re.compile(r"""b?'[^']*'?|b?"[^"]*"?""")
# httpx.InvalidURL messages quote the offending part of the URL (a port, a
# host, a character): they are mapped to fixed words instead of shown.
_INVALID_URL_REASONS = (
    ("invalid port", "bad port"),
    ("invalid ipv4", "bad IPv4 address"),
    ("invalid ipv6", "bad IPv6 address"),
    ("invalid idna", "bad host name"),
    ("non-printable", "a control character in it"),
    ("url too long", "too long"),
    ("invalid url component", "a part too long"),
)


def format_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def too_large(max_bytes: int) -> str:
    return f"body larger than {format_size(max_bytes)} limit"


def first_line(value: object) -> str:
    """The first line of ``str(value)``, printable, at most 200 characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(value).split("\n", 1)[0])
    return text[:200].strip()


def describe_invalid_url(exc: Exception) -> str:
    """``invalid URL: bad port`` and the like, never quoting the URL."""
    message = str(exc).lower()
    for prefix, reason in _INVALID_URL_REASONS:
        if message.startswith(prefix):
            return f"invalid URL: {reason}"
    if "ipv6" in message:  # urllib's "Invalid IPv6 URL" for an unclosed bracket
        return "invalid URL: bad IPv6 address"
    return "invalid URL"


def status_error(response: httpx.Response) -> str:
    """``HTTP 404 Not Found``, plus the server's Retry-After hint if any."""
    status = response.status_code
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = first_line(response.reason_phrase)[:MAX_ECHO_CHARS]
    text = f"HTTP {status} {phrase}".rstrip()
    retry_after = response.headers.get("retry-after")
    if status in RETRY_AFTER_STATUSES and retry_after:
        text += f" (Retry-After: {first_line(retry_after)[:MAX_ECHO_CHARS]})"
    return text


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exception-group members."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _describe_connect_error(exc: httpx.ConnectError, host: str) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "certificate rejected"
            return f"TLS certificate of {host} not accepted: {reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake with {host} failed: {cause.reason or cause}"
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup for {host} failed: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection to {host} refused"
        if isinstance(cause, OSError) and cause.errno in _UNREACHABLE:
            return f"{host} unreachable: {cause.strerror}"
    return f"could not connect to {host}: {first_line(exc) or type(exc).__name__}"


def _protocol_reason(exc: Exception) -> str:
    """h11's reason without the data it quotes (``illegal status line: b'...'``):
    a broken server may echo our request, credentials and all."""
    text = first_line(exc).split(": ", 1)[0]
    return _QUOTED.sub("", text).strip()[: MAX_ECHO_CHARS * 2]


def describe_http_error(exc: httpx.HTTPError, host: str) -> str:
    """A transport failure talking to ``host``, from httpx's exception chain."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connecting to {host} timed out"
    if isinstance(exc, httpx.TimeoutException):
        return f"{host} stopped responding (timed out)"
    if isinstance(exc, httpx.ConnectError):
        return _describe_connect_error(exc, host)
    if isinstance(exc, httpx.RemoteProtocolError):
        reason = _protocol_reason(exc)
        return (
            f"{host} broke the HTTP protocol: {reason}"
            if reason
            else f"{host} broke the HTTP protocol"
        )
    if isinstance(exc, httpx.NetworkError):
        return f"connection to {host} lost: {first_line(exc) or type(exc).__name__}"
    return f"{type(exc).__name__} talking to {host}"
