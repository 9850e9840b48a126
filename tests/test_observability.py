"""Metrics, tracing and health end to end: two apps in one trace (in memory and on the real broker), and
`fastkafka run --metrics-port/--health-port` with two workers on the real broker (a scrape after 1,000 messages,
a consumer that is still joining its group, a worker killed)."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.abc import ConsumerRebalanceListener
from app_support import create_topics
from helpers import unique_topic
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel
from run_support import Command, fastkafka_cli

from fastkafka import FastKafka, KafkaEvent, Tracing, instrument
from fastkafka.testing import Tester


class Order(BaseModel):
    n: int


class Payment(BaseModel):
    order: int
    cents: int


def traced() -> tuple[Tracing, InMemorySpanExporter]:
    "A `Tracing` whose finished spans are kept in memory."
    exporter, provider = InMemorySpanExporter(), TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(tracer_provider=provider), exporter


def two_services(brokers: dict | None, orders: str, payments: str) -> tuple[FastKafka, FastKafka, asyncio.Event]:
    "`checkout` handles orders and sends a payment for each; `billing` handles payments (and sets the event)."
    kw = {} if brokers is None else {"kafka_brokers": brokers}
    checkout = FastKafka(title="checkout", group_id=unique_topic("checkout"), **kw)
    billing = FastKafka(title="billing", group_id=unique_topic("billing"), **kw)
    paid = asyncio.Event()

    @checkout.consumes(topic=orders, auto_offset_reset="earliest")
    async def on_orders(order: Order) -> None:
        await to_payments(Payment(order=order.n, cents=100 * order.n))

    @checkout.produces(topic=payments)
    async def to_payments(payment: Payment) -> KafkaEvent[Payment]:
        return KafkaEvent(payment, key=f"order-{payment.order}".encode())

    @billing.consumes(topic=payments, auto_offset_reset="earliest")
    async def on_payments(payment: Payment) -> None:
        paid.set()

    return checkout, billing, paid


def assert_one_trace(exporter: InMemorySpanExporter, orders: str, payments: str) -> dict:
    "The three spans of one order: checkout's `process`, its `send`, billing's `process`, each the next one's parent."
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert sorted(spans) == sorted([f"process {orders}", f"send {payments}", f"process {payments}"]), sorted(spans)
    first, send, second = spans[f"process {orders}"], spans[f"send {payments}"], spans[f"process {payments}"]
    assert len({s.context.trace_id for s in (first, send, second)}) == 1, "one trace"
    assert send.parent.span_id == first.context.span_id
    assert second.parent.span_id == send.context.span_id
    assert (first.kind, send.kind, second.kind) == (trace.SpanKind.CONSUMER, trace.SpanKind.PRODUCER,
                                                    trace.SpanKind.CONSUMER)
    for s in (first, send, second):
        assert all(isinstance(v, (str, int, bool)) for v in s.attributes.values()), dict(s.attributes)
    assert send.attributes["messaging.kafka.message.key"] == "order-7"
    assert second.attributes["messaging.kafka.offset"] == send.attributes["messaging.kafka.offset"]
    assert second.attributes["messaging.destination.partition.id"] == send.attributes[
        "messaging.destination.partition.id"]
    return {"first": first, "send": send, "second": second}


async def test_a_message_sent_by_one_app_and_handled_by_another_is_one_trace_in_memory() -> None:
    checkout, billing, paid = two_services(None, "orders", "payments")
    tracing, exporter = traced()
    with instrument(tracing):
        async with Tester([checkout, billing]) as tester:
            await tester.to_orders(Order(n=7))
            await asyncio.wait_for(paid.wait(), 10)
    spans = assert_one_trace(exporter, "orders", "payments")
    assert spans["first"].parent is None  # the Tester's own send carries no trace context
    assert spans["second"].attributes["server.address"] == "localhost"


@pytest.mark.broker
async def test_a_message_sent_by_one_app_and_handled_by_another_is_one_trace_on_the_broker(kafka_broker: str) -> None:
    orders, payments = unique_topic("orders"), unique_topic("payments")
    await create_topics(kafka_broker, orders, payments)
    host, port = kafka_broker.rsplit(":", 1)
    checkout, billing, paid = two_services({"localhost": {"url": host, "port": port}}, orders, payments)
    tracing, exporter = traced()
    with instrument(tracing):
        async with checkout, billing:
            producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)  # a plain client: no trace context
            await producer.start()
            try:
                await producer.send_and_wait(orders, b'{"n": 7}')
            finally:
                await producer.stop()
            await asyncio.wait_for(paid.wait(), 60)
    spans = assert_one_trace(exporter, orders, payments)
    second = spans["second"]
    assert (second.attributes["server.address"], second.attributes["server.port"]) == (host, int(port))
    assert second.attributes["messaging.consumer.group.name"] == billing.model.client_options["group_id"]


def test_importing_fastkafka_needs_neither_extra() -> None:
    probe = textwrap.dedent("""
        import sys
        sys.modules["prometheus_client"] = sys.modules["opentelemetry"] = None
        import fastkafka, fastkafka._cli
        from fastkafka import Metrics
        try:
            Metrics()
        except ModuleNotFoundError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    assert "pip install 'fastkafka[metrics]'" in out.stdout


