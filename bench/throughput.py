"""Consume -> validate -> produce throughput: FastKafka apps on both transports next to two hand-written aiokafka loops.

Not a test: `python bench/throughput.py [--messages N] [--rounds R] [--partitions P] [--inflight K]
[--memory-messages M] [--loops a,b,...]`. It starts a
throw-away Apache Kafka broker, fills an input topic with N ~130-byte JSON messages, and then runs its loops over
that topic, each with a fresh consumer group from the earliest offset, `max_poll_records=100` (FastKafka's
default) and an idempotent producer with `acks="all"` (FastKafka's default); each validates every message into a
pydantic model, makes a new model of it and sends that to a fresh output topic, and commits only offsets whose
output records Kafka has acknowledged (at-least-once):

* single: a FastKafka app, one message per handler call, the handler calls an `@app.produces` function;
* batch: the same with `List[M]` in and `List[M]` out (one handler call per partition and poll);
* rd-single, rd-batch: the same two apps with `FastKafka(..., transport="librdkafka")` (confluent-kafka; skipped
  with a note when it is not installed);
* naive: raw aiokafka, `getmany`, `send` each result without awaiting it, then wait for that poll's
  acknowledgements and commit, before the next poll;
* rd-hand-tuned: the hand-tuned loop below on the clients of fastkafka's librdkafka transport (the same code: they
  take aiokafka's arguments and return its structs): the transport's own ceiling;
* rd-raw: raw confluent-kafka with no asyncio at all, the librdkafka ceiling for this work in Python: one thread
  consumes 500 records at a time, validates, builds and produces each (no per-record callback: delivery reports
  only for errors, which fail the run), and after every 16 such batches (8,000 records) waits for the producer's
  queue to drain (`flush`) and commits the consumed offsets (at-least-once);
* hand-tuned: raw aiokafka, THE BASELINE: it keeps polling; each poll's delivery futures and last offsets go to
  a window that a background task drains in order, awaiting the acknowledgements and committing the latest
  offsets that are fully acknowledged (polls that finished meanwhile are coalesced into one commit). At most K
  polls (`--inflight`, default 64) are outstanding, so memory stays bounded.

A run is timed from its first handled message to the moment every output record is acknowledged, so group joins
and client start-up are left out. After a full run the script checks that the output topic holds N records and that
the group's committed offsets are the input's end offsets, so every loop did all the work it claims.

Trustworthiness on a shared machine: every round runs all the loops, one after the other, in an order rotated by
one place per round (round 1: single batch naive hand-tuned, round 2: batch naive hand-tuned single, ...), so none
always runs first or last. What to read is the median over the rounds of each loop's per-round ratio to the
hand-tuned run of the same round (with the min and max), not single rates. The command line and the load average
before and after are printed with the table.

Each run is a fresh Python process (the broker stays up in this one), like bench/compare_versions.py does: so the
loops share no heap, garbage or warm caches, and each run's peak RSS (VmHWM of /proc/self/status, which only ever
grows within a process) is that loop's own. The table shows the peak (largest over the rounds) and the growth from
just before the clients start to the end of the run; a FastKafka run's peak includes importing fastkafka, which the
raw loops do not import. With `--memory-messages M` every loop also runs once over a second topic of M records and
a second table sets its peak RSS next to the one over N records: a process whose memory grew with the number of
records would show it there (FastKafka bounds what it holds: `max_in_flight` handled messages awaiting
acknowledgement per consumer, and the clients' own buffers).
"CPU us/msg" is the run's process CPU time (user + system, the broker's JVM excluded) over
the timed part, per message: less sensitive to other load on the machine than msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections import deque
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

POLL = 100  # max_poll_records, FastKafka's default
LOOPS = ("single", "batch", "rd-single", "rd-batch", "naive", "hand-tuned", "rd-hand-tuned", "rd-raw")
FASTKAFKA_LOOPS = ("single", "batch", "rd-single", "rd-batch")
BASELINE = "hand-tuned"
WARMUP = 5000  # messages of the untimed warm-up run (broker page cache, first connections)


class Reading(BaseModel):
    id: int
    sensor: str
    value: float
    unit: str
    at: str
    tags: list[str]


class Scaled(BaseModel):
    id: int
    sensor: str
    value: float


def payload(i: int) -> bytes:
    r = Reading(id=i, sensor=f"sensor-{i % 1000:04d}", value=i * 0.001 + 20.5, unit="celsius",
                at="2026-01-01T00:00:00.000000+00:00", tags=["lab", "floor-3"])
    return r.model_dump_json().encode()


def scale(r: Reading) -> Scaled:
    return Scaled(id=r.id, sensor=r.sensor, value=r.value * 2)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def fill(bootstrap: str, topic: str, n: int, partitions: int) -> None:
    await create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262144)
    await producer.start()
    try:
        futs = [await producer.send(topic, payload(i), key=str(i).encode()) for i in range(n)]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


def memory_kb() -> tuple[int, int]:
    "(VmRSS, VmHWM) of this process in kB; VmHWM is the peak so far."
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError):  # no /proc: ru_maxrss is the peak (kB on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


class Clock:
    "Counts handled messages; wall and CPU time from the first one; `done` once n were handled."

    def __init__(self, n: int) -> None:
        self.n, self.count, self.t0, self.cpu0 = n, 0, 0.0, 0.0
        self.done = asyncio.Event()

    def start(self) -> None:
        "The first message is about to be handled (called by each loop before its first handling)."
        if not self.t0:
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()

    def tick(self, k: int = 1) -> None:
        "`k` more messages were handled."
        self.count += k
        if self.count >= self.n:
            self.done.set()

    def result(self) -> dict[str, float]:
        "Figures of a run that ended now (every output acknowledged)."
        wall, cpu = time.perf_counter() - self.t0, time.process_time() - self.cpu0
        return {"rate": self.count / wall, "wall_s": wall, "cpu_us": cpu / self.count * 1e6}


def consumer_for(bootstrap: str, src: str, group: str, transport: str = "aiokafka") -> Any:
    config = dict(bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                  max_poll_records=POLL)
    if transport == "librdkafka":  # fastkafka's librdkafka clients, which take aiokafka's arguments
        from fastkafka._components.librdkafka import LibrdkafkaTransport

        return LibrdkafkaTransport().create_consumer(src, **config)
    return AIOKafkaConsumer(src, **config)


def producer_for(bootstrap: str, transport: str = "aiokafka") -> Any:
    if transport == "librdkafka":
        from fastkafka._components.librdkafka import LibrdkafkaTransport

        return LibrdkafkaTransport().create_producer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)


def pipeline_app(bootstrap: str, src: str, dst: str, n: int, batch: bool, **app_kwargs: Any) -> tuple[Any, Clock, str]:
    "The benchmark's FastKafka app (single or batch), its clock and its group id; `app_kwargs` go to `FastKafka`."
    from fastkafka import FastKafka  # here, so that the raw loops' processes do not import it

    host, port = bootstrap.rsplit(":", 1)
    group = uuid.uuid4().hex
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": port}}, group_id=group,
                    auto_offset_reset="earliest", max_poll_records=POLL, **app_kwargs)
    clock = Clock(n)

    if batch:
        @app.produces(topic=dst)
        async def to_out_batch(items: list[Scaled]) -> list[Scaled]:
            return items

        @app.consumes(topic=src)
        async def on_readings(readings: list[Reading]) -> None:
            if not clock.t0:
                clock.start()
            await to_out_batch([scale(r) for r in readings])
            clock.tick(len(readings))
    else:
        @app.produces(topic=dst)
        async def to_out(item: Scaled) -> Scaled:
            return item

        @app.consumes(topic=src)
        async def on_reading(reading: Reading) -> None:
            if not clock.t0:
                clock.start()
            await to_out(scale(reading))
            clock.tick()

    return app, clock, group


async def run_fastkafka(bootstrap: str, src: str, dst: str, n: int, batch: bool,
                        transport: str = "aiokafka") -> tuple[dict[str, float], str]:
    app, clock, group = pipeline_app(bootstrap, src, dst, n, batch, transport=transport)
    async with app:  # leaving it stops the consumer gracefully: its final commit covers everything handled
        await asyncio.wait_for(clock.done.wait(), 600)
        await app.runtime.sender(0).client.flush()  # every output record acknowledged
        figures = clock.result()
    return figures, group


async def run_naive(bootstrap: str, src: str, dst: str, n: int) -> tuple[dict[str, float], str]:
    "Poll, send each result, wait for the poll's acknowledgements, commit; then the next poll."
    group = uuid.uuid4().hex
    clock, consumer, producer = Clock(n), consumer_for(bootstrap, src, group), producer_for(bootstrap)
    await producer.start()
    await consumer.start()
    try:
        while clock.count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=POLL)
            if batches and not clock.t0:
                clock.start()
            futures = []
            for records in batches.values():
                for record in records:
                    out = scale(Reading.model_validate_json(record.value))
                    futures.append(await producer.send(dst, out.model_dump_json().encode()))
                clock.tick(len(records))
            if futures:
                await asyncio.gather(*futures)  # at-least-once: commit only what was acknowledged
                await consumer.commit()
        await producer.flush()
        figures = clock.result()
    finally:
        await consumer.stop()
        await producer.stop()
    return figures, group


async def run_tuned(bootstrap: str, src: str, dst: str, n: int, inflight: int,
                    transport: str = "aiokafka") -> tuple[dict[str, float], str]:
    "Keep polling; a background task awaits each poll's acknowledgements in order and commits behind them."
    group = uuid.uuid4().hex
    clock = Clock(n)
    consumer, producer = consumer_for(bootstrap, src, group, transport), producer_for(bootstrap, transport)
    # polls sent and not yet committed, oldest first: (their delivery futures, next offset of each partition)
    window: deque[tuple[list[asyncio.Future[Any]], dict[TopicPartition, int]]] = deque()
    arrived, room = asyncio.Event(), asyncio.Event()  # a poll joined the window / left it
    polling = True

    async def committer() -> None:
        try:
            while window or polling:
                if not window:
                    arrived.clear()
                    await arrived.wait()
                    continue
                for fut in window[0][0]:  # the oldest poll; a failed delivery raises: nothing past it is committed
                    await fut
                offsets: dict[TopicPartition, int] = {}
                while window and all(f.done() for f in window[0][0]):  # it, and every later poll that is acked
                    futures, next_offsets = window.popleft()
                    for f in futures:
                        f.result()
                    offsets.update(next_offsets)
                room.set()
                await consumer.commit(offsets)  # later polls keep being sent and acknowledged meanwhile
        finally:
            room.set()  # never leave the poll loop waiting for a committer that ended

    await producer.start()
    await consumer.start()
    task = asyncio.get_running_loop().create_task(committer())
    try:
        while clock.count < n:
            while len(window) >= inflight and not task.done():  # bounded: at most `inflight` polls outstanding
                room.clear()
                await room.wait()
            if task.done():
                task.result()  # raises why the committer stopped
                raise RuntimeError("the committer stopped early")
            batches = await consumer.getmany(timeout_ms=1000, max_records=POLL)
            if not batches:
                continue
            if not clock.t0:
                clock.start()
            futures, next_offsets = [], {}
            for tp, records in batches.items():
                for record in records:
                    out = scale(Reading.model_validate_json(record.value))
                    futures.append(await producer.send(dst, out.model_dump_json().encode()))
                if records:
                    next_offsets[tp] = records[-1].offset + 1
                    clock.tick(len(records))
            if not futures:
                continue
            window.append((futures, next_offsets))
            arrived.set()
        await producer.flush()
        figures = clock.result()
        polling = False
        arrived.set()
        await task  # the last commits (untimed, like FastKafka's final commit)
    finally:
        task.cancel()
        await consumer.stop()
        await producer.stop()
    return figures, group


def run_rd_raw(bootstrap: str, src: str, dst: str, n: int) -> tuple[dict[str, float], str]:
    "Raw confluent-kafka, synchronous: consume, validate, produce; every 16 batches flush, then commit."
    import confluent_kafka as ck

    group = uuid.uuid4().hex
    clock = Clock(n)
    failures: list[Any] = []
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                            "enable.auto.commit": False, "enable.partition.eof": False})
    producer = ck.Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                            "delivery.report.only.error": True, "on_delivery": lambda err, msg: failures.append(err)})
    consumer.subscribe([src])
    try:
        batches = 0
        while clock.count < n:
            messages = consumer.consume(500, 1.0)
            if not messages:
                continue
            if not clock.t0:
                clock.start()
            produce, validate = producer.produce, Reading.model_validate_json
            for m in messages:
                if m.error() is not None:
                    raise SystemExit(f"consume failed: {m.error()}")
                out = scale(validate(m.value()))
                try:
                    produce(dst, out.model_dump_json().encode())
                except BufferError:
                    producer.poll(0.1)
                    produce(dst, out.model_dump_json().encode())
            producer.poll(0)
            clock.tick(len(messages))
            batches += 1
            if batches % 16 == 0 or clock.count >= n:
                producer.flush()  # every record so far acknowledged: what was consumed may be committed
                if failures:
                    raise SystemExit(f"deliveries failed: {failures[:3]}")
                consumer.commit(asynchronous=False)
        producer.flush()
        figures = clock.result()
    finally:
        consumer.close()
    return figures, group


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()


async def check(bootstrap: str, src: str, dst: str, group: str, n: int, partitions: int) -> None:
    "Raise unless `dst` holds n records and `group` committed the end of `src`."
    produced = sum((await end_offsets(bootstrap, dst, partitions)).values())
    if produced != n:
        raise SystemExit(f"the output topic {dst} holds {produced} records, expected {n}")
    ends = await end_offsets(bootstrap, src, partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = {tp: om.offset for tp, om in (await admin.list_consumer_group_offsets(group)).items()}
    finally:
        await admin.close()
    if committed != ends:
        raise SystemExit(f"group {group} committed {committed}, expected the end offsets {ends}")


async def child(loop: str, bootstrap: str, src: str, n: int, partitions: int, inflight: int) -> dict[str, Any]:
    "One run of `loop` in this (fresh) process; its figures."
    if loop in FASTKAFKA_LOOPS:
        import fastkafka  # noqa: F401  (imported before the RSS baseline: the growth is the run's own)
    dst = await create_topic(bootstrap, f"out-{uuid.uuid4().hex[:8]}", partitions)
    rss0, _ = memory_kb()
    if loop in FASTKAFKA_LOOPS:
        figures, group = await run_fastkafka(bootstrap, src, dst, n, batch=loop.endswith("batch"),
                                             transport="librdkafka" if loop.startswith("rd-") else "aiokafka")
    elif loop == "rd-raw":
        figures, group = run_rd_raw(bootstrap, src, dst, n)
    elif loop == "naive":
        figures, group = await run_naive(bootstrap, src, dst, n)
    else:
        figures, group = await run_tuned(bootstrap, src, dst, n, inflight,
                                         "librdkafka" if loop.startswith("rd-") else "aiokafka")
    _, peak = memory_kb()
    full = sum((await end_offsets(bootstrap, src, partitions)).values())
    if n == full:  # a full run (not the warm-up, which stops part way): check that all the work was done
        await check(bootstrap, src, dst, group, n, partitions)
    return {**figures, "peak_mb": peak / 1024, "growth_mb": (peak - rss0) / 1024, "checked": n == full}


async def run_child(loop: str, bootstrap: str, src: str, n: int, partitions: int, inflight: int) -> dict[str, Any]:
    "Run `loop` in a fresh interpreter; the JSON line it prints."
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", loop, "--bootstrap", bootstrap, "--topic", src, "--messages", str(n),
        "--partitions", str(partitions), "--inflight", str(inflight),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 900)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SystemExit(f"the {loop} run did not finish within 900 s") from None
    if proc.returncode != 0:
        raise SystemExit(f"the {loop} run failed (exit code {proc.returncode}):\n{err.decode()[-4000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

    n, rounds, partitions, inflight = args.messages, args.rounds, args.partitions, args.inflight
    print(f"command: {' '.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}")
    print(f"parameters: --messages {n} --rounds {rounds} --partitions {partitions} --inflight {inflight}")
    print(f"load average before: {load()} ({os.cpu_count()} CPUs)", flush=True)
    loops = tuple(args.loops.split(",")) if args.loops else LOOPS
    if BASELINE not in loops or not set(loops) <= set(LOOPS):
        raise SystemExit(f"--loops takes a comma-separated subset of {', '.join(LOOPS)} that includes {BASELINE}")
    try:
        import confluent_kafka  # noqa: F401
    except ModuleNotFoundError:
        loops = tuple(loop for loop in loops if not loop.startswith("rd-"))
        print('note: confluent-kafka is not installed (pip install "fastkafka[librdkafka]"): no rd-* loops')
    runs: dict[str, list[dict[str, Any]]] = {loop: [] for loop in loops}
    async with ApacheKafkaBroker(listener_port=0) as bootstrap:
        src = f"readings-{uuid.uuid4().hex[:8]}"
        await fill(bootstrap, src, n, partitions)
        await run_child(BASELINE, bootstrap, src, min(n, WARMUP), partitions, inflight)  # untimed warm-up
        for r in range(rounds):
            order = loops[r % len(loops):] + loops[: r % len(loops)]
            for loop in order:
                runs[loop].append(await run_child(loop, bootstrap, src, n, partitions, inflight))
            base = runs[BASELINE][-1]["rate"]
            print(f"round {r + 1} ({' '.join(order)}): " + ", ".join(
                f"{loop} {runs[loop][-1]['rate']:,.0f}/s ({runs[loop][-1]['rate'] / base:.2f})" for loop in loops),
                file=sys.stderr, flush=True)
        big = args.memory_messages
        if big:  # the same loops once over a topic `big` records long: peak RSS must not grow with the count
            src_big = f"readings-{uuid.uuid4().hex[:8]}"
            await fill(bootstrap, src_big, big, partitions)
            memory = {loop: await run_child(loop, bootstrap, src_big, big, partitions, inflight) for loop in loops}
    after = load()
    size = len(payload(n // 2))
    base_rates = [run["rate"] for run in runs[BASELINE]]
    base = statistics.median(base_rates)
    print(f"\n{n:,} messages of {size} bytes, {partitions} partitions, {rounds} rounds (loop order rotated per "
          "round); single and batch are FastKafka on aiokafka, rd-single and rd-batch FastKafka on librdkafka, "
          "naive and hand-tuned raw aiokafka, rd-hand-tuned the same loop on the librdkafka transport's clients, "
          "rd-raw raw synchronous confluent-kafka; "
          "ratio = median of the per-round ratios to the hand-tuned run of the same round\n")
    print("| loop | msg/s | hand-tuned msg/s | ratio | min ratio | max ratio | CPU us/msg | peak RSS MB "
          "| RSS growth MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for loop in loops:
        rates = [run["rate"] for run in runs[loop]]
        ratios = [a / b for a, b in zip(rates, base_rates, strict=True)]
        cpu = statistics.median(run["cpu_us"] for run in runs[loop])
        peak = max(run["peak_mb"] for run in runs[loop])
        growth = max(run["growth_mb"] for run in runs[loop])
        print(f"| {loop} | {statistics.median(rates):,.0f} | {base:,.0f} | {statistics.median(ratios):.2f} | "
              f"{min(ratios):.2f} | {max(ratios):.2f} | {cpu:.1f} | {peak:.0f} | {growth:.0f} |")
    if big:
        print(f"\nPeak RSS of each loop's process (MB), over {n:,} records (largest of the rounds above) and over "
              f"{big:,} records (one run; its msg/s and ratio to that run's hand-tuned rate in brackets):\n")
        print(f"| loop | peak RSS at {n:,} | peak RSS at {big:,} | growth | msg/s at {big:,} |")
        print("|---|---:|---:|---:|---:|")
        base_big = memory[BASELINE]["rate"]
        for loop in loops:
            small_peak = max(run["peak_mb"] for run in runs[loop])
            m = memory[loop]
            print(f"| {loop} | {small_peak:.0f} | {m['peak_mb']:.0f} | {m['peak_mb'] - small_peak:+.0f} | "
                  f"{m['rate']:,.0f} ({m['rate'] / base_big:.2f}) |")
    print(f"\nload average after: {after}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="messages in the input topic, per run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each runs every loop once")
    parser.add_argument("--partitions", type=int, default=3, help="partitions of the input and output topics")
    parser.add_argument("--inflight", type=int, default=64, help="hand-tuned loop: most polls not yet committed")
    parser.add_argument("--memory-messages", type=int, default=0, metavar="N",
                        help="also run each loop once over N records and print its peak RSS next to the rounds' one")
    parser.add_argument("--loops", help="comma-separated loops to run (default: all); must include hand-tuned")
    parser.add_argument("--child", choices=LOOPS, help=argparse.SUPPRESS)  # internal: one run in this process
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(child(args.child, args.bootstrap, args.topic, args.messages, args.partitions,
                                   args.inflight))
        print(json.dumps(result))
    else:
        asyncio.run(main(args))
