"""Text extraction on real feed markup: newswatch's ``html_to_text`` against
the html.parser-only reader and regex whitespace passes it replaced.

    .venv/bin/python benchmarks/text.py --corpus DIR [--repeat 3]

DIR holds one feed document per file (the corpus of docs/decisions.md D25:
``benchmark_data/`` of kagisearch/fastfeedparser, checked out outside this
repository). Without ``--corpus``, tests/data/feeds. Every entry's title,
summary and content are parsed out first; then, field by field in one
process, each reader turns them into text:

- **baseline**: ``normalize._TextExtractor`` (html.parser) for every field,
  then the two regex passes ``_clean`` used before (the code is copied here,
  as it was);
- **newswatch**: ``normalize.html_to_text``: the quick reader for plain
  markup, html.parser for the rest, ``str.split`` for whitespace.

Reports CPU seconds (``time.process_time``, the minimum over ``--repeat``
runs), the share of fields the quick reader took, and how many fields give a
different text (must be 0). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from newswatch.feeds import normalize  # noqa: E402
from newswatch.feeds.parse import FeedParseError, parse_feed  # noqa: E402

_OLD_SPACES = re.compile(r"[^\S\n]+")
_OLD_NEWLINES = re.compile(r"\s*\n\s*")


def baseline(html: str) -> str:
    """html_to_text as it was: html.parser for all markup, two regex passes."""
    html = html[: normalize.MAX_HTML_CHARS]
    skip = (
        normalize._DOCUMENT_SKIP if normalize._DOCUMENT_RE.match(html) else normalize._FRAGMENT_SKIP
    )
    if "<" not in html and "&" not in html:
        text = html
    else:
        parser = normalize._TextExtractor(skip)
        try:
            parser.feed(html)
            parser.close()
            text = parser.text()
        except Exception:
            text = unescape(normalize._TAG_RE.sub(" ", html))
    text = normalize._CONTROL_RE.sub(" ", normalize._INVISIBLE_RE.sub("", text))
    text = _OLD_NEWLINES.sub("\n", _OLD_SPACES.sub(" ", text)).strip()
    limit = normalize.MAX_FIELD_CHARS
    return text[:limit].rstrip() if len(text) > limit else text


def fields_of(corpus: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(p for p in corpus.iterdir() if p.is_file()):
        try:
            parsed = parse_feed(path.read_bytes(), url="https://corpus.example/", content_type=None)
        except FeedParseError:
            continue
        for e in parsed.entries:
            out.extend(text for text in (e.title, e.summary, e.content) if text)
    return out


def cpu(fn: Callable[[str], str], fields: list[str], repeat: int) -> tuple[float, list[str]]:
    best, result = float("inf"), []
    for _ in range(repeat):
        t0 = time.process_time()
        result = [fn(f) for f in fields]
        best = min(best, time.process_time() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "tests" / "data" / "feeds")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    fields = fields_of(args.corpus)
    markup = [f for f in fields if "<" in f or "&" in f]
    quick = sum(
        normalize._extract_simple(f[: normalize.MAX_HTML_CHARS], normalize._FRAGMENT_SKIP)
        is not None
        for f in markup
    )
    base_s, base = cpu(baseline, fields, args.repeat)
    ours_s, ours = cpu(normalize.html_to_text, fields, args.repeat)
    differ = sum(a != b for a, b in zip(base, ours, strict=True))
    size = sum(len(f) for f in fields) / 2**20
    print(
        f"\n{len(fields)} fields ({size:.1f} MiB) from {args.corpus}; {len(markup)} hold markup\n"
    )
    print("| reader | CPU s | vs baseline | fields with other text |")
    print("|---|---:|---:|---:|")
    print(f"| baseline: html.parser + regex whitespace | {base_s:.2f} | 1.00x | |")
    print(f"| newswatch html_to_text | {ours_s:.2f} | {ours_s / base_s:.2f}x | {differ} |")
    share = 100 * quick / max(len(markup), 1)
    print(f"\nthe quick reader took {quick} of the {len(markup)} fields with markup ({share:.1f}%)")
    if differ:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
