"""The real Kafka broker from fastkafka.testing: it works, it cleans up, and misuse is reported clearly."""
import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from helpers import unique_topic

import fastkafka._testing.apache_kafka_broker as akb
from fastkafka._testing.apache_kafka_broker import KafkaDependencyError, port_is_free
from fastkafka.testing import ApacheKafkaBroker

pytestmark = pytest.mark.broker


async def _roundtrip(bootstrap_server: str, topic: str, payload: bytes) -> bytes | None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_server)
    await producer.start()
    try:
        await producer.send_and_wait(topic, payload)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_server, auto_offset_reset="earliest")
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    return msg.value


async def test_produce_and_consume(kafka_broker: str, topic: str) -> None:
    assert kafka_broker.startswith("127.0.0.1:")
    assert await _roundtrip(kafka_broker, topic, b"hello kafka") == b"hello kafka"


async def test_consumer_group_with_short_session_timeout(kafka_broker: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"grouped")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_broker, group_id=unique_topic("g"), auto_offset_reset="earliest",
        session_timeout_ms=1000, heartbeat_interval_ms=300,
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=30)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert msg.value == b"grouped"


def test_unique_topic_names() -> None:
    names = {unique_topic("x") for _ in range(100)}
    assert len(names) == 100 and all(n.startswith("x-") for n in names)


async def test_topics_created_at_start_and_nothing_left_after_stop() -> None:
    topics = [unique_topic("created"), unique_topic("created")]
    broker = ApacheKafkaBroker(topics=topics, listener_port=19392)
    async with broker as bootstrap_server:
        assert broker.is_started
        pid, workdir = broker._node.proc.pid, broker._node.workdir
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_server)
        await admin.start()
        try:
            existing = await admin.list_topics()
        finally:
            await admin.close()
        assert set(topics) <= set(existing)
        assert workdir.exists()
        os.kill(pid, 0)  # alive
    assert not broker.is_started
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not workdir.exists()
    await broker._stop()  # stopping again does nothing


def test_busy_port_gives_another_port_and_sync_api() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        broker = ApacheKafkaBroker(listener_port=taken)
        bootstrap_server = broker.start()
        try:
            port = int(bootstrap_server.rsplit(":", 1)[1])
            assert port != taken and broker.listener_port == port
            assert bootstrap_server == broker.bootstrap_server
            with pytest.raises(RuntimeError, match="ApacheKafkaBroker is already started"):
                broker.start()
            assert asyncio.run(_roundtrip(bootstrap_server, unique_topic(), b"sync")) == b"sync"
        finally:
            broker.stop()
        broker.stop()
        assert port_is_free(port)


def test_port_taken_after_the_check_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    "A port grabbed between the free-port check and Kafka's bind (here the controller's) fails that attempt only."
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        broker = ApacheKafkaBroker(retries=1)
        real_ports = broker._ports
        monkeypatch.setattr(
            broker, "_ports", lambda attempt: (real_ports(1)[0], taken) if attempt == 0 else real_ports(attempt)
        )
        bootstrap_server = broker.start()
        try:
            assert broker.controller_port != taken
            assert bootstrap_server == broker.bootstrap_server == f"127.0.0.1:{broker.listener_port}"
        finally:
            broker.stop()


def test_misuse_errors(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_started = r"ApacheKafkaBroker not started yet, please call ApacheKafkaBroker\.start\(\) before!"
    with pytest.raises(RuntimeError, match=not_started):
        ApacheKafkaBroker().stop()
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(KafkaDependencyError, match="run `fastkafka testing install_deps`"):
        ApacheKafkaBroker().start()


async def test_sync_start_inside_running_loop_is_refused() -> None:
    running = r"ApacheKafkaBroker\.start\(\): \(.*\) is already running! Use 'apply_nest_asyncio=True' when creating"
    with pytest.raises(RuntimeError, match=running):
        ApacheKafkaBroker().start()


def test_two_brokers_at_once(kafka_broker: str, second_kafka_broker: str) -> None:
    assert kafka_broker != second_kafka_broker
    topic = unique_topic()
    assert asyncio.run(_roundtrip(second_kafka_broker, topic, b"second")) == b"second"


def test_failed_start_reports_the_log_and_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    real_props = akb.kafka_server_properties
    nodes: list[akb._KafkaNode] = []

    class RecordedNode(akb._KafkaNode):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            nodes.append(self)

    def broken_props(**kw):
        return {**real_props(**kw), "num.io.threads": "not-a-number"}

    monkeypatch.setattr(akb, "kafka_server_properties", broken_props)
    monkeypatch.setattr(akb, "_KafkaNode", RecordedNode)
    broker = ApacheKafkaBroker()
    cause = r"(?s)exit code 1.*Invalid value not-a-number for configuration num\.io\.threads"
    with pytest.raises(akb.KafkaStartError, match=cause):
        broker.start()
    assert not broker.is_started
    assert len(nodes) == 1 and not nodes[0].workdir.exists()
    assert nodes[0].proc is None and nodes[0] not in akb._live_nodes
    with pytest.raises(RuntimeError, match="not started yet"):
        broker.stop()


@pytest.mark.subprocess
def test_jvm_does_not_outlive_python() -> None:
    "A script that starts a broker and exits without stopping it leaves no JVM and no files behind."
    script = (
        "from fastkafka.testing import ApacheKafkaBroker\n"
        "b = ApacheKafkaBroker(listener_port=19492)\n"
        "b.start()\n"
        "print(b._node.proc.pid, b._node.workdir, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    pid, workdir = out.stdout.split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert not Path(workdir).exists()


def test_stop_while_formatting_leaves_no_files(monkeypatch: pytest.MonkeyPatch) -> None:
    "A start cancelled while the storage is formatted (in a worker thread) leaves no folder behind."
    import threading

    nodes: list[akb._KafkaNode] = []
    formatting, go_on = threading.Event(), threading.Event()

    class RecordedNode(akb._KafkaNode):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            nodes.append(self)

    formatter: list[threading.Thread] = []
    launched: list[BaseException | None] = []

    def slow_format(java, libs, workdir, props, extra=(), args=()):  # it writes after `terminate` deleted all
        formatter.append(threading.current_thread())
        formatting.set()
        go_on.wait(60)
        (workdir / "data").mkdir(parents=True)
        return workdir / "server.properties"

    class RecordedLaunch(RecordedNode):
        def launch(self):
            try:
                super().launch()
            except BaseException as e:
                launched.append(e)
                raise
            launched.append(None)

    monkeypatch.setattr(akb, "_KafkaNode", RecordedLaunch)
    monkeypatch.setattr(akb, "_format_storage", slow_format)

    async def main() -> None:
        start = asyncio.ensure_future(ApacheKafkaBroker()._start())
        assert await asyncio.to_thread(formatting.wait, 60)
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(start, 10)  # at once: the start does not wait for the formatter
        assert not nodes[0].workdir.exists()  # deleted by the cancelled start
        go_on.set()

    asyncio.run(main())
    formatter[0].join(60)  # the abandoned worker thread ends once its loop has (after finishing the format)
    assert not formatter[0].is_alive()
    assert len(launched) == 1 and isinstance(launched[0], akb.KafkaStartError), launched
    assert "stopped while it was starting" in str(launched[0])
    assert len(nodes) == 1 and not nodes[0].workdir.exists() and nodes[0].proc is None
