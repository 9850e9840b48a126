"""Tester benchmark: round-trip throughput and enter+exit time, on the in-memory broker.

    python bench/tester.py [--messages 20000] [--cycles 50]
    python bench/tester.py --before db5f558 [--rounds 5]   # an older revision against this tree, in one run

Round trip: `tester.to_input(msg)` -> the app's consumer -> the app's producer -> the tester's observer
(`tester.on_output`), for N messages, timed until the observer has seen all N. The baseline, measured in the
same run, does the same hops by hand with the in-memory broker's clients and pydantic (no app, no Tester, no
mocks): it is what the Tester's machinery is compared with. Enter+exit: `async with Tester(app): pass` for the
same two-function app, averaged over the cycles. Not a test: it prints figures.

With `--before REV`, the package of git revision REV ("before", extracted with `git archive` into a temporary
folder) and this tree's package ("after") are measured alternately, A B A B ..., each round in a fresh
subprocess whose PYTHONPATH points at its package (this same script runs both); it prints each side's median
figures and the median (min, max) of the per-round after/before ratios, so a busy host slows both sides alike.
"""
import argparse
import asyncio
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._components.mocks import watch
from fastkafka._testing.in_memory_broker import InMemoryBroker
from fastkafka.testing import Tester


class Data(BaseModel):
    data: float


def make_app() -> FastKafka:
    app = FastKafka(kafka_brokers={"localhost": {"url": "localhost", "port": 9092}})

    @app.consumes(topic="input")
    async def on_input(msg: Data) -> None:
        await to_output(msg)

    @app.produces(topic="output")
    async def to_output(msg: Data) -> Data:
        return Data(data=msg.data + 1)

    return app


async def tester_round_trip(n: int) -> tuple[float, float]:
    "Messages per second through the Tester and the app: by wall-clock time and by this process's CPU time."
    tester = Tester(make_app())
    async with tester:
        mock = tester.mocks.on_output
        gc.collect()  # garbage left by earlier runs is not this run's cost
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            await tester.to_input(Data(data=i))
        while mock.await_count < n:
            change = watch(mock).next_change()
            if mock.await_count < n:
                await asyncio.wait_for(change, 60)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert mock.await_args.args[0] == Data(data=n), mock.await_args
    return n / elapsed, n / cpu


async def baseline_round_trip(n: int) -> tuple[float, float]:
    "The same hops by hand: send, poll, decode, encode, send, poll, decode."
    broker, servers = InMemoryBroker(), "localhost:9092"
    async with broker.create_producer(bootstrap_servers=servers) as producer:  # type: ignore[attr-defined]
        app_in = broker.create_consumer("input", bootstrap_servers=servers, auto_offset_reset="earliest")
        observer = broker.create_consumer("output", bootstrap_servers=servers, auto_offset_reset="earliest")
        await app_in.start()
        await observer.start()
        seen = 0
        done = asyncio.Event()

        async def app_loop() -> None:
            while True:
                for records in (await app_in.getmany(timeout_ms=1000, max_records=100)).values():
                    for r in records:
                        msg = Data.model_validate_json(r.value)
                        await producer.send("output", Data(data=msg.data + 1).model_dump_json().encode())

        async def observe() -> None:
            nonlocal seen
            while True:
                for records in (await observer.getmany(timeout_ms=1000)).values():
                    for r in records:
                        Data.model_validate_json(r.value)
                        seen += 1
                if seen >= n:
                    done.set()

        tasks = [asyncio.create_task(app_loop()), asyncio.create_task(observe())]
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            await (await producer.send("input", Data(data=i).model_dump_json().encode()))
        await asyncio.wait_for(done.wait(), 60)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app_in.stop()
        await observer.stop()
    return n / elapsed, n / cpu


async def enter_exit(cycles: int) -> float:
    "Mean seconds for `async with Tester(app): pass`."
    tester = Tester(make_app())
    t0 = time.perf_counter()
    for _ in range(cycles):
        async with tester:
            pass
    return (time.perf_counter() - t0) / cycles


async def measure(n: int, cycles: int) -> dict[str, float]:
    "Every figure of one run, in this process."
    await tester_round_trip(min(n, 1000))  # warm-up
    rate, rate_cpu = await tester_round_trip(n)
    base, base_cpu = await baseline_round_trip(n)
    per_cycle = await enter_exit(cycles)
    return {"rate": rate, "rate_cpu": rate_cpu, "base": base, "base_cpu": base_cpu, "enter_exit_ms": per_cycle * 1000}


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def header() -> None:
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]))


