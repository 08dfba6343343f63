"""Polling real feeds at scale: newswatch against reader and a bare loop.

    .venv/bin/pip install reader          # the comparison (not a dependency)
    git clone https://github.com/kagisearch/fastfeedparser /tmp/ffp
    .venv/bin/python benchmarks/poll.py --corpus /tmp/ffp/benchmark_data [--feeds 10000]

Builds N renamed, varied copies of the ~200 real feeds of the corpus into a
temporary folder (poll_corpus.py), and serves them from a loopback server in
another process on 50 addresses (127.0.0.1-50: 50 hosts) with the mix of
poll_server.py: 70% unchanged (304), 25% with new items on every poll, 5%
slow, erroring or malformed. Then, each in a fresh process, side by side:

- **newswatch**: the daemon's pool (store claims, per_host 2, 32 slots,
  SQLite), a first cycle over every feed, then a steady-state cycle once
  every feed is due again (``every: 10m``);
- **reader** (lemon24/reader, PyPI): ``update_feeds(workers=W)``, twice;
- **bare loop**: httpx conditional GETs with 32 at a time, no parsing, no
  store: the floor.

Wall time and CPU seconds of each cycle (user+system time of the system's
process and of every process it started, newswatch's parse workers
included; the server is another process), peak RSS summed over those
processes (sampled every 0.25 s) with the main process's own peak, and the most
connections any one host had open at once (the server counts). The
steady-state CPU share is the steady cycle's CPU over the poll interval
(one cycle per 10 minutes). Prints a markdown table and the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

HOSTS = 50
INTERVAL_S = 600  # every feed polled every 10 minutes
RULES = [
    ("russia-north-korea", 'Russia AND "North Korea"'),
    ("ai", '"artificial intelligence" OR AI OR LLM'),
    ("security", "vulnerability OR exploit OR breach"),
    ("python", "Python NOT snake"),
]


# first: every feed new; steady: 25% with new items; quiet: every feed
# unchanged (the server stops adding items), for the cost of a 304.
PHASES = ("first", "steady", "quiet")
PORT = [0]


def before_phase(phase: str) -> None:
    if phase == "quiet":
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT[0]}/_freeze", timeout=10):
            pass


def feed_urls(folder: Path, port: int) -> list[str]:
    names = (folder / "index.txt").read_text().split()
    return [f"http://127.0.0.{n % HOSTS + 1}:{port}/{name}" for n, name in enumerate(names)]


_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _descendants() -> list[int]:
    """Live processes below this one (newswatch's parse workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [os.getpid()]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _proc_rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except OSError:
        return 0


def cpu() -> float:
    """CPU seconds of this process and every process it started: its own,
    those of children that ended (RUSAGE_CHILDREN) and those still running
    (newswatch's parse workers, read from /proc)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total + sum(_proc_cpu(pid) for pid in _descendants())


class TreeRss:
    """Peak of the summed RSS of this process and its live descendants,
    sampled every 0.25 s in a thread (a peak between samples is missed)."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            pids = [os.getpid(), *_descendants()]
            self.peak = max(self.peak, sum(_proc_rss(pid) for pid in pids))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


# --------------------------------------------------------------------------- runners


async def run_newswatch(urls: list[str], work: Path) -> dict[str, Any]:
    import logging
    from datetime import UTC, datetime, timedelta

    from newswatch.config import load_config
    from newswatch.daemon import App

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("newswatch").setLevel(logging.ERROR)
    cfg = work / "newswatch.yaml"
    feeds = "\n".join(f'  - {{url: "{u}", every: 10m}}' for u in urls)
    rules = "\n".join(f"  - {{name: {n}, query: '{q}'}}" for n, q in RULES)
    cfg.write_text(
        f"state: sqlite:///{work}/nw.db\n"
        "poll: {concurrency: 32, per_host: 2, timeout: 20s, jitter: 0}\n"
        f"feeds:\n{feeds}\nrules:\n{rules}\n"
    )
    offset = timedelta(0)

    def clock() -> datetime:
        return datetime.now(UTC) + offset

    loaded = load_config(cfg, env={})
    out: dict[str, Any] = {}
    async with App.open(loaded, clock=clock) as app:
        for phase in PHASES:
            before_phase(phase)
            t0, c0 = time.monotonic(), cpu()
            outcomes = await app.pool.run_due()
            out[phase] = {
                "wall": time.monotonic() - t0,
                "cpu": cpu() - c0,
                "feeds": len(outcomes),
                "changed": sum(o.status == "updated" for o in outcomes),
                "unchanged": sum(o.status in ("not_modified", "unchanged") for o in outcomes),
                "failed": sum(o.failed for o in outcomes),
            }
            offset += timedelta(minutes=11)  # every feed due again
    return out


def run_reader(urls: list[str], work: Path, workers: int) -> dict[str, Any]:
    import logging

    from reader import make_reader

    logging.getLogger("reader").setLevel(logging.CRITICAL)
    r = make_reader(str(work / "reader.sqlite"))
    for url in urls:
        r.add_feed(url)
    out: dict[str, Any] = {}
    for phase in PHASES:
        before_phase(phase)
        t0, c0 = time.monotonic(), cpu()
        results = list(r.update_feeds_iter(workers=workers, scheduled=False))
        changed = sum(1 for x in results if x.updated_feed is not None and x.updated_feed.new)
        errors = sum(1 for x in results if x.error is not None)
        out[phase] = {
            "wall": time.monotonic() - t0,
            "cpu": cpu() - c0,
            "feeds": len(results),
            "changed": changed,
            "failed": errors,
        }
    r.close()
    return out


async def run_bare(urls: list[str]) -> dict[str, Any]:
    import httpx

    etags: dict[str, str] = {}
    out: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(limits=limits, timeout=20) as client:
        gate = asyncio.Semaphore(32)

        async def one(url: str) -> int:
            async with gate:
                headers = {"If-None-Match": etags[url]} if url in etags else {}
                try:
                    resp = await client.get(url, headers=headers)
                except httpx.HTTPError:
                    return 0
                if "etag" in resp.headers:
                    etags[url] = resp.headers["etag"]
                return resp.status_code

        for phase in PHASES:
            before_phase(phase)
            t0, c0 = time.monotonic(), cpu()
            codes = await asyncio.gather(*(one(u) for u in urls))
            out[phase] = {
                "wall": time.monotonic() - t0,
                "cpu": cpu() - c0,
                "feeds": len(codes),
                "unchanged": sum(c == 304 for c in codes),
            }
    return out


# --------------------------------------------------------------------------- driver


def child(args: argparse.Namespace) -> None:
    PORT[0] = args.port
    urls = feed_urls(args.folder, args.port)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{args.runner}-"))
    rss = TreeRss()
    if args.runner == "newswatch":
        result = asyncio.run(run_newswatch(urls, work))
    elif args.runner == "reader":
        result = run_reader(urls, work, args.workers)
    else:
        result = asyncio.run(run_bare(urls))
    result["tree_rss_mb"] = rss.stop() / 2**20
    print(json.dumps(result))


def server_stats(port: int, reset: bool = False) -> dict[str, Any]:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/{'_reset' if reset else '_stats'}", timeout=10
    ) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def measure(runner: str, folder: Path, port: int, workers: int) -> dict[str, Any]:
    server_stats(port, reset=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", runner, str(folder), str(port), str(workers)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        return {"error": f"exit status {status}"}
    result: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    # wait4's ru_maxrss is the largest single process (the main one); the
    # sampled sum over the process tree counts newswatch's parse workers too.
    result["main_rss_mb"] = usage.ru_maxrss / 1024
    result["rss_mb"] = max(result.pop("tree_rss_mb"), result["main_rss_mb"])
    stats = server_stats(port)
    result["max_per_host"] = max(stats["peak"].values(), default=0)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        ns = argparse.Namespace(
            runner=sys.argv[2],
            folder=Path(sys.argv[3]),
            port=int(sys.argv[4]),
            workers=int(sys.argv[5]),
        )
        child(ns)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True, help="fastfeedparser's benchmark_data/")
    ap.add_argument("--feeds", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=16, help="reader's update_feeds(workers=...)")
    ap.add_argument("--only", default="bare,newswatch,reader")
    ap.add_argument("--port", type=int, default=18765)
    args = ap.parse_args()

    from poll_corpus import build

    folder = Path(tempfile.mkdtemp(prefix="bench-feeds-"))
    build(args.corpus, folder, args.feeds)
    server = subprocess.Popen(
        [sys.executable, str(HERE / "poll_server.py"), str(folder), str(HOSTS), str(args.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        results = {r: measure(r, folder, args.port, args.workers) for r in args.only.split(",")}
    finally:
        server.terminate()
        server.wait(10)
    report(results, args)


def changed_cpu(r: dict[str, Any]) -> float:
    """CPU per changed feed in the steady cycle: its CPU less what its
    unchanged and failed feeds cost at the quiet cycle's rate per feed."""
    steady, quiet = r["steady"], r["quiet"]
    per_quiet = quiet["cpu"] / max(quiet["feeds"], 1)
    others = steady["feeds"] - steady.get("changed", 0)
    return max(steady["cpu"] - per_quiet * others, 1e-9) / max(steady.get("changed", 0), 1)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.feeds} feeds on {HOSTS} loopback hosts; load {os.getloadavg()[0]:.2f}\n")
    print(
        "| system | cycle | wall s | CPU s | changed | unchanged | failed "
        "| peak RSS MB, all processes (main) | max conns/host |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error']} |")
            continue
        for phase in PHASES:
            p = r[phase]
            print(
                f"| {name} | {phase} | {p['wall']:.1f} | {p['cpu']:.1f} | {p.get('changed', '')} "
                f"| {p.get('unchanged', '')} | {p.get('failed', '')} "
                f"| {r['rss_mb']:.0f} ({r['main_rss_mb']:.0f}) "
                f"| {r['max_per_host']} |"
            )
    nw = results.get("newswatch")
    if nw is None or "error" in nw:
        return
    steady = nw["steady"]
    print("\nTargets:")
    print(f"- steady cycle wall {steady['wall']:.1f} s (<= 60)")
    print(f"- steady CPU share {100 * steady['cpu'] / INTERVAL_S:.1f}% of one core (<= 15%)")
    print(
        f"- peak RSS {nw['rss_mb']:.0f} MB with the parse workers, "
        f"{nw['main_rss_mb']:.0f} MB the main process (<= 250)"
    )
    print(f"- first cycle wall {nw['first']['wall']:.1f} s (<= 300)")
    print(f"- max connections per host {nw['max_per_host']} (<= 2)")
    rd, bare = results.get("reader"), results.get("bare")
    rd = None if rd is None or "error" in rd else rd
    bare = None if bare is None or "error" in bare else bare
    if rd is not None:
        ratio = changed_cpu(nw) / changed_cpu(rd)
        print(f"- CPU per changed feed, steady: {ratio:.2f}x reader's (<= 0.33)")
        first = nw["first"]["cpu"] / rd["first"]["cpu"]
        print(f"- first cycle CPU: {first:.2f}x reader's")
    if bare is not None:
        quiet = nw["quiet"]
        per_nw = quiet["cpu"] / max(quiet["feeds"], 1)
        per_bare = bare["quiet"]["cpu"] / max(bare["quiet"]["feeds"], 1)
        ratio = per_nw / per_bare
        print(f"- CPU per unchanged feed (quiet cycle): {ratio:.2f}x the bare loop's (<= 2x)")
    if rd is not None:
        quiet_ratio = nw["quiet"]["cpu"] / max(rd["quiet"]["cpu"], 1e-9)
        print(f"- quiet cycle CPU: {quiet_ratio:.2f}x reader's")


if __name__ == "__main__":
    main()
