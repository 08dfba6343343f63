"""docs/webhook.md says what the webhook channel sends: its example has
the payload's fields, and its verification snippet accepts our signature
(and nothing else)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from newswatch.model import Outlet
from newswatch.notify.channels.webhook import signature
from newswatch.notify.payload import SCHEMA_VERSION, notification_payload
from notify_samples import item, many, notification

DOC = (Path(__file__).resolve().parents[1] / "docs" / "webhook.md").read_text(encoding="utf-8")


def block(language: str, containing: str) -> str:
    for found in re.finditer(rf"```{language}\n(.*?)```", DOC, re.DOTALL):
        if containing in found.group(1):
            return found.group(1)
    raise AssertionError(f"no {language} block with {containing!r}")


def test_example_has_exactly_the_payload_fields() -> None:
    example = json.loads(block("json", '"version"'))
    real = notification_payload(many(1))
    one = notification_payload(notification(item(1, also=(Outlet("s", "t", "l"),))))
    assert example["version"] == SCHEMA_VERSION
    assert set(example) == set(real)
    assert set(example["items"][0]) == set(real["items"][0])
    assert set(example["period"]) == set(real["period"])
    assert set(example["items"][0]["also"][0]) == set(one["items"][0]["also"][0])
    for field in [*real, *real["items"][0]]:
        assert f"`{field}`" in DOC or f"`items[].{field}`" in DOC or f", `{field}`" in DOC


def test_verification_snippet_accepts_our_signature_only() -> None:
    namespace: dict[str, Any] = {}
    exec(block("python", "def verify"), namespace)  # the snippet as a reader copies it
    verify = namespace["verify"]
    body = json.dumps(notification_payload(many(2))).encode()
    assert verify("s3cret", body, signature("s3cret", body))
    assert not verify("s3cret", body + b" ", signature("s3cret", body))
    assert not verify("other", body, signature("s3cret", body))
    assert not verify("s3cret", body, None)
