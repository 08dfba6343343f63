"""Matching benchmark: newswatch's rule index against a naive regex loop and perq.

    .venv/bin/python benchmarks/match.py                 # full: 100 .. 100,000 rules
    .venv/bin/python benchmarks/match.py --quick         # 100 and 1,000 rules, 200 articles
    .venv/bin/python benchmarks/match.py --profile 10000,100000   # cProfile of the engine

For every rule-set size it measures, in one process pinned to one CPU:

* newswatch (``compile_rules`` / ``RuleIndex.match``) on all rules and articles;
* naive: every rule compiled to Python regexes (word boundaries; case and accents
  folded on both sides) and evaluated over the generated rule AST for each
  article. Where it would take too long it runs on a fixed sample of articles and
  the table says so (its articles/s is then an extrapolation from the sample);
* perq (PyPI, MemoryStore) on the rules it can express (AND/OR of single words),
  and newswatch on that same subset, for a like-for-like ratio.

Build time and throughput come from a plain pass; index memory from a second
build under tracemalloc (Python allocations retained after the build, and the
peak during it). The engine, naive and perq results are compared rule by rule
on the sampled articles; a disagreement makes the run exit with status 1.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

from corpus import (
    And,
    GeneratedRule,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Word,
    World,
    fold,
    is_hangul,
    make_articles,
    make_rules,
)
from newswatch.model import Article

REPO = Path(__file__).resolve().parent.parent
FULL_SIZES = (100, 1_000, 10_000, 100_000)
QUICK_SIZES = (100, 1_000)
MB = 1024 * 1024

Pairs = dict[int, frozenset[str]]  # article index -> names of matching rules


class Matcher(Protocol):
    def __call__(self, article: Article) -> list[str]: ...


# -- naive baseline ---------------------------------------------------------------

Fields = dict[str, str]
Pred = Callable[[Fields], bool]
SEP = "\x00"  # between fields, so phrases and NEAR never span two fields
GAP = rf"[^\w{SEP}]+"


def article_fields(article: Article) -> Fields:
    """Folded text per field; "" is the default field set (title, summary, content)."""
    title = fold(article.title)
    return {
        "": SEP.join((title, fold(article.summary), fold(article.content))),
        "title": title,
    }


def _word_re(word: str) -> str:
    key = re.escape(fold(word))
    # Korean keywords match at the start of a word, so particles attach.
    return rf"\b{key}" if is_hangul(word) else rf"\b{key}\b"


class NaiveRules:
    """Each rule is a tree of closures over compiled regexes, evaluated one by one."""

    def __init__(self, rules: Sequence[GeneratedRule]) -> None:
        self._patterns: dict[str, re.Pattern[str]] = {}
        self.rules = [(r.name, self._compile(r.node)) for r in rules]
        self.patterns = len(self._patterns)

    def _search(self, source: str, field_name: str | None) -> Pred:
        pattern = self._patterns.get(source)
        if pattern is None:
            pattern = self._patterns[source] = re.compile(source)
        search = pattern.search
        key = field_name or ""
        return lambda fields: search(fields[key]) is not None

    def _compile(self, node: Node) -> Pred:
        match node:
            case Word(text, field_name):
                return self._search(_word_re(text), field_name)
            case Phrase(words, field_name):
                body = GAP.join(re.escape(fold(w)) for w in words)
                return self._search(rf"\b{body}\b", field_name)
            case Prefix(stem):
                return self._search(rf"\b{re.escape(fold(stem))}", None)
            case Near(left, right, distance):
                a, b = re.escape(fold(left)), re.escape(fold(right))
                # a NEAR/n b: at most n words between a and b, either order
                between = rf"{GAP}(?:\w+{GAP}){{0,{distance}}}"
                return self._search(rf"\b(?:{a}{between}{b}|{b}{between}{a})\b", None)
            case And(items):
                preds = [self._compile(i) for i in items]
                return lambda fields: all(p(fields) for p in preds)
            case Or(items):
                preds = [self._compile(i) for i in items]
                return lambda fields: any(p(fields) for p in preds)
            case Not(item):
                pred = self._compile(item)
                return lambda fields: not pred(fields)
        raise TypeError(node)

    def match(self, article: Article) -> list[str]:
        fields = article_fields(article)
        return [name for name, pred in self.rules if pred(fields)]


# -- perq baseline ------------------------------------------------------------------


def perq_clauses(node: Node) -> list[tuple[str, ...]] | None:
    """The rule as perq's AND of OR-clauses of single terms, or None if it can't say it."""
    import perq

    match node:
        case Word(text, None) if not is_hangul(text):
            tokens = perq.tokenize(fold(text))
            return [tokens] if len(tokens) == 1 else None
        case And(items):
            out: list[tuple[str, ...]] = []
            for item in items:
                sub = perq_clauses(item)
                if sub is None:
                    return None
                out += sub
            return out
        case Or(items):
            subs = [perq_clauses(i) for i in items]
            if any(s is None for s in subs):
                return None
            # (a AND b) OR c == (a OR c) AND (b OR c)
            return [
                tuple(dict.fromkeys(t for clause in combo for t in clause))
                for combo in itertools.product(*[s for s in subs if s is not None])
            ]
    return None


def perq_queries(rules: Sequence[tuple[str, list[tuple[str, ...]]]]) -> list[Any]:
    import perq

    return [perq.Query(name, clauses) for name, clauses in rules]


class PerqRules:
    """perq's MemoryStore. Text and terms are folded first (accents, like newswatch);
    perq itself only applies NFKC and casefold."""

    def __init__(self, queries: Sequence[Any]) -> None:
        import perq

        self.store = perq.MemoryStore()
        perq.index(queries, self.store)
        self.matcher = perq.QueryMatcher(self.store)
        self._document = perq.Document.from_text

    def match(self, article: Article) -> list[str]:
        text = fold(f"{article.title}\n{article.summary}\n{article.content}")
        return [str(q) for q in self.matcher.matches(self._document(text))]


# -- newswatch ------------------------------------------------------------------------


def engine_available() -> str | None:
    """None if newswatch.rules is importable, else why not."""
    try:
        from newswatch.rules import RuleSpec, compile_rules  # noqa: F401
    except Exception as exc:  # the engine is being written while this runs
        return f"{type(exc).__name__}: {exc}"
    return None


def engine_specs(rules: Sequence[GeneratedRule]) -> list[Any]:
    """RuleSpecs, made outside the timed and traced build: the daemon has them from
    its configuration before it compiles them."""
    from newswatch.rules import RuleSpec

    return [RuleSpec(name=r.name, query=r.query) for r in rules]


class EngineRules:
    def __init__(self, specs: Sequence[Any]) -> None:
        from newswatch.rules import compile_rules

        self.index = compile_rules(specs)

    def match(self, article: Article) -> list[str]:
        return [m.rule for m in self.index.match(article)]

    def stats(self) -> Any:
        return self.index.stats()


class EngineRulesExplained(EngineRules):
    """As the pipeline uses the engine: every match's explanation (hits and a
    highlighted snippet, computed lazily) is read, as ingest stores it."""

    def match(self, article: Article) -> list[str]:
        names = []
        for m in self.index.match(article):
            _ = m.explanation.hits, m.explanation.snippet
            names.append(m.rule)
        return names


# -- measurement ------------------------------------------------------------------------


@dataclass
class Result:
    engine: str
    rules: int
    build_s: float
    retained_mb: float | None
    peak_mb: float | None
    articles: int
    total_articles: int
    seconds: float
    latencies: list[float]
    matches: int
    pairs: Pairs = field(default_factory=dict)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.articles / self.seconds if self.seconds else float("inf")

    @property
    def sampled(self) -> bool:
        return self.articles < self.total_articles

    def pct(self, q: float) -> float:
        data = sorted(self.latencies)
        return data[min(len(data) - 1, round(q * (len(data) - 1)))] * 1000


def timed_build(factory: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    start = time.perf_counter()
    built = factory()
    return built, time.perf_counter() - start


def memory_of(factory: Callable[[], Any]) -> tuple[float, float]:
    """(retained MB, peak MB) of Python allocations of a fresh build, by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    built = factory()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del built
    gc.collect()
    return (current - base) / MB, (peak - base) / MB


