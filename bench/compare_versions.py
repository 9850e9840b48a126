"""Before/after comparison of a benchmark: runs it on two source trees alternately and prints the ratios.

    python bench/compare_versions.py tester [--rounds 3] [--before /tmp/before] [--after .] [benchmark args...]
    python bench/compare_versions.py throughput --rounds 3 --messages 20000

Each round runs `bench/<name>.py` of the before tree, then that of the after tree (A B A B ...), each in a fresh
subprocess whose `sys.path` starts with that tree's root (so `import fastkafka` is the tree's own package, checked
and printed), and with that tree's own copy of the script. Arguments it does not know are passed to the benchmark.
It parses the figures the benchmark prints and shows, per figure and round, both trees' values and after/before,
then the median of the per-round ratios. Because the machine is shared, alternating rounds and the median of the
ratios are what to read, not single values. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs in the child: put the tree first, check which fastkafka is imported, then run the benchmark as __main__.
RUNNER = r"""
import runpy, sys, types
root, script, *args = sys.argv[1:]
sys.path.insert(0, root)
import fastkafka
print(f"[compare_versions] fastkafka imported from {fastkafka.__file__}", file=sys.stderr, flush=True)
if not fastkafka.__file__.startswith(root.rstrip("/") + "/"):
    sys.exit(f"fastkafka was imported from {fastkafka.__file__}, not from {root}")
if "_slots[0].sender.client" in open(script).read():
    # bench/throughput.py flushes through the pre-refactor private `app._slots[i].sender`; the refactored app keeps
    # its senders in `app.runtime.sender(i)`. Give it the old name as a read-only view of the new one (called once
    # per run, after the timed messages are handled, before the final flush).
    from fastkafka import FastKafka
    if not hasattr(FastKafka(), "_slots"):
        FastKafka._slots = property(lambda app: [types.SimpleNamespace(sender=app.runtime.sender(i))
                                                 for i in range(len(app._producers))])
        print("[compare_versions] shim: app._slots[i].sender -> app.runtime.sender(i)", file=sys.stderr, flush=True)
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""

NUM = r"([\d,]+(?:\.\d+)?)"

# name -> list of (figure, regex with one group per figure listed, True when higher is better)
PARSERS: dict[str, list[tuple[list[str], str, bool]]] = {
    "tester": [
        (["Tester msg/s (wall)", "Tester msg/s (per CPU s)"], rf"Tester round trip:\s+{NUM}/s\s+{NUM}/s", True),
        (["baseline msg/s (wall)", "baseline msg/s (per CPU s)"], rf"baseline \(by hand\):\s+{NUM}/s\s+{NUM}/s", True),
        (["Tester/baseline (wall)", "Tester/baseline (CPU)"], rf"ratio Tester/base:\s+{NUM}\s+{NUM}", True),
        (["enter+exit ms"], rf"enter\+exit:\s+{NUM} ms", False),
    ],
    "throughput": [
        (["single msg/s", "raw msg/s", "single/raw"], rf"\| single \| {NUM} \| {NUM} \| {NUM} \|", True),
        (["batch msg/s", "batch/raw"], rf"\| batch \| {NUM} \| [\d,]+ \| {NUM} \|", True),
        (["raw no-ack msg/s", "single/raw no-ack"], rf"not at-least-once\): {NUM} msg/s \(single mode ratio {NUM}\)",
         True),
    ],
}


def run_one(root: Path, name: str, args: list[str]) -> tuple[dict[str, float], float, str]:
    "Run `root`'s bench/<name>.py in a fresh interpreter; its figures, wall seconds and output."
    script = root / "bench" / f"{name}.py"
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", RUNNER, str(root), str(script), *args], cwd=root,
                         capture_output=True, text=True, env=_env())
    took = time.perf_counter() - t0
    out = res.stdout + res.stderr
    if res.returncode != 0:
        raise SystemExit(f"{script} failed (exit code {res.returncode}):\n{out[-4000:]}")
    figures: dict[str, float] = {}
    for names, pattern, _ in PARSERS[name]:
        m = re.search(pattern, res.stdout)
        if m is None:
            raise SystemExit(f"{script} printed no line matching {pattern!r}:\n{res.stdout}")
        figures.update({n: float(v.replace(",", "")) for n, v in zip(names, m.groups(), strict=True)})
    return figures, took, out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the runner puts the tree first itself
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(PARSERS), help="benchmark: bench/<name>.py")
    parser.add_argument("--rounds", type=int, default=3, help="before/after pairs")
    parser.add_argument("--before", type=Path, default=Path("/tmp/before"), help="root of the tree before")
    parser.add_argument("--after", type=Path, default=HERE, help="root of the tree after")
    parser.add_argument("--verbose", action="store_true", help="print each run's own output")
    opts, bench_args = parser.parse_known_args()
    trees = {"before": opts.before.resolve(), "after": opts.after.resolve()}
    higher_better = {n: hb for names, _, hb in PARSERS[opts.name] for n in names}
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    start = time.perf_counter()
    print(f"bench/{opts.name}.py {' '.join(bench_args)}; before={trees['before']} after={trees['after']}; "
          f"{opts.rounds} rounds, alternating", flush=True)
    for r in range(opts.rounds):
        for side, root in trees.items():
            figures, took, out = run_one(root, opts.name, bench_args)
            results[side].append(figures)
            origin = re.search(r"fastkafka imported from (\S+)", out)
            print(f"round {r + 1} {side:6}: {took:6.1f} s, fastkafka from {origin and origin.group(1)}", flush=True)
            if opts.verbose or "shim:" in out:
                print("  " + "\n  ".join(line for line in out.splitlines() if opts.verbose or "shim:" in line))
    print("\n| figure | better | round | before | after | after/before |")
    print("|---|---|---:|---:|---:|---:|")
    summary = []
    for fig, hb in higher_better.items():
        ratios = []
        for r in range(opts.rounds):
            b, a = results["before"][r][fig], results["after"][r][fig]
            ratios.append(a / b)
            print(f"| {fig} | {'higher' if hb else 'lower'} | {r + 1} | {b:,.2f} | {a:,.2f} | {a / b:.3f} |")
        med = statistics.median(ratios)
        summary.append((fig, hb, med))
        print(f"| **{fig}** | {'higher' if hb else 'lower'} | **median** | | | **{med:.3f}** |")
    print("\nMedian after/before, as 'after is N% slower (-) or faster (+)':")
    for fig, hb, med in summary:
        change = (med - 1) if hb else (1 / med - 1)
        print(f"  {fig:28} {med:6.3f}  {change * 100:+6.1f}%")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
