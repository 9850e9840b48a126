"""An app that consumes Avro and produces Avro: with the Tester (in-memory broker) and on a real Kafka broker."""

from __future__ import annotations

import asyncio
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from uuid import UUID

import fastavro
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from helpers import unique_topic
from pydantic import Field

from fastkafka import FastKafka
from fastkafka.encoder import AvroBase, avro_decoder, avro_encoder

TZ = timezone(timedelta(hours=2))


class Status(str, Enum):
    NEW = "NEW"
    PAID = "PAID"


class Item(AvroBase):
    sku: str
    quantity: int
    unit_price: Decimal = Field(max_digits=10, decimal_places=2)


class Order(AvroBase):
    order_id: UUID
    placed_at: datetime  # kept with its +02:00 offset through both hops
    delivery: date
    items: list[Item]
    tags: dict[str, str] = Field(default_factory=dict)
    status: Status = Status.NEW
    note: str | None = None


class Receipt(AvroBase):
    order_id: UUID
    placed_at: datetime
    total: Decimal = Field(max_digits=12, decimal_places=2)
    status: Status
    lines: list[Item]


ORDER = Order(
    order_id=UUID(int=42), placed_at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=TZ), delivery=date(2024, 5, 3),
    items=[Item(sku="pen", quantity=3, unit_price=Decimal("1.25")),
           Item(sku="ink", quantity=1, unit_price=Decimal("7"))],
    tags={"channel": "web"}, status=Status.PAID,
)
RECEIPT = Receipt(order_id=ORDER.order_id, placed_at=ORDER.placed_at, total=Decimal("10.75"), status=Status.PAID,
                  lines=ORDER.items)


def make_app(bootstrap: str, orders: str, receipts: str) -> FastKafka:
    "An app that turns Avro orders into Avro receipts."
    host, port = bootstrap.rsplit(":", 1)
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": port}})
    app.received = []  # type: ignore[attr-defined]

    @app.produces(topic=receipts, encoder="avro")
    async def to_receipts(receipt: Receipt) -> Receipt:
        return receipt

    @app.consumes(topic=orders, decoder="avro")
    async def on_orders(msg: Order) -> None:
        app.received.append(msg)  # type: ignore[attr-defined]
        total = sum((i.unit_price * i.quantity for i in msg.items), Decimal(0))
        await to_receipts(Receipt(order_id=msg.order_id, placed_at=msg.placed_at, total=total, status=msg.status,
                                  lines=msg.items))

    return app


def test_order_and_receipt_round_trip() -> None:
    for m in (ORDER, RECEIPT):
        back = avro_decoder(avro_encoder(m), type(m))
        assert back == m and back.placed_at.utcoffset() == timedelta(hours=2)


async def test_avro_app_with_tester() -> None:
    from fastkafka.testing import Tester

    app = make_app("127.0.0.1:9092", "orders", "receipts")
    async with Tester(app) as tester:
        await tester.mirrors[app.on_orders](ORDER)  # the mirror encodes with the app consumer's decoder: Avro
        await tester.mirrors[app.to_receipts].assert_called_with(RECEIPT, timeout=10)
        await app.awaited_mocks.on_orders.assert_called_with(ORDER, timeout=10)
    assert app.received == [ORDER] and app.received[0].placed_at.utcoffset() == timedelta(hours=2)


@pytest.mark.broker
async def test_avro_app_on_kafka(kafka_broker: str) -> None:
    orders, receipts = unique_topic("orders"), unique_topic("receipts")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker)
    await admin.start()
    try:  # created up front: a consumer subscribed to a missing topic only sees it at its next metadata refresh
        await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in (orders, receipts)])
    finally:
        await admin.close()
    app = make_app(kafka_broker, orders, receipts)
    consumer = AIOKafkaConsumer(receipts, bootstrap_servers=kafka_broker, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
    await consumer.start()
    await producer.start()
    try:
        async with app:
            await producer.send_and_wait(orders, avro_encoder(ORDER))
            record = await asyncio.wait_for(consumer.getone(), timeout=60)
    finally:
        await producer.stop()
        await consumer.stop()
    receipt = avro_decoder(record.value, Receipt)
    assert receipt == RECEIPT and app.received == [ORDER]  # type: ignore[attr-defined]
    assert receipt.placed_at.utcoffset() == timedelta(hours=2)
    # the bytes on the topic are plain schemaless Avro of Receipt's schema: fastavro reads them on its own
    parsed = fastavro.parse_schema(Receipt.avro_schema())
    raw = fastavro.schemaless_reader(io.BytesIO(record.value), parsed, None)
    assert raw["total"] == Decimal("10.75") and raw["status"] == "PAID"
