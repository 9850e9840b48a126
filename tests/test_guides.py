"""The how-to guides (nbs/guides/): their shape, and what their flagged cells show, run against the real broker
and as subprocesses (plain `nbdev_test` skips those cells; the rest of each guide runs there and in
tests/test_notebooks_in_kernel.py)."""
import json
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import yaml
from app_support import create_topics, read_records
from consumer_support import committed_offsets
from helpers import unique_topic
from pydantic import BaseModel, Field
from run_support import Command, fastkafka_cli
from test_run_cli import group_stable

from fastkafka import EventMetadata, FastKafka, KafkaEvent
from fastkafka.testing import Tester

GUIDES = sorted((Path(__file__).resolve().parents[1] / "nbs" / "guides").glob("*.ipynb"))
PUBLIC = {"fastkafka", "fastkafka.encoder", "fastkafka.executors", "fastkafka.testing"}


def entry(bootstrap: str, name: str = "local") -> dict:
    host, port = bootstrap.rsplit(":", 1)
    return {name: {"url": host, "port": int(port)}}


# ---------------------------------------------------------------------------------------------- the guides' shape


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _flags(source: str) -> set[str]:
    flags = set()
    for line in source.splitlines():
        if not line.startswith("#|"):
            break
        flags.add(line[2:].strip())
    return flags


def test_there_are_guides_numbered_in_reading_order() -> None:
    names = [p.name for p in GUIDES]
    assert len(names) >= 15, names
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(1, len(names) + 1)], names
    assert not [n for n in names if n.startswith("_")]


@pytest.mark.parametrize("path", GUIDES, ids=[p.name for p in GUIDES])
def test_guide_is_a_page_that_exports_nothing_and_uses_the_public_api(path: Path) -> None:
    cells = _cells(path)
    first_md = next(_source(c) for c in cells if c["cell_type"] == "markdown")
    assert first_md.startswith("# ") and "\n> " in first_md, "an H1 title and a one-line '>' summary first"
    code = [_source(c) for c in cells if c["cell_type"] == "code"]
    for src in code:
        assert not {"default_exp", "export", "exports", "exporti"} & {f.split()[0] for f in _flags(src) if f}, src
        for module in re.findall(r"^\s*(?:from|import)\s+(fastkafka[\w.]*)", src, re.M):
            assert module in PUBLIC, f"{path.name} imports {module}; guides use only {sorted(PUBLIC)}"
    needs_flag = re.compile(
        r"ApacheKafkaBroker\(|create_subprocess_exec|subprocess\.run\(|\.create_docs\(|use_in_memory_broker=False")
    for src in code:
        if needs_flag.search(src):
            assert _flags(src) & {"broker", "subprocess"}, f"{path.name}: this cell needs a flag:\n{src[:300]}"
    assert any("assert" in src or "test_eq" in src for src in code), "a guide is also a test"


# ---------------------------------------------------------------- 09: forwarding between two real clusters


class Sale(BaseModel):
    shop: str
    cents: int


@pytest.mark.broker
async def test_guide_09_forwarding_between_two_real_clusters(kafka_broker: str, second_kafka_broker: str) -> None:
    topic = unique_topic("sales")
    await create_topics(kafka_broker, topic)
    await create_topics(second_kafka_broker, topic)
    app = FastKafka(kafka_brokers=entry(kafka_broker))

    @app.consumes(topic=topic)
    async def on_sales(sale: Sale) -> None:
        if sale.cents > 0:
            await to_sales(sale)

    @app.produces(topic=topic, brokers=entry(second_kafka_broker))
    async def to_sales(sale: Sale) -> Sale:
        return sale

    async with Tester(app, use_in_memory_broker=False) as tester:
        name = topic.replace("-", "_")
        await getattr(tester, f"to_{name}")(Sale(shop="paris", cents=0))
        await getattr(tester, f"to_{name}")(Sale(shop="oslo", cents=42))
        await getattr(tester, f"on_{name}").assert_awaited_with(Sale(shop="oslo", cents=42), timeout=30)
        await app.awaited_mocks.on_sales.assert_awaited_with(Sale(shop="oslo", cents=42), timeout=30)
    assert getattr(tester.mocks, f"on_{name}").call_args_list == [((Sale(shop="oslo", cents=42),),)]


