"""Apprise channel: any of the ~100 services apprise knows, by its URLs
(``{type: apprise, urls: ["tgram://...", "pover://..."]}``), an optional
extra: ``pip install 'newswatch[apprise]'``.

Each notification goes to every URL as the plain-text message (subject as
title); its limits are apprise's own (each plugin's ``body_maxlen``, and
its ``overflow=`` URL setting: ``upstream`` by default, ``split`` or
``truncate`` on request). Apprise is synchronous: each call runs in a
worker thread under the channel's timeout, with apprise's socket timeouts
lowered to it where they are longer, so the thread does not outlive it by
much.

Apprise says only "delivered" or "not", so every failure is retried (it
cannot tell a bad token from a service that is down); after the retries
run out the notification becomes a dead letter as usual. The URLs are sent
to one after another and count as the notification's parts: a retry
resumes at the first URL that failed, so the ones that took it do not get
it twice.

Secrets: descriptions show each URL as ``url(privacy=True)`` masks it,
without its query (which can carry headers and tokens), and with the path
masked too for the generic ``json://``, ``xml://`` and ``form://`` schemes,
whose paths apprise does not know to be secret. Apprise's own log records
are scrubbed of every URL's secrets while this channel exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from newswatch.config.models import AppriseChannelConfig
from newswatch.model import DeliveryResult, Message, Notification
from newswatch.notify.channels.base import ChannelContext
from newswatch.notify.redact import clean_error, mask_url, scrub, url_secrets
from newswatch.notify.render import RenderContext, render_message

INSTALL_HINT = "the apprise channel needs the apprise package: pip install 'newswatch[apprise]'"
# Apprise's generic webhook schemes: their path and query are the user's own
# and may carry a token, which url(privacy=True) does not mask.
_GENERIC_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})

_LOG = logging.getLogger("apprise")


@functools.cache
def _apprise() -> Any:
    try:
        # Apprise 2.x imports the stdlib's deprecated imghdr when it loads
        # its plugins: that warning is not ours to act on (under -W error
        # it would be fatal), so the plugins are loaded here, once, with it
        # ignored, before any worker thread uses them.
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module("apprise")
            module.Apprise.instantiate("json://localhost")
    except ImportError as exc:
        raise ValueError(INSTALL_HINT) from exc
    return module


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Apprise logs a URL it cannot parse whole, secrets included."""
    drop = _DropAll()
    _LOG.addFilter(drop)
    try:
        yield
    finally:
        _LOG.removeFilter(drop)


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


class _Scrub(logging.Filter):
    """Removes this channel's secrets from apprise's log records."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def check_urls(urls: Sequence[str]) -> None:
    """A clear ValueError (no URL in it) when apprise is missing or does
    not recognise one of ``urls``: a config error, not a failed send."""
    module = _apprise()
    with _quiet():
        for i, url in enumerate(urls):
            if module.Apprise.instantiate(url) is None:
                scheme = _scheme(url)
                what = f" ({scheme}://)" if scheme.isalnum() else ""
                raise ValueError(f"urls[{i}]: apprise does not recognise this URL{what}")


def private_url(server: Any, url: str) -> str:
    """A URL fit to show: apprise's masked form, without its query."""
    if _scheme(url) in _GENERIC_SCHEMES:
        return mask_url(url)
    shown = str(server.url(privacy=True)).split("?", 1)[0]
    return shown.rstrip("/") + "/"


class AppriseChannel:
    kind = "apprise"

    def __init__(
        self, name: str, cfg: AppriseChannelConfig, *, render: RenderContext | None = None
    ) -> None:
        module = _apprise()
        self.name = name
        self._render = render or RenderContext()
        self._timeout = cfg.timeout.total_seconds()
        urls = [u.get_secret_value() for u in cfg.urls]
        self._secrets = [s for url in urls for s in url_secrets(url)]
        self._servers: list[Any] = []
        with _quiet():
            for url in urls:
                server = module.Apprise.instantiate(url)
                if server is None:  # the config checked; a plugin may still refuse
                    raise ValueError(f"channel {name!r}: apprise does not recognise a URL")
                for attr in ("socket_connect_timeout", "socket_read_timeout"):
                    if getattr(server, attr, 0) > self._timeout:
                        setattr(server, attr, self._timeout)
                self._servers.append(server)
        self._shown = [private_url(s, u) for s, u in zip(self._servers, urls, strict=True)]
        self._notify_type = module.NotifyType.INFO
        self._format = module.NotifyFormat.TEXT
        self._filter = _Scrub(self._secrets)
        _LOG.addFilter(self._filter)

    @classmethod
    def from_config(
        cls, name: str, cfg: AppriseChannelConfig, ctx: ChannelContext
    ) -> AppriseChannel:
        return cls(name, cfg, render=ctx.rendering)

    async def send(self, notification: Notification) -> DeliveryResult:
        try:
            message = render_message(notification, self._render)
        except Exception as exc:  # a user template that fails at send time
            return DeliveryResult.failed(
                self._error(f"could not render: {type(exc).__name__}: {exc}")
            )
        for k in range(notification.parts_sent, len(self._servers)):
            shown = self._shown[k]
            try:
                async with asyncio.timeout(self._timeout):
                    ok = await asyncio.to_thread(self._notify, self._servers[k], message)
            except TimeoutError:
                error = self._error(f"{shown}: no answer within {self._timeout:g}s")
                return _resume_at(DeliveryResult.retry(error), k)
            except Exception as exc:  # a plugin bug; its message may quote the URL
                error = self._error(f"{shown}: {type(exc).__name__}: {exc}")
                return _resume_at(DeliveryResult.retry(error), k)
            if not ok:
                error = self._error(f"{shown}: not delivered (apprise's log says why)")
                return _resume_at(DeliveryResult.retry(error), k)
        return DeliveryResult.success(parts_sent=len(self._servers), answer="delivered")

    def _notify(self, server: Any, message: Message) -> bool:
        return bool(
            server.notify(
                body=message.text,
                title=message.subject,
                notify_type=self._notify_type,
                body_format=self._format,
            )
        )

    def _error(self, text: str) -> str:
        return clean_error(f"apprise {self.name}: {text}", self._secrets)

    def describe(self) -> str:
        return "apprise " + ", ".join(self._shown)

    async def flush(self) -> None:
        """Nothing kept open between rounds."""

    async def aclose(self) -> None:
        _LOG.removeFilter(self._filter)

    def __repr__(self) -> str:
        return f"<AppriseChannel {self.name!r}: {self.describe()}>"


def _resume_at(result: DeliveryResult, k: int) -> DeliveryResult:
    return dataclasses.replace(result, parts_sent=k)
