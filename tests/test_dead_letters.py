"""Dead letters through the Tester, in memory and on a real broker.

One billing app: a handler that fails transiently (retried, then succeeds), one that fails for good (dead-lettered
at once, or after its last attempt), and records that cannot be decoded (bad JSON, not UTF-8, empty, wrong types:
dead-lettered at once). `tester.dead_letters` must hold each of them with the exact original key, value, headers,
partition, offset and timestamp and the `kafka_dlt-*` headers, and `get_topics()` must list the dead-letter topic.
The same scenario runs on the in-memory broker and on the session's Kafka broker; waits are bounded, never sleeps.
"""

import re
from typing import Any

import pytest
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import EventMetadata, FastKafka, KafkaEvent, Retry
from fastkafka._components.retry import DLT_HEADERS
from fastkafka._components.transport import current_transport
from fastkafka.testing import Tester

IN_MEMORY = "localhost:9092"
HEADERS = [("trace", b"t-42"), ("bin", b"\x00\xff\x01"), ("trace", b"again")]  # binary and repeated names too
TIMESTAMP = 1_767_225_600_123  # the CreateTime given to the raw record
BUSY = {1: 2, 4: 99}  # order id -> how many calls raise ConnectionError (1: transient, 4: for good)
ALWAYS = set(DLT_HEADERS) - {"kafka_dlt-exception-cause-fqcn"}  # with a group_id, every other header is written


class Order(BaseModel):
    id: int
    cents: int


class Invoice(BaseModel):
    order_id: int
    cents: int


