"""Near-duplicate stories: pairwise precision and recall of same-story
decisions, with two baselines measured in the same run, and the cost.

    .venv/bin/python benchmarks/stories.py                  # the committed set (~5 s)
    .venv/bin/python benchmarks/stories.py --corpus DIR     # + variants of a real-feed corpus
    .venv/bin/python benchmarks/stories.py --cost 20000     # + storage and CPU at scale

Decisions are compared pair by pair: two articles are the same story for a
method when it puts them together; the truth is the label. Methods:
exact canonical URL (what newswatch did before: tracking parameters
removed, no redirect unwrapping), normalized-title equality, and
newswatch's stories (identity keys plus MinHash/LSH candidates confirmed
by Jaccard or containment, through the real StoryFinder and store).

``--corpus DIR``: a folder of feed documents, e.g. the benchmark_data of
kagisearch/fastfeedparser (fetch that repository, then
``git --git-dir=<mirror> archive HEAD benchmark_data | tar -x -C /tmp/ffp``
and pass /tmp/ffp/benchmark_data). Its text is not ours to commit: the
labelled variants (the same transformations as tests/data/make_stories.py)
are built in a temporary folder and deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "data"))

from make_stories import _EDITS, Labelled, copy_maker, load  # noqa: E402

from newswatch.feeds.normalize import normalize_feed  # noqa: E402
from newswatch.feeds.parse import parse_feed  # noqa: E402
from newswatch.stories import Thresholds  # noqa: E402
from stories_eval import (  # noqa: E402
    T0,
    Run,
    cross_language,
    ingest_all,
    methods,
    same_language,
    score,
)

# Corpus articles need a body long enough to be a story (a short post has
# no paragraphs to trim or summarise).
MIN_WORDS = 80


def table(rows: Sequence[Labelled], run: Run, title: str, *, show_errors: int = 12) -> str:
    out = [f"### {title}", ""]
    out.append(f"{len(rows)} articles, {len({r.story for r in rows})} stories.")
    out.append("")
    out.append("| method | precision | recall | true pairs found | false pairs | pairs missed |")
    out.append("|---|---:|---:|---:|---:|---:|")
    found = {}
    for name, same in methods(rows, run).items():
        s = score(name, rows, same, pairs=same_language)
        found[name] = s
        out.append(f"| {name} | {s.precision:.3f} | {s.recall:.3f} | {s.tp} | {s.fp} | {s.fn} |")
    nw = found["newswatch stories"]
    cross = score("cross", rows, methods(rows, run)["newswatch stories"], pairs=cross_language)
    if cross.tp + cross.fn:
        out.append("")
        out.append(
            f"Pairs across languages (an English and a Korean copy): {cross.tp + cross.fn}, "
            f"found {cross.tp}. Text shingles cannot link a translation; they are left out "
            "of the figures above."
        )
    out.append("")
    out.append(f"Errors of newswatch stories, by kind (top {show_errors}):")
    out.append("")
    for kind, n in nw.errors.most_common(show_errors) or [("none", 0)]:
        out.append(f"- {kind}: {n}")
    out.append("")
    return "\n".join(out)


# --------------------------------------------------------------------------- corpus


def _n(key: str, salt: str, mod: int) -> int:
    digest = hashlib.sha256(f"{key}/{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % mod


def corpus_rows(folder: Path, bases: int, distractors: int, seed: int) -> list[Labelled]:
    """Labelled variants of ``bases`` real articles, and ``distractors``
    other real articles as singletons (stories with no copies)."""
    articles = []
    for path in sorted(folder.iterdir()):
        try:
            parsed = parse_feed(path.read_bytes(), url="https://corpus.example/feed")
        except Exception:
            continue
        for a in normalize_feed(parsed, feed_key=path.name, source=parsed.title or path.name):
            body = a.content if len(a.content) >= len(a.summary) else a.summary
            paras = [p for p in body.split("\n") if len(p.split()) >= 5]
            if len(body.split()) >= MIN_WORDS and len(paras) >= 3:
                articles.append((a, paras))
    seen: set[str] = set()
    unique = []
    for a, paras in articles:
        key = paras[0][:200]
        if key in seen:  # the corpus's own duplicates: one kept
            continue
        seen.add(key)
        unique.append((a, paras))
    rng = random.Random(seed)
    rng.shuffle(unique)
    # Background paragraphs come from articles that are in the set under no
    # label (a paragraph of a labelled story pasted under another would make
    # that copy contain part of it: a label error, not a clustering one).
    spare: dict[str, list[list[str]]] = {}
    for a, paras in unique[bases + distractors :]:
        spare.setdefault(a.feed_key, []).append(paras)
    fallback = [p for _, p in unique[bases + distractors :]] or [[""]]
    rows: list[Labelled] = []
    for i, (a, paras) in enumerate(unique[:bases]):
        pool = spare.get(a.feed_key) or fallback
        rows.extend(_variants(f"c{i}", a.title, a.feed_key, paras, pool[i % len(pool)]))
    for i, (a, paras) in enumerate(unique[bases : bases + distractors]):
        rows.append(
            Labelled(
                id=f"d{i}/0",
                story=f"d{i}",
                topic=a.feed_key,
                outlet="Distractor " + a.feed_key[:6],
                variant="distractor",
                lang="en",
                title=a.title,
                summary="",
                content="\n\n".join(paras),
                link=a.link or f"https://distractor.example/{i}",
                published=(T0 + timedelta(minutes=i)).isoformat(),
            )
        )
    return rows


def _variants(
    sid: str, title: str, feed: str, paras: list[str], other: list[str]
) -> list[Labelled]:
    """The copies tests/data/make_stories.py makes, from a real article;
    "background" is a paragraph of another article (of the same feed where
    there is one), in the set under no label."""
    when = T0 + timedelta(minutes=_n(sid, "t", 600))
    background = other[min(1, len(other) - 1)]
    wire_link = f"https://wire.example/{sid}"

    copy = copy_maker(story=sid, topic=feed, lang="en", when=when)

    def make(k: int, outlet: str, variant: str, t: str, summary: str, content: str,
             link: str) -> Labelled:  # fmt: skip
        return copy(outlet, variant, k, t, summary, content, link, 10 * k)

    out = [make(0, "Wire", "wire", title, paras[0], "\n\n".join(paras), wire_link)]
    body = "\n\n".join(["By staff reporter", *paras[:-1], "(c) Outlet A. All rights reserved."])
    out.append(make(1, "Outlet A", "byline-trimmed", title.upper(), "", body, wire_link + "a"))
    text = " ".join(paras)
    cut = 180 + _n(sid, "len", 120)
    summary = text if len(text) <= cut else text[:cut].rsplit(" ", 1)[0] + "…"
    out.append(
        make(2, "Outlet B", "truncated-summary", title + " | B", summary, "", wire_link + "b")
    )
    body = "\n\n".join([*paras, background])
    out.append(make(3, "Outlet C", "extended-background", "Update: " + title, "", body,
                    wire_link + "c?utm_source=rss"))  # fmt: skip
    edited = list(paras)
    if len(edited) > 3:
        edited[1], edited[2] = edited[2], edited[1]
    text = "\n\n".join(edited)
    for old, new in _EDITS:
        text = text.replace(old, new)
    text += f"\n\nThe post {title} appeared first on Aggregator."
    link = f"https://aggregator.example/out?url={quote(wire_link, safe='')}"
    out.append(make(4, "Aggregator", "aggregator-edited", title + " - Wire", "", text, link))
    body = "\n\n".join([background, *paras[1:]])
    out.append(make(5, "Outlet D", "rewritten-lead", title, "", body, wire_link + "d"))
    keep = max(2, len(paras) // 2)
    body = "\n\n".join([*paras[:keep], "Sign up for our newsletter for more stories like this."])
    out.append(make(6, "Outlet E", "trimmed-newsletter", title, "", body, wire_link + "e"))
    return out


# --------------------------------------------------------------------------- cost


def cost(n: int, url: str, folder: Path | None) -> str:
    """Storage of the band index and CPU per matched article, ingesting
    ``n`` matched articles (one in three a lightly edited copy of one of the
    200 before it) with the finder, against the same ingest without it.
    New stories are words drawn from the pool one by one: their length and
    vocabulary are an article's, and they share no whole passages."""
    from make_stories import parse_base

    base = parse_base((ROOT / "tests" / "data" / "stories-base.txt").read_text("utf-8"))
    pool = [" ".join(s.paragraphs) for s in base]
    if folder is not None:
        pool += [r.content for r in corpus_rows(folder, 2000, 0, 1) if r.variant == "wire"]
    rng = random.Random(5)
    words = " ".join(pool).split()
    rows: list[Labelled] = []
    for i in range(n):
        if i % 3 == 2 and rows:  # a copy of a recent article, lightly edited
            src = rows[rng.randrange(max(0, len(rows) - 200), len(rows))]
            content = src.content.replace(" the ", " a ", 3) + " Copyright Outlet."
            story = src.story
        else:  # a new story: 150-600 words drawn one by one from the pool
            # (so new stories share vocabulary, not whole phrases)
            content = " ".join(rng.choice(words) for _ in range(rng.randint(150, 600)))
            story = f"s{i}"
        rows.append(
            Labelled(
                f"x{i}", story, "t", f"o{i % 50}", "cost", "en", f"Story {i}", "", content,
                f"https://cost.example/{i}", (T0 + timedelta(seconds=i)).isoformat(),
            )
        )  # fmt: skip
    out = ["### Cost", ""]
    out.append(f"{n} matched articles ingested one per ingest call (the worst case for reads).")
    out.append("")
    out.append("| run | CPU per article, finder | CPU per article, ingest | story_bands |")
    out.append("|---|---:|---:|---:|")
    for label, finder in (("without stories (baseline)", False), ("with stories", True)):
        with _fresh(url, str(finder)) as db_url:
            run = ingest_all(rows, db_url, finder=finder, seed=0)
            size = _band_bytes(db_url)
        out.append(
            f"| {label} | {run.annotate_s / n * 1000:.3f} ms | {run.ingest_s / n * 1000:.3f} ms "
            f"| {size / 1e6:.1f} MB ({size / n * 100_000 / 1e6:.1f} MB per 100,000) |"
        )
        print(out[-1], file=sys.stderr, flush=True)
    out.append("")
    return "\n".join(out)


