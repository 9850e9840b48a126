"""Benchmark (not a test): how long ApacheKafkaBroker takes to start and how much memory its JVM uses.

Run with the Kafka jars already installed (`fastkafka testing install_deps`):

    python bench/broker_startup.py [--runs 3] [--baseline-runs 2]

For each run it prints the start time (format + JVM start + readiness + first metadata request, i.e. what
`broker.start()` costs) and the JVM's resident memory (VmRSS from /proc) right after start and after a
produce/consume round trip. The baseline is the same broker with Kafka's stock JVM flags (the
`kafka-server-start.sh` defaults: 1 GiB heap, G1) and stock thread counts and log-cleaner buffer, measured in
the same run.
"""

import argparse
import asyncio
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

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
    jvm, props = akb.JVM_OPTIONS, akb.kafka_server_properties

    def stock_props(**kw):
        p = props(**kw)
        for k in LEAN_ONLY_KEYS:
            p.pop(k)
        return p

    akb.JVM_OPTIONS, akb.kafka_server_properties = STOCK_JVM, stock_props
    try:
        yield
    finally:
        akb.JVM_OPTIONS, akb.kafka_server_properties = jvm, props


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
    akb.require_kafka_libs()
    print(f"Kafka {akb.KAFKA_VERSION}, jars in {akb.find_kafka_libs()}, java {akb.find_java()}")
    lean = report("fastkafka", [one_run() for _ in range(args.runs)])
    with stock_settings():
        stock = report("stock    ", [one_run() for _ in range(args.baseline_runs)])
    print(f"ratio fastkafka/stock: start {lean[0] / stock[0]:.2f}, RSS up {lean[1] / stock[1]:.2f}, "
          f"RSS after traffic {lean[2] / stock[2]:.2f}")


if __name__ == "__main__":
    main()
