"""FastKafka end to end on a real broker: round trips, keys and order, batches, sync/async, executors, mocks."""
import asyncio
import logging
import random
import time

import pytest
from app_support import Collector, create_topics, read_records
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import EventMetadata, FastKafka, KafkaEvent
from fastkafka.executors import DynamicTaskExecutor, SequentialExecutor

pytestmark = pytest.mark.broker


class Item(BaseModel):
    n: int
    text: str = "x"


def make_app(bootstrap: str, **kwargs) -> FastKafka:
    host, port = bootstrap.rsplit(":", 1)
    return FastKafka(kafka_brokers={"localhost": {"url": host, "port": port}}, **kwargs)


async def test_round_trip_consume_then_produce(kafka_broker: str) -> None:
    src, dst = unique_topic("src"), unique_topic("dst")
    await create_topics(kafka_broker, src, dst)
    app = make_app(kafka_broker, group_id=unique_topic("g"))

    @app.produces(topic=src)
    async def to_src(item: Item) -> Item:
        return item

    @app.consumes(topic=src)
    async def on_src(item: Item, meta: EventMetadata) -> None:
        await to_dst(Item(n=item.n * 10, text=f"from offset {meta.offset}"))

    @app.produces(topic=dst)
    async def to_dst(item: Item) -> Item:
        return item

    async with app:
        for i in range(5):
            assert await app.to_src(Item(n=i)) == Item(n=i)
        records = await read_records(kafka_broker, dst, 5)
    got = sorted((Item.model_validate_json(r.value) for r in records), key=lambda m: m.n)
    assert got == [Item(n=i * 10, text=f"from offset {i}") for i in range(5)]
    assert app.get_topics() == {src, dst}


async def test_keyed_messages_land_on_one_partition_in_order(kafka_broker: str) -> None:
    topic = unique_topic("keyed")
    await create_topics(kafka_broker, topic, partitions=4)
    app = make_app(kafka_broker)
    got = Collector(60)

    @app.produces(topic=topic)
    async def to_keyed(key: str, n: int) -> KafkaEvent[Item]:
        return KafkaEvent(Item(n=n), key=key.encode(), headers=[("seq", str(n).encode())])

    @app.consumes(topic=topic)
    async def on_keyed(item: Item, meta: EventMetadata) -> None:
        got.add((meta.key, meta.partition, item.n, dict(meta.headers)["seq"]))

    async with app:
        for n in range(30):
            await app.to_keyed("alpha", n)
            await app.to_keyed("beta", 100 + n)
        items = await got.wait()
    for key, base in [(b"alpha", 0), (b"beta", 100)]:
        mine = [x for x in items if x[0] == key]
        assert len({p for _, p, _, _ in mine}) == 1, mine  # one partition per key
        assert [n for _, _, n, _ in mine] == list(range(base, base + 30))  # in order
        assert all(h == str(n).encode() for _, _, n, h in mine)  # headers arrive


async def test_batch_produce_and_batch_consume(kafka_broker: str) -> None:
    topic = unique_topic("batch")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker, max_poll_records=50)
    got = Collector(120)
    sizes: list[int] = []

    @app.produces(topic=topic)
    async def to_batch(start: int) -> KafkaEvent[list[Item]]:
        return KafkaEvent([Item(n=start + i) for i in range(40)], key=b"same")

    @app.consumes(topic=topic)
    async def on_batch(items: list[Item], metas: list[EventMetadata]) -> None:
        assert len(items) == len(metas)
        assert [m.offset for m in metas] == sorted(m.offset for m in metas)
        sizes.append(len(items))
        for item, meta in zip(items, metas, strict=True):
            got.add((item.n, meta.key))

    async with app:
        for start in (0, 40, 80):
            assert len((await app.to_batch(start)).message) == 40
        items = await got.wait()
    assert [n for n, _ in items] == list(range(120))
    assert {k for _, k in items} == {b"same"}
    assert max(sizes) <= 50 and max(sizes) > 1, sizes  # batches, bounded by max_poll_records


