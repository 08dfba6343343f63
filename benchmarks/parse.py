"""Feed parsing on real feeds: CPU per feed and agreement, side by side.

    .venv/bin/python benchmarks/parse.py --corpus DIR [--repeat 3] [--diffs]

DIR holds one fetched feed document per file. The real-world corpus used for
docs/decisions.md is ``benchmark_data/`` of the public repository
kagisearch/fastfeedparser (about 200 feeds): check it out anywhere outside
this repository (``git clone``, or the search tool's ``fetch`` followed by
``git --git-dir=... archive HEAD | tar x``). It is never committed here.
Without ``--corpus`` the small hand-written feeds of tests/data/feeds are
used.

Each feed is parsed by every configuration in turn (so machine noise hits
them alike), and each result goes through newswatch's normalization:

- ``feedparser default``: sanitizer and relative-URI rewriting on (the
  baseline: what newswatch did before).
- ``feedparser, no sanitize/resolve``: ``sanitize_html=False,
  resolve_relative_uris=False`` (what ``parse_xml`` uses now).
- ``fastfeedparser``: the PyPI package, if installed, mapped to the same
  ``ParsedEntry`` fields.
- ``newswatch parse_feed``: the adopted path end to end (charref repair,
  JSON Feed, feedparser with the adopted options).

``--pool N`` also parses the whole corpus through ``ParsePool(N)`` and, as
the baseline, ``InlineParser`` (a thread of this process), reporting wall
time and the CPU this process spent (the event loop's share).

"Same articles" compares, per feed, the normalized articles' keys, titles,
links and dates against the baseline; "same text" also compares summary,
content, author and categories. A feed that every configuration rejects
counts as the same. CPU is this process's time (time.process_time), the
minimum over ``--repeat`` runs per feed. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from newswatch.feeds.normalize import normalize_feed  # noqa: E402
from newswatch.feeds.parse import FeedParseError, parse_feed, parse_xml  # noqa: E402
from newswatch.feeds.parsepool import InlineParser, ParsePool  # noqa: E402
from newswatch.feeds.parsepool import Parser as Parser_  # noqa: E402
from newswatch.model import ParsedEntry, ParsedFeed  # noqa: E402

DEFAULT_CORPUS = ROOT / "tests" / "data" / "feeds"
BASE = "https://corpus.example/feeds/"

Parser = Callable[[bytes, str], ParsedFeed]


def feedparser_default(body: bytes, url: str) -> ParsedFeed:
    options = {"sanitize_html": True, "resolve_relative_uris": True}
    return parse_xml(body, url=url, options=options)


def feedparser_fast(body: bytes, url: str) -> ParsedFeed:
    return parse_xml(body, url=url)


def newswatch(body: bytes, url: str) -> ParsedFeed:
    return parse_feed(body, url=url)


def _ffp_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # feedparser keeps whole seconds; so does this mapping, to compare like with like.
    parsed = parsed.replace(microsecond=0)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fastfeedparser_parse(body: bytes, url: str) -> ParsedFeed:
    import fastfeedparser  # bytes only: a str that looks like a URL is fetched

    try:
        result = fastfeedparser.parse(body)
    except Exception as exc:  # it raises ValueError and friends on non-feeds
        raise FeedParseError(f"fastfeedparser: {exc}") from None
    entries = []
    for e in result.get("entries", ()):
        blocks = e.get("content") or ()
        content = max((b.get("value") or "" for b in blocks), key=len, default="")
        summary = e.get("description") or e.get("summary") or ""
        if content == summary:  # it copies the description into content; feedparser does not
            content = ""
        published, updated = _ffp_time(e.get("published")), _ffp_time(e.get("updated"))
        link = (e.get("link") or "").strip()
        entries.append(
            ParsedEntry(
                guid=(e.get("id") or "").strip() or None,
                link=urljoin(url, link) if link else None,  # feedparser resolves links
                title=e.get("title") or "",
                summary=summary,
                content=content,
                author=e.get("author") or "",
                categories=tuple(t.get("term") or "" for t in e.get("tags") or () if t.get("term")),
                published=published or updated,
                updated=updated,
            )
        )
    feed = result.get("feed", {})
    return ParsedFeed(title=feed.get("title") or "", link=feed.get("link"), entries=tuple(entries))


Fingerprint = tuple[tuple[Any, ...], tuple[Any, ...]] | str


def fingerprint(parse: Parser, body: bytes, url: str) -> tuple[Fingerprint, float]:
    """(what the articles say, CPU seconds of the parse)."""
    start = time.process_time()
    try:
        parsed = parse(body, url)
    except FeedParseError:
        return "error", time.process_time() - start
    cpu = time.process_time() - start
    articles = normalize_feed(parsed, feed_key="k", source="s", base_url=url)
    keys = tuple((a.entry_key, a.title, a.link, a.published) for a in articles)
    text = tuple((a.summary, a.content, a.author, a.categories) for a in articles)
    return (keys, text), cpu


def first_difference(a: Fingerprint, b: Fingerprint) -> str:
    if isinstance(a, str) or isinstance(b, str):
        return f"{a if isinstance(a, str) else 'ok'} vs {b if isinstance(b, str) else 'ok'}"
    if len(a[0]) != len(b[0]):
        return f"{len(a[0])} vs {len(b[0])} entries"
    names = ("key", "title", "link", "published", "summary", "content", "author", "categories")
    for (ka, ta), (kb, tb) in zip(zip(*a, strict=True), zip(*b, strict=True), strict=True):
        for name, x, y in zip(names, ka + ta, kb + tb, strict=True):
            if x != y:
                return f"{name}: {str(x)[:70]!r} vs {str(y)[:70]!r}"
    return "same"


async def compare_pool(files: list[Path], workers: int) -> str:
    """Wall time and this process's CPU to parse every file: in a thread of
    threads of this process (asyncio.to_thread), and through ParsePool(workers)."""
    bodies = [(p.read_bytes(), BASE + p.name) for p in files]
    rows = []
    parsers: list[tuple[str, Parser_]] = [
        ("InlineParser (threads of this process)", InlineParser()),
        (f"ParsePool({workers})", ParsePool(workers)),
    ]
    for name, parser in parsers:
        async with parser:
            wall, cpu = time.perf_counter(), time.process_time()
            results = await asyncio.gather(
                *(
                    parser.parse(body, url=url, content_type=None, deadline=60)
                    for body, url in bodies
                ),
                return_exceptions=True,
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        ok = sum(not isinstance(r, BaseException) for r in results)
        rows.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {ok}/{len(bodies)} |")
    head = "| parser | wall s | CPU s in this process | parsed |\n|---|---:|---:|---:|"
    return "\n".join([head, *rows])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--diffs", action="store_true", help="list feeds that differ")
    parser.add_argument(
        "--pool", type=int, default=0, metavar="N", help="also time ParsePool(N) against inline"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # skipped-entry warnings are not the point here

    parsers: dict[str, Parser] = {
        "feedparser default (baseline)": feedparser_default,
        "feedparser, no sanitize/resolve": feedparser_fast,
    }
    try:
        import fastfeedparser  # noqa: F401

        parsers["fastfeedparser"] = fastfeedparser_parse
    except ImportError:
        print("fastfeedparser is not installed: its row is left out", file=sys.stderr)
    parsers["newswatch parse_feed (adopted)"] = newswatch

    files = sorted(p for p in args.corpus.iterdir() if p.is_file())
    cpu: dict[str, list[float]] = {name: [] for name in parsers}
    same_keys = dict.fromkeys(parsers, 0)
    same_text = dict.fromkeys(parsers, 0)
    diffs: dict[str, list[str]] = {name: [] for name in parsers}
    baseline_name = next(iter(parsers))
    for path in files:
        body = path.read_bytes()
        url = BASE + path.name
        prints: dict[str, Fingerprint] = {}
        for name, parse in parsers.items():
            best = float("inf")
            for _ in range(args.repeat):
                prints[name], seconds = fingerprint(parse, body, url)
                best = min(best, seconds)
            cpu[name].append(best)
        base = prints[baseline_name]
        for name, fp in prints.items():
            same = fp == base
            keys_same = same or (
                not isinstance(fp, str) and not isinstance(base, str) and fp[0] == base[0]
            )
            same_keys[name] += keys_same
            same_text[name] += same
            if not same:
                diffs[name].append(f"{path.name}: {first_difference(base, fp)}")

    base_total = sum(cpu[baseline_name])
    print(
        f"{len(files)} feeds from {args.corpus}, {sum(len(p.read_bytes()) for p in files):,} bytes"
    )
    print()
    print(
        "| parser | CPU ms/feed (mean) | median | total s | vs baseline "
        "| same articles | same text |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in parsers:
        total = sum(cpu[name])
        print(
            f"| {name} | {1000 * total / len(files):.1f} | "
            f"{1000 * statistics.median(cpu[name]):.1f} | {total:.2f} | "
            f"{total / base_total:.2f}x | {same_keys[name]}/{len(files)} | "
            f"{same_text[name]}/{len(files)} |"
        )
    if args.pool:
        print()
        print(asyncio.run(compare_pool(files, args.pool)))
    if args.diffs:
        for name, lines in diffs.items():
            if lines:
                print(f"\n{name}: {len(lines)} differ from the baseline")
                for line in lines:
                    print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
