"""The Tester: FastKafka 0.8.0's README example as written, in memory and against a real Kafka broker."""
import time
from typing import Any

import pytest
from helpers import unique_topic
from pydantic import BaseModel, Field, NonNegativeFloat

from fastkafka import FastKafka
from fastkafka.testing import Tester


class Data(BaseModel):
    data: NonNegativeFloat = Field(..., description="Float data example")


def readme_app(port: int | str = 9092, **consumer_kwargs: Any) -> FastKafka:
    "The app of FastKafka 0.8.0's README (only the local broker's port can change)."
    kafka_brokers = {
        "localhost": {"url": "localhost", "description": "local development kafka broker", "port": port},
        "production": {"url": "kafka.airt.ai", "description": "production kafka broker", "port": 9092,
                       "protocol": "kafka-secure", "security": {"type": "plain"}},
    }
    kafka_app = FastKafka(title="Demo Kafka app", kafka_brokers=kafka_brokers)

    @kafka_app.consumes(topic="input_data", auto_offset_reset="latest", **consumer_kwargs)
    async def on_input_data(msg: Data):
        print(f"Got data: {msg.data}")
        await to_output_data(msg.data)

    @kafka_app.produces(topic="output_data")
    async def to_output_data(data: float) -> Data:
        processed_data = Data(data=data + 1.0)
        return processed_data

    return kafka_app


async def run_readme_test(tester: Tester) -> None:
    "The README's test, as written."
    msg = Data(data=0.1)
    async with tester as tester:
        await tester.to_input_data(msg)
        await tester.awaited_mocks.on_output_data.assert_awaited_with(Data(data=1.1), timeout=2)


async def test_readme_example_in_memory() -> None:
    kafka_app = readme_app()
    t0 = time.perf_counter()
    await run_readme_test(Tester(kafka_app))
    assert time.perf_counter() - t0 < 1
    kafka_app.mocks.on_input_data.assert_awaited_once_with(Data(data=0.1))
    kafka_app.mocks.to_output_data.assert_called_once_with(0.1)  # called as to_output_data(0.1), as 0.8.0 recorded it


@pytest.mark.broker
async def test_readme_example_on_a_real_broker(kafka_broker: str) -> None:
    port = kafka_broker.rsplit(":", 1)[1]
    kafka_app = readme_app(port)
    await run_readme_test(Tester(kafka_app, use_in_memory_broker=False))
    kafka_app.mocks.on_input_data.assert_awaited_once_with(Data(data=0.1))


@pytest.mark.broker
async def test_readme_example_on_a_real_broker_with_a_group(kafka_broker: str) -> None:
    "With a group_id the Tester waits for the group's assignment before the test sends."
    kafka_app = readme_app(kafka_broker.rsplit(":", 1)[1], group_id=unique_topic("readme-group"))
    await run_readme_test(Tester(kafka_app, use_in_memory_broker=False))


@pytest.mark.broker
async def test_using_external_broker_switches_for_one_block(kafka_broker: str) -> None:
    kafka_app = readme_app(kafka_broker.rsplit(":", 1)[1])
    tester = Tester(kafka_app)
    async with tester.using_external_broker(bootstrap_servers_id="localhost") as t:
        assert t is tester and not tester.use_in_memory_broker
        await t.to_input_data(Data(data=2.0))
        await t.on_output_data.assert_awaited_with(Data(data=3.0), timeout=10)
    assert tester.use_in_memory_broker
    async with tester.using_inmemory_broker() as t:
        await t.to_input_data(Data(data=4.0))
        await t.on_output_data.assert_awaited_with(Data(data=5.0), timeout=2)


async def test_handler_errors_reach_the_test() -> None:
    app = FastKafka()

    @app.consumes()
    async def on_numbers(msg: Data) -> None:
        raise ValueError(f"cannot handle {msg.data}")

    @app.produces()
    async def to_results(msg: Data) -> Data:
        return msg

    t0 = time.perf_counter()
    with pytest.raises(AssertionError, match=r"raised ValueError\('cannot handle 1\.0'\)"):
        async with Tester(app, strict=True) as tester:  # strict: the first error fails the waiting assertion
            await tester.to_numbers(Data(data=1.0))
            await tester.on_results.assert_awaited(timeout=30)
    assert time.perf_counter() - t0 < 5


async def test_enter_exit_is_fast() -> None:
    tester = Tester(readme_app())
    t0 = time.perf_counter()
    for _ in range(20):
        async with tester:
            pass
    assert (time.perf_counter() - t0) / 20 < 0.05
