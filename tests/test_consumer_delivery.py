"""ConsumerRunner on a real broker: error policy, commits never ahead of processing, graceful stop and restart.

The runner is driven directly with a spec built by hand (tests/consumer_support.py); the committed offsets are
read back with a fresh consumer of the same group.
"""
import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import consumer_support
import pytest
from aiokafka import AIOKafkaProducer
from consumer_support import (
    Item,
    RecordingTransport,
    committed_offsets,
    create_topic,
    make_runner,
    produce_items,
)
from helpers import unique_topic

from fastkafka._components.events import EventMetadata
from fastkafka._components.executors import DynamicTaskExecutor, SequentialExecutor
from fastkafka._components.producer import current_deliveries

pytestmark = pytest.mark.broker

CONSUMER_LOGGER = "fastkafka._components.consumer"


def librdkafka_installed() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.fixture(autouse=True, params=["aiokafka", pytest.param("librdkafka", marks=pytest.mark.skipif(
    not librdkafka_installed(), reason="the librdkafka transport needs fastkafka[librdkafka]"))])
def client_library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    "Every test here runs on each transport: the runners' clients come from it (consumer_support.TRANSPORT)."
    monkeypatch.setattr(consumer_support, "TRANSPORT", request.param)
    return request.param


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == CONSUMER_LOGGER and r.levelno >= logging.ERROR]


