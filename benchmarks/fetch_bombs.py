"""Decompression bombs: peak RSS growth of one fetch, newswatch against httpx's decoding.

    .venv/bin/python benchmarks/fetch_bombs.py [--max-bytes-mib 10] [--size-gib 1]

A loopback server (this process) serves each bomb; the fetch runs in a fresh
interpreter that reports how far its peak RSS (ru_maxrss, reset just before
the fetch through /proc/self/clear_refs) rose above its RSS before it. Both
sides have the same decoded-size cap. Measured in the same run:

- newswatch: ``Fetcher.fetch`` (raw stream, one coding at most, inflate in
  bounded steps).
- baseline: httpx's own decoding with the cap counted on ``aiter_bytes()``,
  which is what ``feeds/fetch.py`` did before issue 7 (each network read is
  decoded whole, every coding layer at once).

Not a timed test; prints a markdown table. The baseline may use gigabytes on
the stacked bomb: that is what it measures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from feedserver import FeedServer, Reply, compressed_zeros  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB

_COMMON = """
import asyncio, contextlib, json, resource, sys

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def reset_peak():
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
"""

_NEWSWATCH = (
    _COMMON
    + """
from newswatch.feeds.fetch import Fetcher

async def main(warm_url, url, cap):
    async with Fetcher(concurrency=2, per_host=2, timeout=120.0, max_bytes=cap) as f:
        assert (await f.fetch("w", warm_url)).ok
        reset_peak(); before = peak_kib()
        result = await f.fetch("b", url)
        print(json.dumps({"growth_kib": peak_kib() - before, "outcome": result.error or "ok"}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""
)

_BASELINE = (
    _COMMON
    + """
import httpx

async def get(client, url, cap):
    async with client.stream("GET", url) as response:
        size = 0
        chunks = []
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    return "body larger than the cap"
                chunks.append(chunk)
        except httpx.DecodingError as exc:
            return f"decoding error: {exc}"
        return "ok"

async def main(warm_url, url, cap):
    async with httpx.AsyncClient(timeout=120.0) as client:
        assert await get(client, warm_url, cap) == "ok"
        reset_peak(); before = peak_kib()
        outcome = await get(client, url, cap)
        print(json.dumps({"growth_kib": peak_kib() - before, "outcome": outcome}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""
)


def probe(script: str, warm_url: str, url: str, cap: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script, warm_url, url, str(cap)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        return {"growth_kib": -1, "outcome": f"probe failed: {done.stderr.strip()[-200:]}"}
    result: dict[str, object] = json.loads(done.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-bytes-mib", type=int, default=10, help="decoded-size cap (MiB)")
    ap.add_argument("--size-gib", type=int, default=1, help="what each bomb expands to (GiB)")
    args = ap.parse_args()
    cap = args.max_bytes_mib * MiB
    size = args.size_gib * GiB
    single = compressed_zeros(size, "gzip")
    bombs = {
        f"gzip {args.size_gib} GiB": Reply(body=single, headers={"Content-Encoding": "gzip"}),
        f"gzip, gzip ({args.size_gib} GiB inner)": Reply(
            body=gzip.compress(single, mtime=0), headers={"Content-Encoding": "gzip, gzip"}
        ),
        f"deflate {args.size_gib} GiB": Reply(
            body=compressed_zeros(size, "deflate"), headers={"Content-Encoding": "deflate"}
        ),
        f"gzip {args.size_gib} GiB, chunked": Reply(
            body=single, headers={"Content-Encoding": "gzip"}, chunked=True
        ),
    }
    print(f"# decompression bombs, cap {args.max_bytes_mib} MiB decoded")
    print(f"python {platform.python_version()}, {platform.machine()}\n")
    print(
        "| bomb | wire bytes | newswatch RSS growth | outcome "
        "| httpx decoding RSS growth | outcome |"
    )
    print("|---|---:|---:|---|---:|---|")
    with FeedServer() as server:
        server.route(
            "/warm", body=gzip.compress(b"<rss/>" * 1000), headers={"Content-Encoding": "gzip"}
        )
        for i, (name, reply) in enumerate(bombs.items()):
            server.route(f"/bomb{i}", reply)
            url, warm = server.url(f"/bomb{i}"), server.url("/warm")
            ours = probe(_NEWSWATCH, warm, url, cap)
            base = probe(_BASELINE, warm, url, cap)
            print(
                f"| {name} | {len(reply.encoded_body()):,} "
                f"| {_mib(ours['growth_kib'])} | {ours['outcome']} "
                f"| {_mib(base['growth_kib'])} | {base['outcome']} |"
            )


def _mib(kib: object) -> str:
    return f"{kib / 1024:,.1f} MiB" if isinstance(kib, int) and kib >= 0 else "n/a"


if __name__ == "__main__":
    main()