async def test_sync_and_async_handlers_and_producers(kafka_broker: str) -> None:
    a, b, out = unique_topic("a"), unique_topic("b"), unique_topic("out")
    await create_topics(kafka_broker, a, b, out)
    app = make_app(kafka_broker)
    got = Collector(20)
    loop_thread: set[str] = set()

    @app.produces(topic=out)
    def to_out_sync(item: Item) -> Item:  # a plain def producer, called from a worker thread
        return item

    @app.produces(topic=a)
    async def to_a(item: Item) -> Item:
        return item

    @app.produces(topic=b)
    def to_b(items: list[Item]) -> list[Item]:
        return items

    @app.consumes(topic=a)
    def on_a(item: Item) -> None:  # runs off the event loop
        try:
            asyncio.get_running_loop()
            loop_thread.add("on loop")
        except RuntimeError:
            pass
        to_out_sync(Item(n=item.n, text="sync"))

    @app.consumes(topic=b)
    async def on_b(item: Item) -> None:
        await asyncio.sleep(0)
        to_out_sync(Item(n=item.n, text="async"))  # sync producer on the loop thread: scheduled and tracked

    @app.consumes(topic=out)
    async def on_out(item: Item) -> None:
        got.add((item.text, item.n))

    async with app:
        for i in range(10):
            await app.to_a(Item(n=i))
        await asyncio.to_thread(app.to_b, [Item(n=i) for i in range(10)])  # sync producer from a plain thread
        items = await got.wait()
    assert not loop_thread
    assert sorted(items) == sorted([("sync", i) for i in range(10)] + [("async", i) for i in range(10)])


@pytest.mark.parametrize("executor", ["SequentialExecutor", SequentialExecutor()])
async def test_sequential_executor_keeps_order(kafka_broker: str, executor) -> None:
    topic = unique_topic("seq")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker)
    got = Collector(40)
    rnd = random.Random(7)

    @app.produces(topic=topic)
    async def to_seq(n: int) -> Item:
        return Item(n=n)

    @app.consumes(topic=topic, executor=executor)
    async def on_seq(item: Item) -> None:
        await asyncio.sleep(rnd.random() / 200)  # uneven handler times must not reorder
        got.add(item.n)

    async with app:
        for n in range(40):
            await app.to_seq(n)
        assert await got.wait() == list(range(40))


@pytest.mark.parametrize("executor", ["DynamicTaskExecutor", DynamicTaskExecutor(size=8)])
async def test_dynamic_executor_runs_handlers_concurrently(kafka_broker: str, executor) -> None:
    topic = unique_topic("dyn")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker)
    got = Collector(30)
    running, peak = 0, 0

    @app.produces(topic=topic)
    async def to_dyn(items: list[Item]) -> list[Item]:
        return items

    @app.consumes(topic=topic, executor=executor)
    async def on_dyn(item: Item) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        got.add(item.n)

    async with app:
        t0 = time.monotonic()
        await app.to_dyn([Item(n=i) for i in range(30)])
        items = await got.wait()
        elapsed = time.monotonic() - t0
    assert sorted(items) == list(range(30))
    assert peak > 1, peak
    assert elapsed < 30 * 0.05, elapsed  # faster than running them one by one


async def test_mocks_record_copies_of_messages(kafka_broker: str) -> None:
    topic = unique_topic("mocked")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker)
    done = Collector(2)

    @app.produces(topic=topic)
    async def to_mocked(item: Item) -> Item:
        return item

    @app.consumes(topic=topic)
    async def on_mocked(item: Item) -> None:
        item.text = "changed by the handler"
        done.add(item)

    app.create_mocks()
    async with app:
        await app.to_mocked(Item(n=1))
        await app.to_mocked(Item(n=2))
        await done.wait()
        await app.awaited_mocks.on_mocked.assert_awaited_with(Item(n=2), timeout=10)
    app.mocks.to_mocked.assert_any_await(Item(n=1))
    assert app.mocks.on_mocked.await_count == 2
    assert [c.args[0] for c in app.mocks.on_mocked.await_args_list] == [Item(n=1), Item(n=2)]


async def test_benchmark_counts_and_logs(kafka_broker: str, caplog: pytest.LogCaptureFixture) -> None:
    topic = unique_topic("bench")
    await create_topics(kafka_broker, topic)
    app = make_app(kafka_broker)
    got = Collector(300)

    @app.produces(topic=topic)
    async def to_bench(items: list[Item]) -> list[Item]:
        return items

    @app.consumes(topic=topic)
    @app.benchmark(interval=0.05, sliding_window_size=3)
    async def on_bench(item: Item) -> None:
        got.add(item.n)
        if item.n % 50 == 0:
            await asyncio.sleep(0.06)  # make sure an interval passes between calls

    with caplog.at_level(logging.INFO, logger="fastkafka.benchmark"):
        async with app:
            await app.to_bench([Item(n=i) for i in range(300)])
            await got.wait()
    key = f"{__name__}.test_benchmark_counts_and_logs.<locals>.on_bench"
    assert app.benchmark_results[key]["count"] == 300
    lines = [r.getMessage() for r in caplog.records if r.name == "fastkafka.benchmark"]
    assert lines and all(" - For " + key + "(interval=0.05,sliding_window_size=3)" in ln for ln in lines), lines
    assert all(ln.startswith("Throughput = ") and ", Avg throughput = " in ln for ln in lines), lines
