"""The `newswatch` command line."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import httpx

from newswatch.config import (
    Config,
    ConfigError,
    LoadedConfig,
    Problem,
    load_config,
    parse_duration,
)
from newswatch.notify.redact import mask_feed_url

if TYPE_CHECKING:
    from newswatch.store.sql import SqlStore

CONFIG_HELP = "Configuration file (env NEWSWATCH_CONFIG)."
DEFAULT_CONFIG = "config/newswatch.yaml"


def _version() -> str:
    try:
        return version("newswatch")
    except PackageNotFoundError:  # running from a source tree
        return "dev"


def _setup_logging(level: str, fmt: str = "text") -> None:
    from newswatch.logs import setup_logging

    setup_logging(level, "json" if fmt == "json" else "text")


def _load(path: str) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"newswatch: configuration has {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None


def _open_state(config: Config, *, read_only: bool = True) -> SqlStore:
    """The configuration's state database; use it in a ``with`` block.

    Read-only (commands that show what is stored): nothing is created or
    migrated and the write lock is never taken, so another process writing
    does not stop it; a database not created yet reads as empty. Otherwise
    the schema is created or upgraded and writes wait for the lock.
    """
    from newswatch.daemon import state_url
    from newswatch.store.errors import StateMissingError
    from newswatch.store.sql import open_store

    url = state_url(config)
    if not read_only:
        return open_store(url)
    try:
        return open_store(url, read_only=True)
    except StateMissingError as exc:
        click.echo(f"newswatch: {exc}; nothing stored yet", err=True)
        return open_store("sqlite://")  # an empty state, in memory


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    default=DEFAULT_CONFIG,
    show_default=True,
    envvar="NEWSWATCH_CONFIG",
    type=click.Path(dir_okay=False),
    help=CONFIG_HELP,
)
log_option = click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    help="How much to log (to stderr).",
)
log_format_option = click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="Log lines as text, or as one JSON object per line.",
)


class _Main(click.Group):
    """The command group: a state database that cannot be used (locked by
    another process past the wait, missing, an old schema) ends a command
    with one line and its exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from newswatch.store.errors import EXIT_BUSY, StateError

        try:
            return super().invoke(ctx)
        except StateError as exc:
            click.echo(f"newswatch: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except Exception as exc:
            from newswatch.store._busy import is_busy

            if not is_busy(exc):
                raise
            click.echo("newswatch: the state database is locked by another process", err=True)
            ctx.exit(EXIT_BUSY)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="newswatch")
def main() -> None:
    """newswatch: poll news feeds, match watch rules, send alerts.

    Start with `newswatch check` to validate a configuration, `newswatch poll
    --once --dry-run` to see what it would alert on, then `newswatch run`.
    """


@main.command()
@config_option
@log_option
@log_format_option
def run(config_path: str, log_level: str, log_format: str) -> None:
    """Run the daemon until Ctrl-C or SIGTERM.

    Polls the configured feeds on their schedules, matches new articles,
    delivers alerts, and reloads the configuration and rule files when they
    change (a bad edit is reported and the previous rules keep running).
    """
    from newswatch.daemon import App, Daemon

    _setup_logging(log_level, log_format)
    loaded = _load(config_path)
    for problem in _exposed(loaded):
        logging.getLogger("newswatch.daemon").warning("%s", problem)

    async def go() -> None:
        async with App.open(loaded) as app:
            await Daemon(app).run()

    asyncio.run(go())


