"""Benchmark (not a test): how long ApacheKafkaBroker takes to start and how much memory its JVM uses.

Run with the Kafka jars already installed (`fastkafka testing install_deps`):

    python bench/broker_startup.py [--runs 3] [--baseline-runs 2]

For each run it prints the start time (format + JVM start + readiness + first metadata request, i.e. what
`broker.start()` costs) and the JVM's resident memory (VmRSS from /proc) right after start and after a
produce/consume round trip. Measured in the same run: the same broker without class-data sharing, and the
baseline, a broker with Kafka's stock JVM flags (the `kafka-server-start.sh` defaults: 1 GiB heap, G1), stock
thread counts and log-cleaner buffer, and no class-data sharing. The first fastkafka run writes the class-data
archive if there is none yet, so run the script twice for steady figures.
"""

import argparse
import asyncio
import logging
import os
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

import fastkafka._testing.apache_kafka_broker as akb
from fastkafka.testing import ApacheKafkaBroker

STOCK_JVM = [
    "-Xmx1G", "-Xms1G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]
LEAN_ONLY_KEYS = [  # settings our broker lowers; without them Kafka uses its defaults
    "num.network.threads", "num.io.threads", "background.threads", "num.recovery.threads.per.data.dir",
    "group.coordinator.threads", "log.cleaner.threads", "log.cleaner.dedupe.buffer.size",
]


@contextmanager
def stock_settings():
    "Run brokers with Kafka's default JVM flags, thread counts and cleaner buffer (the baseline)."
    jvm, props, cds = akb.JVM_OPTIONS, akb.kafka_server_properties, akb.CLASS_DATA_SHARING

    def stock_props(**kw):
        p = props(**kw)
        for k in LEAN_ONLY_KEYS:
            p.pop(k)
        return p

    akb.JVM_OPTIONS, akb.kafka_server_properties, akb.CLASS_DATA_SHARING = STOCK_JVM, stock_props, False
    try:
        yield
    finally:
        akb.JVM_OPTIONS, akb.kafka_server_properties, akb.CLASS_DATA_SHARING = jvm, props, cds


@contextmanager
def without_class_data_sharing():
    "Our lean settings, but every class loaded from the jars (no class-data archive)."
    akb.CLASS_DATA_SHARING = False
    try:
        yield
    finally:
        akb.CLASS_DATA_SHARING = True


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def roundtrip(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(1000):
            await producer.send("bench", f"message {i}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("bench", bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id="b")
    await consumer.start()
    try:
        seen = 0
        while seen < 1000:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=30)
            seen += sum(len(v) for v in batch.values())
    finally:
        await consumer.stop()


def one_run() -> tuple[float, float, float]:
    broker = ApacheKafkaBroker(listener_port=19592)
    t0 = time.perf_counter()
    bootstrap = broker.start()
    started = time.perf_counter() - t0
    try:
        assert broker._node is not None and broker._node.proc is not None
        pid = broker._node.proc.pid
        rss_up = rss_mib(pid)
        asyncio.run(roundtrip(bootstrap))
        rss_used = rss_mib(pid)
    finally:
        broker.stop()
    return started, rss_up, rss_used


def report(name: str, runs: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    med = tuple(statistics.median(r[i] for r in runs) for i in range(3))
    for i, (s, up, used) in enumerate(runs, 1):
        print(f"  {name} run {i}: start {s:5.2f} s   RSS up {up:6.1f} MiB   RSS after 1000 msgs {used:6.1f} MiB")
    print(f"  {name} median: start {med[0]:5.2f} s   RSS up {med[1]:6.1f} MiB   after traffic {med[2]:6.1f} MiB")
    return med  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # expected retries while the group forms
    akb.require_kafka_libs()
    print(f"Kafka {akb.KAFKA_VERSION}, jars in {akb.find_kafka_libs()}, java {akb.find_java()}")
    variants: dict[str, Callable[[], AbstractContextManager[Any]]] = {
        "fastkafka": nullcontext, "no CDS   ": without_class_data_sharing, "stock    ": stock_settings
    }
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for i in range(max(args.runs, args.baseline_runs)):  # interleaved, so a busy moment hits every variant
        for name, settings in variants.items():
            if i < (args.baseline_runs if name.startswith("stock") else args.runs):
                with settings():
                    runs[name].append(one_run())
    lean, _, stock = (report(name, r) for name, r in runs.items())
    print(f"ratio fastkafka/stock: start {lean[0] / stock[0]:.2f}, RSS up {lean[1] / stock[1]:.2f}, "
          f"RSS after traffic {lean[2] / stock[2]:.2f}")
    print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[0]} (on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
