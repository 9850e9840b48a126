"""Exactly-once next to at-least-once: the same FastKafka consume -> validate -> produce app, both guarantees, one run.

Not a test: `python bench/exactly_once.py [--messages N] [--rounds R] [--partitions P] [--batch]`. It starts a
throw-away Apache Kafka broker, fills an input topic with N ~130-byte JSON messages (bench/throughput.py's), and then
runs the same app (bench/throughput.py's single-message app: validate each message, send a new model through an
`@app.produces` function) twice per round, each time with a fresh consumer group from the earliest offset and a fresh
output topic:

* at-least-once: FastKafka's default (offsets committed once the output is acknowledged);
* exactly-once: `processing_guarantee="exactly_once"` (output and offsets committed in one transaction per input
  partition, every 100 ms).

The two alternate: round 1 runs at-least-once first, round 2 exactly-once first, and so on. A run is timed from its
first handled message until the app has stopped, so that everything is committed in both modes (for exactly-once,
the output becomes visible to read_committed consumers only then). After each run the script checks that a
read_committed reader finds exactly N records in the output topic and that the group committed the input's end
offsets. Each run is a fresh Python process. What to read: the median of the per-round ratios exactly-once /
at-least-once (with min and max), next to both median rates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer
from throughput import create_topic, end_offsets, fill, load, pipeline_app

MODES = ("at_least_once", "exactly_once")
WARMUP = 5000


async def count_committed(bootstrap: str, topic: str, partitions: int) -> int:
    "How many records a read_committed reader finds in `topic` (up to its end offsets now)."
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        count = 0
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                count += len(records)
        return count
    finally:
        await consumer.stop()


async def check_offsets(bootstrap: str, src: str, group: str, partitions: int) -> None:
    "Raise unless `group` committed the end offsets of `src`."
    from aiokafka.admin import AIOKafkaAdminClient

    ends = await end_offsets(bootstrap, src, partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = {tp: om.offset for tp, om in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()
    if committed != ends:
        raise SystemExit(f"group {group} committed {committed}, expected the end offsets {ends}")


async def run_app(bootstrap: str, src: str, dst: str, n: int, mode: str, batch: bool,
                  interval_ms: int | None = None) -> tuple[dict[str, float], str]:
    extra = {"auto_commit_interval_ms": interval_ms} if interval_ms and mode == "exactly_once" else {}
    app, clock, group = pipeline_app(bootstrap, src, dst, n, batch, processing_guarantee=mode, **extra)

    runner = None
    async with app:  # leaving it commits everything: the final commit, or the last transactions
        runner = app.runtime.consumers[0]
        await asyncio.wait_for(clock.done.wait(), 600)
    figures = clock.result()
    figures["transactions"] = getattr(runner, "committed_transactions", 0)
    return figures, group


async def child(mode: str, bootstrap: str, src: str, n: int, partitions: int, batch: bool,
                interval_ms: int | None) -> dict[str, Any]:
    dst = await create_topic(bootstrap, f"out-{uuid.uuid4().hex[:8]}", partitions)
    figures, group = await run_app(bootstrap, src, dst, n, mode, batch, interval_ms)
    full = sum((await end_offsets(bootstrap, src, partitions)).values())
    if n == full:  # a full run (not the warm-up): every message once in the output, every offset committed
        committed = await count_committed(bootstrap, dst, partitions)
        if committed != n:
            raise SystemExit(f"{mode}: a read_committed reader found {committed} records in {dst}, expected {n}")
        await check_offsets(bootstrap, src, group, partitions)
    return {**figures, "checked": n == full}


async def run_child(mode: str, bootstrap: str, src: str, n: int, partitions: int, batch: bool,
                    interval_ms: int | None) -> dict[str, Any]:
    args = [sys.executable, __file__, "--child", mode, "--bootstrap", bootstrap, "--topic", src, "--messages", str(n),
            "--partitions", str(partitions)] + (["--batch"] if batch else [])
    args += ["--commit-interval-ms", str(interval_ms)] if interval_ms else []
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 900)
    if proc.returncode != 0:
        raise SystemExit(f"the {mode} run failed (exit code {proc.returncode}):\n{err.decode()[-4000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


async def main(args: argparse.Namespace) -> None:
    from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

    n, rounds, partitions = args.messages, args.rounds, args.partitions
    print(f"command: {' '.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}")
    print(f"load average before: {load()} ({os.cpu_count()} CPUs)", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    started = time.monotonic()
    async with ApacheKafkaBroker(listener_port=0) as bootstrap:
        src = f"readings-{uuid.uuid4().hex[:8]}"
        await fill(bootstrap, src, n, partitions)
        for m in MODES:  # untimed warm-up of both (page cache, first connections, the transaction log)
            await run_child(m, bootstrap, src, min(n, WARMUP), partitions, args.batch, args.commit_interval_ms)
        for r in range(rounds):
            order = MODES if r % 2 == 0 else MODES[::-1]
            for m in order:
                runs[m].append(await run_child(m, bootstrap, src, n, partitions, args.batch, args.commit_interval_ms))
            eo, alo = runs["exactly_once"][-1]["rate"], runs["at_least_once"][-1]["rate"]
            print(f"round {r + 1} ({' then '.join(order)}): exactly-once {eo:,.0f} msg/s, at-least-once "
                  f"{alo:,.0f} msg/s, ratio {eo / alo:.2f} ({runs['exactly_once'][-1]['transactions']} "
                  "transactions)", flush=True)
    ratios = [a["rate"] / b["rate"] for a, b in zip(runs["exactly_once"], runs["at_least_once"], strict=True)]
    eo = statistics.median(r["rate"] for r in runs["exactly_once"])
    alo = statistics.median(r["rate"] for r in runs["at_least_once"])
    mode = "batch (List[Model])" if args.batch else "single message"
    print(f"\n{n:,} messages, {partitions} partitions, {mode}, {rounds} rounds alternating, "
          f"{time.monotonic() - started:.0f} s; every run checked: a read_committed reader finds each message once")
    print(f"exactly-once {eo:,.0f} msg/s, at-least-once {alo:,.0f} msg/s, ratio {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000, help="messages in the input topic, per run")
    parser.add_argument("--rounds", type=int, default=4, help="rounds; each runs both guarantees once")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the input and output topics")
    parser.add_argument("--batch", action="store_true", help="batch consumer (List[Model]) instead of single")
    parser.add_argument("--commit-interval-ms", type=int, default=None,
                        help="exactly-once: auto_commit_interval_ms (default: fastkafka's, 100 ms)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child, args.bootstrap, args.topic, args.messages, args.partitions,
                                           args.batch, args.commit_interval_ms))))
    else:
        asyncio.run(main(args))
