"""The loopback feed server of poll.py: many hosts, a realistic mix, counts.

Run by poll.py in its own process. It listens on 127.0.0.1 .. 127.0.0.H
(H "hosts", one port), serves DIR/<name> at /<name>, and per feed:

- 70% unchanged: an ETag; a matching If-None-Match gets 304.
- 25% changing: each request after the first adds NEW_PER_POLL new items
  (copies of the first item with new ids), with a new ETag.
- 5% trouble: a third slow (SLOW_SECONDS before answering), a third HTTP
  500, a third a truncated (malformed) document.

It counts the concurrent connections each host has open and the most ever
seen; ``GET /_stats`` returns them as JSON, ``GET /_reset`` clears them.
The choice of each feed's kind is a hash of its name: the same in every run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from pathlib import Path

NEW_PER_POLL = 2
SLOW_SECONDS = 3.0
_ITEM = re.compile(rb"<(item|entry)[\s>].*?</\1>", re.S)


def kind_of(name: str) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 1000
    if h < 700:
        return "same"
    if h < 950:
        return "new"
    return ("slow", "error", "broken")[h % 3]


class Feeds:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: dict[str, int] = {}
        self.open: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.total = 0
        self.frozen = False  # no more new items: every feed unchanged

    def body(self, name: str) -> tuple[int, bytes, str | None]:
        """(status, body, etag) of the next answer for ``name``."""
        path = self.folder / name
        if not path.is_file():
            return 404, b"not here", None
        kind = kind_of(name)
        n = self.requests.get(name, 0)
        if not (self.frozen and kind == "new" and n):
            self.requests[name] = n + 1
        else:
            n -= 1  # the version served last time: a 304
        data = path.read_bytes()
        if kind == "error":
            return 500, b"oops", None
        if kind == "broken":
            return 200, data[: len(data) // 2], None
        if kind == "new" and n:
            found = _ITEM.search(data)
            if found:
                item = found.group(0)
                extra = b"".join(
                    re.sub(rb"nwc=", b"nwc=p%d-%d-" % (n, j), item) for j in range(NEW_PER_POLL * n)
                )
                data = data[: found.start()] + extra + data[found.start() :]
            return 200, data, f'"{name}-v{n}"'
        return 200, data, f'"{name}-v0"'


async def handle(feeds: Feeds, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    host = writer.get_extra_info("sockname")[0]
    feeds.open[host] = feeds.open.get(host, 0) + 1
    feeds.peak[host] = max(feeds.peak.get(host, 0), feeds.open[host])
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            name = path.lstrip("/").split("?")[0]
            if name == "_stats":
                status, body, etag = (
                    200,
                    json.dumps({"peak": feeds.peak, "total": feeds.total}).encode(),
                    None,
                )
            elif name == "_freeze":
                feeds.frozen = True
                status, body, etag = 200, b"{}", None
            elif name == "_reset":
                feeds.peak = dict(feeds.open)
                feeds.total = 0
                feeds.requests.clear()
                feeds.frozen = False
                status, body, etag = 200, b"{}", None
            else:
                feeds.total += 1
                if kind_of(name) == "slow":
                    await asyncio.sleep(SLOW_SECONDS)
                status, body, etag = feeds.body(name)
                if etag and headers.get("if-none-match") == etag:
                    status, body = 304, b""
            reason = {200: "OK", 304: "Not Modified", 404: "Not Found", 500: "Server Error"}[status]
            out = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
            out.append("Content-Type: application/xml")
            if etag:
                out.append(f"ETag: {etag}")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + body)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, IndexError):
        pass
    finally:
        feeds.open[host] -= 1
        writer.close()


async def serve(folder: Path, hosts: int, port: int) -> None:
    feeds = Feeds(folder)
    servers = []
    for h in range(1, hosts + 1):
        servers.append(
            await asyncio.start_server(lambda r, w: handle(feeds, r, w), f"127.0.0.{h}", port)
        )
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
