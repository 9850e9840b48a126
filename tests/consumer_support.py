"""Helpers for the consumer tests: a spec built by hand, topics, committed offsets, a commit-recording transport."""
import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from fastkafka._components.consumer import ConsumerRunner
from fastkafka._components.encoder.json import json_decoder
from fastkafka._components.specs import ConsumerSpec
from fastkafka._components.librdkafka import resolve_transport


class Item(BaseModel):
    id: int


TRANSPORT = "aiokafka"  # the transport make_runner uses unless given one; test_consumer_delivery runs on each


def default_transport() -> Any:
    "A new transport of the kind `TRANSPORT` names."
    return resolve_transport(TRANSPORT)


def make_spec(func: Callable[..., Any], topic: str, *, executor: Any = "SequentialExecutor",
              batch: bool = False) -> ConsumerSpec:
    "A ConsumerSpec as `@app.consumes` would record it, for a handler taking `Item` (or `List[Item]`)."
    return ConsumerSpec(func, topic, Item, batch, json_decoder, "json", executor, None, None, {})


def consumer_config(bootstrap: str, group_id: str | None, **extra: Any) -> dict[str, Any]:
    "Final AIOKafkaConsumer kwargs as the app passes them."
    return {"bootstrap_servers": bootstrap, "group_id": group_id, "auto_offset_reset": "earliest",
            "max_poll_records": 100, "session_timeout_ms": 6000, "heartbeat_interval_ms": 500, **extra}


def make_runner(func: Callable[..., Any], topic: str, bootstrap: str, group_id: str | None, *,
                executor: Any = "SequentialExecutor", batch: bool = False, transport: Any = None,
                graceful_timeout: float = 30.0, **extra: Any) -> ConsumerRunner:
    return ConsumerRunner(make_spec(func, topic, executor=executor, batch=batch),
                          transport=transport or default_transport(),
                          config=consumer_config(bootstrap, group_id, **extra), graceful_timeout=graceful_timeout)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce_items(bootstrap: str, topic: str, ids: range | list[int], partitions: int = 1,
                        raw: dict[int, bytes] | None = None) -> None:
    "Send {\"id\": i} for every i (round robin over partitions), or raw[i] where given."
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        futs = [await producer.send(topic, (raw or {}).get(i, b'{"id": %d}' % i), partition=n % partitions)
                for n, i in enumerate(ids)]
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int = 1) -> dict[int, int | None]:
    "What a fresh consumer of `group_id` sees as committed, by partition."
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await c.start()
    try:
        return {p: await c.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await c.stop()


async def record_count(bootstrap: str, topic: str, partitions: int = 1) -> int:
    "How many records `topic` holds (sum of its partitions' end offsets)."
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        ends = await c.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await c.stop()


class RecordingTransport:
    "The default transport, recording every commit together with a snapshot of `finished` at that moment."

    def __init__(self, finished: set[tuple[int, int]]) -> None:
        self.base, self.finished = default_transport(), finished
        self.commits: list[tuple[dict[TopicPartition, int], frozenset[tuple[int, int]]]] = []
        self.commit_made = asyncio.Event()

    def create_producer(self, **config: Any) -> Any:
        return self.base.create_producer(**config)

    def create_consumer(self, *topics: str, **config: Any) -> Any:
        client = self.base.create_consumer(*topics, **config)
        original = client.commit

        async def commit(offsets: Any = None) -> None:
            self.commits.append((dict(offsets), frozenset(self.finished)))
            await original(offsets)
            self.commit_made.set()

        client.commit = commit  # type: ignore[method-assign]
        return client

    async def wait_for_commit(self, partition: int, offset: int, timeout: float) -> None:
        "Wait until a commit of `offset` for `partition` was made."
        while True:
            self.commit_made.clear()
            if any(tp.partition == partition and o == offset for c, _ in self.commits for tp, o in c.items()):
                return
            await asyncio.wait_for(self.commit_made.wait(), timeout)

    def assert_commits_behind_finished(self) -> None:
        "Every commit stored an offset whose message and every earlier one had finished when it was sent."
        for offsets, finished in self.commits:
            for tp, offset in offsets.items():
                missing = [o for o in range(offset) if (tp.partition, o) not in finished]
                assert not missing, f"commit {tp.partition}:{offset} while {missing} were not finished"