def run_articles(
    match: Matcher,
    articles: Sequence[Article],
    order: Sequence[int],
    keep: Iterable[int],
    budget_s: float | None = None,
    min_articles: int = 20,
    warmup: int = 20,
) -> tuple[int, float, list[float], int, Pairs]:
    """Match articles in ``order`` until done or over ``budget_s`` (after ``min_articles``)."""
    keep_set = set(keep)
    for i in order[:warmup]:
        match(articles[i])
    gc.collect()
    latencies: list[float] = []
    pairs: Pairs = {}
    matches = 0
    clock = time.perf_counter
    for n, i in enumerate(order):
        start = clock()
        names = match(articles[i])
        latencies.append(clock() - start)
        matches += len(names)
        if i in keep_set:
            pairs[i] = frozenset(names)
        if budget_s is not None and n + 1 >= min_articles and sum(latencies) > budget_s:
            break
    return len(latencies), sum(latencies), latencies, matches, pairs


def measure(
    name: str,
    rules: int,
    factory: Callable[[], Any],
    articles: Sequence[Article],
    order: Sequence[int],
    keep: Iterable[int],
    budget_s: float | None,
    warmup: int,
    with_memory: bool = True,
) -> tuple[Result, Any]:
    retained = peak = None
    if with_memory:
        # A separate build, since tracemalloc slows allocation-heavy code severalfold.
        # It goes first, so that anything a build caches at module level is counted.
        retained, peak = memory_of(factory)
    built, build_s = timed_build(factory)
    n, seconds, latencies, matches, pairs = run_articles(
        built.match, articles, order, keep, budget_s, warmup=warmup
    )
    result = Result(
        name, rules, build_s, retained, peak, n, len(order), seconds, latencies, matches, pairs
    )
    return result, built


