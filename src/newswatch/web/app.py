"""The HTTP app: status page, /metrics, /healthz, /readyz (Starlette, ASGI).

Read-only: GET and HEAD only. Every answer carries security headers (a CSP
that allows no script at all and only this origin's stylesheet, nosniff,
no framing, no referrer, no caching). The page and /metrics need
``http.auth`` when it is set (a bearer token or basic auth, compared in
constant time, read from the configuration of the moment so a reload can
rotate it); /healthz and /readyz answer anyone, as probes do, and say
nothing but ok or which check failed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from typing import Protocol

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newswatch.config import HttpAuth, LoadedConfig
from newswatch.metrics import CONTENT_TYPE, Metrics
from newswatch.web.pages import PageStore, Query, Runtime, ago, gather, local

# No script anywhere; styles from this origin only; the sparklines are inline SVG.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
# Probes answer without credentials.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
# A readiness check that takes longer than this counts as failed.
READY_TIMEOUT_S = 5.0

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<circle cx="8" cy="8" r="7" fill="#2e6fd8"/></svg>'
)


class Source(Protocol):
    """What the app reads from the running daemon."""

    def loaded(self) -> LoadedConfig: ...
    def runtime(self) -> Runtime: ...
    def now(self) -> datetime: ...
    async def readiness(self) -> list[str]:
        """Failed readiness checks (empty: ready)."""
        ...

    @property
    def store(self) -> PageStore: ...
    @property
    def metrics(self) -> Metrics: ...


def create_app(source: Source) -> ASGIApp:
    templates = _environment()

    async def status_page(request: Request) -> Response:
        loaded = source.loaded()
        query = Query.parse(request.query_params)
        now = source.now()
        context = await asyncio.to_thread(
            gather, loaded, source.store, source.runtime(), query, now
        )
        return HTMLResponse(templates.get_template("status.j2").render(**context))

    async def metrics(request: Request) -> Response:
        body = await asyncio.to_thread(source.metrics.render)
        return Response(body, media_type=CONTENT_TYPE)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        try:
            failed = await asyncio.wait_for(source.readiness(), READY_TIMEOUT_S)
        except TimeoutError:
            failed = ["readiness checks timed out"]
        if failed:
            return PlainTextResponse("not ready: " + "; ".join(failed) + "\n", status_code=503)
        return PlainTextResponse("ready\n")

    async def stylesheet(request: Request) -> Response:
        css = files("newswatch").joinpath("templates/web/newswatch.css").read_text("utf-8")
        return Response(css, media_type="text/css; charset=utf-8")

    async def favicon(request: Request) -> Response:
        return Response(FAVICON, media_type="image/svg+xml")

    def _ago(when: datetime | None) -> str:
        return ago(when, source.now())

    templates.filters["ago"] = _ago
    templates.filters["local"] = lambda t: local(t, source.loaded().config.zone)
    get = ["GET", "HEAD"]
    app = Starlette(
        routes=[
            Route("/", status_page, methods=get),
            Route("/metrics", metrics, methods=get),
            Route("/healthz", healthz, methods=get),
            Route("/readyz", readyz, methods=get),
            Route("/static/newswatch.css", stylesheet, methods=get),
            Route("/favicon.svg", favicon, methods=get),
        ]
    )
    return SecurityHeaders(ReadOnly(Auth(app, lambda: _auth_of(source))))


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newswatch", "templates/web"),
        autoescape=True,  # every string from a feed, rule or channel is text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _auth_of(source: Source) -> HttpAuth | None:
    http = source.loaded().config.http
    return http.auth if http is not None else None


# --------------------------------------------------------------------------- middleware


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


class ReadOnly:
    """Anything but GET and HEAD is refused before it reaches a route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse(
                "read-only\n", status_code=405, headers={"allow": "GET, HEAD"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Auth:
    def __init__(self, app: ASGIApp, auth: Callable[[], HttpAuth | None]) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        auth = self.auth()
        if scope["type"] != "http" or auth is None or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        if allowed(auth, header):
            await self.app(scope, receive, send)
            return
        challenge = 'Bearer realm="newswatch"' if auth.token else 'Basic realm="newswatch"'
        response = PlainTextResponse(
            "authentication required\n", status_code=401, headers={"www-authenticate": challenge}
        )
        await response(scope, receive, send)


def allowed(auth: HttpAuth, header: str) -> bool:
    """Does this Authorization header satisfy ``auth``? (constant-time compare)"""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if auth.token is not None:
        expected = auth.token.get_secret_value().encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), expected)
    if scheme.lower() != "basic" or auth.password is None or auth.username is None:
        return False
    try:
        user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user_ok = hmac.compare_digest(user.encode(), auth.username.encode())
    pass_ok = hmac.compare_digest(password.encode(), auth.password.get_secret_value().encode())
    return user_ok and pass_ok
