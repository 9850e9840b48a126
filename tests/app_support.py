"""Helpers for the FastKafka app tests (tests/test_app_*.py, tests/test_producer.py): topics and raw reads."""
import asyncio
import socket
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord, TopicPartition


async def create_topics(
    bootstrap: str, *topics: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    "Create `topics` on the broker at `bootstrap` (and wait until their leaders are known)."
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=1, topic_configs=config or {}) for t in topics]
        )
    finally:
        await admin.close()


async def read_records(bootstrap: str, topic: str, n: int, timeout: float = 60) -> list[ConsumerRecord[Any, Any]]:
    "Read the first `n` records of `topic` (all partitions) with a plain aiokafka consumer, no group."
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        async def collect() -> None:
            while len(records) < n:
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    records.extend(recs)

        await asyncio.wait_for(collect(), timeout)
    finally:
        await consumer.stop()
    return records


async def count_records(bootstrap: str, topic: str) -> int:
    "How many records an existing `topic` holds (sum of end offsets over its partitions)."
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await producer.start()
    await consumer.start()
    try:
        parts = await producer.partitions_for(topic)
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()
        await producer.stop()


def free_port() -> int:
    "A TCP port on 127.0.0.1 nobody listens on right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    "Collects items from handlers and wakes a waiter once `n` have arrived."

    def __init__(self, n: int) -> None:
        self.n, self.items = n, []  # type: ignore[var-annotated]
        self.done = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def add(self, item: Any) -> None:
        "Record `item` (from any thread)."
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._add(item)
        else:
            self._loop.call_soon_threadsafe(self._add, item)

    def _add(self, item: Any) -> None:
        self.items.append(item)
        if len(self.items) >= self.n:
            self.done.set()

    async def wait(self, timeout: float = 60) -> list[Any]:
        "Wait until `n` items arrived; return them."
        await asyncio.wait_for(self.done.wait(), timeout)
        return self.items
