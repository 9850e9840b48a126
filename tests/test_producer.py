"""@app.produces on a real broker: what is sent, what is not, and failed sends reaching the caller."""
import asyncio
import time

import pytest
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from app_support import count_records, create_topics, read_records
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import FastKafka, KafkaEvent
from fastkafka._components.transport import RecoveringProducer

pytestmark = pytest.mark.broker


class Blob(BaseModel):
    data: str


def make_app(bootstrap: str, **kwargs) -> FastKafka:
    host, port = bootstrap.rsplit(":", 1)
    return FastKafka(kafka_brokers={"localhost": {"url": host, "port": port}}, **kwargs)


async def test_defaults_are_acks_all_with_idempotence(kafka_broker: str) -> None:
    topic = unique_topic("acks")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker)

    @app.produces(topic=topic)
    async def to_acks(data: str) -> Blob:
        return Blob(data=data)

    @app.produces(topic=topic, acks=1)
    async def to_acks_one(data: str) -> Blob:
        return Blob(data=data)

    async with app:
        strict, loose = app.runtime.sender(0).client, app.runtime.sender(1).client
        assert isinstance(strict, RecoveringProducer) and not isinstance(loose, RecoveringProducer)
        strict = strict._client
        assert strict is not loose
        assert strict._txn_manager is not None  # idempotent producer (implies acks=all)
        assert loose._txn_manager is None
        await app.to_acks("a")
        await app.to_acks_one("b")
    assert [r.value for r in await read_records(kafka_broker, topic, 2)] == [b'{"data":"a"}', b'{"data":"b"}']


async def test_none_sends_nothing_and_values_are_returned(kafka_broker: str) -> None:
    topic = unique_topic("none")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker)

    @app.produces(topic=topic)
    async def to_maybe(data: str | None) -> Blob | None:
        return None if data is None else Blob(data=data)

    @app.produces(topic=topic)
    def to_many(n: int) -> KafkaEvent[list[Blob]]:
        return KafkaEvent([Blob(data=str(i)) for i in range(n)], key=b"k")

    async with app:
        assert await app.to_maybe(None) is None
        assert await asyncio.to_thread(app.to_many, 0) == KafkaEvent([], key=b"k")
        assert await app.to_maybe("only") == Blob(data="only")
    assert await count_records(kafka_broker, topic) == 1


async def test_broker_rejection_reaches_the_caller(kafka_broker: str) -> None:
    topic = unique_topic("small")
    await create_topics(kafka_broker, topic, config={"max.message.bytes": "1000"})
    app = make_app(kafka_broker)

    @app.produces(topic=topic)
    async def to_small(size: int) -> Blob:
        return Blob(data="x" * size)

    @app.produces(topic=topic)
    def to_small_sync(size: int) -> Blob:
        return Blob(data="x" * size)

    async with app:
        await app.to_small(10)
        with pytest.raises(MessageSizeTooLargeError):  # rejected by the broker: the delivery future fails
            await app.to_small(5000)
        with pytest.raises(MessageSizeTooLargeError):  # same from a sync producer in a worker thread
            await asyncio.to_thread(app.to_small_sync, 5000)
        await app.to_small(20)  # the producer still works afterwards
    assert await count_records(kafka_broker, topic) == 2


async def test_client_side_rejection_reaches_the_caller(kafka_broker: str) -> None:
    topic = unique_topic("limit")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker, max_request_size=2000)

    @app.produces(topic=topic)
    async def to_limit(size: int) -> Blob:
        return Blob(data="x" * size)

    async with app:
        with pytest.raises(MessageSizeTooLargeError):
            await app.to_limit(10_000)


async def test_sends_that_cannot_succeed_fail_within_the_request_timeout(kafka_broker: str) -> None:
    app = make_app(kafka_broker, request_timeout_ms=1500)

    @app.produces(topic="not a valid topic name!")
    async def to_invalid(data: str) -> Blob:
        return Blob(data=data)

    async with app:
        t0 = time.monotonic()
        with pytest.raises(KafkaError):
            await asyncio.wait_for(app.to_invalid("x"), 30)  # no endless retry loop
        assert time.monotonic() - t0 < 10


async def test_keyless_records_stick_to_a_partition_for_a_batch(kafka_broker: str) -> None:
    "Keyless records go to one partition for about `max_batch_size` bytes, then the next (as the Java client)."
    topic, chosen = unique_topic("sticky"), unique_topic("chosen")
    await create_topics(kafka_broker, topic, chosen, partitions=3)
    app = make_app(kafka_broker)

    @app.produces(topic=topic, max_batch_size=4096)
    async def to_sticky(i: int) -> Blob:
        return Blob(data=f"{i:05d}" + "x" * 80)  # ~100 bytes: about 40 records a window

    @app.produces(topic=chosen, partitioner=lambda key, all_partitions, available: 2)
    async def to_chosen(i: int) -> Blob:
        return Blob(data=str(i))

    async with app:
        for i in range(200):
            await app.to_sticky(i)
        for i in range(20):
            await app.to_chosen(i)
    records = sorted(await read_records(kafka_broker, topic, 200), key=lambda r: r.value)
    partitions = [r.partition for r in records]
    switches = sum(a != b for a, b in zip(partitions, partitions[1:]))
    assert 3 <= switches <= 6, partitions  # 200 records of ~100 bytes in windows of 4096: ~5 windows
    assert set(partitions) == {0, 1, 2}  # each window on the next partition
    assert {r.partition for r in await read_records(kafka_broker, chosen, 20)} == {2}  # a chosen partitioner rules
