"""Microsoft Teams Workflows webhook stand-in (Power Automate template "Post
to a channel when a webhook request is received").

``POST /workflows/{id}/triggers/manual/paths/invoke?api-version=...&sig=...``
with ``{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard>}]}``.

The trigger answers before the flow runs: ``202 Accepted`` for any JSON
body, and each card is posted later by the flow's "Post card in a chat or
channel" action. A card the action refuses fails the *flow run*, which the
sender never sees (msteams-docs#4145: "We basically return 200 OK as soon as
we get the webhook post request. Processing the request is done
asynchronously"). So this receiver answers 202 and records refused cards in
``failed_runs``; a channel test must assert that list is empty.

What the flow run refuses, with sources:

- A card over 28,672 bytes of "message properties": ``MessageSizeExceeded-
  Message properties size exceeded. Actual message properties size: 28897
  bytes, whereas max allowed size is 28672 bytes`` (msteams-docs#11274; the
  connector docs say "approximately 28 KB", learn.microsoft.com/connectors/teams).
  That issue's request was 24,453 bytes: the service measures more than the
  body. The estimate here is the card serialised as a JSON string (quotes
  escaped), which matches that growth; a warning flags cards over 21,000
  bytes, where msteams_hermes found real failures.
- ``content.type`` other than ``AdaptiveCard``: ``Property 'type' must be
  'AdaptiveCard'`` (ffind-dev/pve-ups#4); a missing version, a version above
  1.5, a TextBlock without ``text``: refused here (Adaptive Card schema;
  exact Teams wording not confirmed).

Synchronous answers: a body that is not JSON is ``400 {"error": {"code":
"InvalidRequestContent", "message": "The input body for trigger 'manual' of
type 'Request' must be of type JSON, but was of type '...'."}}``
(prometheus-msteams#352). A wrong ``sig`` (401) and throttling (429 with
``Retry-After``) use Logic Apps' ``{"error": {"code", "message"}}`` shape;
their exact codes are not confirmed. Pace: 4 requests per second and 60 per
30 s, the figures documented for Teams incoming webhooks (learn.microsoft.com,
"Create an Incoming Webhook", rate limiting for connectors); Workflows' own
limits depend on the flow owner's licence and are not documented.

Rendering: TextBlock supports a Markdown subset (bold, italic, lists and
``[title](url)`` links, learn.microsoft.com/adaptive-cards text features);
links and ``Action.OpenUrl`` targets are recorded. A ``<at>name</at>`` with a
matching ``msteams.entities`` mention notifies and is recorded as a mention.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Answer, Mention, Message, Receiver, Request, SlidingWindow, ceil_seconds

__all__ = ["FlowRun", "TeamsWorkflowReceiver"]

MESSAGE_PROPERTIES_MAX = 28672  # bytes, from the MessageSizeExceeded error
WARN_BYTES = 21000  # msteams_hermes: real failures from about here
MAX_CARD_VERSION = (1, 5)
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_BARE_URL = re.compile(r"(?<!\()https?://[^\s<>()\[\]]+")
_AT = re.compile(r"<at>(.*?)</at>")
_CHILDREN = ("body", "items", "columns", "facts", "inlines", "actions", "cards")


@dataclass(frozen=True)
class FlowRun:
    """A flow run that failed after the trigger answered 202."""

    run_id: str
    error: str
    payload: Any


def _walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for key in _CHILDREN:
            for child in node.get(key) or []:
                yield from _walk(child)
        for key in ("selectAction", "card"):
            if key in node:
                yield from _walk(node[key])
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def properties_size(card: Any) -> int:
    """Estimated "message properties size": the card as an escaped JSON string."""
    compact = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    return len(json.dumps(compact, ensure_ascii=False).encode("utf-8"))


def _card_error(card: Any, max_bytes: int) -> str | None:
    if not isinstance(card, Mapping) or card.get("type") != "AdaptiveCard":
        return (
            "AdaptiveCards.AdaptiveSerializationException: Property 'type' must be 'AdaptiveCard'"
        )
    version = card.get("version")
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return f"AdaptiveCard version {version!r} is missing or invalid"
    if (major, minor) > MAX_CARD_VERSION:
        return f"AdaptiveCard version {version} is not supported (Teams renders up to 1.5)"
    if not isinstance(card.get("body", []), list):
        return "Property 'body' must be an array"
    for element in _walk(card.get("body", [])):
        if element.get("type") == "TextBlock" and not isinstance(element.get("text"), str):
            return "Required property 'text' not found in JSON (TextBlock)"
    size = properties_size(card)
    if size > max_bytes:
        return (
            "MessageSizeExceeded-Message properties size exceeded. Actual message properties "
            f"size: {size} bytes, whereas max allowed size is {max_bytes} bytes"
        )
    return None


class TeamsWorkflowReceiver(Receiver):
    """Answers like a Power Automate workflow webhook."""

    platform: ClassVar[str] = "teams"

    def __init__(
        self,
        *,
        workflow_id: str = "b840a60a611b4d3287be6d76fe1930e2",
        sig: str = "SECRET-workflow-signature",
        max_bytes: int = MESSAGE_PROPERTIES_MAX,
        pace: SlidingWindow | None = None,
        sustained_pace: SlidingWindow | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.workflow_id, self.sig, self.max_bytes = workflow_id, sig, max_bytes
        self.rule = pace if pace is not None else SlidingWindow(4, 1.0)
        self.sustained_rule = (
            sustained_pace if sustained_pace is not None else SlidingWindow(60, 30.0)
        )
        self._failed: list[FlowRun] = []
        self._runs = 0

    @property
    def path(self) -> str:
        return f"/workflows/{self.workflow_id}/triggers/manual/paths/invoke"

    @property
    def url(self) -> str:
        query = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.sig}"
        return f"{self.base_url}{self.path}?{query}"

    @property
    def failed_runs(self) -> list[FlowRun]:
        with self._lock:
            return list(self._failed)

    def _reset_state(self) -> None:
        self.rule.clear()
        self.sustained_rule.clear()
        self._failed.clear()

    @staticmethod
    def _error(
        status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Answer:
        return Answer.json(status, {"error": {"code": code, "message": message}}, headers)

    def rate_limited_answer(self, retry_after: float) -> Answer:
        seconds = ceil_seconds(retry_after)
        return self._error(
            429,
            "RequestsThrottled",
            f"Number of requests for workflow '{self.workflow_id}' exceeded the limit. "
            f"Retry after {seconds} seconds.",
            {"Retry-After": str(seconds)},
        )

    def server_error_answer(self) -> Answer:
        return self._error(502, "BadGateway", "The service is temporarily unavailable.")

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != self.path:
            return self._error(404, "WorkflowNotFound", "The workflow could not be found.")
        if request.param("sig") != self.sig:
            return self._error(
                401,
                "DirectApiInvalidAuthorizationSignature",
                "The provided authorization signature is not valid.",
            )
        wait = self.pace(self.rule, self.workflow_id)
        if wait is None:
            wait = self.pace(self.sustained_rule, self.workflow_id)
        if wait is not None:
            return self.rate_limited_answer(wait)
        if request.content_type != "application/json":
            kind = request.content_type or "application/octet-stream"
            return self._error(
                400,
                "InvalidRequestContent",
                f"The input body for trigger 'manual' of type 'Request' must be of type JSON, "
                f"but was of type '{kind}'.",
            )
        try:
            payload = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            return self._error(
                400,
                "InvalidRequestContent",
                f"The request content is not valid and could not be deserialized: '{exc}'.",
            )
        self._runs += 1
        run_id = f"08584{self._runs:015d}CU00"
        self._run_flow(run_id, payload)
        return Answer(202, b"", {"x-ms-workflow-run-id": run_id})

    def _run_flow(self, run_id: str, payload: Any) -> None:
        """What the flow does after the 202: post each card, or fail the run."""
        attachments = payload.get("attachments") if isinstance(payload, Mapping) else None
        if not isinstance(attachments, list) or not attachments:
            self._failed.append(FlowRun(run_id, "the request has no 'attachments' array", payload))
            return
        for i, attachment in enumerate(attachments):
            card = attachment.get("content") if isinstance(attachment, Mapping) else None
            error = _card_error(card, self.max_bytes)
            if error is not None:
                self._failed.append(FlowRun(run_id, f"attachments[{i}]: {error}", payload))
                continue
            assert isinstance(card, Mapping)
            warnings = []
            if attachment.get("contentType") != CARD_CONTENT_TYPE:
                warnings.append(f"contentType is {attachment.get('contentType')!r}")
            if properties_size(card) > WARN_BYTES:
                warnings.append(f"card over {WARN_BYTES} bytes: real Teams has refused such cards")
            self._post_card(run_id, card, payload, warnings)

    def _post_card(
        self, run_id: str, card: Mapping[str, Any], payload: Any, warnings: list[str]
    ) -> None:
        texts: list[str] = []
        links: list[str] = []
        ats: list[str] = []
        for element in _walk(card.get("body", [])):
            kind = element.get("type")
            pieces = []
            if kind in ("TextBlock", "TextRun"):
                pieces.append(element.get("text"))
            elif kind is None and "title" in element and "value" in element:  # a Fact
                pieces += [element.get("title"), element.get("value")]
            for piece in pieces:
                if isinstance(piece, str) and piece:
                    texts.append(piece)
                    links += _MD_LINK.findall(piece) + _BARE_URL.findall(piece)
                    ats += _AT.findall(piece)
            if kind == "Action.OpenUrl" and isinstance(element.get("url"), str):
                links.append(element["url"])
        for action in _walk(card.get("actions", [])):
            if action.get("type") == "Action.OpenUrl" and isinstance(action.get("url"), str):
                links.append(action["url"])
        entities = (card.get("msteams") or {}).get("entities") or []
        mentioned = {
            e.get("text"): (e.get("mentioned") or {}).get("id", "")
            for e in entities
            if isinstance(e, Mapping) and e.get("type") == "mention"
        }
        mentions = []
        for name in ats:
            target = mentioned.get(f"<at>{name}</at>")
            if target is None:
                warnings.append(f"<at>{name}</at> has no msteams entity: shown as text")
            else:
                mentions.append(Mention("user", str(target), "msteams.entities"))
        self.accept(
            Message(
                platform=self.platform,
                text="\n".join(texts),
                links=tuple(dict.fromkeys(links)),
                mentions=tuple(mentions),
                parts={"card": card},
                payload=payload,
                meta={"run_id": run_id, "version": card.get("version")},
                warnings=tuple(warnings),
                received_at=self.clock(),
            )
        )
