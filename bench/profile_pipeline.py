"""Where a consume -> validate -> produce pipeline spends its time: a FastKafka app under cProfile, on a real broker.

Not a test: `python bench/profile_pipeline.py [--messages N] [--loops single,hand-tuned] [--top 30]`. It starts a
throw-away Apache Kafka broker, fills an input topic with N (default 30,000) ~130-byte JSON messages and runs each
loop of `--loops` once over it, under cProfile (yappi is not installed here; cProfile profiles the event loop's
thread, which is where all of this runs). The loops are those of bench/throughput.py (same settings, same handler):
`single` and `batch` are FastKafka apps, `naive` and `hand-tuned` raw aiokafka loops.

For each FastKafka loop it prints the top `--top` functions by own time (tottime) and by cumulative time, restricted
to fastkafka, aiokafka and pydantic (pydantic_core's Rust methods included). Then, for every loop, a table of own
time per message by part of the pipeline (decode, handler, encode, completion tracking, produce path, aiokafka's
producer and consumer, the event loop, ...), the columns side by side. cProfile adds a roughly constant cost per
Python call, so code made of many small calls looks relatively dearer than it is; compare the columns and the
calls per message, and read absolute figures next to bench/throughput.py's unprofiled "CPU us/msg".
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import throughput as tp  # the loops being profiled

RESTRICT = r"fastkafka|aiokafka|pydantic"
CONSUMER, EXECUTORS = "fastkafka/_components/consumer.py", "fastkafka/_components/executors.py"

# (part of the pipeline, test on (file, function name)), first match wins; own time (tottime) is summed per part
Rule = tuple[str, Callable[[str, str], bool]]
RULES: list[Rule] = [
    ("decode: pydantic validate_json", lambda f, n: "validate_json" in n),
    ("encode: pydantic to_json / dump_json", lambda f, n: "to_json" in n or "dump_json" in n or "serializer" in n),
    ("handler: scale() builds the output model", lambda f, n: "validate_python" in n or (
        "pydantic" in f and n in ("__init__", "__setattr__", "__getattr__"))),
    ("fastkafka decoder wrapper (encoder/json.py)", lambda f, n: "fastkafka/_components/encoder" in f),
    ("bench: handler / loop body (throughput.py)", lambda f, n: f.endswith("throughput.py")),
    ("UnitDeliveries: add/_one_done/_account/seal", lambda f, n: CONSUMER in f and n in (
        "add", "_one_done", "_account", "seal", "_settle", "__init__", "keep_trying", "drop")),
    ("consumer: _handle_one/_handle_batch/_run_handler", lambda f, n: CONSUMER in f and n in (
        "_handle_one", "_handle_batch", "_run_handler", "<lambda>")),
    ("consumer: poll loop", lambda f, n: CONSUMER in f and n == "_poll_loop"),
    ("consumer: commits (_kick_commit/_commit/...)", lambda f, n: CONSUMER in f and (
        "commit" in n)),
    ("consumer: other", lambda f, n: CONSUMER in f),
    ("PartitionOffsets/OffsetTracker (begin/finish/to_commit)", lambda f, n: EXECUTORS in f
     and n in ("begin", "begin_many", "finish", "abandon", "get", "to_commit", "mark_committed", "<dictcomp>")),
    ("executor: SequentialExecutor.submit", lambda f, n: EXECUTORS in f),
    ("producer.py: async_wrapper/send_records/deliveries", lambda f, n: "fastkafka/_components/producer.py" in f),
    ("transport.py: RecoveringProducer.send/_watch", lambda f, n: "fastkafka/_components/transport.py" in f),
    ("fastkafka: other", lambda f, n: "fastkafka" in f),
    ("aiokafka producer: send/accumulator/sender", lambda f, n: "aiokafka/producer" in f),
    ("aiokafka consumer: getmany/fetcher/commit", lambda f, n: "aiokafka/consumer" in f),
    ("aiokafka records/protocol/connection", lambda f, n: "aiokafka" in f or "aiokafka" in n),
    ("idle: waiting in epoll (wall time, not CPU)", lambda f, n: "epoll" in n or "select.poll" in n),
    ("asyncio: futures, callbacks, tasks, event loop", lambda f, n: "asyncio" in f or "asyncio" in n
     or "_asyncio" in n or "selectors" in f or "select" in n or "socket" in n),
    ("contextvars / builtins / other", lambda f, n: True),
]


def part_of(key: tuple[str, int, str]) -> str:
    filename, _, name = key
    return next(label for label, test in RULES if test(filename, name))


async def profile_loop(loop: str, bootstrap: str, src: str, n: int, partitions: int,
                       inflight: int) -> tuple[pstats.Stats, dict[str, float]]:
    "Run `loop` once over `src` under cProfile; its stats and its figures (rate, CPU us/msg under the profiler)."
    dst = await tp.create_topic(bootstrap, f"out-{uuid.uuid4().hex[:8]}", partitions)
    prof = cProfile.Profile()
    prof.enable()
    try:
        if loop in ("single", "batch"):
            figures, _ = await tp.run_fastkafka(bootstrap, src, dst, n, batch=loop == "batch")
        elif loop == "naive":
            figures, _ = await tp.run_naive(bootstrap, src, dst, n)
        else:
            figures, _ = await tp.run_tuned(bootstrap, src, dst, n, inflight)
    finally:
        prof.disable()
    return pstats.Stats(prof), figures


def print_top(stats: pstats.Stats, sort: str, top: int) -> None:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(RESTRICT, top)
    text = out.getvalue()
    start = text.find("   ncalls")  # drop pstats' preamble (totals, the restriction it applied)
    print(text[start:] if start >= 0 else text)


def parts(stats: pstats.Stats, n: int) -> tuple[dict[str, float], dict[str, float], float]:
    "Own time (us per message) and calls per message by part, and the total own time per message."
    us: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for key, (_, ncalls, tottime, _, _) in raw.items():
        label = part_of(key)
        us[label] += tottime / n * 1e6
        calls[label] += ncalls / n
    return us, calls, sum(v for label, v in us.items() if not label.startswith("idle"))


async def main(args: argparse.Namespace) -> None:
    from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

    loops = [x.strip() for x in args.loops.split(",") if x.strip()]
    unknown = [x for x in loops if x not in tp.LOOPS]
    if unknown:
        raise SystemExit(f"unknown loop(s) {', '.join(unknown)}; use some of {', '.join(tp.LOOPS)}")
    n, partitions = args.messages, args.partitions
    print(f"command: {' '.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}")
    print(f"load average before: {tp.load()} ({os.cpu_count()} CPUs)", flush=True)
    results: dict[str, tuple[pstats.Stats, dict[str, float]]] = {}
    async with ApacheKafkaBroker(listener_port=0) as bootstrap:
        src = f"readings-{uuid.uuid4().hex[:8]}"
        await tp.fill(bootstrap, src, n, partitions)
        dst = await tp.create_topic(bootstrap, f"out-{uuid.uuid4().hex[:8]}", partitions)
        await tp.run_tuned(bootstrap, src, dst, min(n, tp.WARMUP), args.inflight)  # warm-up, not profiled
        for loop in loops:
            t0 = time.perf_counter()
            results[loop] = await profile_loop(loop, bootstrap, src, n, partitions, args.inflight)
            print(f"{loop}: {results[loop][1]['rate']:,.0f} msg/s under the profiler "
                  f"({time.perf_counter() - t0:.1f} s with start and stop)", file=sys.stderr, flush=True)
    print(f"load average after: {tp.load()}")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        for loop, (stats, _) in results.items():
            stats.dump_stats(os.path.join(args.save, f"{loop}.prof"))
    print(f"\n{n:,} messages, {partitions} partitions; each loop run once under cProfile\n")
    for loop, (stats, _) in results.items():
        if loop not in ("single", "batch"):
            continue
        for sort, what in (("tottime", "own time"), ("cumulative", "cumulative time")):
            print(f"## {loop}: top {args.top} by {what}, restricted to {RESTRICT}\n")
            print_top(stats, sort, args.top)
    table = {loop: parts(stats, n) for loop, (stats, _) in results.items()}
    print("## Own time per message by part of the pipeline (us/msg, under cProfile; calls/msg in brackets)\n")
    print("| part | " + " | ".join(table) + " |")
    print("|---|" + "---:|" * len(table))
    for label, _ in RULES:
        if all(us.get(label, 0.0) < 0.05 for us, _, _ in table.values()):
            continue
        cells = [f"{us.get(label, 0.0):.1f} ({calls.get(label, 0.0):.1f})" for us, calls, _ in table.values()]
        print(f"| {label} | " + " | ".join(cells) + " |")
    totals = " | ".join(f"**{total:.1f}**" for _, _, total in table.values())
    print(f"| **total own time, idle excluded** | {totals} |")
    print("| msg/s under the profiler | " + " | ".join(f"{f['rate']:,.0f}" for _, f in results.values()) + " |")
    print("| process CPU us/msg under the profiler | " + " | ".join(f"{f['cpu_us']:.1f}" for _, f in
                                                                   results.values()) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000, help="messages in the input topic")
    parser.add_argument("--loops", default="single,hand-tuned",
                        help=f"comma-separated, of {', '.join(tp.LOOPS)}; each is run once under the profiler")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the input and output topics")
    parser.add_argument("--inflight", type=int, default=64, help="hand-tuned loop: most polls not yet committed")
    parser.add_argument("--top", type=int, default=30, help="functions listed per ranking")
    parser.add_argument("--save", metavar="DIR", help="also write each loop's profile to DIR/<loop>.prof (pstats)")
    asyncio.run(main(parser.parse_args()))
