"""One poll cycle of many local feeds: wall time and CPU, first and second poll.

    .venv/bin/python benchmarks/poll.py [--feeds 200] [--items 30]

A separate process serves N generated RSS feeds (30 items of ~1.5 KB each)
on 127.0.0.1 with ETag / Last-Modified, so the measured process only does
newswatch's work. Measured in the same run:

- newswatch, first poll: fetch, parse, normalize, dedup, match (the example
  rules), store every entry in a fresh SQLite file.
- newswatch, second poll: every feed answers 304 Not Modified.
- baseline: the straightforward loop a script would do, one feed after the
  other: httpx GET + feedparser.parse on each, no store, no matching, no
  conditional GET.

CPU is this process's user+system time (resource.getrusage), so the feed
server's work is excluded. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import hashlib
import http.server
import io
import multiprocessing
import platform
import random
import resource
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

WORDS = [
    "Seoul",
    "Russia",
    "China",
    "Japan",
    "minister",
    "talks",
    "sanctions",
    "missile",
    "defense",
    "economy",
    "market",
    "trade",
    "summit",
    "official",
    "policy",
    "nuclear",
    "rail",
    "energy",
    "report",
    "court",
    "election",
    "budget",
    "council",
    "weather",
    "festival",
    "technology",
    "startup",
    "industry",
]


def make_feed(n: int, items: int) -> bytes:
    rng = random.Random(n)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>',
        f"<title>Feed {n}</title><link>http://example.org/{n}</link>",
    ]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(items):
        title = " ".join(rng.choice(WORDS) for _ in range(8))
        body = " ".join(rng.choice(WORDS) for _ in range(220))
        date = email.utils.format_datetime(base + timedelta(minutes=n * items + i))
        out.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>http://example.org/{n}/{i}?utm_source=rss</link>"
            f"<guid>feed{n}-item{i}</guid><pubDate>{date}</pubDate>"
            f"<description>{escape(body)}</description></item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode()


def serve(port_queue: Any, feeds: int, items: int) -> None:
    bodies = {f"/feed/{n}.xml": make_feed(n, items) for n in range(feeds)}
    etags = {k: '"' + hashlib.sha1(v).hexdigest() + '"' for k, v in bodies.items()}
    modified = email.utils.format_datetime(datetime(2026, 11, 1, tzinfo=UTC), usegmt=True)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            if body is None:
                self.send_error(404)
                return
            if self.headers.get("If-None-Match") == etags[self.path]:
                self.send_response(304)
                self.send_header("ETag", etags[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etags[self.path])
            self.send_header("Last-Modified", modified)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        # socketserver's default backlog of 5 overflows when 32 clients
        # connect at once, and the kernel retries the dropped SYNs after 1 s.
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def measure(fn: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[float, float, Any]:
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = asyncio.run(fn())
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--items", type=int, default=30)
    args = ap.parse_args()

    from newswatch.config import load_config
    from newswatch.daemon import App

    queue: Any = multiprocessing.Queue()
    proc = multiprocessing.Process(target=serve, args=(queue, args.feeds, args.items), daemon=True)
    proc.start()
    port = queue.get(timeout=30)
    urls = [f"http://127.0.0.1:{port}/feed/{n}.xml" for n in range(args.feeds)]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass

    rules = (
        "rules:\n"
        "  - {name: rnk, query: 'Russia AND \"North Korea\"', notify: [console]}\n"
        "  - {name: sanctions, query: 'sanctions NEAR/3 Russia', notify: [console]}\n"
        "  - {name: thaad, all: [missile, defense], none: [weather], notify: [console]}\n"
    )

    def config(tmp: str, db: str, backfill: bool) -> Any:
        cfg = Path(tmp) / f"{db}.yaml"
        extra = ", backfill: all" if backfill else ""
        feed_lines = "\n".join(f"  - {{url: '{u}'{extra}}}" for u in urls)
        cfg.write_text(
            f"state: sqlite:///{tmp}/{db}.db\n"
            "poll: {concurrency: 32, per_host: 32, timeout: 30s}\n"
            f"feeds:\n{feed_lines}\n"
            "channels:\n  console: {type: console}\n" + rules,
            encoding="utf-8",
        )
        return load_config(cfg, env={})

    def cycle(loaded: Any) -> Callable[[], Coroutine[Any, Any, Any]]:
        async def one_cycle() -> Any:
            async with App.open(loaded, out=io.StringIO()) as app:
                return await app.poller.poll_all()

        return one_cycle

    with tempfile.TemporaryDirectory() as tmp:
        plain = config(tmp, "plain", backfill=False)
        # Same store file both times: the second cycle has every ETag.
        wall_first, cpu_first, outcomes1 = measure(cycle(plain))
        wall_304, cpu_304, outcomes2 = measure(cycle(plain))
        # With backfill every entry is matched and its alerts queued.
        wall_bf, cpu_bf, outcomes_bf = measure(cycle(config(tmp, "backfill", backfill=True)))

    async def baseline() -> int:
        import feedparser
        import httpx

        n = 0
        async with httpx.AsyncClient() as client:
            for url in urls:
                body = (await client.get(url)).content
                n += len(feedparser.parse(body).entries)
        return n

    wall_base, cpu_base, entries_base = measure(baseline)
    proc.terminate()
    proc.join(5)

    new1 = sum(o.new_articles for o in outcomes1)
    failed1 = sum(o.status == "failed" for o in outcomes1)
    nm2 = sum(o.status == "not_modified" for o in outcomes2)
    print(f"# poll cycle benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"python {platform.python_version()}, {platform.machine()}, {_cpu_model()}")
    print(f"{args.feeds} feeds x {args.items} items, served from a separate process on loopback")
    print("(each newswatch row includes opening the store and clients)\n")
    print("| run | wall s | CPU s | feeds/s (wall) | result |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| newswatch first poll | {wall_first:.2f} | {cpu_first:.2f} "
        f"| {args.feeds / wall_first:.0f} | {new1} new articles stored, {failed1} failed |"
    )
    print(
        f"| newswatch second poll (all 304) | {wall_304:.2f} | {cpu_304:.2f} "
        f"| {args.feeds / wall_304:.0f} | {nm2} of {args.feeds} not modified |"
    )
    alerts = sum(o.new_alerts for o in outcomes_bf)
    print(
        f"| newswatch first poll, `backfill: all` (every entry matched) | {wall_bf:.2f} "
        f"| {cpu_bf:.2f} | {args.feeds / wall_bf:.0f} | {alerts} alerts queued |"
    )
    print(
        f"| baseline: sequential GET + feedparser | {wall_base:.2f} | {cpu_base:.2f} "
        f"| {args.feeds / wall_base:.0f} | {entries_base} entries parsed, nothing stored |"
    )
    print(
        f"\nfirst poll / baseline: wall {wall_first / wall_base:.2f}x, "
        f"CPU {cpu_first / cpu_base:.2f}x"
    )
    print(
        f"second poll / baseline: wall {wall_304 / wall_base:.2f}x, CPU {cpu_304 / cpu_base:.2f}x"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
