"""Delivery guarantees through the FastKafka app on a real broker: error policy, at-least-once across a restart.

Handlers produce through `@app.produces`, so a message only counts as done (and is committed) once what it
produced was acknowledged.
"""
import asyncio
import logging
from collections import Counter

import pytest
from app_support import read_records
from consumer_support import committed_offsets, create_topic, produce_items, record_count
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import EventMetadata, FastKafka
from fastkafka.executors import DynamicTaskExecutor, SequentialExecutor

pytestmark = pytest.mark.broker


class Item(BaseModel):
    id: int


def make_app(bootstrap: str, **kwargs) -> FastKafka:
    host, port = bootstrap.rsplit(":", 1)
    return FastKafka(kafka_brokers={"localhost": {"url": host, "port": port}}, **kwargs)


def _consumer_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "fastkafka._components.consumer" and r.levelno >= logging.ERROR]


async def test_app_failing_handler_logged_with_offset_later_messages_processed_all_committed(
    kafka_broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    src, dst, group = unique_topic("src"), unique_topic("dst"), unique_topic("g")
    await create_topic(kafka_broker, src, 1)
    await produce_items(kafka_broker, src, range(10))
    app = make_app(kafka_broker, group_id=group, auto_offset_reset="earliest")
    handled, done = [], asyncio.Event()

    @app.produces(topic=dst)
    async def to_dst(item: Item) -> Item:
        return item

    @app.consumes(topic=src)
    async def on_src(item: Item) -> None:
        if item.id == 4:
            raise RuntimeError("item 4 is broken")
        await to_dst(item)
        handled.append(item.id)
        if len(handled) == 9:
            done.set()

    async with app:
        await asyncio.wait_for(done.wait(), 60)
        assert app.is_started
    assert handled == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    errors = _consumer_errors(caplog)
    assert len(errors) == 1 and f"topic={src} partition=0 offset=4" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert await committed_offsets(kafka_broker, group, src) == {0: 10}
    assert sorted(Item.model_validate_json(r.value).id for r in await read_records(kafka_broker, dst, 9)) == handled


async def test_app_throw_exceptions_is_visible_raised_at_stop_and_redelivered(kafka_broker: str) -> None:
    src, group = unique_topic("src"), unique_topic("g")
    await create_topic(kafka_broker, src, 1)
    await produce_items(kafka_broker, src, range(6))
    app = make_app(kafka_broker, group_id=group, auto_offset_reset="earliest")
    seen: list[int] = []

    @app.consumes(topic=src, executor=SequentialExecutor(throw_exceptions=True))
    async def on_src(item: Item) -> None:
        if item.id == 2:
            raise ValueError("poison item 2")
        seen.append(item.id)

    with pytest.raises(RuntimeError, match="poison item 2") as info:
        async with app:
            await asyncio.wait_for(app.runtime.consumers[0].wait_stopped(), 60)
            assert not app.is_started  # the dead consumer shows
    assert isinstance(info.value.__cause__, ValueError)
    assert seen == [0, 1]
    assert await committed_offsets(kafka_broker, group, src) == {0: 2}

    app2 = make_app(kafka_broker, group_id=group, auto_offset_reset="earliest")
    again, done = [], asyncio.Event()

    @app2.consumes(topic=src)
    async def on_src_fixed(item: Item) -> None:
        again.append(item.id)
        if item.id == 5:
            done.set()

    async with app2:
        await asyncio.wait_for(done.wait(), 60)
    assert again == [2, 3, 4, 5]


@pytest.mark.parametrize("executor", ["SequentialExecutor", "DynamicTaskExecutor"])
async def test_app_stop_in_flight_then_restart_same_group_processes_and_produces_each_message_once(
    kafka_broker: str, executor: str
) -> None:
    src, dst, group, partitions, n = unique_topic("src"), unique_topic("dst"), unique_topic("g"), 3, 240
    await create_topic(kafka_broker, src, partitions)
    await create_topic(kafka_broker, dst, 1)
    await produce_items(kafka_broker, src, range(n), partitions=partitions)
    counts: Counter[int] = Counter()
    some, every = asyncio.Event(), asyncio.Event()

    def build() -> FastKafka:
        app = make_app(kafka_broker, group_id=group, auto_offset_reset="earliest", max_poll_records=10)
        chosen = DynamicTaskExecutor(size=4) if executor == "DynamicTaskExecutor" else executor

        @app.produces(topic=dst)
        async def to_dst(item: Item) -> Item:
            return item

        @app.consumes(topic=src, executor=chosen)
        async def on_src(item: Item, meta: EventMetadata) -> None:
            await asyncio.sleep(0.002)  # the handler's own work
            await to_dst(item)
            counts[item.id] += 1
            if sum(counts.values()) >= 30:
                some.set()
            if len(counts) == n:
                every.set()

        return app

    async with build():
        await asyncio.wait_for(some.wait(), 60)
    first = sum(counts.values())
    assert first < n, "the stop came after everything was processed; the test shows nothing"
    async with build():
        await asyncio.wait_for(every.wait(), 60)
    assert not {i: c for i, c in counts.items() if c != 1}, "some messages were processed twice"
    assert set(counts) == set(range(n))
    produced = Counter(Item.model_validate_json(r.value).id for r in await read_records(kafka_broker, dst, n))
    assert produced == Counter(range(n))
    assert await record_count(kafka_broker, dst) == n  # and nothing more was produced
    assert sum((await committed_offsets(kafka_broker, group, src, partitions)).values()) == n
