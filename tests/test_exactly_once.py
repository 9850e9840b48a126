"""Exactly-once consumers through the Tester, in memory and on a real broker, and their errors on a real broker.

One billing app with `processing_guarantee="exactly_once"`: a single-message consumer and a batch consumer, both
sending keyed records with headers through `@app.produces` functions, both failing after they produced (once:
retried; for good: dead-lettered), and a background task that sends from outside any handler. The Tester's mirrors
read with `read_committed`: each must see every invoice once, while a `read_uncommitted` reader of the same topic
finds the aborted copies too. The same scenario runs in memory and on the session's Kafka broker; waits are bounded
and wait on events or broker state, never on fixed sleeps (the one sleep below is the fault itself: a handler slower
than its transaction timeout).
"""
import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import EventMetadata, FastKafka, KafkaEvent, Retry
from fastkafka._components.exactly_once import TransactionsUnavailableError
from fastkafka._components.transport import current_transport
from fastkafka._testing import apache_kafka_broker
from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker
from fastkafka.testing import Tester

IN_MEMORY = "localhost:9092"
FLAKY, POISON = {2, 12}, {4, 14}  # ids whose handler fails once (after producing), and for good


class Order(BaseModel):
    id: int


class Invoice(BaseModel):
    order_id: int
    source: str


def billing_app(bootstrap: str, topics: dict[str, str], group: str) -> tuple[FastKafka, Counter[int], asyncio.Event]:
    "The app under test, how often each order id was handled, and the event that lets its background task send."
    host, port = bootstrap.rsplit(":", 1)
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": int(port)}}, group_id=group,
                    processing_guarantee="exactly_once")
    calls: Counter[int] = Counter()
    go = asyncio.Event()  # set once the Tester's mirrors read (on a real broker they start at the end offsets)

    def fail_after_producing(order_id: int) -> None:
        calls[order_id] += 1
        if order_id in POISON:
            raise ValueError(f"order {order_id} cannot be billed")
        if order_id in FLAKY and calls[order_id] == 1:
            raise ConnectionError("the ledger hung up")

    @app.consumes(topic=topics["orders"], retry=Retry(attempts=2, delay=0.01, on=ConnectionError),
                  dead_letter_topic=True)
    async def on_orders(order: Order, meta: EventMetadata) -> None:
        await to_invoices(order.id, "single")
        fail_after_producing(order.id)

    @app.consumes(topic=topics["batches"], retry=Retry(attempts=2, delay=0.01, on=ConnectionError))
    async def on_batches(orders: list[Order]) -> None:
        await to_invoices_batch([Invoice(order_id=o.id, source="batch") for o in orders])
        for o in orders:
            if o.id in FLAKY:
                fail_after_producing(o.id)

    @app.produces(topic=topics["invoices"])
    async def to_invoices(order_id: int, source: str) -> KafkaEvent[Invoice]:
        return KafkaEvent(Invoice(order_id=order_id, source=source), key=f"order-{order_id}".encode(),
                          headers=[("source", source.encode())])

    @app.produces(topic=topics["invoices"])
    async def to_invoices_batch(invoices: list[Invoice]) -> KafkaEvent[list[Invoice]]:
        return KafkaEvent(invoices, key=b"batch", headers=[("source", b"batch")])

    @app.run_in_background()
    async def opening_balance() -> None:  # outside any handler: the app's plain producer, visible at once
        await go.wait()
        await to_invoices(0, "background")

    return app, calls, go