@main.command()
@config_option
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (editors, CI).")
def check(config_path: str, strict: bool, as_json: bool) -> None:
    """Validate the configuration, print what it holds and what looks wrong.

    Errors (the daemon would refuse the file) exit 1. Warnings (it loads, but
    something will not alert as you expect) are printed and exit 0, or 1
    with --strict. --json prints {"ok", "errors", "warnings", "summary"}.
    """
    try:
        loaded = load_config(config_path)
    except ConfigError as exc:
        if as_json:
            _print_json(False, exc.details, [], {"config": config_path})
        else:
            click.echo(f"newswatch: configuration has {len(exc.problems)} problem(s):", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
        raise SystemExit(1) from None
    warnings = loaded.warnings() + _missing_feed_files(loaded) + _exposed(loaded)
    failed = strict and bool(warnings)
    summary = _check_summary(loaded)
    if as_json:
        _print_json(not failed, [], warnings, summary)
        raise SystemExit(1 if failed else 0)
    _print_summary(loaded, summary, len(warnings), failed)
    for warning in warnings:
        click.echo(f"  {warning}", err=True)
    if warnings:
        tail = " (--strict: exit 1)" if failed else "; --strict makes them fail the check"
        click.echo(f"{len(warnings)} warning(s){tail}", err=True)
    raise SystemExit(1 if failed else 0)


def _exposed(loaded: LoadedConfig) -> list[Problem]:
    """State and secret files other users can read (``newswatch.filemodes``)."""
    from newswatch.daemon import state_url
    from newswatch.filemodes import exposed

    return exposed(loaded, state_url(loaded.config))


def _missing_feed_files(loaded: LoadedConfig) -> list[Problem]:
    """Local feeds whose file is not there (yet): a warning, since it may appear."""
    return [
        loaded.locations.problem(
            ("feeds", i, "path"),
            f"feed {feed.label!r}: {feed.path} does not exist (yet); polls will fail",
            "warning",
        )
        for i, feed in enumerate(loaded.config.feeds)
        if feed.path is not None and not Path(feed.path).is_file()
    ]


def _check_summary(loaded: LoadedConfig) -> dict[str, Any]:
    """What the configuration holds, secrets masked (channels describe themselves)."""
    from newswatch.daemon import safe_url, state_url

    config = loaded.config
    stats = loaded.index.stats()
    return {
        "config": str(loaded.path),
        "files": [str(f) for f in loaded.files],
        "timezone": config.timezone,
        "state": safe_url(state_url(config)),
        "feeds": len(config.feeds),
        "rules": len(config.rules),
        "rules_enabled": stats.rules,
        "rules_always_evaluated": stats.always_candidates,
        "channels": asyncio.run(_describe_channels(config)),
    }


def _print_summary(
    loaded: LoadedConfig, summary: dict[str, Any], warnings: int, failed: bool
) -> None:

    config = loaded.config
    if failed:
        click.echo(f"{loaded.path}: {warnings} warning(s), failing with --strict")
    else:
        click.echo(f"{loaded.path}: OK" + (f", {warnings} warning(s)" if warnings else ""))
    click.echo(f"  timezone  {summary['timezone']}")
    click.echo(f"  state     {summary['state']}")
    click.echo(f"  feeds     {len(config.feeds)}")
    for feed in config.feeds:
        every = feed.every or config.poll.every
        extra = f" tags={','.join(feed.tags)}" if feed.tags else ""
        extra += f" backfill={feed.backfill}" if feed.backfill else ""
        # Never the URL itself: it may carry credentials or a token.
        where = feed.path if feed.path is not None else mask_feed_url(feed.source)
        shown = feed.label if feed.label == where else f"{feed.label} ({where})"
        click.echo(f"    - {shown} every {every}{extra}")
    always = summary["rules_always_evaluated"]
    click.echo(f"  rules     {len(config.rules)} ({always} always evaluated)")
    for rule in config.rules:
        targets = ", ".join(t.channel for t in rule.notify) or "(no channels: matched, not sent)"
        state = "" if rule.enabled else " [disabled]"
        click.echo(f"    - {rule.name}{state} -> {targets}")
    click.echo(f"  channels  {len(config.channels)}")
    for name, description in summary["channels"].items():
        click.echo(f"    - {name}: {description}")


def _print_json(
    ok: bool, errors: Sequence[Problem], warnings: Sequence[Problem], summary: dict[str, Any]
) -> None:
    document = {
        "ok": ok,
        "errors": [p.to_json() for p in errors],
        "warnings": [p.to_json() for p in warnings],
        "summary": summary,
    }
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@main.command()
@config_option
@log_option
@log_format_option
@click.option("--once", is_flag=True, help="Poll every feed once, deliver, then exit.")
@click.option("--dry-run", is_flag=True, help="Print matches; store and send nothing.")
@click.option(
    "--fail-on",
    type=click.Choice(["none", "any", "all"]),
    default="any",
    show_default=True,
    help="Exit 1 when this many feeds failed (cron, CI).",
)
def poll(
    config_path: str, log_level: str, log_format: str, once: bool, dry_run: bool, fail_on: str
) -> None:
    """Poll every feed once, match, deliver, and exit (`poll --once`).

    Exit status 1 when a feed failed (--fail-on any, the default), only
    when every feed failed (--fail-on all), or never (--fail-on none).
    With --dry-run, every entry of every feed is matched (seen or not) and
    the matches are printed; nothing is stored or sent.
    """
    if not once:
        click.echo(
            "newswatch: `poll` runs one pass and exits: use `newswatch poll --once` "
            "(add --dry-run to only print matches); to poll continuously, run the "
            "daemon: `newswatch run`",
            err=True,
        )
        raise SystemExit(2)
    from newswatch.daemon import App

    _setup_logging(log_level, log_format)
    loaded = _load(config_path)

    async def go() -> int:
        async with App.open(loaded) as app:
            if dry_run:
                outcomes = await app.poller.dry_run()
                for o in outcomes:
                    if o.error:
                        click.echo(f"{o.name}: FAILED: {o.error}")
                        continue
                    click.echo(f"{o.name}: {o.entries} entries, {len(o.matches)} matches")
                    for m in o.matches:
                        terms = ", ".join(m.explanation.terms)
                        click.echo(f"  [{m.rule}] {m.article.title} <{m.article.link}> ({terms})")
                return _fail_code(fail_on, len(outcomes), sum(o.failed for o in outcomes))
            from newswatch.poll import summarize

            outcomes = await app.poller.poll_all()
            stats = await app.deliverer.drain()
            click.echo(f"polled {summarize(outcomes)}; delivered: {stats}")
            for o in outcomes:
                if o.error:
                    what = {"gone": "GONE", "deferred": "NOT RECORDED"}.get(o.status, "FAILED")
                    click.echo(f"  {o.name}: {what}: {o.error}", err=True)
            return _fail_code(fail_on, len(outcomes), sum(o.failed for o in outcomes))

    raise SystemExit(asyncio.run(go()))


def _fail_code(fail_on: str, total: int, failed: int) -> int:
    if fail_on == "any":
        return 1 if failed else 0
    if fail_on == "all":
        return 1 if total and failed == total else 0
    return 0


@main.command()
@config_option
def migrate(config_path: str) -> None:
    """Create the state database, or upgrade its schema to this version.

    `newswatch run` and `poll --once` do this at start too; the commands that
    only show what is stored (feeds, outbox, channels) never do, and ask for
    this when the schema is old. Safe to run again, and while the daemon runs
    (it waits for the write lock).
    """
    from newswatch.daemon import state_url
    from newswatch.store import SCHEMA_VERSION, SqlStore

    loaded = _load(config_path)
    with SqlStore(state_url(loaded.config)) as store:
        found = store.create_schema()
        where = store.where
    if found is None:
        click.echo(f"{where}: created, schema version {SCHEMA_VERSION}")
    elif found < SCHEMA_VERSION:
        click.echo(f"{where}: upgraded from schema version {found} to {SCHEMA_VERSION}")
    else:
        click.echo(f"{where}: schema version {SCHEMA_VERSION}, nothing to do")


@main.command("test")
@config_option
@click.option("--rule", "rule_names", multiple=True, help="Only this rule (repeatable).")
@click.option("--query", "query", help="Test this query instead of the configured rules.")
@click.option("--text", help="Article text to test against.")
@click.option("--title", default="", help="Title for --text.")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False),
    help="An article text file or a feed file.",
)
@click.option("--url", help="A feed or page URL to fetch and test.")
@click.option("--since", help="Backtest over articles already stored, e.g. 7d.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def test_cmd(
    config_path: str,
    rule_names: Sequence[str],
    query: str | None,
    text: str | None,
    title: str,
    file_: str | None,
    url: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """Test rules against a text, a file, a URL or stored articles.

    Exit status like grep: 0 when something matched, 1 when nothing did,
    2 on an error.
    """
    from newswatch.ruletest import run_test
    from newswatch.store.errors import StateError

    try:
        code = run_test(
            config_path=config_path,
            rule_names=rule_names,
            query=query,
            text=text,
            title=title,
            file=file_,
            url=url,
            since=parse_duration(since) if since else None,
            as_json=as_json,
        )
    except (ConfigError, ValueError, StateError) as exc:
        _fail(str(exc))
    raise SystemExit(code)


async def _describe_channels(config: Config) -> dict[str, str]:
    """Each channel's own description (secrets masked), without sending."""
    from newswatch.notify.channels import build_channels

    async with httpx.AsyncClient() as http:
        channels = build_channels(config.channels, http=http)
        return {name: channel.describe() for name, channel in channels.items()}


def _fail(message: str) -> NoReturn:
    click.echo(f"newswatch: {message}", err=True)
    raise SystemExit(2)


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    delta = (when - datetime.now(UTC)).total_seconds()
    word = "in " if delta > 0 else ""
    suffix = "" if delta > 0 else " ago"
    delta = abs(delta)
    if delta < 90:
        amount = f"{delta:.0f}s"
    elif delta < 5400:
        amount = f"{delta / 60:.0f}m"
    elif delta < 172800:
        amount = f"{delta / 3600:.0f}h"
    else:
        amount = f"{delta / 86400:.0f}d"
    return f"{word}{amount}{suffix}"


def _table(rows: Sequence[Sequence[str]], summary: str | None = None) -> None:
    """Aligned columns cut to the terminal's width, and a summary line."""
    from newswatch.clitable import print_table

    print_table(rows, summary)


# The delivery commands (outbox, channels, digest) and the operator commands
# (mute, mutes, unmute, status) register on `main`.
from newswatch import cli_delivery, cli_feeds, cli_ops  # noqa: E402, F401
