"""SQLite write contention: how long an ingest holds the write lock, and what
a lock held by another process does to a first poll of many feeds.

    .venv/bin/python benchmarks/contention.py [--feeds 200] [--items 30] [--hold 6]
                                              [--baseline-rev main]

The same measurement runs twice in the same run, each in a fresh process:
on this tree's ``src`` and on ``--baseline-rev`` (default ``main``, taken
with ``git archive``, so nothing is checked out). Each process:

1. ingests ``--feeds`` feeds of ``--items`` matching entries each (a first
   poll: articles, stories, matches, outbox rows) from one thread on a
   quiet process, and records how long each ingest held the write lock
   (BEGIN IMMEDIATE to COMMIT): the Python work done under the lock;
2. the same from 8 worker threads while 2 threads burn CPU (parsing's GIL
   pressure, as in a first poll of many feeds), counting failed ingests;
3. the same again while a second process holds the write lock for
   ``--hold`` seconds (past SQLite's 5 s busy timeout), from the moment the
   first ingests are done, counting failed ingests.

Prints a markdown table. The lock-hold figures are a ratio on a noisy
machine; the failure counts are exact.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the measured process, with PYTHONPATH pointing at one src tree.
_PROBE = r"""
import json, os, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import newswatch.store.sql as sql
from newswatch.model import Article, DeliveryMode, Explanation, Hit, Match, Route
from newswatch.store import FeedSpec, FeedUpdate, IngestItem, open_store

feeds, per_feed, hold, folder = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
T0 = datetime(2025, 3, 1, tzinfo=UTC)
EXPLANATION = Explanation(hits=(Hit("russia", "summary", 0, 6),), snippet="Russia and North Korea")
holds = []
lock = threading.Lock()
original = sql.transaction

@contextmanager
def timed(engine, *, write, **kwargs):
    with original(engine, write=write, **kwargs) as conn:
        began = time.perf_counter()
        yield conn
        if write:
            with lock:
                holds.append(time.perf_counter() - began)

sql.transaction = timed

def items(f):
    out = []
    for i in range(per_feed):
        link = f"https://news.example.org/{f}/{i}"
        a = Article(feed_key=f"feed-{f}", entry_key=link, story_key=f"s{f}-{i}",
                    title=f"Story {f} {i} about Russia", summary="Russia and North Korea sign.",
                    content="", link=link, canonical_url=link, author="", categories=("asia",),
                    published=T0, source=f"feed {f}", tags=("korea",))
        matches = tuple(Match(r, a, EXPLANATION) for r in ("r1", "r2"))
        routes = tuple(Route(r, "hook", DeliveryMode.IMMEDIATE) for r in ("r1", "r2"))
        out.append(IngestItem(article=a, matches=matches, routes=routes,
                              identity_keys=(f"u:news.example.org/{f}/{i}",)))
    return out

def burn(stop):
    while not stop.is_set():
        sum(i * i for i in range(20000))

def run(path, holder, threads=8, n_hogs=2):
    store = open_store(f"sqlite:///{path}")
    store.sync_feeds([FeedSpec(f"feed-{f}", f"feed {f}") for f in range(feeds)], T0)
    prepared = [items(f) for f in range(feeds)]
    stop = threading.Event()
    hogs = [threading.Thread(target=burn, args=(stop,)) for _ in range(n_hogs)]
    for h in hogs:
        h.start()
    done = [0]
    def one(f):
        try:
            update = FeedUpdate(f"feed-{f}", T0, T0 + timedelta(minutes=10), ok=True)
            store.ingest(update, prepared[f])
            return None
        except Exception as exc:
            return type(exc).__name__ + ": " + str(exc).splitlines()[0][:80]
        finally:
            done[0] += 1
    began = time.perf_counter()
    proc = None
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(one, f) for f in range(feeds)]
        if holder:
            while done[0] < 10:
                time.sleep(0.005)
            proc = subprocess.Popen([sys.executable, "-c", HOLD, path, str(hold)],
                                    stdout=subprocess.PIPE, text=True)
            proc.stdout.readline()
        errors = [f.result() for f in futures]
    elapsed = time.perf_counter() - began
    stop.set()
    for h in hogs:
        h.join()
    if proc is not None:
        proc.wait()
    store.close()
    failed = [e for e in errors if e]
    return elapsed, failed

HOLD = "import sqlite3,sys,time\ndb=sqlite3.connect(sys.argv[1],isolation_level=None)\n" \
       "db.execute('BEGIN IMMEDIATE')\nprint('held',flush=True)\ntime.sleep(float(sys.argv[2]))\n" \
       "db.execute('COMMIT')\n"

run(os.path.join(folder, "quiet.db"), holder=False, threads=1, n_hogs=0)
quiet = sorted(h * 1000 for h in holds)
holds.clear()
elapsed, failed = run(os.path.join(folder, "a.db"), holder=False)
ms = sorted(h * 1000 for h in holds)
holds.clear()
elapsed_held, failed_held = run(os.path.join(folder, "b.db"), holder=True)
print(json.dumps({
    "quiet_mean_ms": sum(quiet) / len(quiet), "quiet_max_ms": quiet[-1],
    "hold_mean_ms": sum(ms) / len(ms), "hold_p95_ms": ms[int(len(ms) * 0.95)],
    "hold_max_ms": ms[-1], "elapsed": elapsed, "failed": len(failed),
    "elapsed_held": elapsed_held, "failed_held": len(failed_held),
    "why": sorted(set(failed_held))[:2],
}))
"""


def _baseline_src(rev: str, into: Path) -> Path:
    """``rev``'s src tree, extracted with git archive (no checkout)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _measure(src: Path, feeds: int, items: int, hold: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(feeds), str(items), str(hold), folder],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"measurement on {src} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--hold", type=float, default=6.0)
    parser.add_argument("--baseline-rev", default="main")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_src = _baseline_src(args.baseline_rev, Path(tmp))
        sizes = (args.feeds, args.items, args.hold)
        rows = {
            "this tree": _measure(ROOT / "src", *sizes),
            f"baseline ({args.baseline_rev})": _measure(base_src, *sizes),
        }
    print(
        f"{args.feeds} feeds x {args.items} matching entries, 8 ingest threads + 2 CPU-bound "
        f"threads; then again with another process holding the lock {args.hold:g} s\n"
    )
    print(
        "| store | lock held per ingest, quiet: mean / max ms | busy: mean / p95 / max ms | "
        "busy first poll | failed | lock held elsewhere | failed |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['quiet_mean_ms']:.1f} / {r['quiet_max_ms']:.1f} | "
            f"{r['hold_mean_ms']:.0f} / {r['hold_p95_ms']:.0f} / {r['hold_max_ms']:.0f} | "
            f"{r['elapsed']:.1f} s | {r['failed']} of {args.feeds} | "
            f"{r['elapsed_held']:.1f} s | {r['failed_held']} of {args.feeds} |"
        )
    for name, r in rows.items():
        if r["why"]:
            print(f"\n{name}: {r['why']}")
    this, base = rows["this tree"], rows[f"baseline ({args.baseline_rev})"]
    ratio = float(str(base["quiet_mean_ms"])) / float(str(this["quiet_mean_ms"]))
    print(f"\nmean lock hold on a quiet process: {ratio:.1f}x shorter than the baseline")


if __name__ == "__main__":
    main()