async def read_to_end(bootstrap: str, topic: str, committed: bool) -> list[ConsumerRecord]:
    "Every record of `topic` (one partition) a reader with that isolation level gets, up to its end now."
    consumer: Any = current_transport().create_consumer(  # in memory: the Tester's broker
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted")
    await consumer.start()
    tp, out = TopicPartition(topic, 0), []
    try:
        if hasattr(consumer, "assign"):  # aiokafka
            consumer.assign([tp])
            end = (await consumer.end_offsets([tp]))[tp]
        else:  # the in-memory consumer: every partition at once, without a group
            consumer.subscribe([topic])
            end = consumer.highwater(tp)
        while await consumer.position(tp) < end:  # no transaction is open: read_committed gets there too
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def until_committed(bootstrap: str, group: str, want: dict[str, int], timeout: float) -> None:
    "Wait until `group` committed offset `want[topic]` of partition 0 of each topic (asking the broker)."
    reader: Any = current_transport().create_consumer(bootstrap_servers=bootstrap, group_id=group,
                                                      enable_auto_commit=False)
    await reader.start()  # never subscribed: it only reads the group's offsets
    try:
        async def check() -> None:
            while {t: await reader.committed(TopicPartition(t, 0)) for t in want} != want:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(check(), timeout)
    finally:
        await reader.stop()


def invoices(records: list[ConsumerRecord]) -> Counter[tuple[int, str]]:
    return Counter((d["order_id"], d["source"]) for d in (json.loads(r.value) for r in records))


async def run_billing(tester: Tester, app: FastKafka, calls: Counter[int], go: asyncio.Event, bootstrap: str,
                      topics: dict[str, str], group: str, timeout: float) -> None:
    on_invoices = tester.mirrors[app.to_invoices]
    go.set()
    send_single, send_batch = tester.mirrors[app.on_orders], tester.mirrors[app.on_batches]
    for i in range(1, 6):
        await send_single(Order(id=i))
    await send_batch([Order(id=i) for i in range(11, 16)])
    expected = {(0, "background")} | {(i, "single") for i in range(1, 6) if i not in POISON} | {
        (i, "batch") for i in range(11, 16)}
    for order_id, source in sorted(expected):
        await on_invoices.assert_any_await(Invoice(order_id=order_id, source=source), timeout=timeout)
    letters = await tester.dead_letters.wait_for(f"{topics['orders']}-dlt", 1, timeout=timeout)
    await until_committed(bootstrap, group, {topics["orders"]: 5, topics["batches"]: 5}, timeout)

    committed = await read_to_end(bootstrap, topics["invoices"], committed=True)
    assert invoices(committed) == Counter(expected), invoices(committed)  # every invoice once, nothing aborted
    seen = Counter((c.args[0].order_id, c.args[0].source) for c in on_invoices.call_args_list)
    assert seen == Counter(expected), seen  # the Tester's mirror reads committed records too
    assert {(r.key, tuple(r.headers)) for r in committed if json.loads(r.value)["source"] == "single"} == {
        (f"order-{i}".encode(), (("source", b"single"),)) for i in (1, 2, 3, 5)}
    assert {(r.key, tuple(r.headers)) for r in committed if json.loads(r.value)["source"] == "batch"} == {
        (b"batch", (("source", b"batch"),))}
    assert [(d.original_offset, d.exception, d.value) for d in letters] == [(3, "ValueError", b'{"id":4}')]
    # orders in an aborted transaction are handled again (2 and 12 failed once); 4 failed once, then went to the DLT
    assert calls[2] >= 2 and calls[12] >= 2 and calls[4] == 1, calls
    aborted = invoices(await read_to_end(bootstrap, topics["invoices"], committed=False)) - invoices(committed)
    assert aborted[(2, "single")] >= 1 and aborted[(4, "single")] >= 1 and aborted[(12, "batch")] >= 1, aborted


def topic_names(prefix: str = "") -> dict[str, str]:
    return {name: unique_topic(name) if prefix else name for name in ("orders", "batches", "invoices")}


async def test_exactly_once_in_memory() -> None:
    topics = topic_names()
    app, calls, go = billing_app(IN_MEMORY, topics, "billing")
    async with Tester(app) as tester:
        await run_billing(tester, app, calls, go, IN_MEMORY, topics, "billing", timeout=10)


@pytest.mark.broker
async def test_exactly_once_on_a_real_broker(kafka_broker: str) -> None:
    topics, group = topic_names("real"), unique_topic("billing")
    app, calls, go = billing_app(kafka_broker, topics, group)
    async with Tester(app, use_in_memory_broker=False) as tester:
        await run_billing(tester, app, calls, go, kafka_broker, topics, group, timeout=60)


async def test_exactly_once_needs_a_group_id() -> None:
    app = FastKafka(processing_guarantee="exactly_once")
    with pytest.raises(ValueError, match=r"@app.consumes\(\) of on_orders\(\), from FastKafka\(processing_guarantee="
                                         r"\.\.\.\),: processing_guarantee='exactly_once' needs a group_id"):
        @app.consumes()
        async def on_orders(order: Order) -> None: ...


@pytest.mark.broker
@pytest.mark.slow
async def test_a_transaction_open_longer_than_its_timeout_stops_the_consumer(kafka_broker: str) -> None:
    "The broker aborts it (its check runs every 10 s) and fences the producer; the consumer says why, and stops."
    host, port = kafka_broker.rsplit(":", 1)
    topic, group = unique_topic("slow"), unique_topic("slow-g")
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": int(port)}}, group_id=group,
                    processing_guarantee="exactly_once", transaction_timeout_ms=1000)

    @app.consumes(topic=topic)
    async def on_slow(order: Order) -> None:
        await to_out(order)
        await asyncio.sleep(12)  # the fault: longer than transaction_timeout_ms and the broker's 10 s check
        await to_out(order)

    @app.produces(topic=f"{topic}-out")
    async def to_out(order: Order) -> Order:
        return order

    with pytest.raises(RuntimeError) as caught:
        async with Tester(app, use_in_memory_broker=False) as tester:
            await tester.mirrors[app.on_slow](Order(id=1))
            await asyncio.wait_for(app.runtime.until_broken(), 60)
    text = str(caught.value)
    assert f"The consumer of {topic!r} failed while the app was running: TransactionTimeoutError" in text, text
    assert f"The consumer of {topic!r} (group {group!r}): the transaction of partition 0 stayed open" in text, text
    assert "longer than transaction_timeout_ms=1000" in text and "FastKafka(transaction_timeout_ms=...)" in text


