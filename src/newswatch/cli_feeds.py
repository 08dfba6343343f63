"""`newswatch feeds`: each feed's health, and OPML import and export.

Feeds are shown by their label (the configured name, else the feed's own
title once it was read, else the URL with credentials and query values
masked): never a secret.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from newswatch.cli import _ago, _load, _open_state, _table, config_option, main
from newswatch.config import FeedConfig
from newswatch.notify.redact import mask_feed_url
from newswatch.store.base import FeedState

# Problems the listing marks, besides failures (ok feeds show nothing).
_NOTES = {
    "moved": "moved to {}",
    "discovered": "feed found on the page: {}",
}


def shown_label(feed: FeedConfig, state: FeedState | None) -> str:
    """The configured name, else the feed's own title once known, else the label."""
    if feed.name or state is None or not state.title:
        return feed.label
    return state.title


def _health(state: FeedState | None) -> str:
    if state is None or (state.last_success_at is None and state.last_attempt_at is None):
        return "new"
    if state.status in ("gone", "disabled"):
        return state.status
    if state.consecutive_errors:
        return "failing"
    return "ok"


def _row(feed: FeedConfig, state: FeedState | None) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    note = None
    if state is not None and state.moved_to and state.status in _NOTES:
        note = _NOTES[state.status].format(mask_feed_url(state.moved_to))
    return {
        "feed": shown_label(feed, state),
        "key": feed.key,
        "health": _health(state),
        "status": state.status if state else "new",
        "articles": state.articles if state else 0,
        "last_success_at": iso(state.last_success_at) if state else None,
        "last_attempt_at": iso(state.last_attempt_at) if state else None,
        "consecutive_errors": state.consecutive_errors if state else 0,
        "failing_since": iso(state.failing_since) if state else None,
        "next_poll_at": iso(state.next_poll_at) if state else None,
        "interval_s": state.interval_s if state else None,
        "last_status": state.last_status if state else None,
        "last_error": state.last_error if state else None,
        "note": note,
        "tags": list(feed.tags),
    }


def summary_line(rows: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["health"]] = counts.get(row["health"], 0) + 1
    parts = [f"{counts.get(h, 0)} {h}" for h in ("ok", "failing", "gone", "new") if counts.get(h)]
    articles = sum(r["articles"] for r in rows)
    return f"{len(rows)} feeds: {', '.join(parts) or 'none'}; {articles} articles stored"


@main.group(invoke_without_command=True)
@config_option
@click.option("--failing", is_flag=True, help="Only feeds that fail (or are gone).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per feed, a list.")
@click.pass_context
def feeds(ctx: click.Context, config_path: str, failing: bool, as_json: bool) -> None:
    """Show each feed's health: last success, errors, next poll.

    Subcommands import and export OPML subscription lists.
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    if ctx.invoked_subcommand is not None:
        return
    loaded = _load(config_path)
    with _open_state(loaded.config) as store:
        states = {s.feed_key: s for s in store.feed_states()}
    rows = [_row(feed, states.get(feed.key)) for feed in loaded.config.feeds]
    shown = [r for r in rows if r["health"] in ("failing", "gone")] if failing else rows
    if as_json:
        click.echo(json.dumps({"summary": summary_line(rows), "feeds": shown}, indent=2))
        raise SystemExit(1 if failing and shown else 0)
    table = [("FEED", "HEALTH", "ARTICLES", "LAST SUCCESS", "ERRORS", "NEXT POLL", "LAST ERROR")]
    for row in shown:
        state = states.get(row["key"])
        problem = row["last_error"] or row["note"] or ""
        table.append(
            (
                row["feed"],
                row["health"],
                str(row["articles"]),
                _ago(state.last_success_at) if state else "never",
                str(row["consecutive_errors"]),
                "stopped"
                if row["health"] == "gone"
                else _ago(state.next_poll_at)
                if state
                else "now",
                problem[:80],
            )
        )
    if len(table) > 1:
        _table(table)
    click.echo(summary_line(rows))
    raise SystemExit(1 if failing and shown else 0)


@feeds.command("import")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the YAML to this file (it must not exist) instead of printing it.",
)
@click.pass_context
def feeds_import(ctx: click.Context, opml_file: str, output: str | None) -> None:
    """Turn an OPML subscription list into a `feeds:` block to add.

    Folders become tags. Feeds already in the configuration (same URL) are
    left out when the configuration can be read.
    """
    from newswatch.config import ConfigError, load_config
    from newswatch.opml import OpmlError, feeds_yaml, read_opml_feeds

    try:
        listed = read_opml_feeds(Path(opml_file).read_bytes())
    except (OSError, OpmlError) as exc:
        click.echo(f"newswatch: {opml_file}: {exc}", err=True)
        raise SystemExit(1) from None
    configured: list[str] = []
    with contextlib.suppress(ConfigError, OSError):  # importing into a new configuration
        configured = [f.url for f in load_config(ctx.obj["config_path"]).config.feeds if f.url]
    text = feeds_yaml(listed, skip_urls=configured)
    if output is None:
        click.echo(text, nl=False)
        return
    target = Path(output)
    try:
        with target.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        click.echo(f"newswatch: {output} exists; choose another file", err=True)
        raise SystemExit(1) from None
    click.echo(f"wrote {len(listed)} feeds to {output}", err=True)


@feeds.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the OPML to this file instead of standard output.",
)
@click.pass_context
def feeds_export(ctx: click.Context, output: str | None) -> None:
    """Write the configured feeds as OPML (tags become folders).

    Feeds whose URL carries credentials (user:password, query tokens) and
    local files are left out and counted: an OPML file gets shared.
    """
    from newswatch.opml import OpmlFeed, write_opml
    from newswatch.poll.decide import url_credentials

    loaded = _load(ctx.obj["config_path"])
    out: list[OpmlFeed] = []
    secret = local = 0
    for feed in loaded.config.feeds:
        if feed.path is not None or feed.source.startswith("file:"):
            local += 1
            continue
        if feed.url is not None and url_credentials(feed.url):
            secret += 1
            continue
        out.append(OpmlFeed(feed.source, feed.name or feed.label, feed.tags))
    data = write_opml(out, title=f"newswatch feeds ({loaded.path.name})", now=datetime.now(UTC))
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        Path(output).write_bytes(data)
    skipped = []
    if secret:
        skipped.append(f"{secret} whose URL carries credentials")
    if local:
        skipped.append(f"{local} local file(s)")
    if skipped:
        click.echo(f"exported {len(out)} feeds; left out {' and '.join(skipped)}", err=True)
