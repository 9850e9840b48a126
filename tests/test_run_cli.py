"""`fastkafka run` and `run_fastkafka_server_process` end to end: subprocesses against the real broker, and the
command-line error paths (fast, no broker)."""
import asyncio
import os
import re
import signal
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupCoordinatorNotAvailableError
from helpers import unique_topic
from run_support import Command, fastkafka_cli, process_exits
from typer.testing import CliRunner

from fastkafka._cli import app as cli_app
from fastkafka._server import worker_app

# One app file for every end-to-end test, configured through the environment of `fastkafka run`.
APP = textwrap.dedent(
    """
    import asyncio, os
    from contextlib import asynccontextmanager
    from pydantic import BaseModel
    from fastkafka import FastKafka
    from fastkafka._components.events import EventMetadata

    class Item(BaseModel):
        n: int

    @asynccontextmanager
    async def lifespan(app):
        if os.environ.get("CRASH_AT_STARTUP"):
            raise RuntimeError("boom at startup: the database is unreachable")
        yield

    host, port = os.environ["BOOTSTRAP"].rsplit(":", 1)
    group = {"group_id": os.environ["GROUP"]} if os.environ.get("GROUP") else {}
    kafka_app = FastKafka(kafka_brokers={"test": {"url": host, "port": port}}, lifespan=lifespan, **group)

    if os.environ.get("DIE_ONCE_MARKER") and not os.path.exists(os.environ["DIE_ONCE_MARKER"]):
        @kafka_app.run_in_background()
        async def dies() -> None:
            open(os.environ["DIE_ONCE_MARKER"], "w").close()
            raise RuntimeError("the background task died")

    @kafka_app.consumes(topic=os.environ["IN_TOPIC"], auto_offset_reset="earliest")
    async def on_item(msg: Item, meta: EventMetadata) -> None:
        await asyncio.sleep(float(os.environ.get("DELAY", "0")))
        print(f"processed n={msg.n} p={meta.partition} o={meta.offset}")
    """
)
PROCESSED = re.compile(r"^\[(\d+)\]: processed n=(\d+) p=(\d+) o=(\d+)$")


def processed(cmd: Command) -> list[tuple[int, int, int, int]]:
    "(worker pid, n, partition, offset) of every message the app printed as processed."
    return [tuple(map(int, m.groups())) for line in cmd.out.lines if (m := PROCESSED.match(line))]  # type: ignore[misc]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "svc.py").write_text(APP)
    return tmp_path


@pytest.fixture
async def run_app(app_dir: Path, kafka_broker: str):
    "Start `fastkafka run ... svc:kafka_app` with extra environment; every command is cleaned up at the end."
    started: list[Command] = []

    async def start(*args: str, **env: str) -> Command:
        cmd = Command(fastkafka_cli("run", "--kafka-broker", "test", *args, "svc:kafka_app"), cwd=str(app_dir),
                      env={"BOOTSTRAP": kafka_broker, **env})
        started.append(cmd)
        return await cmd.start()

    yield start
    for cmd in started:
        await cmd.cleanup()


async def create_topic(bootstrap: str, partitions: int) -> str:
    name = unique_topic("run")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def send(bootstrap: str, topic: str, ns: range) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        batch = [await producer.send(topic, f'{{"n": {n}}}'.encode(), key=str(n).encode()) for n in ns]
        await asyncio.gather(*batch)
    finally:
        await producer.stop()


async def group_stable(bootstrap: str, group: str, members: int, timeout: float = 90) -> None:
    "Wait until `group` is Stable with `members` members (Kafka has no notification for this, so ask it)."
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async def stable() -> None:
            while True:
                try:
                    (described,) = (await admin.describe_consumer_groups([group]))[0].groups
                    if described[2] == "Stable" and len(described[5]) == members:
                        return
                except GroupCoordinatorNotAvailableError:
                    pass  # a fresh broker creates its offsets topic on first use
                await asyncio.sleep(0.2)

        await asyncio.wait_for(stable(), timeout)
    finally:
        await admin.close()


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    "The group's committed offset of each partition (0 when none)."
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: (await consumer.committed(TopicPartition(topic, p))) or 0 for p in range(partitions)}
    finally:
        await consumer.stop()


