"""The delivery commands: `outbox`, `channels` and `digest`.

They read the configuration and the state database; `channels test` and
`digest send-now` are the only ones that send anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
import httpx

from newswatch.cli import _load, _open_state, _table, config_option, main
from newswatch.clitable import when
from newswatch.config import LoadedConfig
from newswatch.model import DeliveryResult, Notification, NotificationKind
from newswatch.periods import Schedule
from newswatch.store.base import DigestTarget


def sub_config(func: Any) -> Any:
    """``--config`` on a subcommand too (``channels test NAME -c FILE``): it
    overrides the group's."""
    return click.option(
        "--config",
        "-c",
        "sub_config_path",
        default=None,
        type=click.Path(dir_okay=False),
        help="Configuration file (as on the group).",
    )(func)


# Titles shown under each notification in `newswatch outbox`.
TITLES_SHOWN = 3


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- outbox


@main.group(invoke_without_command=True)
@config_option
@click.option(
    "--status",
    type=click.Choice(["waiting", "pending", "sending", "sent", "dead"]),
    help="Only notifications in this state (waiting: items not yet in a notification).",
)
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead.")
@click.pass_context
def outbox(
    ctx: click.Context, config_path: str, status: str | None, limit: int, as_json: bool
) -> None:
    """List notifications (with their items) and the items still waiting.

    An item waits for its group window, a digest, quiet hours, a throttle
    window or the end of a mute; then it goes out in a notification, which
    is retried until the channel takes it or it becomes a dead letter.
    """
    ctx.obj = config_path
    if ctx.invoked_subcommand is not None:
        return
    from newswatch.store.base import NotificationStatus, OutboxStatus

    loaded = _load(config_path)
    tz = loaded.config.zone
    with _open_state(loaded.config) as store:
        waiting = store.outbox(OutboxStatus.PENDING, limit) if status in (None, "waiting") else []
        notes = (
            []
            if status == "waiting"
            else store.notifications(NotificationStatus(status) if status else None, limit)
        )
    if as_json:
        from newswatch.clitable import print_json

        print_json({"waiting": waiting, "notifications": notes})
        return
    if status in (None, "waiting"):
        click.echo(f"waiting: {len(waiting)}{'+' if len(waiting) == limit else ''} item(s)")
        table = [("ROW", "RULE", "TARGET", "WAITS FOR", "UNTIL", "TITLE")]
        for r in waiting:
            mode = "digest" if ":digest:" in r.target_id else (r.hold_reason or "group window")
            until = r.hold_until.astimezone(tz).strftime("%m-%d %H:%M") if r.hold_until else ""
            table.append((str(r.id), r.rule, r.target_id, mode, until, r.title[:50]))
        if waiting:
            _table(table, f"times in {loaded.config.timezone}")
    if status == "waiting":
        return
    click.echo(f"notifications: {len(notes)} shown")
    for n in notes:
        when = n.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
        head = f"#{n.id} {n.status.value:<7} {n.kind.value:<7} {n.channel}  {n.items} item(s)"
        head += f" [{', '.join(n.rules)}], attempt {n.attempts}, {when}"
        if n.late:
            head += " (late)"
        click.echo(head)
        if n.last_error and n.status.value != "sent":
            click.echo(f"    error: {n.last_error[:200]}")
        for title, link in n.titles[:TITLES_SHOWN]:
            click.echo(f"    - {title[:70]}  <{link}>")
        if n.items > TITLES_SHOWN:
            click.echo(f"    ... and {n.items - TITLES_SHOWN} more")


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "all_", is_flag=True, help="Retry every dead notification.")
@sub_config
@click.pass_obj
def outbox_retry(
    config_path: str, ids: Sequence[int], all_: bool, sub_config_path: str | None
) -> None:
    """Send dead notifications again, whole (by notification ID, or --all)."""
    if not ids and not all_:
        raise click.UsageError("give notification IDs (see `newswatch outbox`) or --all")
    loaded = _load(sub_config_path or config_path)
    with _open_state(loaded.config, read_only=False) as store:
        n = store.retry_dead(None if all_ else list(ids), _now())
    click.echo(f"{n} dead notification(s) queued again")


