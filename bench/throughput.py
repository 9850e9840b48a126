"""Consume -> validate -> produce throughput: a FastKafka app next to a hand-written aiokafka loop.

Not a test: `python bench/throughput.py [--messages N] [--rounds R]`. It starts a throw-away Apache Kafka broker,
fills an input topic with ~120-byte JSON messages, and then, per round and per mode, runs:

* fastkafka: an app whose consumer validates each message into a model and calls a producer function that sends a
  model to the output topic (single mode: one message per call; batch mode: `List[M]` in, `List[M]` out);
* raw: an aiokafka loop doing the same work: `getmany`, validate each value with pydantic, `send` each result
  without awaiting its acknowledgement, wait for the poll's acknowledgements together, commit. That is the plain
  at-least-once loop, the guarantee fastkafka gives; the loop is also timed committing without waiting for the
  acknowledgements (not at-least-once), for reference.

Both use the same settings: a fresh consumer group reading from the earliest offset, `max_poll_records=100`
(FastKafka's default), and an idempotent producer with `acks="all"` (FastKafka's default). A run is timed from its
first handled message to the moment every output record is acknowledged, so group joins are left out. Runs of
the two alternate, so both see the same machine; the table shows each side's median over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

PARTITIONS = 3
POLL = 100


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


async def create_topic(bootstrap: str, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def fill(bootstrap: str, topic: str, n: int) -> None:
    await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262144)
    await producer.start()
    try:
        futs = [await producer.send(topic, payload(i), key=str(i).encode()) for i in range(n)]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


class Clock:
    "Counts handled messages; times the first to the n-th."

    def __init__(self, n: int) -> None:
        self.n, self.count, self.t0 = n, 0, 0.0
        self.done = asyncio.Event()

    def tick(self, k: int = 1) -> None:
        if self.count == 0:
            self.t0 = time.perf_counter()
        self.count += k
        if self.count >= self.n:
            self.done.set()


def scale(r: Reading) -> Scaled:
    return Scaled(id=r.id, sensor=r.sensor, value=r.value * 2)


async def run_fastkafka(bootstrap: str, src: str, n: int, batch: bool) -> float:
    host, port = bootstrap.rsplit(":", 1)
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": port}}, group_id=uuid.uuid4().hex,
                    auto_offset_reset="earliest", max_poll_records=POLL)
    dst, clock = await create_topic(bootstrap, f"out-{uuid.uuid4().hex[:8]}"), Clock(n)

    if batch:
        @app.produces(topic=dst)
        async def to_out_batch(items: list[Scaled]) -> list[Scaled]:
            return items

        @app.consumes(topic=src)
        async def on_readings(readings: list[Reading]) -> None:
            await to_out_batch([scale(r) for r in readings])
            clock.tick(len(readings))
    else:
        @app.produces(topic=dst)
        async def to_out(item: Scaled) -> Scaled:
            return item

        @app.consumes(topic=src)
        async def on_reading(reading: Reading) -> None:
            await to_out(scale(reading))
            clock.tick()

    async with app:
        await asyncio.wait_for(clock.done.wait(), 600)
        await app.runtime.sender(0).client.flush()  # every output record acknowledged
        elapsed = time.perf_counter() - clock.t0
    return n / elapsed


async def run_raw(bootstrap: str, src: str, n: int, wait_acks: bool = True) -> float:
    dst, clock = await create_topic(bootstrap, f"out-{uuid.uuid4().hex[:8]}"), Clock(n)
    consumer = AIOKafkaConsumer(src, bootstrap_servers=bootstrap, group_id=uuid.uuid4().hex,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    await consumer.start()
    try:
        while clock.count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=POLL)
            futures = []
            for records in batches.values():
                for record in records:
                    out = scale(Reading.model_validate_json(record.value))
                    futures.append(await producer.send(dst, out.model_dump_json().encode()))
                    clock.tick()
            if futures:
                if wait_acks:  # at-least-once: commit only what was acknowledged
                    await asyncio.gather(*futures)
                await consumer.commit()
        await producer.flush()
        elapsed = time.perf_counter() - clock.t0
    finally:
        await consumer.stop()
        await producer.stop()
    return n / elapsed


async def main(messages: int, rounds: int) -> None:
    async with ApacheKafkaBroker(listener_port=9492) as bootstrap:
        src = f"readings-{uuid.uuid4().hex[:8]}"
        await fill(bootstrap, src, messages)
        size = len(payload(messages // 2))
        results: dict[str, list[float]] = {"raw": [], "raw, no ack wait": [], "single": [], "batch": []}
        await run_raw(bootstrap, src, min(messages, 5000))  # warm-up: connections, JIT-free but page cache
        for r in range(rounds):
            results["raw"].append(await run_raw(bootstrap, src, messages))
            results["raw, no ack wait"].append(await run_raw(bootstrap, src, messages, wait_acks=False))
            results["single"].append(await run_fastkafka(bootstrap, src, messages, batch=False))
            results["batch"].append(await run_fastkafka(bootstrap, src, messages, batch=True))
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in results.items()), file=sys.stderr)
    raw = statistics.median(results["raw"])
    print(f"\n{messages:,} messages of {size} bytes, {PARTITIONS} partitions, median of {rounds} rounds\n")
    print("| mode | fastkafka msg/s | raw aiokafka msg/s | ratio | target |")
    print("|---|---:|---:|---:|---:|")
    for mode, target in (("single", 0.8), ("batch", 0.9)):
        fk = statistics.median(results[mode])
        print(f"| {mode} | {fk:,.0f} | {raw:,.0f} | {fk / raw:.2f} | >= {target} |")
    unsafe = statistics.median(results["raw, no ack wait"])
    print(f"\nFor reference, a raw loop that commits without waiting for the acknowledgements (not at-least-once): "
          f"{unsafe:,.0f} msg/s (single mode ratio {statistics.median(results['single']) / unsafe:.2f}).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds))
