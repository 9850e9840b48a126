"""FastKafka's lifecycle on a real broker: order, lifespan, background tasks, failed starts, dead consumers, FastAPI."""
import asyncio
import socket
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from app_support import Collector, create_topics, free_port, read_records
from fastapi import FastAPI
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._components.producer import ProducerNotStartedError
from fastkafka._components.transport import AIOKafkaTransport
from fastkafka.executors import SequentialExecutor

pytestmark = pytest.mark.broker


class Item(BaseModel):
    n: int


class RecordingTransport(AIOKafkaTransport):
    "The aiokafka transport, remembering the consumer clients it made."

    def __init__(self) -> None:
        self.consumers: list = []

    def create_consumer(self, *topics: str, **config):
        self.consumers.append(super().create_consumer(*topics, **config))
        return self.consumers[-1]


class RefusingTransport(RecordingTransport):
    "Consumer number `refuse` (from 1) fails to start."

    def __init__(self, refuse: int) -> None:
        super().__init__()
        self.refuse = refuse

    def create_consumer(self, *topics: str, **config):
        client = super().create_consumer(*topics, **config)
        if len(self.consumers) == self.refuse:
            async def start() -> None:
                raise RuntimeError(f"the broker refused consumer {self.refuse}")
            client.start = start
        return client


def logged_lifespan(log: list[str]):
    "A lifespan that notes its enter and exit in `log`."

    @asynccontextmanager
    async def lifespan(app: FastKafka):
        log.append("lifespan enter")
        try:
            yield
        finally:
            log.append("lifespan exit")

    return lifespan


def brokers(bootstrap: str) -> dict:
    host, port = bootstrap.rsplit(":", 1)
    return {"localhost": {"url": host, "port": port}}


async def test_startup_and_shutdown_order_with_lifespan_and_background(kafka_broker: str) -> None:
    topic = unique_topic("order")
    await create_topics(kafka_broker, topic)
    log: list[str] = []
    got = Collector(3)

    @asynccontextmanager
    async def lifespan(app: FastKafka):
        log.append("lifespan enter")
        yield
        log.append(f"lifespan exit (started={app.is_started})")

    app = FastKafka(kafka_brokers=brokers(kafka_broker), lifespan=lifespan, group_id=unique_topic("g"))

    @app.produces(topic=topic)
    async def to_order(n: int) -> Item:
        return Item(n=n)

    @app.consumes(topic=topic)
    async def on_order(item: Item) -> None:
        got.add(item.n)

    @app.run_in_background()
    async def producer_loop() -> None:
        runtime = app.runtime
        log.append(f"background start (started so far: producer={runtime.sender(0) is not None}, "
                   f"consumers={len(runtime.consumers)})")
        try:
            for n in range(3):
                await app.to_order(n)  # the producers are up before background tasks start
            await asyncio.Event().wait()
        finally:
            log.append("background cancelled")

    async with app:
        assert app.is_started
        assert sorted(await got.wait()) == [0, 1, 2]
        log.append("body")
    assert not app.is_started
    assert log == ["lifespan enter", "background start (started so far: producer=True, consumers=1)", "body",
                   "background cancelled", "lifespan exit (started=False)"]
    with pytest.raises(ProducerNotStartedError, match="to_order\\(\\) sends to Kafka, but its FastKafka app"):
        await app.to_order(9)


async def test_app_restarts_and_committed_offsets_carry_over(kafka_broker: str) -> None:
    topic, group = unique_topic("restart"), unique_topic("g")
    await create_topics(kafka_broker, topic)
    app = FastKafka(kafka_brokers=brokers(kafka_broker), group_id=group)
    seen: list[int] = []
    got = Collector(3)

    @app.produces(topic=topic)
    async def to_restart(n: int) -> Item:
        return Item(n=n)

    @app.consumes(topic=topic)
    async def on_restart(item: Item) -> None:
        seen.append(item.n)
        got.add(item.n)

    async with app:
        for n in range(3):
            await app.to_restart(n)
        await got.wait()
    got = Collector(3)
    async with app:  # the same app object starts again; the group's commits mean nothing is read twice
        for n in range(3, 6):
            await app.to_restart(n)
        await got.wait()
    assert seen == list(range(6))


async def test_failed_start_stops_what_started_and_exits_lifespan(kafka_broker: str) -> None:
    topic = unique_topic("fail")
    await create_topics(kafka_broker, topic)
    log: list[str] = []
    lifespan = logged_lifespan(log)

    app = FastKafka(kafka_brokers=brokers(kafka_broker), lifespan=lifespan)

    @app.produces(topic=topic)
    async def to_fail(n: int) -> Item:
        return Item(n=n)

    @app.consumes(topic=topic)
    async def on_fail(item: Item) -> None: ...

    @app.consumes(topic=topic)
    async def on_refused(item: Item) -> None: ...

    @app.run_in_background()
    async def never() -> None:
        log.append("background started")

    transport = RefusingTransport(refuse=2)  # the second consumer's start fails, after the rest started
    with pytest.raises(RuntimeError, match="the broker refused consumer 2"):
        async with app.running(transport=transport):
            log.append("body")
    assert log == ["lifespan enter", "lifespan exit"]
    assert not app.is_started
    assert len(transport.consumers) == 2 and all(c._closed for c in transport.consumers)  # started ones stopped
    with pytest.raises(ProducerNotStartedError):
        await app.to_fail(1)  # and so was the producer


