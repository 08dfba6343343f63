"""Webhook channel: POST each notification as one JSON document
(``payload.notification_payload``, schema documented in docs/webhook.md).

2xx is delivered. 408, 429 and 5xx are temporary (``Retry-After`` honoured,
seconds or HTTP-date); any other status is permanent (a 404 will not fix
itself). Transport errors (refused, reset, timeout) are temporary.

Every request carries ``Idempotency-Key`` (the notification's key, the same
on every retry) and, when ``secret`` is set, ``X-Newswatch-Signature:
sha256=<hex HMAC-SHA256 of the exact body>`` so a receiver can check it came
from us.

The URL is a secret (its path or query usually carries the token): only
scheme, host and port ever appear in descriptions and errors, and error text
is scrubbed of every fragment of the URL, of header values and the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from newswatch.config import WebhookChannelConfig
from newswatch.model import Notification
from newswatch.notify.channels.base import ChannelContext, HttpChannel, HttpRequest
from newswatch.notify.channels.pacer import describe_pacing, pacer_for
from newswatch.notify.payload import notification_payload
from newswatch.notify.redact import mask_url, url_secrets

SIGNATURE_HEADER = "X-Newswatch-Signature"


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(HttpChannel):
    kind = "webhook"

    def __init__(self, name: str, cfg: WebhookChannelConfig, ctx: ChannelContext) -> None:
        url = cfg.url.get_secret_value()
        headers = {k: v.get_secret_value() for k, v in cfg.headers.items()}
        secret = cfg.secret.get_secret_value() if cfg.secret is not None else None
        super().__init__(
            name,
            http=ctx.http,
            target=mask_url(url),
            # A header's credential alone too ("Bearer <token>": the token),
            # since an error page may echo it without its scheme.
            secrets=[
                *url_secrets(url),
                *headers.values(),
                *(v.split()[-1] for v in headers.values() if v.split()),
                *([secret] if secret else []),
            ],
            render=ctx.rendering,
            clock=ctx.clock,
            timeout=cfg.timeout.total_seconds(),
            pacer=pacer_for(self.kind, cfg.pacing, clock=ctx.clock, sleep=ctx.sleep),
        )
        self._url = url
        self._headers = headers
        self._secret = secret

    @classmethod
    def from_config(
        cls, name: str, cfg: WebhookChannelConfig, ctx: ChannelContext
    ) -> WebhookChannel:
        return cls(name, cfg, ctx)

    def requests(self, notification: Notification) -> list[HttpRequest]:
        body = json.dumps(
            notification_payload(notification), ensure_ascii=False, separators=(",", ":")
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": notification.key,
            **self._headers,
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        return [HttpRequest(url=self._url, content=body, headers=headers)]

    def describe(self) -> str:
        signed = ", signed" if self._secret else ""
        return f"webhook {self._target}{signed}{describe_pacing(self._pacer)}"
