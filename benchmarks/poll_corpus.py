"""Build N renamed, varied feeds from a folder of real feeds (for poll.py).

    .venv/bin/python benchmarks/poll_corpus.py --corpus PATH --out DIR [--feeds 10000]

PATH is a folder of real feed documents, one per file: the ``benchmark_data/``
folder of the public repository kagisearch/fastfeedparser (about 200 real
RSS/Atom/RDF/JSON feeds; clone it yourself, it is never committed here).
Copy k of feed i gets every GUID, id and link made unique (``nwc=<i>-<k>``
appended as a query parameter, so no two copies share a story) and its
title renamed, so 10,000 feeds hold 10,000 distinct sets of entries.
Writes DIR/<n>.xml and DIR/index.txt (one line per feed: file name).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_VALUE = re.compile(
    rb"(<(?:guid|id|link)(?:\s[^>]*)?>)(\s*(?:<!\[CDATA\[)?\s*)(https?://[^<\]\s]+)", re.I
)
_HREF = re.compile(rb'(<link\b[^>]*\bhref=")(https?://[^"]+)(")', re.I)
_JSON_ID = re.compile(rb'("(?:id|url)"\s*:\s*")(https?://[^"]+)(")')
_TITLE = re.compile(rb"(<title(?:\s[^>]*)?>)", re.I)


def _tag(url: bytes, mark: bytes) -> bytes:
    sep = b"&amp;" if b"?" in url else b"?"
    return url + sep + b"nwc=" + mark


def vary(body: bytes, mark: str) -> bytes:
    """The document with every entry identity made unique to this copy."""
    m = mark.encode()
    body = _VALUE.sub(lambda x: x.group(1) + x.group(2) + _tag(x.group(3), m), body)
    body = _HREF.sub(lambda x: x.group(1) + _tag(x.group(2), m) + x.group(3), body)
    body = _JSON_ID.sub(
        lambda x: (
            x.group(1)
            + x.group(2)
            + (b"&" if b"?" in x.group(2) else b"?")
            + b"nwc="
            + m
            + x.group(3)
        ),
        body,
    )
    return _TITLE.sub(lambda x: x.group(1) + b"[" + m + b"] ", body, count=1)


def build(corpus: Path, out: Path, feeds: int) -> list[str]:
    sources = sorted(p for p in corpus.iterdir() if p.is_file() and p.stat().st_size > 0)
    if not sources:
        raise SystemExit(f"{corpus}: no feed files")
    out.mkdir(parents=True, exist_ok=True)
    names = []
    bodies = [p.read_bytes() for p in sources]
    for n in range(feeds):
        i, k = n % len(bodies), n // len(bodies)
        name = f"{n:05d}.xml"
        (out / name).write_bytes(vary(bodies[i], f"{i}-{k}"))
        names.append(name)
    (out / "index.txt").write_text("\n".join(names) + "\n")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--feeds", type=int, default=10_000)
    args = ap.parse_args()
    names = build(args.corpus, args.out, args.feeds)
    print(f"wrote {len(names)} feeds to {args.out}")


if __name__ == "__main__":
    main()