async def test_unreachable_broker_is_waited_for_then_named(kafka_broker: str) -> None:
    log: list[str] = []
    lifespan = logged_lifespan(log)

    dead = {"localhost": {"url": "127.0.0.1", "port": free_port()}}  # nothing listens there
    app = FastKafka(kafka_brokers=dead, lifespan=lifespan)

    @app.consumes(topic="anything")
    async def on_anything(item: Item) -> None: ...

    transport = RecordingTransport()
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError) as info:
        async with app.running(transport=transport, connect_timeout=1.5):
            log.append("body")
    waited = asyncio.get_running_loop().time() - started
    assert "Kafka broker 'localhost' was not reachable within 1.5 s" in str(info.value), info.value
    assert f"{dead['localhost']['url']}:{dead['localhost']['port']}" in str(info.value), info.value
    assert 1.0 <= waited < 10, waited
    assert log == ["lifespan enter", "lifespan exit"]
    assert transport.consumers == []  # nothing was started against a broker that is not there


async def test_dead_consumer_is_visible_and_raised_at_stop(kafka_broker: str) -> None:
    topic = unique_topic("dies")
    await create_topics(kafka_broker, topic)
    app = FastKafka(kafka_brokers=brokers(kafka_broker))
    called = asyncio.Event()

    @app.produces(topic=topic)
    async def to_dies(n: int) -> Item:
        return Item(n=n)

    @app.consumes(topic=topic, executor=SequentialExecutor(throw_exceptions=True))
    async def on_dies(item: Item) -> None:
        called.set()
        raise ValueError(f"cannot handle {item.n}")

    with pytest.raises(RuntimeError, match=r"The consumer of '.*' failed while the app was running") as info:
        async with app:
            assert app.is_started
            await app.to_dies(1)
            await asyncio.wait_for(called.wait(), 60)
            await asyncio.wait_for(app.runtime.until_broken(), 30)
            assert not app.is_started  # visible while the app is still "running"
    assert "cannot handle 1" in repr(info.value.__cause__)


async def test_background_task_failure_is_raised_after_full_shutdown(kafka_broker: str) -> None:
    topic = unique_topic("bgfail")
    await create_topics(kafka_broker, topic)
    log: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastKafka):
        yield
        log.append("lifespan exit")

    app = FastKafka(kafka_brokers=brokers(kafka_broker), lifespan=lifespan)

    @app.produces(topic=topic)
    async def to_bgfail(n: int) -> Item:
        return Item(n=n)

    @app.run_in_background()
    async def crashes() -> None:
        await app.to_bgfail(1)
        raise KeyError("lost")

    with pytest.raises(RuntimeError, match="A background task failed while the app was running: KeyError"):
        async with app:
            await asyncio.wait_for(app.runtime.until_broken(), 30)
            assert not app.is_started
    assert log == ["lifespan exit"]  # the rest of the shutdown still ran
    assert (await read_records(kafka_broker, topic, 1))[0].value == b'{"n":1}'


async def test_fastapi_lifespan_served_by_uvicorn(kafka_broker: str) -> None:
    topic = unique_topic("api")
    await create_topics(kafka_broker, topic)
    # "localhost" points nowhere: the lifespan's broker name must be the one used
    kafka_app = FastKafka(kafka_brokers={"localhost": {"url": "nowhere", "port": 1},
                                         "test": brokers(kafka_broker)["localhost"]})
    got = Collector(2)

    @kafka_app.produces(topic=topic)
    async def to_api(n: int) -> Item:
        return Item(n=n)

    @kafka_app.consumes(topic=topic)
    async def on_api(item: Item) -> None:
        got.add(item.n)

    api = FastAPI(lifespan=kafka_app.fastapi_lifespan("test"))

    @api.post("/items/{n}")
    async def post_item(n: int) -> dict:
        await kafka_app.to_api(n)
        return {"started": kafka_app.is_started}

    kafka_ready = asyncio.Event()

    @kafka_app.run_in_background()
    async def mark_ready() -> None:  # runs once the lifespan has started the Kafka app
        kafka_ready.set()

    # a socket that already listens: requests wait in its backlog until uvicorn serves them
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(api, lifespan="on", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.wait_for(kafka_ready.wait(), 60)
        assert kafka_app.is_started
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for n in (1, 2):
                r = await client.post(f"/items/{n}")
                assert r.status_code == 200 and r.json() == {"started": True}
        assert sorted(await got.wait()) == [1, 2]
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 60)
    assert not kafka_app.is_started
    with pytest.raises(ValueError, match="Given kafka_broker_name 'prod' is not found in kafka_brokers"):
        kafka_app.fastapi_lifespan("prod")