@pytest.mark.parametrize("executor", ["SequentialExecutor", "DynamicTaskExecutor"])
async def test_failing_handler_is_logged_once_skipped_and_later_messages_go_on(
    kafka_broker: str, topic: str, executor: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fastkafka")
    group = unique_topic("g")
    await produce_items(kafka_broker, topic, range(10))
    handled: list[int] = []
    all_others = asyncio.Event()

    async def on_item(msg: Item) -> None:
        if msg.id == 3:
            raise RuntimeError("cannot handle item 3")
        handled.append(msg.id)
        if len(handled) == 9:
            all_others.set()

    runner = make_runner(on_item, topic, kafka_broker, group, executor=executor)
    await runner.start()
    try:
        await asyncio.wait_for(all_others.wait(), 60)
    finally:
        await runner.stop()

    assert sorted(handled) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    errors = _errors(caplog)
    assert len(errors) == 1, [e.getMessage() for e in errors]
    assert f"The handler failed for topic={topic} partition=0 offset=3" in errors[0].getMessage()
    assert "the message is skipped" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "cannot handle item 3" in str(errors[0].exc_info[1])
    assert runner.failure is None
    # skipped counts as handled: everything is committed
    assert await committed_offsets(kafka_broker, group, topic) == {0: 10}


async def test_undecodable_message_is_logged_once_and_skipped(
    kafka_broker: str, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    group = unique_topic("g")
    await produce_items(kafka_broker, topic, range(5), raw={2: b"{not json"})
    handled: list[int] = []
    done = asyncio.Event()

    async def on_item(msg: Item) -> None:
        handled.append(msg.id)
        if len(handled) == 4:
            done.set()

    runner = make_runner(on_item, topic, kafka_broker, group)
    await runner.start()
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await runner.stop()
    assert handled == [0, 1, 3, 4]
    errors = _errors(caplog)
    assert len(errors) == 1 and f"Decoding failed for topic={topic} partition=0 offset=2" in errors[0].getMessage()
    assert await committed_offsets(kafka_broker, group, topic) == {0: 5}


@pytest.mark.parametrize("executor_cls", [SequentialExecutor, DynamicTaskExecutor])
async def test_throw_exceptions_stops_without_committing_and_restart_redelivers(
    kafka_broker: str, topic: str, executor_cls: type, caplog: pytest.LogCaptureFixture
) -> None:
    group = unique_topic("g")
    await produce_items(kafka_broker, topic, range(10))
    first_run: list[int] = []

    async def on_item(msg: Item) -> None:
        if msg.id == 3:
            raise ValueError("item 3 is poison")
        first_run.append(msg.id)

    runner = make_runner(on_item, topic, kafka_broker, group, executor=executor_cls(throw_exceptions=True))
    await runner.start()
    await asyncio.wait_for(runner.wait_stopped(), 60)  # it stops by itself
    assert not runner.running
    assert isinstance(runner.failure, ValueError) and str(runner.failure) == "item 3 is poison"
    await runner.stop()  # does not raise; the app raises `failure`
    assert [0, 1, 2] == sorted(first_run)[:3] and 3 not in first_run
    assert len(_errors(caplog)) == 1
    assert "the consumer stops and does not commit it" in _errors(caplog)[0].getMessage()
    assert await committed_offsets(kafka_broker, group, topic) == {0: 3}

    second_run: list[int] = []
    done = asyncio.Event()

    async def on_item_fixed(msg: Item) -> None:
        second_run.append(msg.id)
        if msg.id == 9:
            done.set()

    runner = make_runner(on_item_fixed, topic, kafka_broker, group)
    await runner.start()
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await runner.stop()
    assert second_run == list(range(3, 10))  # the failing message comes again, first
    assert await committed_offsets(kafka_broker, group, topic) == {0: 10}


@pytest.mark.parametrize("executor", ["SequentialExecutor", "DynamicTaskExecutor"])
@pytest.mark.parametrize("batch", [False, True])
async def test_stop_in_flight_then_restart_processes_every_message_exactly_once(
    kafka_broker: str, executor: str, batch: bool
) -> None:
    # a bound of 5 tasks keeps most fetched records waiting for a place, so the stop finds some in flight and
    # some not started
    make_executor = (lambda: DynamicTaskExecutor(size=5)) if executor == "DynamicTaskExecutor" else SequentialExecutor
    topic, group, partitions, n = unique_topic("inflight"), unique_topic("g"), 3, 300
    await create_topic(kafka_broker, topic, partitions)
    await produce_items(kafka_broker, topic, range(n), partitions=partitions)
    counts: Counter[int] = Counter()
    some_done, all_done = asyncio.Event(), asyncio.Event()

    def note(ids: list[int]) -> None:
        counts.update(ids)
        if sum(counts.values()) >= 40:
            some_done.set()
        if len(counts) == n:
            all_done.set()

    async def on_item(msg: Item) -> None:
        await asyncio.sleep(0.002)  # the handler's own work, so that messages are in flight at stop
        note([msg.id])

    async def on_items(msg: list[Item]) -> None:
        await asyncio.sleep(0.002)
        note([m.id for m in msg])

    handler = on_items if batch else on_item
    runner = make_runner(handler, topic, kafka_broker, group, executor=make_executor(), batch=batch,
                         max_poll_records=10)
    await runner.start()
    await asyncio.wait_for(some_done.wait(), 60)
    await runner.stop()
    assert runner.failure is None
    first = sum(counts.values())
    assert first < n, "stopped before the end, or the test shows nothing"

    runner = make_runner(handler, topic, kafka_broker, group, executor=make_executor(), batch=batch,
                         max_poll_records=10)
    await runner.start()
    try:
        await asyncio.wait_for(all_done.wait(), 60)
    finally:
        await runner.stop()
    assert set(counts) == set(range(n))
    twice = {i: c for i, c in counts.items() if c != 1}
    assert not twice, f"processed more than once: {twice}"
    assert sum((await committed_offsets(kafka_broker, group, topic, partitions)).values()) == n


class DoneDeliveries:
    "Keys of delivery futures that are done and succeeded, as of the moment it is iterated."

    def __init__(self) -> None:
        self.futures: dict[tuple[int, int], asyncio.Future[Any]] = {}

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([k for k, f in self.futures.items() if f.done() and not f.cancelled() and f.exception() is None])


@pytest.mark.parametrize("executor", ["SequentialExecutor", "DynamicTaskExecutor"])
@pytest.mark.parametrize("auto_commit", [True, False])
async def test_commits_never_pass_a_message_still_waiting_running_or_unacknowledged(
    kafka_broker: str, executor: str, auto_commit: bool
) -> None:
    topic, out_topic, group, partitions = unique_topic("c"), unique_topic("out"), unique_topic("g"), 2
    await create_topic(kafka_broker, topic, partitions)
    await create_topic(kafka_broker, out_topic, 1)
    n = 60
    await produce_items(kafka_broker, topic, range(n), partitions=partitions)
    # what had finished when a commit was made: deliveries done by then (read at the commit, not when the test's
    # own done-callbacks happen to run, which may be after the runner saw the futures done)
    delivered = DoneDeliveries()
    transport = RecordingTransport(delivered)  # type: ignore[arg-type]
    finished: set[tuple[int, int]] = set()
    gate, blocked = asyncio.Event(), asyncio.Event()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker, acks="all")
    await producer.start()

    all_acked = asyncio.Event()

    def acked(key: tuple[int, int]) -> None:
        finished.add(key)
        if len(finished) == n:
            all_acked.set()

    async def on_item(msg: Item, meta: EventMetadata) -> None:
        if (meta.partition, meta.offset) == (0, 5):
            blocked.set()
            await gate.wait()
        # produce like an @app.produces function does inside a handler: register the delivery, do not await it
        fut = await producer.send(out_topic, b'{"id": %d}' % msg.id)
        delivered.futures[(meta.partition, meta.offset)] = fut
        fut.add_done_callback(lambda f, key=(meta.partition, meta.offset): acked(key))
        deliveries = current_deliveries()
        assert deliveries is not None
        deliveries.add(fut)

    runner = make_runner(on_item, topic, kafka_broker, group, executor=executor, transport=transport,
                         enable_auto_commit=auto_commit, auto_commit_interval_ms=50, max_poll_records=7)
    await runner.start()
    try:
        await asyncio.wait_for(blocked.wait(), 60)
        if auto_commit or executor == "DynamicTaskExecutor":
            # commits go on while (0, 5) runs (with the sequential executor and per-poll commits, the poll in
            # hand is not over yet, so there is nothing to wait for); they reach offset 5 and stop there
            await transport.wait_for_commit(0, 5, timeout=60)
            assert (await committed_offsets(kafka_broker, group, topic, partitions))[0] == 5
        transport.assert_commits_behind_finished()
        gate.set()
        await asyncio.wait_for(all_acked.wait(), 60)
        for p in range(partitions):  # committed while running, once acknowledged: not left for the stop
            await transport.wait_for_commit(p, n // partitions, timeout=60)
    finally:
        gate.set()
        await runner.stop()
        await producer.stop()
    transport.assert_commits_behind_finished()
    assert await committed_offsets(kafka_broker, group, topic, partitions) == {0: n // 2, 1: n // 2}


async def test_without_group_id_nothing_is_committed_and_everything_is_read(kafka_broker: str, topic: str) -> None:
    await produce_items(kafka_broker, topic, range(5))
    seen: list[int] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_item(msg: Item) -> None:  # a sync handler, run in a worker thread
        seen.append(msg.id)
        if len(seen) == 5:
            loop.call_soon_threadsafe(done.set)

    runner = make_runner(on_item, topic, kafka_broker, None)
    await runner.start()
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await runner.stop()
    assert seen == [0, 1, 2, 3, 4] and runner.failure is None
