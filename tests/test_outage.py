"""A broker that stops answering for longer than the producer's request timeout loses no message.

The broker's JVM is frozen (SIGSTOP) while a backlog is being processed: sends inside the handler time out
(`KafkaTimeoutError` from a full batch, expired batches), which must never count as a failed handler to skip.
After the broker answers again, every input id must reach the output topic and be committed.
"""
import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from app_support import create_topics
from consumer_support import committed_offsets, produce_items
from fault_support import Frozen
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

N = 3000  # backlog waiting in the input topic
FREEZE_AT = 300  # the broker freezes once this many messages were handled
FREEZE_S = 6.0  # longer than twice the producer's request timeout
REQUEST_TIMEOUT_MS = 1500


class Item(BaseModel):
    id: int


@pytest.fixture(scope="module")
def own_broker():
    "A broker of this module's own: freezing it must not disturb the session's."
    broker = ApacheKafkaBroker(listener_port=9292)
    bootstrap = broker.start()
    try:
        yield bootstrap
    finally:
        broker.stop()


async def read_ids(bootstrap: str, topic: str) -> list[int]:
    "Every id in `topic`, up to its end offset now."
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        ids: list[int] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                ids.extend(json.loads(r.value)["id"] for r in records)
        return ids
    finally:
        await consumer.stop()


async def wait_committed(bootstrap: str, group: str, topic: str, offset: int, timeout: float) -> None:
    "Return once `group` has committed `offset` on partition 0 of `topic` (Kafka has no notification for it)."
    deadline = time.monotonic() + timeout
    while (await committed_offsets(bootstrap, group, topic)).get(0) != offset:
        if time.monotonic() > deadline:
            got = await committed_offsets(bootstrap, group, topic)
            raise AssertionError(f"committed {got} after {timeout} s, expected {offset}")
        await asyncio.sleep(0.25)


def librdkafka_installed() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("transport", ["aiokafka", pytest.param("librdkafka", marks=pytest.mark.skipif(
    not librdkafka_installed(), reason="the librdkafka transport needs fastkafka[librdkafka]"))])
@pytest.mark.parametrize("executor", ["SequentialExecutor", "DynamicTaskExecutor"])
async def test_a_frozen_broker_loses_nothing(own_broker: str, executor: str, transport: str) -> None:
    src, dst, group = unique_topic("in"), unique_topic("out"), unique_topic("g")
    await create_topics(own_broker, src, dst)
    await produce_items(own_broker, src, range(N))

    host, port = own_broker.rsplit(":", 1)
    app = FastKafka(kafka_brokers={"local": {"url": host, "port": port}}, transport=transport)
    handled = 0
    reached = asyncio.Event()

    @app.produces(topic=dst, request_timeout_ms=REQUEST_TIMEOUT_MS, max_batch_size=2048, linger_ms=5)
    async def to_out(item: Item) -> Item:
        return item

    @app.consumes(topic=src, group_id=group, auto_offset_reset="earliest", executor=executor)
    async def on_in(item: Item) -> None:
        nonlocal handled
        handled += 1
        if handled == FREEZE_AT:
            reached.set()
        await to_out(item)

    async with app:
        await asyncio.wait_for(reached.wait(), 60)
        with Frozen(own_broker):
            await asyncio.sleep(FREEZE_S)  # the outage itself: a span of time, not a wait for an event
        await wait_committed(own_broker, group, src, N, timeout=120)

    ids = await read_ids(own_broker, dst)
    lost = sorted(set(range(N)) - set(ids))
    print(f"{transport}, {executor}: handled {handled}, written {len(ids)}, distinct {len(set(ids))}, lost {len(lost)}")
    assert not lost, f"{len(lost)} of {N} messages lost, e.g. {lost[:10]}"
