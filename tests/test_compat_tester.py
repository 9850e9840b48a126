"""Tests written the way FastKafka 0.8.0's guides wrote them, for the Tester behaviours 0.8.0 users rely on.

Each test builds a small app as the 0.8.0 guides did, runs it with `Tester`, and asserts what a user of 0.8.0
asserted. They run on the in-memory broker.
"""
import asyncio
import logging
import zlib
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from fastkafka import FastKafka
from fastkafka.testing import Tester


class Data(BaseModel):
    data: float = Field(..., description="Float data example")


def survivor_app() -> FastKafka:
    app = FastKafka(kafka_brokers={"localhost": {"url": "localhost", "port": 9092}})

    @app.consumes(topic="input_data")
    async def on_input_data(msg: Data) -> None:
        if msg.data < 0:
            raise ValueError(f"negative data: {msg.data}")
        await to_output_data(msg.data)

    @app.produces(topic="output_data")
    async def to_output_data(data: float) -> Data:
        return Data(data=data + 1.0)

    return app


async def test_the_consumer_survives_a_bad_message(caplog: pytest.LogCaptureFixture) -> None:
    app = survivor_app()
    with caplog.at_level(logging.ERROR, logger="fastkafka"):
        async with Tester(app) as tester:
            await tester.to_input_data(Data(data=-1.0))
            await tester.to_input_data(Data(data=0.1))
            await tester.awaited_mocks.on_output_data.assert_awaited_with(Data(data=1.1), timeout=5)
    # leaving the block raised nothing; the error was logged once, with where it happened and its traceback
    lines = [r for r in caplog.records if "negative data" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "topic=input_data partition=0 offset=0" in lines[0].getMessage()
    assert "the message is skipped" in lines[0].getMessage() and lines[0].exc_info is not None


async def test_a_timed_out_assertion_names_the_handler_error() -> None:
    app = survivor_app()
    async with Tester(app) as tester:
        await tester.to_input_data(Data(data=-2.0))
        with pytest.raises(AssertionError, match=r"an app's function raised ValueError\('negative data: -2.0'\)"):
            await tester.awaited_mocks.on_output_data.assert_awaited(timeout=0.3)


async def test_strict_mode_raises_the_handler_error_at_exit() -> None:
    app = survivor_app()
    t0 = asyncio.get_running_loop().time()
    with pytest.raises(ValueError, match=r"negative data: -3\.0"):
        async with Tester(app, strict=True) as tester:
            await tester.to_input_data(Data(data=-3.0))
            with pytest.raises(AssertionError, match=r"negative data: -3\.0"):  # a waiting assertion fails at once
                await tester.awaited_mocks.on_output_data.assert_awaited(timeout=30)
    assert asyncio.get_running_loop().time() - t0 < 10


async def test_producer_mocks_record_the_call() -> None:
    app = survivor_app()
    async with Tester(app) as tester:
        await tester.to_input_data(Data(data=0.5))
        await app.awaited_mocks.to_output_data.assert_called_with(0.5, timeout=5)  # as 0.8.0: call(0.5)
        await tester.awaited_mocks.on_output_data.assert_awaited_with(Data(data=1.5), timeout=5)  # what was sent
    app.mocks.to_output_data.assert_called_once_with(0.5)


def zipped(msg: BaseModel) -> bytes:
    return zlib.compress(msg.model_dump_json().encode())


def unzipped(raw: bytes, cls: type[BaseModel]) -> BaseModel:
    return cls.model_validate_json(zlib.decompress(raw))


async def test_custom_decoder_uses_the_apps_encoder_for_the_topic() -> None:
    app = FastKafka()

    @app.consumes(topic="zipped_data", decoder=unzipped)
    async def on_zipped_data(msg: Data) -> None: ...

    @app.produces(topic="zipped_data", encoder=zipped)
    async def to_zipped_data(msg: Data) -> Data:
        return msg

    async with Tester(app) as tester:
        await tester.to_zipped_data(Data(data=2.0))
        await app.awaited_mocks.on_zipped_data.assert_awaited_with(Data(data=2.0), timeout=5)
        await tester.awaited_mocks.on_zipped_data.assert_awaited_with(Data(data=2.0), timeout=5)


async def test_custom_decoder_without_an_inverse_fails_clearly() -> None:
    app = FastKafka()

    @app.consumes(topic="zipped_in", decoder=unzipped)
    async def on_zipped_in(msg: Data) -> None: ...

    async with Tester(app) as tester:
        with pytest.raises(ValueError, match=r"custom decoder unzipped.*encoders=\{'zipped_in': your_encoder\}"):
            await tester.to_zipped_in(Data(data=1.0))
        await tester.to_zipped_in(zipped(Data(data=1.0)))  # encoded bytes go as they are
        await app.awaited_mocks.on_zipped_in.assert_awaited_with(Data(data=1.0), timeout=5)
    async with Tester(app, encoders={"zipped_in": zipped}) as tester:  # or give the Tester the inverse
        await tester.to_zipped_in(Data(data=3.0))
        await app.awaited_mocks.on_zipped_in.assert_awaited_with(Data(data=3.0), timeout=5)


async def test_custom_encoder_without_an_inverse_is_explained() -> None:
    app = FastKafka()

    @app.produces(topic="zipped_out", encoder=zipped)
    async def to_zipped_out(msg: Data) -> Data:
        return msg

    async with Tester(app) as tester:
        await app.to_zipped_out(Data(data=4.0))
        await tester.on_zipped_out.assert_awaited_with(zipped(Data(data=4.0)), timeout=5)  # the raw bytes
        with pytest.raises(AssertionError, match=r"records the raw bytes of 'zipped_out'.*decoders=\{'zipped_out'"):
            await tester.on_zipped_out.assert_awaited_with(Data(data=4.0), timeout=0.2)
    async with Tester(app, decoders={"zipped_out": unzipped}) as tester:
        await app.to_zipped_out(Data(data=5.0))
        await tester.on_zipped_out.assert_awaited_with(Data(data=5.0), timeout=5)


async def test_tester_is_started() -> None:
    tester = Tester(survivor_app())
    assert not tester.is_started
    async with tester:
        assert tester.is_started
    assert not tester.is_started


async def test_an_app_started_by_a_fastapi_lifespan_uses_the_testers_broker() -> None:
    kafka_app = survivor_app()
    other = FastKafka(kafka_brokers={"localhost": {"url": "localhost", "port": 9092}})
    seen = asyncio.Event()

    @other.consumes(topic="output_data")
    async def on_output_data(msg: Data) -> None:
        seen.set()

    web_app = FastAPI(lifespan=other.fastapi_lifespan("localhost"))

    @web_app.get("/started")
    async def started() -> dict:
        return {"started": other.is_started}

    async with Tester(kafka_app) as tester:
        async with web_app.router.lifespan_context(web_app):  # FastAPI starts the other app inside the block
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="http://t") as c:
                assert (await c.get("/started")).json() == {"started": True}
            await tester.to_input_data(Data(data=0.2))
            await asyncio.wait_for(seen.wait(), 5)  # it read what the app under test produced, in memory


async def test_an_app_entered_inside_the_block_uses_the_testers_broker() -> None:
    kafka_app, other = survivor_app(), FastKafka()
    got: list[Data] = []
    done = asyncio.Event()

    @other.consumes(topic="output_data")
    async def on_output_data(msg: Data) -> None:
        got.append(msg)
        done.set()

    @asynccontextmanager
    async def running(app: FastKafka):
        async with app:
            yield

    async with Tester(kafka_app) as tester:
        async with running(other):
            await tester.to_input_data(Data(data=0.3))
            await asyncio.wait_for(done.wait(), 5)
    assert got == [Data(data=1.3)]