# -- reporting ------------------------------------------------------------------------


def machine_info() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    rev = _git("rev-parse", "--short", "HEAD")
    if rev and _git("status", "--porcelain", "--", "src/newswatch/rules"):
        rev += " + uncommitted changes in src/newswatch/rules"
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; {load_average()}",
        f"- machine: {cpu}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.release()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}; "
        f"perq {version('perq')}; newswatch git {rev or '(no commit yet)'}",
    ]


def load_average() -> str:
    """The 1-minute load average: other work on the machine makes the figures noisy."""
    try:
        return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=REPO
        ).stdout.strip()
    except OSError:
        return ""


def fmt_rate(r: float) -> str:
    return f"{r:,.0f}" if r >= 10 else f"{r:,.2f}"


def table(results: Sequence[Result], ratios: dict[str, str]) -> list[str]:
    head = (
        "| engine | rules | build s | memory MB | build peak MB | articles | articles/s "
        "| p50 ms | p99 ms | matches | ratio |"
    )
    lines = [head, "|" + "---|" * 11]
    for r in results:
        mem = f"{r.retained_mb:,.1f}" if r.retained_mb is not None else "—"
        peak = f"{r.peak_mb:,.1f}" if r.peak_mb is not None else "—"
        arts = f"{r.articles:,}" + (" (sample)" if r.sampled else "")
        rate = fmt_rate(r.rate) + (" (extrap.)" if r.sampled else "")
        lines.append(
            f"| {r.engine} | {r.rules:,} | {r.build_s:.2f} | {mem} | {peak} | {arts} | {rate} "
            f"| {r.pct(0.5):.2f} | {r.pct(0.99):.2f} | {r.matches:,} | {ratios.get(r.engine, '')} |"
        )
    return lines