@contextlib.contextmanager
def _fresh(url: str, name: str) -> Iterator[str]:
    """A new database for one run: a SQLite file, or a PostgreSQL schema
    dropped afterwards."""
    if url.startswith("sqlite"):
        yield url.replace(".db", f"-{name}.db")
        return
    import psycopg

    schema = f"nw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _band_bytes(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("VACUUM")
            try:
                q = "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE '%story_bands%'"
                return int(conn.exec_driver_sql(q).scalar() or 0)
            except Exception:
                rows = conn.exec_driver_sql("SELECT COUNT(*) FROM story_bands").scalar() or 0
                return int(rows) * 26  # measured bytes per row without dbstat
        value = conn.exec_driver_sql("SELECT pg_total_relation_size('story_bands')").scalar()
        return int(value or 0)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="a folder of feed documents")
    parser.add_argument("--bases", type=int, default=300, help="corpus articles copied")
    parser.add_argument("--distractors", type=int, default=1000, help="corpus singletons")
    parser.add_argument("--cost", type=int, default=0, help="articles for the cost run")
    parser.add_argument("--postgres", help="also measure the cost on this PostgreSQL URL")
    parser.add_argument("--jaccard", type=float, help="override the Jaccard threshold")
    parser.add_argument("--containment", type=float, help="override the containment threshold")
    parser.add_argument("--output", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    t = Thresholds()
    over = {k: v for k, v in (("jaccard", args.jaccard), ("containment", args.containment)) if v}
    thresholds = Thresholds(**{**asdict(t), **over})  # type: ignore[arg-type]
    from newswatch.stories import text_signature

    text_signature("load the libraries before timing anything")
    report = [
        "## Near-duplicate stories",
        "",
        f"Thresholds: jaccard {thresholds.jaccard}, containment {thresholds.containment} "
        f"(of at least {thresholds.min_contained} shingles).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rows = load()
        started = time.perf_counter()
        run = ingest_all(rows, f"sqlite:///{tmp}/set.db", thresholds=thresholds)
        report.append(table(rows, run, "Committed set (tests/data/stories.jsonl)"))
        report.append(
            f"finder CPU {run.annotate_s / run.articles * 1000:.3f} ms per matched article "
            f"(one per ingest), {time.perf_counter() - started:.1f} s in all.\n"
        )
        if args.corpus is not None:
            crow = corpus_rows(args.corpus, args.bases, args.distractors, seed=1)
            # The variants exist only in this temporary folder.
            (Path(tmp) / "corpus.jsonl").write_text(
                "".join(json.dumps(asdict(r)) + "\n" for r in crow), encoding="utf-8"
            )
            started = time.perf_counter()
            crun = ingest_all(crow, f"sqlite:///{tmp}/corpus.db", thresholds=thresholds)
            report.append(table(crow, crun, f"Variants of a real-feed corpus ({args.corpus.name})"))
            report.append(
                f"finder CPU {crun.annotate_s / crun.articles * 1000:.3f} ms per matched "
                f"article, {time.perf_counter() - started:.1f} s in all.\n"
            )
        if args.cost:
            report.append(cost(args.cost, f"sqlite:///{tmp}/cost.db", args.corpus))
            if args.postgres:
                report.append("PostgreSQL:\n")
                report.append(cost(args.cost, args.postgres, args.corpus))
    text = "\n".join(report)
    print(text)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    _ = (re, datetime, UTC)
    sys.exit(main())