def mirror(topic: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", topic)


def billing_app(bootstrap: str, topic: str, group: str) -> tuple[FastKafka, dict[int, list[EventMetadata]]]:
    "The app under test, and the metadata of every call of its handler, by order id."
    host, port = bootstrap.rsplit(":", 1)
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": int(port)}}, group_id=group)
    seen: dict[int, list[EventMetadata]] = {}

    @app.consumes(topic=topic, retry=Retry(attempts=3, delay=0.05, on=ConnectionError), dead_letter_topic=True)
    async def on_orders(order: Order, meta: EventMetadata) -> None:
        seen.setdefault(order.id, []).append(meta)
        if order.cents < 0:
            raise ValueError(f"order {order.id} has a negative amount")
        if len(seen[order.id]) <= BUSY.get(order.id, 0):
            raise ConnectionError("the payment service is busy")
        await to_invoices(Invoice(order_id=order.id, cents=order.cents))

    @app.produces(topic=f"{topic}-invoices")
    async def to_invoices(invoice: Invoice) -> Invoice:
        return invoice

    return app, seen


async def send_raw(bootstrap: str, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> Any:
    "Send one record as it is, with a key, headers and a timestamp the Tester's mirrors cannot give a raw value."
    producer: Any = current_transport().create_producer(bootstrap_servers=bootstrap)  # in memory: the Tester's broker
    await producer.start()
    try:
        return await producer.send_and_wait(topic, value, key=key, headers=headers, timestamp_ms=TIMESTAMP)
    finally:
        await producer.stop()


def check_kafka_dlt_headers(letter: Any, topic: str, offset: int, group: str) -> None:
    "The `kafka_dlt-*` headers, raw as Spring Kafka writes them, after the original headers."
    original = list(letter.original_headers)
    assert list(letter.headers[: len(original)]) == original  # the original headers first, as they were
    raw = dict(letter.headers[len(original):])
    assert set(raw) >= ALWAYS and set(raw) <= set(DLT_HEADERS), sorted(raw)
    assert raw["kafka_dlt-original-topic"] == topic.encode()
    assert raw["kafka_dlt-original-partition"] == (0).to_bytes(4, "big")  # 4-byte big-endian int
    assert raw["kafka_dlt-original-offset"] == offset.to_bytes(8, "big")  # 8-byte big-endian long
    assert len(raw["kafka_dlt-original-timestamp"]) == 8
    assert raw["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    assert raw["kafka_dlt-original-consumer-group"] == group.encode()
    assert raw["kafka_dlt-exception-fqcn"].decode() == letter.exception
    assert raw["kafka_dlt-exception-stacktrace"].startswith(b"Traceback (most recent call last):")
    assert (letter.original_topic, letter.original_partition, letter.original_offset, letter.consumer_group) == (
        topic, 0, offset, group)


async def run_billing(tester: Tester, app: FastKafka, seen: dict[int, list[EventMetadata]], bootstrap: str,
                      topic: str, group: str, timeout: float) -> None:
    "Send the scenario through `tester` and check every dead letter and invoice."
    dlt = f"{topic}-dlt"
    assert {topic, dlt, f"{topic}-invoices"} == app.get_topics()
    send = getattr(tester, f"to_{mirror(topic)}")
    await send(Order(id=1, cents=1000))  # offset 0: busy twice, billed at the third call
    await send(KafkaEvent(Order(id=2, cents=-500), key=b"customer-7", headers=HEADERS))  # 1: ValueError, not retried
    await send(b"\xff not json")  # 2: not UTF-8
    await send(b"")  # 3: empty
    raw = await send_raw(bootstrap, topic, b'{"id": "x", "cents": 1}', b"customer-9", HEADERS)  # 4: wrong type
    await send(Order(id=3, cents=700))  # 5: billed
    await send(Order(id=4, cents=300))  # 6: busy on every call: dead-lettered after the third
    assert (raw.partition, raw.offset) == (0, 4)

    letters = await tester.dead_letters.wait_for(dlt, 5, timeout=timeout)
    await getattr(tester, f"on_{mirror(topic)}_invoices").assert_awaited_with(Invoice(order_id=3, cents=700),
                                                                           timeout=timeout)
    assert tester.dead_letters.topics() == [dlt]
    by_offset = {letter.original_offset: letter for letter in letters}
    assert sorted(by_offset) == [1, 2, 3, 4, 6] and len(letters) == 5, letters
    assert {k: len(v) for k, v in seen.items()} == {1: 3, 2: 1, 3: 1, 4: 3}
    billed = getattr(tester.mocks, f"on_{mirror(topic)}_invoices").call_args_list
    assert billed == [((Invoice(order_id=1, cents=1000),),), ((Invoice(order_id=3, cents=700),),)]  # in order

    for offset, letter in by_offset.items():
        check_kafka_dlt_headers(letter, topic, offset, group)

    wrong = by_offset[1]  # the record the handler saw, byte for byte
    (meta,) = seen[2]
    assert (wrong.key, wrong.value, list(wrong.original_headers)) == (meta.key, meta.value, list(meta.headers))
    assert (wrong.key, wrong.original_headers, wrong.original_timestamp) == (b"customer-7", tuple(HEADERS),
                                                                            meta.timestamp)
    assert Order.model_validate_json(wrong.value or b"") == Order(id=2, cents=-500)
    assert (wrong.exception, wrong.message) == ("ValueError", "order 2 has a negative amount")
    assert "kafka_dlt-exception-cause-fqcn" not in dict(wrong.headers)

    not_utf8 = by_offset[2]
    assert (not_utf8.key, not_utf8.value, not_utf8.original_headers) == (None, b"\xff not json", ())
    assert not_utf8.exception and not_utf8.exception.endswith("DecodeError"), not_utf8.exception
    assert "not valid UTF-8" in (not_utf8.message or "")

    empty = by_offset[3]
    assert (empty.key, empty.value, empty.original_headers) == (None, b"", ())  # empty, not null
    assert empty.exception and empty.exception.endswith("JSONSyntaxError"), empty.exception

    wrong_type = by_offset[4]  # sent as it is, with a key, headers and a timestamp
    assert (wrong_type.key, wrong_type.value) == (b"customer-9", b'{"id": "x", "cents": 1}')
    assert (wrong_type.original_headers, wrong_type.original_timestamp) == (tuple(HEADERS), TIMESTAMP)
    assert wrong_type.exception and wrong_type.exception.endswith("ValidationDecodeError"), wrong_type.exception
    assert dict(wrong_type.headers)["kafka_dlt-exception-cause-fqcn"] == b"pydantic_core._pydantic_core.ValidationError"

    unpaid = by_offset[6]  # retried, then dead-lettered
    assert unpaid.value == seen[4][0].value and unpaid.original_timestamp == seen[4][0].timestamp
    assert (unpaid.exception, unpaid.message) == ("ConnectionError", "the payment service is busy")
    assert "raise ConnectionError" in (unpaid.stacktrace or "")


async def test_dead_letters_in_memory() -> None:
    topic, group = "orders", "billing"
    app, seen = billing_app(IN_MEMORY, topic, group)
    async with Tester(app) as tester:
        await run_billing(tester, app, seen, IN_MEMORY, topic, group, timeout=10)
    assert tester.dead_letters.topics() == ["orders-dlt"]  # kept after the block, for the test to read


@pytest.mark.broker
async def test_dead_letters_on_a_real_broker(kafka_broker: str) -> None:
    topic, group = unique_topic("orders"), unique_topic("billing")
    app, seen = billing_app(kafka_broker, topic, group)
    async with Tester(app, use_in_memory_broker=False) as tester:
        await run_billing(tester, app, seen, kafka_broker, topic, group, timeout=60)


async def test_get_topics_lists_the_dead_letter_topics() -> None:
    app = FastKafka()

    @app.consumes(topic="orders", dead_letter_topic=True)
    async def on_orders(order: Order) -> None: ...

    @app.consumes(topic="refunds", dead_letter_topic="money-dlt", retry=2)
    async def on_refunds(order: Order) -> None: ...

    @app.consumes(topic="payments", dead_letter_topic="money-dlt")
    async def on_payments(order: Order) -> None: ...

    @app.consumes(topic="events", retry=3)
    async def on_events(order: Order) -> None: ...

    assert app.get_topics() == {"orders", "orders-dlt", "refunds", "payments", "money-dlt", "events"}
    assert sorted(app.model.dead_letter_topics()) == ["money-dlt", "orders-dlt"]
    tester = Tester(app)
    assert not hasattr(tester, "to_orders_dlt")  # the app only writes its dead-letter topics: no mirror sends there


async def test_without_a_dead_letter_topic_a_failed_message_is_skipped() -> None:
    "Retries without a dead-letter topic: after the last attempt the message is skipped and nothing is written."
    app = FastKafka(group_id="billing")
    calls: dict[int, int] = {}

    @app.consumes(topic="orders", retry=Retry(attempts=2, delay=0.01))
    async def on_orders(order: Order) -> None:
        calls[order.id] = calls.get(order.id, 0) + 1
        if order.cents < 0:
            raise ValueError("negative")
        await to_invoices(Invoice(order_id=order.id, cents=order.cents))

    @app.produces(topic="invoices")
    async def to_invoices(invoice: Invoice) -> Invoice:
        return invoice

    assert app.get_topics() == {"orders", "invoices"}
    async with Tester(app) as tester:
        await tester.to_orders(Order(id=1, cents=-1))
        await tester.to_orders(Order(id=2, cents=5))
        await tester.on_invoices.assert_awaited_with(Invoice(order_id=2, cents=5), timeout=10)
    assert calls == {1: 2, 2: 1} and len(tester.dead_letters) == 0