def compare(label: str, ours: Pairs, theirs: Pairs, only: set[str] | None = None) -> list[str]:
    """Lines describing disagreements between two match sets (empty when they agree)."""
    problems: list[str] = []
    for i in sorted(theirs):
        a = ours.get(i, frozenset())
        b = theirs[i]
        if only is not None:
            a = a & only
        if a != b:
            problems.append(
                f"{label}: article {i}: only newswatch {sorted(a - b)[:8]}, "
                f"only baseline {sorted(b - a)[:8]}"
            )
    return problems


# -- main -------------------------------------------------------------------------------


@dataclass
class SizeReport:
    size: int
    lines: list[str]
    ours: Result | None
    naive: Result
    perq: Result | None
    ours_subset: Result | None
    problems: list[str]


def bench_size(
    size: int,
    rules: Sequence[GeneratedRule],
    articles: Sequence[Article],
    order: Sequence[int],
    args: argparse.Namespace,
    engine_ok: bool,
) -> SizeReport:
    rules = rules[:size]
    by_name = {r.name: r for r in rules}
    lines = [f"### {size:,} rules", ""]
    problems: list[str] = []
    log = args.log

    log(f"[{size}] naive: compiling {size} rules")
    naive, naive_built = measure(
        "naive regex",
        size,
        lambda: NaiveRules(rules),
        articles,
        order,
        keep=order,
        budget_s=args.naive_budget,
        warmup=0,  # nothing to warm: the regexes are compiled up front
    )
    naive.note = f"{naive_built.patterns:,} distinct regexes"
    del naive_built
    sample = list(naive.pairs)
    log(f"[{size}] naive: {naive.articles} articles, {naive.rate:.2f}/s")

    ours = ours_subset = perq_result = explained = None
    if engine_ok:
        log(f"[{size}] newswatch: building")
        specs = engine_specs(rules)
        ours, built = measure(
            "newswatch", size, lambda: EngineRules(specs), articles, order, sample, None, 50
        )
        stats = built.stats()
        del built
        log(f"[{size}] newswatch: {ours.rate:.0f}/s; {stats}")
        problems += compare(f"{size:,} rules, newswatch vs naive", ours.pairs, naive.pairs)
        explained, _ = measure(
            "newswatch + explanations",
            size,
            lambda: EngineRulesExplained(specs),
            articles,
            order,
            sample,
            args.naive_budget,
            50,
            with_memory=False,
        )
        log(f"[{size}] newswatch + explanations: {explained.rate:.0f}/s")

    expressible = [(r.name, perq_clauses(r.node)) for r in rules]
    perq_rules = [(n, c) for n, c in expressible if c is not None and len(c) <= 64]
    subset = {n for n, _ in perq_rules}
    log(f"[{size}] perq: {len(perq_rules)} of {size} rules expressible")
    if perq_rules:
        queries = perq_queries(perq_rules)
        perq_result, _ = measure(
            "perq",
            len(perq_rules),
            lambda: PerqRules(queries),
            articles,
            order,
            sample,
            args.perq_budget,
            20,
        )
        naive_subset = {i: names & subset for i, names in naive.pairs.items()}
        problems += compare(
            f"{size:,} rules, perq vs naive", perq_result.pairs, naive_subset, only=None
        )
        if engine_ok:
            subset_specs = engine_specs([by_name[n] for n, _ in perq_rules])
            ours_subset, _ = measure(
                "newswatch (perq subset)",
                len(subset_specs),
                lambda: EngineRules(subset_specs),
                articles,
                order,
                sample,
                None,
                50,
            )
            problems += compare(
                f"{size:,} rules, newswatch subset vs naive", ours_subset.pairs, naive_subset
            )

    ratios: dict[str, str] = {}
    results: list[Result] = []
    if ours is not None:
        results.append(ours)
        ratios["naive regex"] = f"ours/naive ×{ours.rate / naive.rate:,.0f}"
    if explained is not None:
        results.append(explained)
    results.append(naive)
    if ours_subset is not None:
        results.append(ours_subset)
    if perq_result is not None:
        results.append(perq_result)
        if ours_subset is not None:
            ratios["perq"] = f"ours/perq ×{ours_subset.rate / perq_result.rate:,.2f}"
    lines += table(results, ratios)
    lines.append("")
    kinds: dict[str, int] = {}
    for r in rules:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    lines.append("- rule mix: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    lines.append(f"- naive: {naive.note}; ran on {naive.articles:,} of {len(order):,} articles")
    if perq_result is not None:
        lines.append(
            f"- perq: {len(perq_rules):,} of {size:,} rules expressible (AND/OR of words); "
            "the rest use phrases, NOT, NEAR, prefixes, fields or Korean"
        )
    if ours is not None:
        ours_sample = sum(len(ours.pairs.get(i, ())) for i in sample)
        naive_sample = sum(len(v) for v in naive.pairs.values())
        verdict = "agree" if not problems else "DISAGREE"
        lines.append(
            f"- check on the {len(sample):,} naive articles: newswatch {ours_sample:,} matches, "
            f"naive {naive_sample:,} -> {verdict}"
        )
        lines.append(f"- index stats: {stats}")
    lines.append("")
    return SizeReport(size, lines, ours, naive, perq_result, ours_subset, problems)


def targets(reports: Sequence[SizeReport]) -> list[str]:
    by_size = {r.size: r for r in reports}
    out = ["### Targets", ""]

    def line(ok: bool | None, text: str) -> None:
        out.append(f"- {'n/a ' if ok is None else ('PASS' if ok else 'FAIL')} {text}")

    r10 = by_size.get(10_000)
    r100 = by_size.get(100_000)
    if r10 and r10.ours:
        line(r10.ours.rate >= 3_000, f"10,000 rules >= 3,000 articles/s: {r10.ours.rate:,.0f}")
        ratio = r10.ours.rate / r10.naive.rate
        line(ratio >= 100, f"10,000 rules >= 100x naive: x{ratio:,.0f}")
    else:
        line(None, "10,000 rules >= 3,000 articles/s and >= 100x naive (not run)")
    if r100 and r100.ours:
        line(r100.ours.rate >= 500, f"100,000 rules >= 500 articles/s: {r100.ours.rate:,.0f}")
        mem = r100.ours.retained_mb or 0.0
        line(mem < 100, f"100,000 rules index memory < 100 MB: {mem:,.1f} MB (tracemalloc)")
    else:
        line(None, "100,000 rules >= 500 articles/s and memory < 100 MB (not run)")
    for r in reports:
        if r.ours_subset and r.perq:
            ok = r.ours_subset.rate >= r.perq.rate
            line(
                ok,
                f"{r.size:,} rules: no slower than perq on its {r.perq.rules:,} rules: "
                f"{r.ours_subset.rate:,.0f} vs {r.perq.rate:,.0f} articles/s",
            )
    for r in reports:
        line(not r.problems, f"{r.size:,} rules: results agree with the naive evaluator")
    out.append("")
    return out


def profile(
    sizes: Sequence[int], rules: Sequence[GeneratedRule], articles: Sequence[Article]
) -> None:
    """cProfile of build and match, the top allocations of a build, and the fixed
    per-article cost (an index whose one rule no article can match)."""
    floor = EngineRules(engine_specs([GeneratedRule("floor", "word", Word("zzqxv"), "zzqxv")]))
    _, seconds, _, _, _ = run_articles(floor.match, articles, range(len(articles)), ())
    per_article = seconds / len(articles) * 1e3
    print(f"\n## fixed cost per article (1 rule, never a candidate): {per_article:.3f} ms")
    del floor
    for size in sizes:
        specs = engine_specs(rules[:size])
        gc.collect()
        tracemalloc.start(1)
        built = EngineRules(specs)
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        del built
        top = snapshot.statistics("lineno")[:12]
        total = sum(s.size for s in snapshot.statistics("filename"))
        print(f"\n## tracemalloc: what {size:,} compiled rules hold ({total / MB:.1f} MB)\n")
        print("```")
        for stat in top:
            frame = stat.traceback[0]
            where = f"{'/'.join(frame.filename.split('/')[-2:])}:{frame.lineno}"
            print(f"{stat.size / MB:8.1f} MB {stat.count:>9,} blocks  {where}")
        print("```")
        del snapshot, top
        prof = cProfile.Profile()
        prof.enable()
        built = EngineRules(specs)
        prof.disable()
        print(f"\n## cProfile: compile_rules, {size:,} rules\n")
        _print_profile(prof, 15)
        for a in articles[:20]:
            built.match(a)
        prof = cProfile.Profile()
        prof.enable()
        for a in articles:
            built.match(a)
        prof.disable()
        print(f"\n## cProfile: match, {size:,} rules, {len(articles):,} articles\n")
        _print_profile(prof, 25)
        del built
        gc.collect()


def _print_profile(prof: cProfile.Profile, top: int) -> None:
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        text = out.getvalue()
        start = text.find("   ncalls")
        print(f"by {key}:\n```\n{text[start:].rstrip()}\n```")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="comma-separated rule counts (default 100..100000)")
    parser.add_argument("--articles", type=int, help="corpus size (default 2000)")
    parser.add_argument("--quick", action="store_true", help="sizes 100,1000 and 200 articles")
    parser.add_argument("--naive-budget", type=float, help="seconds of naive matching per size")
    parser.add_argument("--perq-budget", type=float, default=60.0)
    parser.add_argument("--profile", metavar="SIZES", help="cProfile the engine at these sizes")
    parser.add_argument("--output", help="also write the markdown report to this file")
    parser.add_argument("--no-pin", action="store_true", help="don't pin to one CPU")
    args = parser.parse_args(argv)

    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = tuple(int(s.replace("_", "")) for s in args.sizes.split(","))
    n_articles = args.articles or (200 if args.quick else 2_000)
    if args.naive_budget is None:
        args.naive_budget = 4.0 if args.quick else 15.0

    def log(msg: str) -> None:
        print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)

    args.log = log
    pinned = ""
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu}"

    world = World()
    articles = make_articles(n_articles, world)
    profile_sizes = [int(s) for s in args.profile.split(",")] if args.profile else []
    rules = make_rules(max((*sizes, *profile_sizes)), world)
    # A fixed shuffled order: a budget-limited run covers a reproducible sample.
    order = list(range(len(articles)))
    __import__("random").Random("order").shuffle(order)

    why_not = engine_available()
    if profile_sizes:
        if why_not:
            print(f"newswatch.rules is not usable: {why_not}", file=sys.stderr)
            return 2
        profile(profile_sizes, rules, articles)
        return 0

    kb = statistics.mean(len(a.content.encode()) for a in articles) / 1024
    lines = ["## Matching benchmark (benchmarks/match.py)", "", *machine_info()]
    lines.append(
        f"- corpus: {len(articles):,} articles, mean content {kb:.1f} KB; "
        f"single thread{', ' + pinned if pinned else ''}"
    )
    lines.append(f"- command: `{' '.join(['benchmarks/match.py', *sys.argv[1:]])}`")
    if why_not:
        lines.append(f"- **newswatch.rules not usable, baselines only**: {why_not}")
    lines.append("")
    print("\n".join(lines), flush=True)

    reports: list[SizeReport] = []
    for size in sizes:
        report = bench_size(size, rules, articles, order, args, why_not is None)
        reports.append(report)
        print("\n".join(report.lines), flush=True)
        lines += report.lines
    tail = targets(reports)
    tail[2:2] = [f"At the end of the run (this process included): {load_average()}.", ""]
    problems = [p for r in reports for p in r.problems]
    if problems:
        tail += ["### Disagreements", "", *(f"- {p}" for p in problems[:40]), ""]
    print("\n".join(tail), flush=True)
    lines += tail
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