# ------------------------------------------------------------- 10: FastAPI's lifespan runs the app on a real broker


class Signup(BaseModel):
    email: str
    plan: str = "free"


@pytest.mark.broker
async def test_guide_10_an_endpoint_sends_through_fastapi_lifespan_on_a_real_broker(kafka_broker: str) -> None:
    from fastapi import FastAPI

    topic = unique_topic("signups")
    await create_topics(kafka_broker, topic)
    kafka_app = FastKafka(kafka_brokers=entry(kafka_broker, "localhost"))

    @kafka_app.produces(topic=topic)
    async def to_signups(signup: Signup) -> Signup:
        return signup

    web_app = FastAPI(lifespan=kafka_app.fastapi_lifespan("localhost"))

    @web_app.post("/signup")
    async def signup(signup: Signup) -> dict:
        await to_signups(signup)
        return {"status": "queued", "email": signup.email}

    async with web_app.router.lifespan_context(web_app):
        assert kafka_app.is_started
        transport = httpx.ASGITransport(app=web_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            response = await client.post("/signup", json={"email": "ada@example.com"})
        assert response.status_code == 200 and response.json() == {"status": "queued", "email": "ada@example.com"}
    assert not kafka_app.is_started
    (record,) = await read_records(kafka_broker, topic, 1)
    assert Signup.model_validate_json(record.value) == Signup(email="ada@example.com")


# ------------------------------------------------------------------------ 11: the Tester on a real broker


class Request(BaseModel):
    user: str
    amount: int


class Decision(BaseModel):
    user: str
    approved: bool


def loan_app(bootstrap: str, topic: str, out: str) -> FastKafka:
    app = FastKafka(kafka_brokers=entry(bootstrap, "localhost"))

    @app.consumes(topic=topic)
    async def on_requests(request: Request) -> None:
        await to_decisions(Decision(user=request.user, approved=request.amount <= 1000))

    @app.produces(topic=out)
    async def to_decisions(decision: Decision) -> Decision:
        return decision

    return app


@pytest.mark.broker
async def test_guide_11_the_same_test_on_a_real_broker_and_in_memory(kafka_broker: str) -> None:
    topic, out = f"loan.{unique_topic('requests')}", unique_topic("decisions")
    app = loan_app(kafka_broker, topic, out)
    sender, observer = f"to_{re.sub(r'[^0-9a-zA-Z_]', '_', topic)}", f"on_{out.replace('-', '_')}"
    async with Tester(app, use_in_memory_broker=False) as tester:
        await getattr(tester, sender)(Request(user="ada", amount=500))
        await getattr(tester, observer).assert_awaited_with(Decision(user="ada", approved=True), timeout=30)
    app.mocks.on_requests.assert_awaited_once_with(Request(user="ada", amount=500))

    tester = Tester(app)
    async with tester.using_external_broker(bootstrap_servers_id="localhost"):
        assert not tester.use_in_memory_broker
        await getattr(tester, sender)(Request(user="bob", amount=5000))
        await getattr(tester, observer).assert_awaited_with(Decision(user="bob", approved=False), timeout=30)
    async with tester.using_inmemory_broker():
        await getattr(tester, sender)(Request(user="cy", amount=1))
        await getattr(tester, observer).assert_awaited_with(Decision(user="cy", approved=True), timeout=5)
    assert tester.use_in_memory_broker


# ---------------------------------------------------------------- 12: `fastkafka run` with two workers


SERVICE = textwrap.dedent(
    """
    import os
    from pydantic import BaseModel
    from fastkafka import EventMetadata, FastKafka

    class Order(BaseModel):
        n: int

    host, port = os.environ["KAFKA_ADDRESS"].rsplit(":", 1)
    kafka_app = FastKafka(kafka_brokers={"local": {"url": host, "port": int(port)}}, group_id=os.environ["GROUP"])

    @kafka_app.consumes(topic=os.environ["TOPIC"])
    async def on_orders(order: Order, meta: EventMetadata) -> None:
        print(f"handled order {order.n} from partition {meta.partition}")
    """
)
HANDLED = re.compile(r"^\[(\d+)\]: handled order (\d+) from partition (\d+)$")


class Order(BaseModel):
    n: int


@pytest.mark.broker
@pytest.mark.subprocess
async def test_guide_12_two_workers_share_the_partitions_and_stop_cleanly(kafka_broker: str, tmp_path: Path) -> None:
    topic, group, n = unique_topic("orders"), unique_topic("billing"), 20
    await create_topics(kafka_broker, topic, partitions=2)
    (tmp_path / "orders_service.py").write_text(SERVICE)
    cmd = Command(fastkafka_cli("run", "--num-workers", "2", "--kafka-broker", "local", "orders_service:kafka_app"),
                  cwd=str(tmp_path), env={"KAFKA_ADDRESS": kafka_broker, "GROUP": group, "TOPIC": topic})
    await cmd.start()
    try:
        await cmd.out.wait_for("is running", count=2)
        await group_stable(kafka_broker, group, 2)
        client = FastKafka(kafka_brokers=entry(kafka_broker))

        @client.produces(topic=topic)
        async def to_orders(order: Order) -> KafkaEvent[Order]:
            return KafkaEvent(order, key=str(order.n).encode())

        async with client:
            for i in range(n):
                await to_orders(Order(n=i))
        await cmd.out.wait_for("handled order", count=n)
        cmd.send_signal(signal.SIGTERM)
        assert await cmd.wait(60) == 0, cmd.output()
    finally:
        await cmd.cleanup()
    handled = [tuple(map(int, m.groups())) for line in cmd.out.lines if (m := HANDLED.match(line))]
    assert sorted(order for _, order, _ in handled) == list(range(n)), cmd.output()  # each exactly once
    pids_per_partition = {p: {pid for pid, _, q in handled if q == p} for p in range(2)}
    assert all(len(pids) == 1 for pids in pids_per_partition.values()), pids_per_partition
    assert len({pid for pid, _, _ in handled}) == 2, "both workers should have had a partition"
    counts = {p: sum(1 for _, _, q in handled if q == p) for p in range(2)}
    assert await committed_offsets(kafka_broker, group, topic, 2) == counts  # a graceful stop committed all


# ------------------------------------------------------------------------------------ 14: the AsyncAPI docs


class Shipment(BaseModel):
    order_id: int = Field(..., examples=[1001], description="The order shipped")
    carrier: str = Field(..., examples=["DHL"], description="Who carries it")


@pytest.mark.subprocess
def test_guide_14_create_docs_writes_a_valid_spec_and_a_page(tmp_path: Path) -> None:
    site = tmp_path / "site"
    app = FastKafka(title="Shipping", version="1.2.0", root_path=site,
                    kafka_brokers={"localhost": {"url": "localhost", "port": 9092}})

    @app.consumes(topic="orders.paid", description="Orders that were paid and can be shipped")
    async def on_paid_orders(shipment: Shipment, meta: EventMetadata) -> None: ...

    @app.produces()
    async def to_shipments(shipment: Shipment) -> Shipment:
        "A shipment was booked for an order."
        return shipment

    assert not site.exists(), "FastKafka(...) must not create root_path (guide 15)"
    app.create_docs()
    spec = yaml.safe_load((site / "asyncapi" / "spec" / "asyncapi.yml").read_text())
    assert spec["asyncapi"] == "3.1.0" and spec["info"]["title"] == "Shipping"
    assert sorted(spec["channels"]) == ["orders.paid", "shipments"]
    assert {k: v["action"] for k, v in spec["operations"].items()} == {"on_paid_orders": "receive",
                                                                        "to_shipments": "send"}
    assert spec["operations"]["on_paid_orders"]["description"] == "Orders that were paid and can be shipped"
    assert spec["operations"]["to_shipments"]["description"] == "A shipment was booked for an order."
    assert "<html" in (site / "asyncapi" / "docs" / "index.html").read_text().lower()


SHIPPING = textwrap.dedent(
    """
    from pydantic import BaseModel
    from fastkafka import FastKafka

    class Shipment(BaseModel):
        order_id: int
        carrier: str

    kafka_app = FastKafka(title="Shipping", version="1.2.0")

    @kafka_app.produces()
    async def to_shipments(shipment: Shipment) -> Shipment:
        return shipment
    """
)


@pytest.mark.subprocess
async def test_guide_14_docs_generate_and_serve(tmp_path: Path) -> None:
    (tmp_path / "shipping.py").write_text(SHIPPING)
    generate = Command(fastkafka_cli("docs", "generate", "shipping:kafka_app"), cwd=str(tmp_path))
    await generate.start()
    try:
        assert await generate.wait(120) == 0, generate.output()
    finally:
        await generate.cleanup()
    assert (tmp_path / "asyncapi" / "spec" / "asyncapi.yml").exists()
    assert (tmp_path / "asyncapi" / "docs" / "index.html").exists()

    serve = Command(fastkafka_cli("docs", "serve", "--port", "0", "shipping:kafka_app"), cwd=str(tmp_path))
    await serve.start()
    try:
        (line,) = await serve.out.wait_for("Serving documentation on ", timeout=120)
        url = line.split("Serving documentation on ")[1].split()[0]
        async with httpx.AsyncClient() as client:
            page = await client.get(url + "/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        serve.send_signal(signal.SIGTERM)
        assert await serve.wait(30) == 0, serve.output()
    finally:
        await serve.cleanup()


# ------------------------------------------------------------- 15: importing configures nothing, JSON needs no fastavro


@pytest.mark.subprocess
def test_guide_15_importing_adds_no_log_handler_and_json_needs_no_fastavro() -> None:
    check = textwrap.dedent(
        """
        import logging, sys
        root_handlers = list(logging.getLogger().handlers)
        import fastkafka, fastkafka.encoder, fastkafka.executors, fastkafka.testing
        from pydantic import BaseModel
        class Msg(BaseModel):
            text: str
        assert fastkafka.encoder.json_decoder(fastkafka.encoder.json_encoder(Msg(text="x")), Msg) == Msg(text="x")
        print(logging.getLogger().handlers == root_handlers, logging.getLogger("fastkafka").handlers,
              "fastavro" in sys.modules)
        """
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "[]", "False"], result.stdout + result.stderr


def test_guides_exist_for_every_topic_of_the_brief() -> None:
    titles = [next(_source(c) for c in _cells(p) if c["cell_type"] == "markdown").splitlines()[0] for p in GUIDES]
    for word in ["First steps", "Consuming", "Batch consuming", "Producing", "Batch producing", "Encoding",
                 "Lifespan", "Benchmarking", "clusters", "FastAPI", "Tester", "Running", "Delivery", "AsyncAPI",
                 "Differences from FastKafka 0.8.0"]:
        assert any(word in t for t in titles), (word, titles)



def test_the_flag_check_reads_the_directives_at_the_top_of_a_cell() -> None:
    cell = "#| broker\n#| subprocess\nasync with ApacheKafkaBroker() as b:\n    pass"
    assert _flags(cell) == {"broker", "subprocess"}
    assert _flags("async with ApacheKafkaBroker() as b:\n    pass  #| broker") == set()