# --------------------------------------------------------------------------- channels


@main.group(invoke_without_command=True)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead.")
@click.pass_context
def channels(ctx: click.Context, config_path: str, as_json: bool) -> None:
    """List channels: type, target (secrets masked), pending and dead counts, last error."""
    ctx.obj = config_path
    if ctx.invoked_subcommand is not None:
        return
    loaded = _load(config_path)
    with _open_state(loaded.config) as store:
        counts = store.channel_counts()
    described = asyncio.run(_describe(loaded))
    if as_json:
        from newswatch.clitable import print_json
        from newswatch.store.base import ChannelCounts

        print_json(
            [
                {
                    "name": name,
                    "type": cfg.type,
                    "target": described[name],
                    **dataclasses.asdict(counts.get(name) or ChannelCounts()),
                }
                for name, cfg in loaded.config.channels.items()
            ]
        )
        return
    tz = loaded.config.zone
    now = _now()
    table = [("CHANNEL", "TYPE", "TARGET", "WAITING", "QUEUED", "DEAD", "LAST SENT", "LAST ERROR")]
    for name, cfg in loaded.config.channels.items():
        c = counts.get(name)
        table.append(
            (
                name,
                cfg.type,
                described[name],
                str(c.pending if c else 0),
                str(c.queued if c else 0),
                str(c.dead if c else 0),
                when(c.last_sent_at, tz, now) if c else "never",
                (c.last_error or "") if c else "",
            )
        )
    dead = sum(c.dead for c in counts.values())
    waiting = sum(c.pending + c.queued for c in counts.values())
    _table(
        table,
        f"{len(loaded.config.channels)} channel(s), {waiting} item(s) waiting, {dead} dead; "
        f"times in {loaded.config.timezone}",
    )


async def _describe(loaded: LoadedConfig) -> dict[str, str]:
    from newswatch.notify.channels import build_channels

    async with httpx.AsyncClient() as http:
        built = build_channels(loaded.config.channels, http=http)
        try:
            return {name: channel.describe() for name, channel in built.items()}
        finally:
            for channel in built.values():
                await channel.aclose()


@channels.command("test")
@click.argument("name")
@sub_config
@click.pass_obj
def channels_test(config_path: str, name: str, sub_config_path: str | None) -> None:
    """Send a test message through channel NAME and print the service's answer (exit 0 or 1)."""
    loaded = _load(sub_config_path or config_path)
    if name not in loaded.config.channels:
        known = ", ".join(loaded.config.channels) or "none configured"
        raise click.UsageError(f"no channel {name!r} (channels: {known})")
    note = Notification(
        id=0,
        key=f"nw-test-{int(_now().timestamp())}",
        channel=name,
        kind=NotificationKind.TEST,
        items=(),
        created_at=_now(),
    )
    result = asyncio.run(_send_one(loaded, name, note))
    if result.ok:
        click.echo(f"{name}: sent ({result.answer or 'accepted'})")
        raise SystemExit(0)
    kind = "permanent failure" if result.permanent else "temporary failure"
    click.echo(f"{name}: {kind}: {result.error}", err=True)
    if result.answer:
        click.echo(f"{name}: the service answered: {result.answer}", err=True)
    raise SystemExit(1)


async def _send_one(loaded: LoadedConfig, name: str, note: Notification) -> DeliveryResult:
    from newswatch.daemon import render_context
    from newswatch.notify.channels import build_channel

    async with httpx.AsyncClient(timeout=30.0) as http:
        cfg = loaded.config.channels[name]
        channel = build_channel(
            name,
            cfg,
            http=http,
            out=sys.stdout,
            tz=loaded.config.zone,
            render=render_context(loaded),
        )
        try:
            return await channel.send(note)
        finally:
            await channel.aclose()


# --------------------------------------------------------------------------- digests


