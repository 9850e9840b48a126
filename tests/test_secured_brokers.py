"""Apps, the Tester and `start_client` on secured brokers: SASL PLAIN, SASL SCRAM-SHA-512 and SASL_SSL.

Each kind of broker is an `ApacheKafkaBroker` started once for this module, on a free port. A round trip goes
Tester -> app's consumer -> app's producer -> Tester. The misconfigurations (a wrong password, an untrusted
certificate, a mechanism the broker does not offer) must each fail within seconds, with one error that names the
broker's address and what was rejected, and never shows the password.
"""
import asyncio
import logging
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from helpers import unique_topic
from pydantic import BaseModel

from fastkafka import FastKafka
from fastkafka._components.connect import KafkaConnectionRefused, start_client
from fastkafka.testing import ApacheKafkaBroker, Tester

pytestmark = pytest.mark.broker

PASSWORD = "s3cr3t-XYZ"  # every broker's password; the secret-grep test looks for it everywhere
KINDS = {  # kind -> (security_protocol, sasl_mechanism)
    "plain_broker": ("SASL_PLAINTEXT", "PLAIN"),
    "scram_broker": ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    "ssl_broker": ("SASL_SSL", "SCRAM-SHA-512"),
}
START_TIMES: dict[str, float] = {}


class _Records(logging.Handler):
    "Keeps every record (formatted, with its traceback) of the loggers it is attached to."

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def fastkafka_log() -> Iterator[_Records]:
    "Every fastkafka log line of this module, at DEBUG, from before the first broker starts."
    handler, logger = _Records(), logging.getLogger("fastkafka")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture(scope="module")
def brokers(fastkafka_log: _Records) -> Iterator[dict[str, ApacheKafkaBroker]]:
    "The three secured brokers, by kind (started here, before any test's event loop runs)."
    started: dict[str, ApacheKafkaBroker] = {}
    try:
        for name, (protocol, mechanism) in KINDS.items():
            broker = ApacheKafkaBroker(listener_port=0, security_protocol=protocol, sasl_mechanism=mechanism,
                                       username="alice", password=PASSWORD)
            t0 = time.monotonic()
            broker.start()
            START_TIMES[name] = time.monotonic() - t0
            started[name] = broker
        yield started
    finally:
        for broker in started.values():
            broker.stop()


class Item(BaseModel):
    n: int


def make_app(broker: ApacheKafkaBroker, *, where: str = "app", root_path: Path | None = None,
             **overrides: Any) -> FastKafka:
    "An app that consumes `src-*` and produces n+1 to `dst-*`, its security settings on the app or the decorators."
    src, dst = unique_topic("src"), unique_topic("dst")
    config = {**broker.client_config(), **overrides}
    app = FastKafka(title="Secured app", root_path=root_path,
                    kafka_brokers={"localhost": {"url": "127.0.0.1", "port": broker.listener_port}},
                    **(config if where == "app" else {}))
    on_decorators = config if where == "decorators" else {}

    @app.consumes(topic=src, **on_decorators)
    async def on_src(item: Item) -> None:
        await to_dst(Item(n=item.n + 1))

    @app.produces(topic=dst, **on_decorators)
    async def to_dst(item: Item) -> Item:
        return item

    app.test_topics = (src, dst)  # type: ignore[attr-defined]
    return app


def mirror(tester: Tester, prefix: str, topic: str) -> Any:
    "The Tester's `to_<topic>` sender or `on_<topic>` awaited mock."
    name = f"{prefix}_{re.sub(r'[^0-9a-zA-Z_]', '_', topic)}"
    return getattr(tester.awaited_mocks, name) if prefix == "on" else getattr(tester, name)


async def failure(aw: Any, seconds: float = 30) -> BaseException:
    "What awaiting `aw` raises (it must raise within `seconds`)."
    try:
        await asyncio.wait_for(aw, seconds)
    except BaseException as e:  # the caller checks what it is
        return e
    raise AssertionError("nothing was raised")


# --- the brokers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_secured_brokers_start_quickly(kind: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    broker = brokers[kind]
    assert broker.client_config()["security_protocol"] == KINDS[kind][0]
    print(f"{kind} started in {START_TIMES[kind]:.1f} s")
    assert START_TIMES[kind] < 60, START_TIMES