# ------------------------------------------------------------------------------------------------ fastkafka run

APP = textwrap.dedent("""
    import os
    from pydantic import BaseModel
    from fastkafka import FastKafka, Retry

    class Item(BaseModel):
        n: int

    host, port = os.environ["BOOTSTRAP"].rsplit(":", 1)
    kafka_app = FastKafka(kafka_brokers={"test": {"url": host, "port": port}}, group_id=os.environ["GROUP"])

    @kafka_app.consumes(topic=os.environ["IN_TOPIC"], auto_offset_reset="earliest",
                        retry=Retry(attempts=3, delay=0.01), dead_letter_topic=True)
    async def on_item(item: Item) -> None:
        if item.n % 100 == 99:
            raise ValueError(f"item {item.n} cannot be handled")
        await to_out(item)

    @kafka_app.produces(topic=os.environ["OUT_TOPIC"])
    async def to_out(item: Item) -> Item:
        return item
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fastkafka_run(tmp_path: Path, kafka_broker: str):
    "Start `fastkafka run ... svc:kafka_app` in `tmp_path`; every command is cleaned up at the end."
    (tmp_path / "svc.py").write_text(APP)
    started: list[Command] = []

    async def start(*args: str, **env: str) -> Command:
        cmd = Command(fastkafka_cli("run", "--kafka-broker", "test", *args, "svc:kafka_app"), cwd=str(tmp_path),
                      env={"BOOTSTRAP": kafka_broker, **env})
        started.append(cmd)
        return await cmd.start()

    yield start
    for cmd in started:
        await cmd.cleanup()


async def until(client: httpx.AsyncClient, url: str, check: Callable[[httpx.Response], bool],
                timeout: float = 90, cmd: Command | None = None) -> httpx.Response:
    "GET `url` until `check(response)` holds; fails with the last answer after `timeout` seconds."
    loop, last = asyncio.get_running_loop(), None
    deadline = loop.time() + timeout
    while True:
        try:
            last = await client.get(url)
            if check(last):
                return last
        except httpx.TransportError as e:  # the server is not up yet
            last = e
        if loop.time() > deadline:
            body = last.text if isinstance(last, httpx.Response) else repr(last)
            raise AssertionError(f"{url} after {timeout} s: {body}\n{cmd.output() if cmd else ''}")
        await asyncio.sleep(0.05)


def scrape(text: str) -> dict[str, dict[tuple, float]]:
    "Samples by name, then by their labels (sorted pairs)."
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def total(samples: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


async def send_items(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        futures = [await producer.send(topic, f'{{"n": {i}}}'.encode(), key=str(i).encode()) for i in range(n)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.mark.broker
@pytest.mark.subprocess
async def test_metrics_of_two_workers_after_1000_messages(fastkafka_run, kafka_broker: str) -> None:
    src, out, group = unique_topic("items"), unique_topic("out"), unique_topic("g")
    await create_topics(kafka_broker, src, partitions=2)
    await create_topics(kafka_broker, out, f"{src}-dlt")
    metrics_port, health_port = free_port(), free_port()
    cmd = await fastkafka_run("--num-workers", "2", "--metrics-port", str(metrics_port), "--health-port",
                              str(health_port), IN_TOPIC=src, OUT_TOPIC=out, GROUP=group)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    async with httpx.AsyncClient(timeout=10) as client:
        # both workers joined (readiness): no rebalance comes between the messages and the counts
        await until(client, f"http://127.0.0.1:{health_port}/readyz", lambda r: r.status_code == 200, cmd=cmd)
        await send_items(kafka_broker, src, 1000)
        done = await until(client, url, lambda r: total(scrape(r.text), "fastkafka_messages_produced_total",
                                                        topic=out) == 990
                           and total(scrape(r.text), "fastkafka_messages_dead_lettered_total") == 10, cmd=cmd)
        samples = scrape(done.text)
        print(f"\n$ curl -s {url}  # after 1,000 messages, 2 workers\n"
              + "\n".join(line for line in done.text.splitlines() if line.startswith("fastkafka_")
                          and "_bucket" not in line))
        mine = {"topic": src, "consumer": "on_item", "group": group}
        assert total(samples, "fastkafka_messages_consumed_total", **mine) == 1000
        assert total(samples, "fastkafka_messages_failed_total", **mine, stage="handler") == 10
        assert total(samples, "fastkafka_messages_retried_total", **mine) == 20  # 10 messages, 2 retries each
        assert total(samples, "fastkafka_messages_dead_lettered_total", **mine) == 10
        assert total(samples, "fastkafka_handler_duration_seconds_count", **mine) == 1020
        assert total(samples, "fastkafka_messages_produced_total", topic=f"{src}-dlt") == 10
        assert total(samples, "fastkafka_messages_in_flight", **mine) == 0
        assert {dict(k)["partition"]: v for k, v in samples["fastkafka_consumer_lag"].items()} == {"0": 0, "1": 0}
        assert total(samples, "fastkafka_messages_produce_failed_total") == 0

        # a worker killed: its counts stay in the sums, and the restarted worker adds to them
        victim = sorted(cmd.worker_pids())[0]
        os.kill(victim, signal.SIGKILL)
        await cmd.out.wait_for(f"Worker {victim} was killed by signal SIGKILL")
        after = scrape((await client.get(url)).text)
        assert total(after, "fastkafka_messages_consumed_total", **mine) >= 1000
        assert total(after, "fastkafka_messages_dead_lettered_total", **mine) == 10
    cmd.send_signal(signal.SIGTERM)
    assert await cmd.wait(60) == 0, cmd.output()


class Blocker(ConsumerRebalanceListener):
    "A group member whose rebalance waits for `release`: new members cannot join the group meanwhile."

    def __init__(self) -> None:
        self.assigned, self.revoking, self.release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def on_partitions_revoked(self, revoked) -> None:
        if self.assigned.is_set():  # not the first join
            self.revoking.set()
            await self.release.wait()

    async def on_partitions_assigned(self, assigned) -> None:
        self.assigned.set()


def shown(response: httpx.Response, path: str, port: int) -> str:
    return f"$ curl -s -i http://127.0.0.1:{port}{path}\nHTTP/1.1 {response.status_code}\n{response.text}"


@pytest.mark.broker
@pytest.mark.subprocess
async def test_health_while_joining_up_and_after_a_worker_was_killed(fastkafka_run, kafka_broker: str) -> None:
    src, out, group = unique_topic("items"), unique_topic("out"), unique_topic("g")
    await create_topics(kafka_broker, src, partitions=2)
    blocker, listener = AIOKafkaConsumer(bootstrap_servers=kafka_broker, group_id=group,
                                         max_poll_interval_ms=120_000), Blocker()
    blocker.subscribe([src], listener=listener)
    await blocker.start()
    polling = asyncio.create_task(blocker.getmany(timeout_ms=120_000))
    port = free_port()
    try:
        await asyncio.wait_for(listener.assigned.wait(), 60)
        cmd = await fastkafka_run("--num-workers", "2", "--health-port", str(port), IN_TOPIC=src, OUT_TOPIC=out,
                                  GROUP=group)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as client:
            # the workers run, but their consumers cannot join while the blocker holds the rebalance
            await asyncio.wait_for(listener.revoking.wait(), 60)
            joining = await until(client, f"{base}/readyz", lambda r: r.status_code == 503 and len(
                r.json()["workers"]) == 2 and all(w["state"] == "running" for w in r.json()["workers"]), cmd=cmd)
            live = await client.get(f"{base}/livez")
            print("\n--- while the consumers are still joining their group\n" + shown(live, "/livez", port)
                  + shown(joining, "/readyz", port))
            assert live.status_code == 200, live.text
            states = [c["state"] for w in joining.json()["workers"] for a in w["apps"] for c in a["consumers"]]
            assert states == ["joining", "joining"], joining.text
            assert any(p.endswith(f"the consumer of {src!r} is joining") for p in joining.json()["problems"])

            listener.release.set()
            ready = await until(client, f"{base}/readyz", lambda r: r.status_code == 200, cmd=cmd)
            live = await client.get(f"{base}/livez")
            print("\n--- both workers up\n" + shown(live, "/livez", port) + shown(ready, "/readyz", port))
            assert live.status_code == 200
            states = {c["state"] for w in ready.json()["workers"] for a in w["apps"] for c in a["consumers"]}
            assert states <= {"assigned", "idle"}, ready.text  # 3 members, 2 partitions: one may be idle

            victim = sorted(w["pid"] for w in ready.json()["workers"])[0]
            os.kill(victim, signal.SIGKILL)
            dead = await until(client, f"{base}/livez", lambda r: r.status_code == 503, timeout=10, cmd=cmd)
            ready_now = await client.get(f"{base}/readyz")
            print("\n--- right after a worker was killed\n" + shown(dead, "/livez", port)
                  + shown(ready_now, "/readyz", port))
            assert dead.json()["problems"] == ["1 of 2 workers are running"], dead.text
            assert ready_now.status_code == 503

            back = await until(client, f"{base}/readyz", lambda r: r.status_code == 200 and victim not in {
                w["pid"] for w in r.json()["workers"]}, cmd=cmd)
            print("\n--- the killed worker replaced\n" + shown(back, "/readyz", port))
            assert (await client.get(f"{base}/livez")).status_code == 200
        cmd.send_signal(signal.SIGTERM)
        assert await cmd.wait(60) == 0, cmd.output()
    finally:
        listener.release.set()
        polling.cancel()
        await blocker.stop()


@pytest.mark.subprocess
async def test_a_taken_port_stops_fastkafka_run_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "svc.py").write_text("from fastkafka import FastKafka\nkafka_app = FastKafka()\n")
    with socket.create_server(("0.0.0.0", 0)) as taken:
        port = taken.getsockname()[1]
        cmd = await Command(fastkafka_cli("run", "--metrics-port", str(port), "svc:kafka_app"),
                            cwd=str(tmp_path)).start()
        try:
            assert await cmd.wait(60) == 2, cmd.output()
        finally:
            await cmd.cleanup()
    assert any(f"Cannot serve /metrics on 0.0.0.0:{port}" in line for line in cmd.err.lines + cmd.out.lines), \
        cmd.output()
    assert not cmd.worker_pids()
