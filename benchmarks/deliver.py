"""Delivery: a burst of matches to three chat services, and the digest render.

    .venv/bin/python benchmarks/deliver.py [--matches 1000] [--latency 0.05]

Three loopback stand-ins (tests/receivers: Slack, Discord and Telegram) each
take ``--latency`` seconds per request and enforce their platform's rate
limit with 429s, as the real services do. Measured in the same run:

- newswatch: ``--matches`` matches arrive at once (one poll), routed to all
  three channels with the default grouping; the real Deliverer composes,
  paces and sends them through a SQLite store until every item has reached
  every receiver. Reported: messages sent, wall time until the last item is
  delivered, CPU per item (this process), duplicates (must be 0), requests
  the services refused for pace (must be 0).
- baseline: what a script does: one POST per alert per service,
  sequentially with httpx, no pacing (the services refuse what exceeds
  their limits; counted, not retried).
- the cost of rendering one 300-item digest for each platform.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

from newswatch.config import ChannelConfig, NotifyTarget, RuleConfig  # noqa: E402
from newswatch.model import Match  # noqa: E402
from newswatch.notify.channels import build_channels  # noqa: E402
from newswatch.notify.deliver import Deliverer  # noqa: E402
from newswatch.notify.render import RenderContext, render_message, render_parts  # noqa: E402
from newswatch.notify.targets import Targets  # noqa: E402
from newswatch.store import FeedUpdate, IngestItem, open_store  # noqa: E402
from notify_samples import article, explanation, many  # noqa: E402
from receivers import (  # noqa: E402
    DiscordWebhookReceiver,
    SlackWebhookReceiver,
    TelegramReceiver,
)

RULE = "russia-north-korea"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def url_of(n: int) -> str:
    return f"https://www.koreaherald.com/view.php?ud=bench{n:06d}"


async def newswatch_run(matches: int, latency: float) -> dict[str, object]:
    receivers = [
        SlackWebhookReceiver(latency=latency).start(),
        DiscordWebhookReceiver(latency=latency).start(),
        TelegramReceiver(latency=latency).start(),
    ]
    slack, discord, telegram = receivers
    configs = TypeAdapter(dict[str, ChannelConfig]).validate_python(
        {
            "slack": {"type": "slack", "webhook": slack.url},
            "discord": {"type": "discord", "webhook": discord.url},
            "telegram": {
                "type": "telegram",
                "token": telegram.token,
                "chat_id": "-1001234567",
                "api_url": telegram.api_url,
            },
        }
    )
    notify = tuple(NotifyTarget(channel=name) for name in configs)
    targets = Targets.from_rules(
        [RuleConfig(name=RULE, query="x", notify=notify)],
        {name: c.type for name, c in configs.items()},
        ZoneInfo("Asia/Seoul"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/state.db")
        start_cpu, start = cpu(), time.monotonic()
        now = datetime.now(UTC)
        items = []
        for n in range(matches):
            a = article(
                entry_key=f"e{n}",
                story_key=f"s{n}",
                title=f"Story {n}: Russia and North Korea deepen ties",
                link=url_of(n),
                canonical_url=url_of(n),
            )
            m = Match(RULE, a, explanation())
            items.append(IngestItem(a, (m,), targets.routes(m, now)))
        store.ingest(FeedUpdate("bench", now, now + timedelta(minutes=10), ok=True), items)
        async with httpx.AsyncClient() as http:
            channels = build_channels(configs, http=http)
            loop = Deliverer(
                store,
                channels,
                targets=targets,
                clock=lambda: datetime.now(UTC),
                rng=random.Random(1),
            )
            sent = 0
            while True:
                stats = await loop.deliver_due()
                sent += stats.sent
                if _all_sent(store):
                    break
                await asyncio.sleep(0.2)
            wall = time.monotonic() - start
            used = cpu() - start_cpu
            for ch in channels.values():
                await ch.aclose()
        store.close()
    duplicates = sum(
        max(0, r.items_seen(url_of(n)) - 1) for r in receivers for n in range(0, matches, 7)
    )
    missing = sum(r.items_seen(url_of(n)) == 0 for r in receivers for n in range(matches))
    result = {
        "messages": {r.platform: len(r.messages) for r in receivers},
        "notifications": sent,
        "wall": wall,
        "cpu_per_item_ms": used / (matches * len(receivers)) * 1000,
        "duplicates": duplicates,
        "missing": missing,
        "refused_for_pace": sum(r.pacing_violations for r in receivers),
    }
    for r in receivers:
        r.stop()
    return result


def _all_sent(store: object) -> bool:
    rows = store.outbox(limit=100_000)  # type: ignore[attr-defined]
    return all(r.status.value == "sent" for r in rows)


async def baseline_run(matches: int, latency: float) -> dict[str, object]:
    receivers = [
        SlackWebhookReceiver(latency=latency).start(),
        DiscordWebhookReceiver(latency=latency).start(),
        TelegramReceiver(latency=latency).start(),
    ]
    slack, discord, telegram = receivers
    start_cpu, start = cpu(), time.monotonic()
    accepted = refused = 0
    async with httpx.AsyncClient() as http:
        for n in range(matches):
            text = f"Story {n}: Russia and North Korea deepen ties {url_of(n)}"
            for url, body in (
                (slack.url, {"text": text}),
                (discord.url, {"content": text}),
                (
                    f"{telegram.api_url}/bot{telegram.token}/sendMessage",
                    {"chat_id": "-1001234567", "text": text},
                ),
            ):
                response = await http.post(
                    url,
                    content=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"},
                )
                if response.is_success:
                    accepted += 1
                else:
                    refused += 1
    wall = time.monotonic() - start
    used = cpu() - start_cpu
    missing = sum(r.items_seen(url_of(n)) == 0 for r in receivers for n in range(matches))
    for r in receivers:
        r.stop()
    return {
        "messages": accepted,
        "refused": refused,
        "wall": wall,
        "cpu_per_item_ms": used / (matches * 3) * 1000,
        "missing": missing,
    }


def render_costs(repeat: int = 5) -> dict[str, float]:
    digest = many(300)
    rc = RenderContext()
    out: dict[str, float] = {}

    def best(fn: object) -> float:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t)
        return min(times) * 1000

    out["email (text + html)"] = best(lambda: render_message(digest, rc))
    for platform, limit in (("slack", 3000), ("discord", 4000), ("telegram", 4000)):
        out[platform] = best(lambda p=platform, lim=limit: render_parts(digest, p, rc, limit=lim))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    ours = asyncio.run(newswatch_run(args.matches, args.latency))
    base = asyncio.run(baseline_run(args.matches, args.latency))
    print(
        f"{args.matches} matches to Slack, Discord and Telegram stand-ins, "
        f"{args.latency * 1000:.0f} ms per request, rate limits enforced\n"
    )
    print(
        "| run | messages | refused for pace | items missing | duplicates | "
        "time to last item s | CPU per item ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    msgs = ours["messages"]
    assert isinstance(msgs, dict)
    print(
        f"| newswatch (grouped, paced) | {sum(msgs.values())} "
        f"({', '.join(f'{k} {v}' for k, v in msgs.items())}) | {ours['refused_for_pace']} | "
        f"{ours['missing']} | {ours['duplicates']} | {ours['wall']:.1f} | "
        f"{ours['cpu_per_item_ms']:.2f} |"
    )
    print(
        f"| baseline: one POST per alert, sequential | {base['messages']} | {base['refused']} | "
        f"{base['missing']} | 0 | {base['wall']:.1f} | {base['cpu_per_item_ms']:.2f} |"
    )
    print("\nOne 300-item digest, render cost (best of 5):\n")
    print("| platform | ms |")
    print("|---|---:|")
    for platform, ms in render_costs().items():
        print(f"| {platform} | {ms:.1f} |")


if __name__ == "__main__":
    main()
