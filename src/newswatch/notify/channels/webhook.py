"""Webhook channel: POST each alert as a JSON object (see ``render.alert_payload``).

2xx is delivered. 408, 429 and 5xx are temporary (``Retry-After`` honoured,
seconds or HTTP-date); any other status is permanent (a 404 will not fix
itself). Transport errors (refused, reset, timeout) are temporary.

The URL is a secret (its path or query usually carries the token): only
scheme, host and port ever appear in descriptions and errors, and error text
from httpx is scrubbed of every fragment of the URL and of header values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import httpx

from newswatch.config import WebhookChannelConfig
from newswatch.model import Alert, DeliveryResult
from newswatch.notify.channels.base import ChannelContext, utcnow
from newswatch.notify.redact import clean_error, mask_url, url_secrets
from newswatch.notify.render import alert_payload, delivery_key
from newswatch.notify.retry import parse_retry_after

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429})
# How much of a refusing server's answer to keep in the error (it often says why).
_BODY_EXCERPT = 200


class WebhookChannel:
    kind = "webhook"
    max_length: int | None = None

    def __init__(
        self,
        name: str,
        cfg: WebhookChannelConfig,
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.name = name
        self._url = cfg.url.get_secret_value()
        self._headers = {k: v.get_secret_value() for k, v in cfg.headers.items()}
        self._timeout = cfg.timeout.total_seconds()
        self._http = http
        self._clock = clock
        self._masked = mask_url(self._url)
        self._secrets = url_secrets(self._url) + list(self._headers.values())

    @classmethod
    def from_config(
        cls, name: str, cfg: WebhookChannelConfig, ctx: ChannelContext
    ) -> WebhookChannel:
        return cls(name, cfg, http=ctx.http, clock=ctx.clock)

    def describe(self) -> str:
        return f"webhook {self._masked}"

    def __repr__(self) -> str:
        return f"<WebhookChannel {self.name!r}: {self.describe()}>"

    async def aclose(self) -> None:
        """Nothing to close: the HTTP client is shared and owned by the caller."""

    async def send(self, alert: Alert) -> DeliveryResult:
        headers = {"Idempotency-Key": delivery_key(alert), **self._headers}
        try:
            response = await self._http.post(
                self._url,
                json=alert_payload(alert),
                headers=headers,
                timeout=self._timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException as exc:
            return DeliveryResult.retry(self._error(f"timed out ({type(exc).__name__})"))
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return DeliveryResult.failed(self._error(f"{type(exc).__name__}: {exc}"))
        except (httpx.TransportError, OSError) as exc:
            return DeliveryResult.retry(self._error(f"{type(exc).__name__}: {exc}"))
        return self.classify(response)

    def classify(self, response: httpx.Response) -> DeliveryResult:
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult.success()
        error = self._error(f"HTTP {status} {response.reason_phrase}{self._excerpt(response)}")
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            return DeliveryResult.retry(error, retry_after=retry_after)
        # 3xx (redirects are not followed: a POST should not wander) and 4xx.
        return DeliveryResult.failed(error)

    def _excerpt(self, response: httpx.Response) -> str:
        try:
            body = response.text[:_BODY_EXCERPT].strip()
        except (UnicodeDecodeError, LookupError):
            return ""
        return f": {body}" if body else ""

    def _error(self, text: str) -> str:
        return clean_error(f"webhook {self._masked}: {text}", self._secrets)
