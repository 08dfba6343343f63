"""`newswatch test`: try rules on a text, a file, a URL, or stored articles.

Prints, per article and rule, matched or not and why. Exit status follows
grep: 0 when something matched, 1 when nothing did, 2 on an error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from newswatch.config import Config, ConfigError, load_config, rule_specs
from newswatch.feeds.fetch import Fetcher
from newswatch.feeds.normalize import html_to_text, normalize_feed
from newswatch.feeds.parse import FeedParseError, parse_feed
from newswatch.keys import feed_key_for
from newswatch.model import Article
from newswatch.notify.redact import link_base, mask_feed_url
from newswatch.rules import RuleIndex, RuleSpec, compile_rules
from newswatch.rules.index import text_article

_HTML_TAG = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z]|!--)")

# `--file` or `--url` bodies larger than this are refused (same spirit as
# poll.max_bytes, but `test` runs without a config's poll settings).
TEST_MAX_BYTES = 20 * 1024 * 1024


def run_test(
    *,
    config_path: str,
    rule_names: Sequence[str],
    query: str | None,
    text: str | None,
    title: str,
    file: str | None,
    url: str | None,
    since: timedelta | None,
    as_json: bool,
) -> int:
    sources = [x for x in (text, file, url, since) if x is not None]
    if len(sources) != 1:
        raise ValueError("give exactly one of --text, --file, --url or --since")
    config = _config_or_none(config_path, need=query is None or since is not None)
    # A text, file or URL comes from no configured feed, so feed scopes are
    # not applied to it; stored articles (--since) keep theirs.
    index, names = _index(config, query, rule_names, scoped=since is not None)

    if since is not None:
        assert config is not None
        return _backtest(config, index, names, since, as_json)
    if text is not None:
        articles = [_text_article(text, title, "text")]
    elif file is not None:
        articles = _file_articles(Path(file))
    else:
        assert url is not None
        articles = asyncio.run(_url_articles(url))

    results = [(a, [index.explain(n, a) for n in names]) for a in articles]
    matched = any(v.matched for _, verdicts in results for v in verdicts)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "matched": matched,
                    "articles": [
                        {
                            "title": a.title,
                            "link": a.link,
                            "results": [v.to_dict() for v in verdicts],
                        }
                        for a, verdicts in results
                    ],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for article, verdicts in results:
            click.echo(
                f"{article.title or '(untitled)'}" + (f" <{article.link}>" if article.link else "")
            )
            for v in verdicts:
                if v.matched:
                    terms = ", ".join(v.explanation.terms)
                    click.echo(click.style(f"  MATCH  {v.rule}", fg="green") + f"  {terms}")
                    if v.explanation.snippet:
                        click.echo(
                            f"         {_mark(v.explanation.snippet, v.explanation.highlights)}"
                        )
                else:
                    click.echo(f"  miss   {v.rule}  {v.reason}")
    return 0 if matched else 1


def _config_or_none(path: str, *, need: bool) -> Config | None:
    try:
        return load_config(path).config
    except ConfigError:
        if need:
            raise
        return None


def _index(
    config: Config | None, query: str | None, rule_names: Sequence[str], *, scoped: bool
) -> tuple[RuleIndex, list[str]]:
    aliases = config.aliases if config else {}
    if query is not None:
        return compile_rules([RuleSpec(name="query", query=query)], aliases), ["query"]
    assert config is not None
    specs = rule_specs(config)
    if rule_names:
        known = {s.name for s in specs}
        missing = [n for n in rule_names if n not in known]
        if missing:
            raise ValueError(f"no rule named {', '.join(map(repr, missing))} in the configuration")
        specs = [s for s in specs if s.name in rule_names]
    if not scoped:
        specs = [dataclasses.replace(s, scope=()) for s in specs]
    index = compile_rules(specs, aliases)
    return index, [s.name for s in specs]


def _text_article(text: str, title: str, source: str) -> Article:
    """A stand-alone Article; without a title, the first line is the title."""
    # Plain text keeps its lines (the first is the title); HTML is reduced to text.
    body = html_to_text(text) if _HTML_TAG.search(text) else text
    if not title:
        first, _, rest = body.strip().partition("\n")
        title, body = first.strip(), rest.strip() or body
    return text_article(body, title=title, source=source)


def _file_articles(path: Path) -> list[Article]:
    data = path.read_bytes()[:TEST_MAX_BYTES]
    try:
        parsed = parse_feed(data, url=path.resolve().as_uri())
    except FeedParseError:
        return [_text_article(data.decode("utf-8", errors="replace"), "", path.name)]
    return normalize_feed(
        parsed, feed_key=path.resolve().as_uri(), source=path.name, tags=(), base_url=None
    )


async def _url_articles(url: str) -> list[Article]:
    # The URL may carry credentials or a token: people see it masked, and
    # relative links resolve without its query (as in a poll).
    label = mask_feed_url(url)
    async with Fetcher(concurrency=1, per_host=1, timeout=30.0, max_bytes=TEST_MAX_BYTES) as f:
        result = await f.fetch(feed_key_for(url), url)
    if result.error is not None or result.body is None:
        raise ValueError(f"{label}: {result.error or 'empty response'}")
    base = link_base(result.url)
    try:
        parsed = parse_feed(result.body, url=base, content_type=result.content_type, label=label)
    except FeedParseError:
        return [_text_article(result.body.decode("utf-8", errors="replace"), "", label)]
    return normalize_feed(parsed, feed_key=feed_key_for(url), source=label, tags=(), base_url=base)


def _backtest(
    config: Config, index: RuleIndex, names: list[str], since: timedelta, as_json: bool
) -> int:
    from newswatch.daemon import state_url
    from newswatch.schedule import in_window
    from newswatch.store.sql import open_store

    cutoff = datetime.now(UTC) - since
    wanted = set(names)
    counts: Counter[str] = Counter()
    hits: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    total = 0
    with open_store(state_url(config), read_only=True) as store:
        for article in store.iter_articles(cutoff):
            # The window is on publication time (first seen without one): a
            # post from 2019 found yesterday is not from the last 24 hours.
            if not in_window(article, cutoff, first_seen=cutoff):
                continue
            total += 1
            for m in index.match(article):
                if m.rule in wanted:
                    counts[m.rule] += 1
                    hits[m.rule].append({"title": article.title, "link": article.link})
    if as_json:
        click.echo(
            json.dumps(
                {"articles": total, "since": cutoff.isoformat(), "rules": hits},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        click.echo(f"{total} stored articles since {cutoff:%Y-%m-%d %H:%M} UTC")
        for name in names:
            click.echo(f"  {name}: {counts[name]} match(es)")
            for hit in hits[name][:20]:
                click.echo(f"    - {hit['title']} <{hit['link']}>")
            if counts[name] > 20:
                click.echo(f"    ... and {counts[name] - 20} more")
    return 0 if counts else 1


def _mark(snippet: str, spans: Sequence[tuple[int, int]]) -> str:
    out, last = [], 0
    for start, end in sorted(spans):
        out.append(snippet[last:start])
        out.append(click.style(snippet[start:end], bold=True, underline=True))
        last = end
    out.append(snippet[last:])
    return "".join(out)