@pytest.mark.broker
@pytest.mark.slow
async def test_a_broker_without_transactions_is_a_clear_error_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    "A single broker whose transaction state log needs 3 replicas: the coordinator never comes; the start says so."
    stock = apache_kafka_broker.kafka_server_properties

    def three_replicas(**kw: Any) -> dict[str, str]:
        return {**stock(**kw), "transaction.state.log.replication.factor": "3", "transaction.state.log.min.isr": "2"}

    monkeypatch.setattr(apache_kafka_broker, "kafka_server_properties", three_replicas)
    async with ApacheKafkaBroker(listener_port=0) as bootstrap:
        host, port = bootstrap.rsplit(":", 1)
        app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": int(port)}}, group_id="g",
                        processing_guarantee="exactly_once", request_timeout_ms=3000)

        @app.consumes(topic="orders")
        async def on_orders(order: Order) -> None: ...

        with pytest.raises(TransactionsUnavailableError) as caught:
            async with app:
                pass
    text = str(caught.value)
    assert "The consumer of 'orders' (group 'g') has processing_guarantee='exactly_once'" in text, text
    assert "no producer id within request_timeout_ms=3000" in text, text
    assert "transaction.state.log.replication.factor" in text and "processing_guarantee='at_least_once'" in text


@pytest.mark.broker
async def test_the_librdkafka_transport_says_it_has_no_transactions(kafka_broker: str) -> None:
    pytest.importorskip("confluent_kafka")
    host, port = kafka_broker.rsplit(":", 1)
    app = FastKafka(kafka_brokers={"localhost": {"url": host, "port": int(port)}}, group_id="g",
                    processing_guarantee="exactly_once", transport="librdkafka")

    @app.consumes(topic=unique_topic("orders"))
    async def on_orders(order: Order) -> None: ...

    with pytest.raises(TransactionsUnavailableError, match=r"makes no transactional producers: .*transactions are not "
                                                            r"supported by the librdkafka transport yet"):
        async with app:
            pass