def all_processed(cmd: Command, n: int):
    return lambda lines: {m[1] for m in processed(cmd)} >= set(range(n))


def librdkafka_installed() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


# the app's default transport (aiokafka), and `fastkafka run --transport librdkafka`
TRANSPORT_ARGS = pytest.mark.parametrize("transport", [
    pytest.param((), id="aiokafka"),
    pytest.param(("--transport", "librdkafka"), id="librdkafka", marks=pytest.mark.skipif(
        not librdkafka_installed(), reason="the librdkafka transport needs fastkafka[librdkafka]")),
])


@pytest.mark.broker
@pytest.mark.subprocess
@TRANSPORT_ARGS
async def test_two_workers_share_a_group_and_process_each_message_once(run_app, kafka_broker, transport):
    topic, group, n = await create_topic(kafka_broker, 2), unique_topic("g"), 200
    cmd = await run_app("--num-workers", "2", *transport, IN_TOPIC=topic, GROUP=group)
    await cmd.out.wait_for("is running", count=2)
    assert not cmd.out.having("every worker will receive every message")
    await group_stable(kafka_broker, group, 2)
    await send(kafka_broker, topic, range(n))
    await cmd.out.wait_until(all_processed(cmd, n))
    cmd.send_signal(signal.SIGTERM)
    assert await cmd.wait(60) == 0, cmd.output()
    counts = Counter(m[1] for m in processed(cmd))
    assert counts == Counter(range(n)), {k: v for k, v in counts.items() if v != 1}
    assert len({m[0] for m in processed(cmd)}) == 2, "both workers should have had a partition"
    assert await committed(kafka_broker, group, topic, 2) == {
        p: max(o for *_, q, o in processed(cmd) if q == p) + 1 for p in range(2)}


@pytest.mark.broker
@pytest.mark.subprocess
@TRANSPORT_ARGS
async def test_sigterm_mid_stream_commits_and_a_restart_reprocesses_nothing(run_app, kafka_broker, transport):
    topic, group, n = await create_topic(kafka_broker, 2), unique_topic("g"), 300
    env = dict(IN_TOPIC=topic, GROUP=group, DELAY="0.02")
    first = await run_app("--num-workers", "2", *transport, **env)
    await first.out.wait_for("is running", count=2)
    await group_stable(kafka_broker, group, 2)
    await send(kafka_broker, topic, range(n))
    await first.out.wait_until(lambda lines: len(processed(first)) >= 40)
    first.send_signal(signal.SIGTERM)
    assert await first.wait(60) == 0, first.output()
    done_first = {(p, o) for _, _, p, o in processed(first)}
    assert len(done_first) < n, "stop came too late to be mid-stream"
    offsets = await committed(kafka_broker, group, topic, 2)
    # every message the first run processed is committed, and nothing beyond them
    assert done_first == {(p, o) for p in range(2) for o in range(offsets[p])}

    second = await run_app("--num-workers", "2", *transport, **env)
    await second.out.wait_until(lambda lines: {m[1] for m in processed(first) + processed(second)} >= set(range(n)))
    second.send_signal(signal.SIGTERM)
    assert await second.wait(60) == 0, second.output()
    again = {(p, o) for _, _, p, o in processed(second)} & done_first
    assert not again, f"reprocessed after a clean stop: {sorted(again)[:10]}"