@main.group()
def digest() -> None:
    """Preview a channel's next digest, or send it now."""


def _digests_of(
    loaded: LoadedConfig, channel: str, schedule: str | None
) -> list[tuple[DigestTarget, Schedule]]:
    from newswatch.notify.targets import Targets
    from newswatch.periods import parse_schedule

    targets = Targets.from_config(loaded.config)
    found = [(d, s) for d, s in targets.digests() if d.channel == channel]
    if schedule is not None:
        wanted = parse_schedule(schedule)
        found = [(d, s) for d, s in found if s == wanted]
    if not found:
        raise click.UsageError(
            f"channel {channel!r} has no digest"
            + (f" on schedule {schedule!r}" if schedule else "")
            + " (a rule's notify entry needs `digest: ...` for it)"
        )
    return found


@digest.command("preview")
@config_option
@click.argument("channel")
@click.option("--schedule", help="Only this digest schedule of the channel.")
def digest_preview(config_path: str, channel: str, schedule: str | None) -> None:
    """Print CHANNEL's next digest as it would be sent now; sends nothing."""
    from newswatch.daemon import render_context
    from newswatch.notify.render import render_message
    from newswatch.periods import next_fire, period_ending

    loaded = _load(config_path)
    config = loaded.config
    rc = render_context(loaded)
    now = _now()
    with _open_state(config) as store:
        for d, s in _digests_of(loaded, channel, schedule):
            end = next_fire(s, config.zone, now)
            start = period_ending(s, config.zone, end).start
            notes = store.preview_digest(
                d,
                period_start=start,
                cutoff=now,
                now=now,
                max_items=config.digest_defaults.max_items,
            )
            click.echo(
                f"== {channel}: digest {s}, next at "
                f"{end.astimezone(config.zone):%Y-%m-%d %H:%M %Z}, "
                f"{sum(len(n.items) for n in notes)} item(s) so far"
            )
            for n in notes:
                if not n.items and not config.digest_defaults.send_empty:
                    click.echo(
                        "(nothing yet: an empty digest is not sent; digest_defaults.send_empty)"
                    )
                    continue
                message = render_message(n, rc)
                click.echo(f"Subject: {message.subject}\n")
                click.echo(message.text)


@digest.command("send-now")
@config_option
@click.argument("channel")
@click.option("--schedule", help="Only this digest schedule of the channel.")
def digest_send_now(config_path: str, channel: str, schedule: str | None) -> None:
    """Send CHANNEL's digest now, counted as its upcoming period's digest."""
    from newswatch.notify.digests import send_now
    from newswatch.notify.targets import Targets

    loaded = _load(config_path)
    config = loaded.config
    _digests_of(loaded, channel, schedule)
    targets = Targets.from_config(config)
    with _open_state(config, read_only=False) as store:
        done = send_now(
            store,
            targets,
            channel,
            _now(),
            max_items=config.digest_defaults.max_items,
            schedule_text=str(_parse(schedule)) if schedule else None,
        )
    failed = False
    for d, outcome in done:
        if outcome.done_before:
            click.echo(f"{channel}: digest {d.schedule}: this period was sent already")
            continue
        stats = asyncio.run(_deliver(loaded, list(outcome.notifications)))
        click.echo(
            f"{channel}: digest {d.schedule}: {outcome.items} item(s) in "
            f"{len(outcome.notifications)} notification(s): {stats}"
        )
        failed = failed or getattr(stats, "sent", 0) < len(outcome.notifications)
    raise SystemExit(1 if failed else 0)


async def _deliver(loaded: LoadedConfig, ids: list[int]) -> object:
    """Send these notifications now (a failure stays queued for the daemon)."""
    from newswatch.daemon import App

    if not ids:
        from newswatch.notify.deliver import DeliveryStats

        return DeliveryStats()
    async with App.open(loaded) as app:
        return await app.deliverer.deliver_due(only=ids)


def _parse(schedule: str) -> object:
    from newswatch.periods import parse_schedule

    return parse_schedule(schedule)
