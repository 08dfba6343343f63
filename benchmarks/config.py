"""Loading the configuration: N rules and N feeds, today's loader as the baseline.

    .venv/bin/python benchmarks/config.py [--sizes 1000,2000,4000,10000]
    .venv/bin/python benchmarks/config.py --quick          # 1,000 and 2,000
    .venv/bin/python benchmarks/config.py --baseline-ref main

For each size N, in one process (CPU seconds, best of --repeat for ours):

- baseline: ``load_config`` of the loader before this change (the source of
  ``src/newswatch/config/load.py`` at --baseline-ref, loaded as a module in
  this run), on one file holding N inline rules and N inline feeds;
- new: today's ``load_config`` on the same file, and how much of it the rule
  index build (``newswatch.rules.compile_checked``, not part of this work)
  takes on its own;
- reload: the N rules spread over files of 100 rules each, one of them
  edited, loaded again with the previous load's ``ConfigCache``;
- lint: what ``newswatch check`` adds for its warnings.

The rules are the match benchmark's generated queries (``corpus.make_rules``);
the feeds have names, tags and 300 hosts. Targets: 10,000 rules plus 10,000
feeds load in under 5 s; a reload after one rule file changed under 2 s.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus import make_rules  # noqa: E402
from newswatch.config import load_config, rule_specs  # noqa: E402
from newswatch.rules import compile_checked  # noqa: E402

# The last main commit with the quadratic loader; `--baseline-ref` overrides.
BASELINE_REF = "90eb0a5"
RULES_PER_FILE = 100  # a plausible split: one file per desk or topic
HOSTS = 300


def baseline_loader(ref: str) -> ModuleType:
    """``newswatch/config/load.py`` as it was at ``ref``, as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{ref}:src/newswatch/config/load.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader("baseline_config_load", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{ref}:src/newswatch/config/load.py", "exec"), module.__dict__)
    return module


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def feed_lines(n: int) -> list[str]:
    out = []
    for i in range(n):
        out.append(f"  - url: https://news{i % HOSTS}.example.org/rss/{i}.xml")
        out.append(f"    name: Desk feed {i}")
        out.append(f"    tags: [t{i % 50}, wire]")
    return out


def rule_lines(queries: list[str], start: int, indent: str) -> list[str]:
    out = []
    for k, query in enumerate(queries):
        out.append(f"{indent}- name: rule-{start + k}")
        out.append(f"{indent}  query: {quote(query)}")
        out.append(f"{indent}  notify: [console]")
    return out


def write_inline(folder: Path, n: int, queries: list[str]) -> Path:
    lines = ["timezone: UTC", "channels:", "  console: {type: console}", "feeds:"]
    lines += feed_lines(n)
    lines += ["rules:", *rule_lines(queries[:n], 0, "  ")]
    path = folder / f"inline-{n}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_split(folder: Path, n: int, queries: list[str]) -> tuple[Path, Path]:
    """A main file with the feeds, and the rules in files of RULES_PER_FILE."""
    rules = folder / f"rules-{n}"
    rules.mkdir()
    for start in range(0, n, RULES_PER_FILE):
        chunk = queries[start : min(n, start + RULES_PER_FILE)]
        text = "\n".join(rule_lines(chunk, start, "")) + "\n"
        (rules / f"desk-{start // RULES_PER_FILE:04d}.yaml").write_text(text, encoding="utf-8")
    lines = ["timezone: UTC", "channels:", "  console: {type: console}", "feeds:"]
    lines += feed_lines(n)
    lines += [f"rules: {rules.name}/"]
    main = folder / f"split-{n}.yaml"
    main.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return main, rules / "desk-0000.yaml"


def cpu(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best CPU seconds of ``repeat`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        result = fn()
        best = min(best, time.process_time() - started)
    return best, result


def edit(path: Path) -> None:
    """Change one rule, as an editor's save would (new content, later mtime)."""
    text = path.read_text(encoding="utf-8").replace("notify: [console]", "notify: []", 1)
    stamp = path.stat().st_mtime_ns + 10**9
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))


def measure(
    n: int, folder: Path, queries: list[str], old: ModuleType | None, repeat: int
) -> dict[str, float | None]:
    env: dict[str, str] = {}
    inline = write_inline(folder, n, queries)
    base = None
    if old is not None:
        base, loaded = cpu(lambda: old.load_config(inline, env=env))
        assert len(loaded.config.rules) == n
    new, loaded = cpu(lambda: load_config(inline, env=env), repeat)
    assert len(loaded.config.rules) == n and len(loaded.config.feeds) == n
    specs, aliases = rule_specs(loaded.config), loaded.config.aliases
    index_build, _ = cpu(lambda: compile_checked(specs, aliases), repeat)
    lint, warnings = cpu(loaded.warnings, repeat)

    main, one_file = write_split(folder, n, queries)
    cold, first = cpu(lambda: load_config(main, env=env))
    cache = first.cache
    edit(one_file)
    misses = cache.misses
    reload, again = cpu(lambda: load_config(main, env=env, cache=cache))
    assert cache.misses == misses + 1, "only the edited file is parsed again"
    assert again.config.rules[0].notify == ()
    return {
        "base": base,
        "new": new,
        "index": index_build,
        "lint": lint,
        "cold": cold,
        "reload": reload,
        "warnings": float(len(warnings)),
    }


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,4000,10000")
    parser.add_argument("--quick", action="store_true", help="1,000 and 2,000 only")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument(
        "--no-baseline-above",
        type=int,
        default=10_000,
        help="skip the baseline past this size (it is quadratic)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [1000, 2000] if args.quick else [int(s) for s in args.sizes.split(",")]
    old = baseline_loader(args.baseline_ref)
    queries = [r.query for r in make_rules(max(sizes))]

    print(
        f"# Configuration loading ({platform.python_implementation()} {platform.python_version()})"
    )
    print()
    print(
        f"CPU seconds, one process; baseline: load.py at {args.baseline_ref}; "
        f"ours best of {args.repeat}. N inline rules + N inline feeds in one file."
    )
    print()
    print(
        "| N rules + N feeds | baseline load | new load | speed-up | of which index build "
        "| lint (check) | split into files: cold | reload, 1 file edited |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = {}
    with tempfile.TemporaryDirectory(prefix="nw-config-bench-") as tmp:
        for n in sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            use = old if n <= args.no_baseline_above else None
            r = results[n] = measure(n, folder, queries, use, args.repeat)
            ratio = f"{r['base'] / r['new']:.0f}x" if r["base"] and r["new"] else "-"
            print(
                f"| {n:,} | {fmt(r['base'])} | {fmt(r['new'])} | {ratio} | {fmt(r['index'])} "
                f"| {fmt(r['lint'])} | {fmt(r['cold'])} | {fmt(r['reload'])} |",
                flush=True,
            )
    print()
    big = results.get(10_000)
    if big is not None:
        new, reload = big["new"] or 0.0, big["reload"] or 0.0
        verdict = "PASS" if new < 5 else "FAIL"
        print(f"- {verdict}: 10,000 rules + 10,000 feeds load in {new:.2f} s (< 5 s)")
        print(
            f"- {'PASS' if reload < 2 else 'FAIL'}: reload after one rule file changed "
            f"in {reload:.2f} s (< 2 s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