@pytest.mark.broker
@pytest.mark.subprocess
async def test_worker_killed_with_sigkill_is_restarted_and_nothing_is_lost(run_app, kafka_broker):
    topic, group, n = await create_topic(kafka_broker, 2), unique_topic("g"), 200
    cmd = await run_app("--num-workers", "2", IN_TOPIC=topic, GROUP=group, DELAY="0.01")
    await cmd.out.wait_for("is running", count=2)
    await group_stable(kafka_broker, group, 2)
    await send(kafka_broker, topic, range(n // 2))
    await cmd.out.wait_until(lambda lines: len({m[0] for m in processed(cmd)}) == 2)
    victim = processed(cmd)[0][0]
    os.kill(victim, signal.SIGKILL)
    report = (await cmd.out.wait_for(f"Worker {victim} was killed by signal SIGKILL"))[0]
    assert "restarting it in" in report
    await cmd.out.wait_for("Started worker", count=3)
    await send(kafka_broker, topic, range(n // 2, n))
    await cmd.out.wait_until(all_processed(cmd, n), timeout=120)
    assert {m[0] for m in processed(cmd)} - {victim}, "the other workers kept processing"
    cmd.send_signal(signal.SIGTERM)
    assert await cmd.wait(60) == 0, cmd.output()


@pytest.mark.broker
@pytest.mark.subprocess
async def test_worker_whose_app_loses_a_task_exits_and_is_restarted(run_app, kafka_broker, tmp_path):
    topic = await create_topic(kafka_broker, 1)
    cmd = await run_app(IN_TOPIC=topic, GROUP=unique_topic("g"), DIE_ONCE_MARKER=str(tmp_path / "died"))
    report = (await cmd.out.wait_for("exited with code 1 after running for"))[0]
    assert "restarting it in 0.5 s" in report
    assert cmd.out.having("RuntimeError: A background task failed while the app was running"), cmd.output()
    await cmd.out.wait_for("is running", count=2)  # the restarted worker
    await send(kafka_broker, topic, range(3))
    await cmd.out.wait_until(lambda lines: len(processed(cmd)) == 3)
    cmd.send_signal(signal.SIGTERM)
    assert await cmd.wait(60) == 0, cmd.output()


@pytest.mark.broker
@pytest.mark.subprocess
async def test_app_crashing_at_startup_makes_run_exit_nonzero_in_bounded_time(run_app, kafka_broker):
    topic = await create_topic(kafka_broker, 1)
    cmd = await run_app("--num-workers", "2", IN_TOPIC=topic, GROUP=unique_topic("g"), CRASH_AT_STARTUP="1")
    assert await cmd.wait(60) == 1, cmd.output()
    gave_up = cmd.out.having("times in a row; giving up")
    assert gave_up, cmd.output()
    assert cmd.out.having("RuntimeError: boom at startup: the database is unreachable")
    assert cmd.err.having("RuntimeError: boom at startup"), "the workers' stderr is forwarded"
    assert all(re.match(r"^\[\d+\]: ", line) for line in cmd.err.lines), cmd.err.lines


@pytest.mark.broker
@pytest.mark.subprocess
async def test_several_workers_without_group_id_get_a_warning(run_app, kafka_broker):
    topic = await create_topic(kafka_broker, 1)
    cmd = await run_app("--num-workers", "2", IN_TOPIC=topic)
    await cmd.out.wait_for("is running", count=2)
    assert cmd.out.having("every worker will receive every message"), cmd.output()
    await send(kafka_broker, topic, range(3))
    await cmd.out.wait_until(lambda lines: len(processed(cmd)) == 6)  # both workers got all three
    cmd.send_signal(signal.SIGINT)
    assert await cmd.wait(60) == 0, cmd.output()


@pytest.mark.broker
@pytest.mark.subprocess
async def test_workers_stop_when_the_supervisor_is_killed(run_app, kafka_broker):
    topic = await create_topic(kafka_broker, 1)
    cmd = await run_app("--num-workers", "2", IN_TOPIC=topic, GROUP=unique_topic("g"))
    await cmd.out.wait_for("is running", count=2)
    workers = cmd.worker_pids()
    assert len(workers) == 2
    cmd.send_signal(signal.SIGKILL)
    await cmd.wait(30)
    for pid in workers:
        await process_exits(pid, timeout=60)


# ---- command-line errors (no broker) ----

GOOD = """
from fastkafka import FastKafka
kafka_app = FastKafka(kafka_brokers={"test": {"url": "127.0.0.1", "port": 9}, "other": {"url": "127.0.0.1"}})
not_an_app = 42
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    "Invoke a Typer app in-process, from a folder that holds modules `<name>_ok.py` and `<name>_raises.py`."
    name = f"m{os.getpid()}_{len(list(tmp_path.iterdir()))}_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}_ok.py").write_text(GOOD)
    (tmp_path / f"{name}_raises.py").write_text("import json\njson.loads('{oops')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def invoke(typer_app, *args: str):
        return CliRunner().invoke(typer_app, list(args))

    invoke.name = name  # type: ignore[attr-defined]
    return invoke


def test_run_errors_on_a_bad_import_string(cli):
    r = cli(cli_app, "run", "no_colon_here")
    assert r.exit_code == 2
    assert 'Error: Import string "no_colon_here" must be in format "<module>:<attribute>"' in r.stderr


def test_run_errors_on_a_missing_module(cli):
    r = cli(cli_app, "run", "no_such_module_here:app")
    assert r.exit_code == 2
    assert 'Could not import module "no_such_module_here"' in r.stderr


def test_run_errors_on_a_missing_attribute(cli):
    r = cli(cli_app, "run", f"{cli.name}_ok:nope")
    assert r.exit_code == 2
    assert f'Attribute "nope" not found in module "{cli.name}_ok".' in r.stderr


def test_run_errors_on_something_that_is_not_an_app(cli):
    r = cli(cli_app, "run", f"{cli.name}_ok:not_an_app")
    assert r.exit_code == 2
    assert "is a int, not a FastKafka app" in r.stderr


def test_run_errors_on_an_unknown_broker_name(cli):
    r = cli(cli_app, "run", "--kafka-broker", "production", f"{cli.name}_ok:kafka_app")
    assert r.exit_code == 2
    assert "Given kafka_broker_name 'production' is not found in kafka_brokers" in r.stderr, r.stderr
    assert "'test', 'other'" in r.stderr, r.stderr


def test_run_asks_for_a_broker_name_when_the_app_has_several(cli):
    r = cli(cli_app, "run", f"{cli.name}_ok:kafka_app")  # no "localhost" among them: no default
    assert r.exit_code == 2 and "--kafka-broker NAME" in r.stderr, r.stderr


def test_run_shows_the_traceback_of_a_module_that_raises(cli):
    r = cli(cli_app, "run", f"{cli.name}_raises:app")
    assert r.exit_code == 1
    assert r.stderr.startswith("Traceback") and "JSONDecodeError" in r.stderr, r.stderr
    assert f'Error: Importing module "{cli.name}_raises" failed' in r.stderr, r.stderr


def test_run_needs_at_least_one_worker(cli):
    r = cli(cli_app, "run", "--num-workers", "0", f"{cli.name}_ok:kafka_app")
    assert r.exit_code == 2 and "--num-workers" in r.stderr


def test_run_help_explains_the_default_number_of_workers(cli):
    r = cli(cli_app, "run", "--help")
    assert r.exit_code == 0
    text = " ".join(r.stdout.replace("│", " ").split())
    assert "Default 1: each worker is a full copy of the app" in text and "Exit codes:" in text, text


def test_worker_needs_a_broker_name_and_a_good_import_string(cli):
    r = cli(worker_app, f"{cli.name}_ok:kafka_app")
    assert r.exit_code == 2 and "--kafka-broker" in r.stderr
    r = cli(worker_app, "--kafka-broker", "test", "bad")
    assert r.exit_code == 2 and 'Error: Import string "bad" must be in format "<module>:<attribute>"' in r.stderr


@pytest.mark.subprocess
async def test_console_command_exit_code_and_message(tmp_path):
    cmd = await Command(fastkafka_cli("run", "nowhere:app"), cwd=str(tmp_path)).start()
    try:
        assert await cmd.wait(60) == 2
        assert cmd.err.having('Error: Could not import module "nowhere"'), cmd.output()
    finally:
        await cmd.cleanup()