async def main(n: int, cycles: int) -> None:
    f = await measure(n, cycles)
    rate, rate_cpu, base, base_cpu = f["rate"], f["rate_cpu"], f["base"], f["base_cpu"]
    per_cycle = f["enter_exit_ms"] / 1000
    load = load_average()
    header()
    print(f"{n:,} messages, {os.cpu_count()} CPUs, load average {load:.1f} (other processes slow wall-clock figures)")
    print("                      wall clock   per CPU second")
    print(f"Tester round trip:   {rate:>9,.0f}/s   {rate_cpu:>9,.0f}/s   (target >= 20,000 msg/s)")
    print(f"baseline (by hand):  {base:>9,.0f}/s   {base_cpu:>9,.0f}/s   (same hops on the in-memory clients, no app)")
    print(f"ratio Tester/base:   {rate / base:>9.2f}    {rate_cpu / base_cpu:>9.2f}")
    print(f"enter+exit:          {per_cycle * 1000:>9.2f} ms  (two-function app, mean of {cycles}; target < 50 ms)")


def extract(rev: str, into: str) -> str:
    "The `fastkafka` package of git revision `rev`, written under `into`; returns its PYTHONPATH entry."
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "fastkafka"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", into], input=archive.stdout, check=True)
    return into


def child(path: str, n: int, cycles: int) -> dict[str, Any]:
    "One run of this script in a fresh process importing `fastkafka` from `path`."
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, *filter(None, [os.environ.get("PYTHONPATH")])])}
    out = subprocess.run([sys.executable, __file__, "--json", "--messages", str(n), "--cycles", str(cycles)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(before: str, rounds: int, n: int, cycles: int) -> None:
    "Measure revision `before` and this tree alternately, `rounds` times each; print medians and ratios."
    here = str(Path(__file__).resolve().parent.parent)
    load0 = load_average()
    with tempfile.TemporaryDirectory(prefix="fk-before-") as tmp:
        old = extract(before, tmp)
        runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for _ in range(rounds):
            runs["before"].append(child(old, n, cycles))
            runs["after"].append(child(here, n, cycles))
    sha = subprocess.run(["git", "-C", here, "rev-parse", "--short", before], capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "fastkafka"], capture_output=True,
                           text=True).stdout
    head = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    header()
    print(f"{n:,} messages x {rounds} rounds, alternating before/after, each in a fresh process; "
          f"{os.cpu_count()} CPUs, load average {load0:.1f} at start, {load_average():.1f} at end")
    print(f"before: {before} ({sha.strip()}), package {runs['before'][0]['package']}")
    print(f"after:  this tree (HEAD {head.strip()}{', uncommitted changes' if dirty.strip() else ''}), "
          f"package {runs['after'][0]['package']}")

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    def ratios(key: str, invert: bool = False) -> str:
        pairs = zip(runs["before"], runs["after"], strict=True)
        rs = [(b[key] / a[key]) if invert else (a[key] / b[key]) for b, a in pairs]
        return f"{statistics.median(rs):5.2f}x  ({min(rs):.2f} - {max(rs):.2f})"

    print("                         before (median)   after (median)   after/before per round: median (min - max)")
    for label, key in [("Tester round trip, wall", "rate"), ("Tester round trip, CPU", "rate_cpu"),
                       ("baseline by hand, wall", "base"), ("baseline by hand, CPU", "base_cpu")]:
        print(f"{label:24s} {med('before', key):>11,.0f}/s   {med('after', key):>11,.0f}/s     {ratios(key)}")
    print(f"{'enter+exit':24s} {med('before', 'enter_exit_ms'):>11.2f} ms  {med('after', 'enter_exit_ms'):>11.2f} ms"
          f"     {ratios('enter_exit_ms', invert=True)} (before/after: > 1 is faster)")
    print("Tester/baseline, wall:   "
          f"{statistics.median(r['rate'] / r['base'] for r in runs['before']):>11.2f}     "
          f"{statistics.median(r['rate'] / r['base'] for r in runs['after']):>11.2f}")
    print("per round (msg/s, wall): " + "; ".join(
        f"{b['rate']:,.0f} -> {a['rate']:,.0f}" for b, a in zip(runs["before"], runs["after"], strict=True)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--before", metavar="REV", help="git revision to compare this tree with (e.g. db5f558)")
    parser.add_argument("--rounds", type=int, default=5, help="with --before: runs of each side, alternating")
    parser.add_argument("--json", action="store_true", help="print the figures of one run as JSON (used by --before)")
    args = parser.parse_args()
    if args.before:
        compare(args.before, args.rounds, args.messages, args.cycles)
    elif args.json:
        import fastkafka

        figures: dict[str, Any] = asyncio.run(measure(args.messages, args.cycles))
        print(json.dumps({**figures, "package": str(Path(fastkafka.__file__).parent)}))
    else:
        asyncio.run(main(args.messages, args.cycles))
