"""Operator commands: `mute`, `mutes`, `unmute` and `status`.

Mutes live in the state database, so every replica honours them. Items a
muted rule or channel matches are held (the planner holds its rows) and go
out as one summary when the mute ends, or into the next digest; `--drop`
discards them instead. `status` is one screen of the running state, read
from the store (it works while the daemon runs, from any host that reaches
the database).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from newswatch.cli import _load, _open_state, config_option, main
from newswatch.clitable import print_json, print_table, span, when
from newswatch.config import LoadedConfig, parse_duration
from newswatch.store.base import Mute

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead.")
# Failing feeds `status` names; `newswatch feeds` lists them all.
STATUS_FEEDS = 5


def _now() -> datetime:
    return datetime.now(UTC)


def _target(loaded: LoadedConfig, given: str) -> tuple[str, str]:
    """(kind, name) of ``rule:NAME``, ``channel:NAME`` or a plain NAME."""
    config = loaded.config
    rules = {r.name for r in config.rules}
    channels = set(config.channels)
    kind, _, name = given.partition(":")
    if name and kind in ("rule", "channel"):
        known = rules if kind == "rule" else channels
        if name not in known:
            raise click.UsageError(f"no {kind} {name!r} ({kind}s: {_listing(known)})")
        return kind, name
    if given in rules and given in channels:
        raise click.UsageError(
            f"{given!r} is a rule and a channel: say rule:{given} or channel:{given}"
        )
    if given in rules:
        return "rule", given
    if given in channels:
        return "channel", given
    raise click.UsageError(
        f"no rule or channel {given!r} (rules: {_listing(rules)}; channels: {_listing(channels)})"
    )


def _listing(names: set[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _mute_json(m: Mute, now: datetime) -> dict[str, Any]:
    return {
        "id": m.id,
        "kind": m.kind,
        "name": m.name,
        "created_at": m.created_at,
        "until": m.until,
        "active": m.active(now),
        "drop": m.drop,
        "comment": m.comment,
        "ended_at": m.ended_at,
    }


@main.command()
@config_option
@click.argument("target")
@click.option("--for", "for_", required=True, help="How long, e.g. 30m, 4h, 2d.")
@click.option("--comment", help="Why (shown by `mutes` and on the status page).")
@click.option("--drop", is_flag=True, help="Discard what it matches instead of holding it.")
@json_option
def mute(
    config_path: str, target: str, for_: str, comment: str | None, drop: bool, as_json: bool
) -> None:
    """Mute a rule or a channel (TARGET: NAME, rule:NAME or channel:NAME) for a while.

    What it matches meanwhile is held and sent as one summary when the mute
    ends (a muted channel's digest waits for it); --drop discards it.
    """
    try:
        length = parse_duration(for_)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--for") from None
    loaded = _load(config_path)
    kind, name = _target(loaded, target)
    now = _now()
    with _open_state(loaded.config, read_only=False) as store:
        m = store.add_mute(kind, name, now, now + length, drop=drop, comment=comment)
    if as_json:
        print_json(_mute_json(m, now))
        return
    tz = loaded.config.zone
    then = "dropped" if drop else "held, and sent as one summary when it ends"
    click.echo(
        f"mute #{m.id}: {kind} {name!r} muted for {span(length)}, until "
        f"{m.until.astimezone(tz):%Y-%m-%d %H:%M %Z}; what it matches is {then}"
    )


@main.command()
@config_option
@click.option("--all", "all_", is_flag=True, help="Also mutes that ended.")
@json_option
def mutes(config_path: str, all_: bool, as_json: bool) -> None:
    """List the mutes in force (with --all, also those that ended)."""
    loaded = _load(config_path)
    now = _now()
    with _open_state(loaded.config) as store:
        found = store.mutes(now, include_ended=all_)
    if as_json:
        print_json([_mute_json(m, now) for m in found])
        return
    tz = loaded.config.zone
    rows: list[tuple[str, ...]] = [("ID", "MUTED", "UNTIL", "LEFT", "HELD ITEMS", "COMMENT")]
    for m in found:
        left = span(m.until - now) if m.active(now) else "ended"
        rows.append(
            (
                str(m.id),
                f"{m.kind} {m.name}",
                when(m.until, tz, now),
                left,
                "dropped" if m.drop else "held",
                m.comment or "",
            )
        )
    active = sum(m.active(now) for m in found)
    summary = f"{active} mute(s) in force; times in {loaded.config.timezone}"
    if len(rows) > 1:
        print_table(rows, summary)
    else:
        click.echo(summary)


@main.command()
@config_option
@click.argument("mute_id", type=int)
def unmute(config_path: str, mute_id: int) -> None:
    """End mute MUTE_ID now; what it held goes out at the next delivery round."""
    loaded = _load(config_path)
    with _open_state(loaded.config, read_only=False) as store:
        ended = store.end_mute(mute_id, _now())
    if not ended:
        click.echo(
            f"newswatch: no mute #{mute_id} in force (see `newswatch mutes --all`)", err=True
        )
        raise SystemExit(1)
    click.echo(f"mute #{mute_id} ended; what it held goes out as one summary shortly")


@main.command()
@config_option
@json_option
def status(config_path: str, as_json: bool) -> None:
    """One screen of the running state: feeds, outbox, channels, mutes (from the store)."""
    loaded = _load(config_path)
    config = loaded.config
    now = _now()
    with _open_state(config) as store:
        summary = store.summary(now)
        failing = store.feed_page(failing=True, limit=STATUS_FEEDS)
        counts = store.channel_counts()
        active = store.mutes(now)
    channels: list[dict[str, Any]] = []
    for name, channel in config.channels.items():
        c = counts.get(name)
        channels.append(
            {
                "name": name,
                "type": channel.type,
                "waiting": (c.pending + c.queued) if c else 0,
                "dead": c.dead if c else 0,
                "last_sent_at": c.last_sent_at if c else None,
                "last_error": c.last_error if c else None,
            }
        )
    feeds: list[dict[str, Any]] = [
        {
            "feed": s.label or s.feed_key[:12],
            "errors": s.consecutive_errors,
            "failing_since": s.failing_since,
            "last_error": s.last_error,
        }
        for s in failing.feeds
    ]
    if as_json:
        print_json(
            {
                "config": str(loaded.path),
                "timezone": config.timezone,
                "summary": summary,
                "failing_feeds": feeds,
                "channels": channels,
                "mutes": [_mute_json(m, now) for m in active],
            }
        )
        return
    tz = config.zone
    click.echo(f"{loaded.path}: {len(config.rules)} rules; times in {config.timezone}")
    click.echo(
        f"feeds     {summary.feeds} ({summary.failing} failing, {summary.never_polled} never "
        f"polled), {summary.articles} articles; last poll {when(summary.last_poll_at, tz, now)}"
    )
    click.echo(
        f"outbox    {summary.waiting} waiting, {summary.dead} dead; {summary.sent_24h} sent "
        f"in 24 h, last {when(summary.last_sent_at, tz, now)}"
    )
    rows: list[tuple[str, ...]] = [
        ("CHANNEL", "TYPE", "WAITING", "DEAD", "LAST SENT", "LAST ERROR")
    ]
    for ch in channels:
        rows.append(
            (
                ch["name"],
                ch["type"],
                str(ch["waiting"]),
                str(ch["dead"]),
                when(ch["last_sent_at"], tz, now),
                ch["last_error"] or "",
            )
        )
    print_table(rows)
    if feeds:
        more = failing.total - len(feeds)
        rows = [("FAILING FEED", "ERRORS", "SINCE", "LAST ERROR")]
        rows += [
            (f["feed"], str(f["errors"]), when(f["failing_since"], tz, now), f["last_error"] or "")
            for f in feeds
        ]
        print_table(rows, f"... and {more} more (newswatch feeds)" if more > 0 else None)
    for m in active:
        click.echo(f"muted     #{m.id} {m.kind} {m.name} until {when(m.until, tz, now)}")