async def test_only_the_tls_broker_has_a_certificate(brokers: dict[str, ApacheKafkaBroker]) -> None:
    plain_broker, ssl_broker = brokers["plain_broker"], brokers["ssl_broker"]
    assert plain_broker.ca_file is None
    assert ssl_broker.ca_file is not None and ssl_broker.ca_file.is_file()
    assert isinstance(ssl_broker.client_config()["ssl_context"], ssl.SSLContext)
    with pytest.raises(RuntimeError, match="client listener is SASL_PLAINTEXT, not TLS"):
        plain_broker.ssl_context()


# --- apps and the Tester, configured right ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
async def test_tester_round_trip(kind: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    app = make_app(brokers[kind])
    src, dst = app.test_topics  # type: ignore[attr-defined]
    async with Tester(app, use_in_memory_broker=False) as tester:
        await mirror(tester, "to", src)(Item(n=1))
        await mirror(tester, "on", dst).assert_awaited_with(Item(n=2), timeout=30)
    app.mocks.on_src.assert_awaited_with(Item(n=1))


@pytest.mark.parametrize("kind", list(KINDS))
async def test_app_with_security_on_the_decorators(kind: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    "The settings given to `@consumes`/`@produces` (none on the app) connect the app; plain clients check it."
    broker = brokers[kind]
    app = make_app(broker, where="decorators")
    src, dst = app.test_topics  # type: ignore[attr-defined]
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_server, **broker.client_config())
    consumer = AIOKafkaConsumer(dst, bootstrap_servers=broker.bootstrap_server, auto_offset_reset="earliest",
                                **broker.client_config())
    async with app:
        await producer.start()
        try:
            await producer.send_and_wait(src, Item(n=41).model_dump_json().encode())
        finally:
            await producer.stop()
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
    assert Item.model_validate_json(record.value) == Item(n=42)


@pytest.mark.parametrize("kind", list(KINDS))
async def test_tester_with_security_on_the_decorators(kind: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    "The Tester's own clients connect with the security settings of the decorators they mirror."
    app = make_app(brokers[kind], where="decorators")
    src, dst = app.test_topics  # type: ignore[attr-defined]
    async with Tester(app, use_in_memory_broker=False) as tester:
        await mirror(tester, "to", src)(Item(n=5))
        await mirror(tester, "on", dst).assert_awaited_with(Item(n=6), timeout=30)


# --- misconfigurations -----------------------------------------------------------------------------------------

MISCONFIGURATIONS = {  # name -> (broker fixture, wrong settings, what is rejected, words the message must have)
    "wrong password": ("scram_broker", {"sasl_plain_password": PASSWORD + "-wrong"}, "credentials",
                       "rejected the credentials of user 'alice'"),
    "untrusted certificate": ("ssl_broker", {"ssl_context": ssl.create_default_context()}, "certificate",
                              "TLS certificate is not trusted"),
    "mechanism not offered": ("plain_broker", {"sasl_mechanism": "SCRAM-SHA-512"}, "mechanism",
                              "does not offer the SASL mechanism 'SCRAM-SHA-512'"),
}


def _misconfigured(case: str, brokers: dict[str, ApacheKafkaBroker]
                   ) -> tuple[ApacheKafkaBroker, dict[str, Any], str, str]:
    kind, wrong, rejected, words = MISCONFIGURATIONS[case]
    broker = brokers[kind]
    return broker, {**broker.client_config(), **wrong}, rejected, words


def _check_refusal(err: BaseException, server: str, rejected: str, words: str) -> None:
    assert isinstance(err, KafkaConnectionRefused), f"{type(err).__name__}: {err}"
    assert (err.server, err.rejected) == (server, rejected)
    assert f"Kafka at {server}: " in str(err) and words in str(err), str(err)
    assert PASSWORD not in str(err) and PASSWORD not in repr(err)


@pytest.mark.parametrize("kind", ["producer", "consumer", "admin"])
@pytest.mark.parametrize("case", list(MISCONFIGURATIONS))
async def test_start_client_explains_a_refusal(case: str, kind: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    broker, config, rejected, words = _misconfigured(case, brokers)
    cls = {"producer": AIOKafkaProducer, "consumer": AIOKafkaConsumer, "admin": AIOKafkaAdminClient}[kind]
    client = cls(bootstrap_servers=broker.bootstrap_server, **config)
    t0 = time.monotonic()
    err = await failure(start_client(client, what=kind, servers=broker.bootstrap_server, config=config))
    took = time.monotonic() - t0
    _check_refusal(err, broker.bootstrap_server, rejected, words)
    assert str(err).startswith(f"The {kind} could not connect to Kafka at {broker.bootstrap_server}: ")
    assert took < 5, took


@pytest.mark.parametrize("kind", list(KINDS))
async def test_start_client_starts_a_well_configured_client(kind: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    broker = brokers[kind]
    config = broker.client_config()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_server, **config)
    await start_client(producer, what="producer", servers=broker.bootstrap_server, config=config)
    try:
        metadata = await producer.send_and_wait(unique_topic("ok"), b"fine")
    finally:
        await producer.stop()
    assert metadata.offset == 0


@pytest.mark.parametrize("case", list(MISCONFIGURATIONS))
async def test_app_misconfiguration_fails_fast_and_clearly(case: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    broker, config, rejected, words = _misconfigured(case, brokers)
    app = make_app(broker, **config)

    async def run() -> None:
        async with app:
            pass

    t0 = time.monotonic()
    err = await failure(run())
    assert time.monotonic() - t0 < 10
    _check_refusal(err, broker.bootstrap_server, rejected, words)


@pytest.mark.parametrize("case", list(MISCONFIGURATIONS))
async def test_tester_misconfiguration_fails_fast_and_clearly(case: str, brokers: dict[str, ApacheKafkaBroker]) -> None:
    broker, config, rejected, words = _misconfigured(case, brokers)
    app = make_app(broker, **config)

    async def run() -> None:
        async with Tester(app, use_in_memory_broker=False):
            pass

    t0 = time.monotonic()
    err = await failure(run())
    assert time.monotonic() - t0 < 10
    _check_refusal(err, broker.bootstrap_server, rejected, words)


# --- the password stays secret ---------------------------------------------------------------------------------


def _chain(err: BaseException | None) -> list[BaseException]:
    out = []
    while err is not None and err not in out:
        out.append(err)
        err = err.__cause__ or err.__context__
    return out


async def test_password_appears_nowhere(brokers: dict[str, ApacheKafkaBroker], fastkafka_log: _Records,
                                        tmp_path: Path) -> None:
    "Logs (all of this module's, at DEBUG), errors, repr(app), the AsyncAPI spec and the HTML docs."
    import traceback

    plain_broker, ssl_broker = brokers["plain_broker"], brokers["ssl_broker"]

    texts: list[str] = []
    app = make_app(ssl_broker, root_path=tmp_path)
    src, dst = app.test_topics  # type: ignore[attr-defined]
    texts += [repr(app), repr(plain_broker), repr(ssl_broker.security)]
    async with Tester(app, use_in_memory_broker=False) as tester:
        await mirror(tester, "to", src)(Item(n=7))
        await mirror(tester, "on", dst).assert_awaited_with(Item(n=8), timeout=30)
    for case in MISCONFIGURATIONS:
        broker, config, _, _ = _misconfigured(case, brokers)
        bad = make_app(broker, **config)

        async def run(bad: FastKafka = bad) -> None:
            async with bad:
                pass

        err = await failure(run())
        texts += [t for e in _chain(err) for t in (str(e), repr(e))]
        texts.append("".join(traceback.format_exception(err)))
    await asyncio.to_thread(app.create_docs)
    files = [p for p in (tmp_path / "asyncapi").rglob("*") if p.is_file()]
    assert any(p.suffix in (".yml", ".yaml") for p in files) and any(p.name == "index.html" for p in files), files
    texts += [p.read_text(errors="replace") for p in files if p.suffix in (".yml", ".yaml", ".html", ".js", ".css")]
    texts += fastkafka_log.lines
    assert fastkafka_log.lines, "nothing was logged"
    leaks = [t for t in texts if PASSWORD in t]
    assert not leaks, leaks[:3]



async def test_tls_without_sasl() -> None:
    "security_protocol='SSL': TLS only, no login; a client that trusts the CA gets in, one that does not is refused."
    broker = ApacheKafkaBroker(listener_port=0, security_protocol="SSL")
    async with broker as bootstrap_server:
        config = broker.client_config()
        assert set(config) == {"security_protocol", "ssl_context"}
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_server, **config)
        await start_client(producer, what="producer", servers=bootstrap_server, config=config)
        try:
            assert (await producer.send_and_wait(unique_topic("tls"), b"x")).offset == 0
        finally:
            await producer.stop()
        untrusting = {**config, "ssl_context": ssl.create_default_context()}
        err = await failure(start_client(AIOKafkaProducer(bootstrap_servers=bootstrap_server, **untrusting),
                                         what="producer", servers=bootstrap_server, config=untrusting))
        _check_refusal(err, bootstrap_server, "certificate", "TLS certificate is not trusted")
