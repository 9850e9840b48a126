"""Multiple Kafka clusters: two real brokers, `brokers=` overrides and the running broker name."""
import re

import pytest
from app_support import Collector, count_records, create_topics, read_records
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import FastKafka

pytestmark = pytest.mark.broker


class Event(BaseModel):
    n: int
    origin: str


def entry(bootstrap: str) -> dict:
    host, port = bootstrap.rsplit(":", 1)
    return {"url": host, "port": port}


async def test_forward_from_one_cluster_to_another(kafka_broker: str, second_kafka_broker: str) -> None:
    src, dst = unique_topic("src"), unique_topic("dst")
    await create_topics(kafka_broker, src, dst)
    await create_topics(second_kafka_broker, src, dst)
    # the app's own cluster is the second broker; the consumer reads from the first one
    app = FastKafka(kafka_brokers={"main": entry(second_kafka_broker)})
    first = {"main": entry(kafka_broker)}

    @app.produces(topic=src, brokers=first)
    async def to_src_on_first(n: int) -> Event:
        return Event(n=n, origin="first")

    @app.consumes(topic=src, brokers=first)
    async def on_src_from_first(event: Event) -> None:
        await to_dst(event)

    @app.produces(topic=dst)
    async def to_dst(event: Event) -> Event:
        return event

    async with app:
        for n in range(3):
            await app.to_src_on_first(n)
        records = await read_records(second_kafka_broker, dst, 3)
    assert sorted(Event.model_validate_json(r.value).n for r in records) == [0, 1, 2]
    assert await count_records(kafka_broker, dst) == 0  # nothing forwarded to the wrong cluster
    assert await count_records(second_kafka_broker, src) == 0
    assert await count_records(kafka_broker, src) == 3


async def test_same_topic_consumed_from_two_clusters(kafka_broker: str, second_kafka_broker: str) -> None:
    topic = unique_topic("both")
    await create_topics(kafka_broker, topic)
    await create_topics(second_kafka_broker, topic)
    app = FastKafka(kafka_brokers={"dev": entry(kafka_broker), "prod": entry("127.0.0.1:1")})
    got = Collector(2)

    @app.produces(topic=topic)
    async def to_first(n: int) -> Event:
        return Event(n=n, origin="first")

    @app.produces(topic=topic, brokers={"dev": entry(second_kafka_broker), "prod": entry("127.0.0.1:1")})
    async def to_second(n: int) -> Event:
        return Event(n=n, origin="second")

    @app.consumes(topic=topic)
    async def on_first(event: Event) -> None:
        got.add(("on_first", event.origin))

    @app.consumes(topic=topic, brokers={"dev": entry(second_kafka_broker), "prod": entry("127.0.0.1:1")})
    async def on_second(event: Event) -> None:
        got.add(("on_second", event.origin))

    app.set_kafka_broker("dev")  # picks the "dev" entry of the app and of every override
    async with app:
        await app.to_first(1)
        await app.to_second(2)
        assert sorted(await got.wait()) == [("on_first", "first"), ("on_second", "second")]


def test_override_must_name_the_same_brokers() -> None:
    app = FastKafka(kafka_brokers={"dev": {"url": "a"}, "prod": {"url": "b"}})
    with pytest.raises(ValueError, match=re.escape("Default defined: {'dev', 'prod'}, override defined: {'dev'}")):
        app.consumes(topic="t", brokers={"dev": {"url": "c"}})
    with pytest.raises(ValueError, match="must define all of the broker options"):
        app.produces(topic="t", brokers={"staging": {"url": "c"}, "dev": {"url": "c"}})
