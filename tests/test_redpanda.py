"""LocalRedpandaBroker without a docker engine fails at once, with a message saying what is missing."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastkafka._testing.local_redpanda_broker import LocalRedpandaBroker, check_docker


def _engine_running() -> bool:
    try:
        res = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


ENGINE = _engine_running()


async def test_start_without_docker_command(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    no_docker = re.escape("Docker installation not found! Please install docker manually and retry.")
    with pytest.raises(RuntimeError, match=no_docker):
        await check_docker()
    with pytest.raises(RuntimeError, match="Docker installation not found"):
        async with LocalRedpandaBroker():
            pass


async def test_redpanda_round_trip_or_fast_failure() -> None:
    """With a docker engine: a real round trip. Without one (as on the project's machines): a fast, clear failure."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    if not ENGINE:
        broker = LocalRedpandaBroker(topics=["x"])
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match=r"engine is not reachable|Docker installation not found"):
            await broker._start()
        assert time.monotonic() - t0 < 15
        assert not broker.is_started
        with pytest.raises(RuntimeError, match="not started yet"):
            await broker._stop()
        return
    async with LocalRedpandaBroker(topics=["rp"], listener_port=19092) as bootstrap:
        async with AIOKafkaProducer(bootstrap_servers=bootstrap) as p:
            await p.send_and_wait("rp", b"hello")
        c = AIOKafkaConsumer("rp", bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await c.start()
        try:
            assert (await c.getone()).value == b"hello"
        finally:
            await c.stop()


FAKE_DOCKER = """#!{python}
import sys
if sys.argv[1] == "version":
    print("24.0.0")
elif sys.argv[1] == "run":
    sys.stdout.write("x" * 1_000_000 + "\\n")  # more than a pipe holds: Redpanda's debug log at boot
    sys.stdout.write("fake redpanda gives up\\n")
    sys.exit(3)
"""


async def test_container_output_cannot_stall_the_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    "A container that prints a lot and exits is reported at once, with the end of its output."
    fake = tmp_path / "docker"
    fake.write_text(FAKE_DOCKER.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalRedpandaBroker(retries=0, listener_port=0)
    broker.startup_timeout = 30
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"exited with code 3:\n[\s\S]*fake redpanda gives up"):
        await broker._start()
    assert time.monotonic() - t0 < 15
    assert not broker.is_started


def test_get_service_config_string(tmp_path: Path) -> None:
    "0.8.0's `get_service_config_string(service, *, data_dir)`: the Redpanda configuration the broker runs with."
    import yaml

    broker = LocalRedpandaBroker(listener_port=19093, seastar_core=2, memory="512M")
    conf = yaml.safe_load(broker.get_service_config_string("redpanda", data_dir=tmp_path))
    assert conf["redpanda"]["data_directory"] == str(tmp_path)
    assert {"name": "external", "address": "127.0.0.1", "port": 19093} in conf["redpanda"]["advertised_kafka_api"]
    cmd = broker.get_docker_cmd()
    assert "external://127.0.0.1:19093" in cmd[cmd.index("--advertise-kafka-addr") + 1]
    assert {"--smp=2", "--memory=512M"} <= set(conf["rpk"]["additional_start_flags"])
    with pytest.raises(ValueError, match="Unknown service 'kafka'"):
        broker.get_service_config_string("kafka", data_dir=tmp_path)
