"""Executors as code written against FastKafka 0.8.0 uses them: `run(is_shutting_down_f, generator, processor)` on
the built-in executors, and a custom `StreamExecutor` subclass that only implements `run`, in a running app."""

# written as 0.8.0 users wrote it, with typing.List
# ruff: noqa: UP006, UP035

import asyncio
from typing import List

import pytest
from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._components.executors import StreamExecutor
from fastkafka.executors import DynamicTaskExecutor, SequentialExecutor
from fastkafka.testing import Tester


class Ping(BaseModel):
    n: int


class CountingExecutor(StreamExecutor):
    "A 0.8.0-style executor: only `run`, no `__init__`; it counts what it processed."

    processed = 0

    async def run(self, *, is_shutting_down_f, generator, processor):  # type: ignore[no-untyped-def]
        while not is_shutting_down_f():
            msgs = await generator()
            for msg in msgs:
                await processor(msg)
                self.processed += 1


class TaskPerMessageExecutor(StreamExecutor):
    "A 0.8.0-style executor running each message as its own task, iterating the generator."

    async def run(self, *, is_shutting_down_f, generator, processor):  # type: ignore[no-untyped-def]
        tasks = set()
        async for msgs in generator():
            for msg in msgs:
                tasks.add(asyncio.create_task(processor(msg)))
        await asyncio.gather(*tasks)


async def _run_two_batches(executor: StreamExecutor) -> List[int]:
    "Drive `executor.run` as 0.8.0's consumer did: a generator of batches, then the shutdown flag."
    batches = [[Ping(n=1), Ping(n=2)], [Ping(n=3)]]
    seen: List[int] = []

    async def generator() -> List[Ping]:
        return batches.pop(0)

    async def processor(msg: Ping) -> None:
        seen.append(msg.n)

    await asyncio.wait_for(executor.run(is_shutting_down_f=lambda: not batches, generator=generator,
                                        processor=processor), 5)
    return seen


async def test_builtin_executors_run_as_in_080() -> None:
    assert await _run_two_batches(SequentialExecutor()) == [1, 2, 3]
    assert sorted(await _run_two_batches(DynamicTaskExecutor(size=4))) == [1, 2, 3]


async def test_custom_080_executor_in_a_running_app() -> None:
    app = FastKafka()
    executor = CountingExecutor()

    @app.consumes(topic="pings", executor=executor)
    async def on_pings(msg: Ping) -> None:
        pass

    async with Tester(app) as tester:
        await tester.to_pings(Ping(n=1))
        await app.awaited_mocks.on_pings.assert_called_with(Ping(n=1), timeout=5)
        await tester.to_pings(Ping(n=2))
        await app.awaited_mocks.on_pings.assert_called_with(Ping(n=2), timeout=5)
    assert executor.processed == 2


async def test_custom_080_executor_batches_and_async_for() -> None:
    app = FastKafka()

    @app.consumes(topic="many", executor=TaskPerMessageExecutor())
    async def on_many(msg: List[Ping]) -> None:
        pass

    async with Tester(app) as tester:
        await tester.to_many([Ping(n=1), Ping(n=2)])
        await app.awaited_mocks.on_many.assert_called_with([Ping(n=1), Ping(n=2)], timeout=5)


@pytest.mark.broker
async def test_custom_080_executor_commits_only_what_was_processed(kafka_broker: str) -> None:
    "On a real broker: while the first message is still being handled, nothing is committed; then all of it."
    from consumer_support import Item, committed_offsets, make_runner, produce_items
    from helpers import unique_topic

    topic, group = unique_topic("compat_exec"), unique_topic("g")
    await produce_items(kafka_broker, topic, range(5))
    release, rest_done, all_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    handled: List[int] = []

    async def on_item(msg: Item) -> None:
        if msg.id == 0:
            await release.wait()
        handled.append(msg.id)
        if sorted(handled) == [1, 2, 3, 4]:
            rest_done.set()
        if len(handled) == 5:
            all_done.set()

    runner = make_runner(on_item, topic, kafka_broker, group, executor=TaskPerMessageExecutor())
    await runner.start()
    try:
        await asyncio.wait_for(rest_done.wait(), 60)
        await runner._commit()  # what a time-based commit would send now
        assert await committed_offsets(kafka_broker, group, topic) == {0: None}
        release.set()
        await asyncio.wait_for(all_done.wait(), 30)
    finally:
        release.set()
        await runner.stop()
    assert runner.failure is None
    assert await committed_offsets(kafka_broker, group, topic) == {0: 5}
