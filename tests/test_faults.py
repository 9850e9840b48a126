"""The fault suite: `fastkafka run` workers on a real broker, faults injected, every input id accounted for.

Each scenario sends keyed `{"id": n}` records to an input topic with 4 partitions and runs `tests/fault_app.py`
(which forwards each id to an output topic, retries failing handlers and dead-letters what cannot be handled),
injects its fault, waits until the group has committed every input offset, and then reads the output and the
dead-letter topic: *lost* counts ids found in neither where they belong, *duplicated* counts extra copies in the
output. Expected: nothing lost anywhere; duplicates only after a `kill -9`, bounded by what was in flight.

The broker of this module is its own (faults must not disturb other tests). Sleeps here are the faults
themselves (how long the broker stays away); everything else waits on the broker's state with a deadline. The
table is printed at the end of the pytest run (conftest.py) and kept in README.md.
"""
import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest
from app_support import create_topics, free_port
from fault_support import FAULT_TABLE, Tally, all_committed, good, output_reaches, produce
from helpers import unique_topic
from run_support import Command, fastkafka_cli

from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

pytestmark = [pytest.mark.broker, pytest.mark.subprocess, pytest.mark.slow]

HERE = Path(__file__).parent
PARTITIONS = 4
DONE_TIMEOUT = 150  # seconds for a scenario's group to commit everything


@pytest.fixture(scope="module")
def fault_broker():
    "A broker of this module's own, which the scenarios kill and restart."
    broker = ApacheKafkaBroker(listener_port=0)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class Scenario:
    "Topics, a group and the `fastkafka run` commands of one scenario."

    def __init__(self, name: str, bootstrap: str, transport: str = "aiokafka") -> None:
        self.name, self.bootstrap, self.transport = name, bootstrap, transport
        self.done_timeout: float = DONE_TIMEOUT
        self.src, self.dst, self.group = unique_topic("in"), unique_topic("out"), unique_topic("g")
        self.dlt = self.src + "-dlt"
        self.commands: list[Command] = []
        self.started = time.monotonic()

    async def create_topics(self) -> None:
        await create_topics(self.bootstrap, self.src, self.dst, partitions=PARTITIONS)
        await create_topics(self.bootstrap, self.dlt)

    async def run(self, *args: str, **env: str) -> Command:
        "Start `fastkafka run ... fault_app:kafka_app` (cleaned up at the end of the test)."
        cmd = Command(fastkafka_cli("run", "--kafka-broker", "local", *args, "fault_app:kafka_app"), cwd=str(HERE),
                      env={"FAULT_BOOTSTRAP": self.bootstrap, "FAULT_IN": self.src, "FAULT_OUT": self.dst,
                           "FAULT_GROUP": self.group, "FAULT_TRANSPORT": self.transport, **env})
        self.commands.append(cmd)
        return await cmd.start()

    async def stop(self, cmd: Command) -> None:
        "SIGTERM to `fastkafka run`: it must stop every worker cleanly (exit code 0)."
        cmd.send_signal(signal.SIGTERM)
        rc = await cmd.wait(60)
        assert rc == 0, cmd.output()

    async def cleanup(self) -> None:
        for cmd in self.commands:
            await cmd.cleanup()

    async def done(self) -> None:
        await all_committed(self.bootstrap, self.group, self.src, PARTITIONS, self.done_timeout)

    async def tally(self, sent: int) -> Tally:
        return await Tally.read(self.bootstrap, sent, self.dst, self.dlt, PARTITIONS)

    def log_lines(self) -> int:
        return sum(len(c.out.lines) + len(c.err.lines) for c in self.commands)

    async def finish(self, cmd: Command, n: int, faults: str, dead: set[int] = frozenset()) -> Tally:
        "Wait until everything is committed, stop `cmd`, count; record the row and check that nothing was lost."
        await self.done()
        await self.stop(cmd)
        tally = await self.tally(n)
        lost = tally.lost(set(range(n)) - dead, dead)
        self.record(tally, lost, faults)
        assert not lost, lost[:20]
        return tally

    def record(self, tally: Tally, lost: list[int], faults: str, **extra: object) -> None:
        FAULT_TABLE.append({
            "scenario": self.name, "messages": tally.sent, "processed": len(tally.out_ids),
            "dead-lettered": len(tally.dead), "lost": len(lost), "duplicated": tally.duplicated, "faults": faults,
            "log lines": self.log_lines(), "seconds": f"{time.monotonic() - self.started:.0f}", **extra,
        })
        print(FAULT_TABLE[-1])


def librdkafka_installed() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.fixture(params=["aiokafka", pytest.param("librdkafka", marks=pytest.mark.skipif(
    not librdkafka_installed(), reason="the librdkafka transport needs fastkafka[librdkafka]"))])
async def scenario(request, fault_broker):
    "A scenario on each transport (the app's clients: aiokafka, or librdkafka through FAULT_TRANSPORT)."
    s = Scenario(request.node.name.removeprefix("test_"), fault_broker.bootstrap_server, request.param)
    await s.create_topics()
    yield s
    await s.cleanup()


def worker_pids(cmd: Command) -> list[int]:
    "The pids of the workers `fastkafka run` started, in order."
    return [int(m.group(1)) for line in cmd.out.lines if (m := re.search(r"Started worker (\d+)", line))]


async def test_sigterm_mid_stream_and_restart(scenario: Scenario) -> None:
    n = 6000
    await produce(scenario.bootstrap, scenario.src, good(n), PARTITIONS)
    first = await scenario.run("--num-workers", "2", FAULT_DELAY="0.001")
    await output_reaches(scenario.bootstrap, scenario.dst, PARTITIONS, n // 4, 90)
    await scenario.stop(first)
    second = await scenario.run("--num-workers", "2", FAULT_DELAY="0.001")
    tally = await scenario.finish(second, n, "SIGTERM + restart")
    assert tally.duplicated == 0, "a graceful stop commits what it processed"


async def test_kill_9_of_a_worker_with_a_backlog(scenario: Scenario) -> None:
    # librdkafka keeps its 45 s session timeout (see 04b_librdkafka): a killed worker's partitions move only after
    # it, so that transport gets one kill and the time for it, to stay bounded in CI
    n, kills = 8000, (3 if scenario.transport == "aiokafka" else 1)
    if scenario.transport != "aiokafka":
        scenario.done_timeout = DONE_TIMEOUT + 60 * kills
    await produce(scenario.bootstrap, scenario.src, good(n), PARTITIONS)
    cmd = await scenario.run("--num-workers", "2", FAULT_DELAY="0.001")
    killed: list[int] = []
    for k in range(kills):
        await output_reaches(scenario.bootstrap, scenario.dst, PARTITIONS, (k + 1) * n // (kills + 2), 90)
        await cmd.out.wait_until(lambda lines, k=k: len(worker_pids(cmd)) >= 2 + k, 60)  # the last one was replaced
        live = [p for p in worker_pids(cmd) if p not in killed]
        victim = live[0] if k % 2 else live[-1]  # the newest worker, then the oldest, ...
        killed.append(victim)
        os.kill(victim, signal.SIGKILL)
        await cmd.out.wait_for(f"Worker {victim} was killed by signal SIGKILL", timeout=30)
    tally = await scenario.finish(cmd, n, f"{kills} x kill -9 of a worker")
    # what a killed worker had processed but not yet committed: at most its share of one poll or two per kill
    assert tally.duplicated <= kills * 2 * 100 * PARTITIONS, tally.duplicated


LONG_DOWN_S = int(os.environ.get("FAULT_LONG_DOWN_S", "12"))  # a soak by hand: FAULT_LONG_DOWN_S=50 pytest ...


@pytest.mark.parametrize("down_s,executor", [(5, "SequentialExecutor"), (LONG_DOWN_S, "DynamicTaskExecutor")],
                         ids=["5s", "longer-than-request-timeout"])
async def test_broker_killed_and_restarted(scenario: Scenario, fault_broker: ApacheKafkaBroker, down_s: int,
                                           executor: str) -> None:
    n = 6000
    scenario.name = f"broker down {down_s} s ({executor}, {scenario.transport})"
    await produce(scenario.bootstrap, scenario.src, good(n), PARTITIONS)
    cmd = await scenario.run(FAULT_DELAY="0.0005", FAULT_EXECUTOR=executor, FAULT_REQUEST_TIMEOUT_MS="3000")
    await output_reaches(scenario.bootstrap, scenario.dst, PARTITIONS, n // 5, 90)
    before = scenario.log_lines()
    await fault_broker.kill()
    await asyncio.sleep(down_s)  # the outage itself
    await fault_broker.restart()
    await scenario.done()
    during = scenario.log_lines() - before  # from the crash until everything was processed and committed
    await scenario.finish(cmd, n, f"broker kill -9, back after {down_s} s (+ its start); {during} log lines from the "
                          "crash to the last commit")
    tracebacks = [line for line in cmd.out.lines + cmd.err.lines if "Traceback" in line]
    assert not tracebacks, cmd.output()[-5000:]
    assert scenario.log_lines() < 200, f"{scenario.log_lines()} log lines for one outage:\n{cmd.output()[-5000:]}"


async def test_broker_started_20_s_after_the_app() -> None:
    port, n = free_port(), 2000
    s = Scenario("broker starts 20 s after the app", f"127.0.0.1:{port}")
    try:
        cmd = await s.run()
        await cmd.out.wait_for("is not reachable", timeout=30)
        await asyncio.sleep(20)  # the broker is late: that is the scenario
        assert not cmd.out.having("is running"), cmd.output()
        broker = ApacheKafkaBroker(topics=[s.src, s.dst, s.dlt], listener_port=port)
        async with broker as bootstrap:
            assert bootstrap == s.bootstrap, (bootstrap, s.bootstrap)  # the port was still free
            broker_up = time.monotonic()
            await cmd.out.wait_for("is running", timeout=60)
            ready_after = time.monotonic() - broker_up
            await produce(bootstrap, s.src, good(n), 1)
            await all_committed(bootstrap, s.group, s.src, 1, DONE_TIMEOUT)
            await s.stop(cmd)
            tally = await Tally.read(bootstrap, n, s.dst, s.dlt, 1)
        lost = tally.lost(set(range(n)), set())
        s.record(tally, lost, f"ready {ready_after:.1f} s after the broker")
        assert not lost, lost[:20]
        assert ready_after < 10, ready_after
        attempts = cmd.out.having("is not reachable")
        assert attempts and all("Kafka broker 'local'" in line and "trying again in" in line for line in attempts)
        assert not [line for line in cmd.out.lines + cmd.err.lines if "Traceback" in line], cmd.output()
    finally:
        await s.cleanup()


BAD = {  # what each bad record is, and its value
    "malformed JSON": b'{"id": 1',
    "wrong type": b'{"id": "seven"}',
    "non-UTF-8": b"\xff\xfe\xfa",
    "empty": b"",
    "null": None,
    "oversized": b"<" + b"x" * 600_000 + b">",
}


async def test_bad_records_go_to_the_dead_letter_topic(scenario: Scenario) -> None:
    n = 3000
    values = good(n)
    bad_at = {name: 137 + 401 * k for k, name in enumerate(BAD)}  # ids whose record is replaced by a bad one
    for name, i in bad_at.items():
        values[i] = BAD[name]
    where = await produce(scenario.bootstrap, scenario.src, values, PARTITIONS)
    cmd = await scenario.run()
    tally = await scenario.finish(cmd, n, "6 bad records: " + ", ".join(BAD), dead=set(bad_at.values()))
    assert tally.duplicated == 0
    by_key = {int(d.key): d for d in tally.dead}
    assert sorted(by_key) == sorted(bad_at.values()) and len(tally.dead) == len(BAD)
    for name, i in bad_at.items():
        letter, (partition, offset) = by_key[i], where[i]
        assert letter.value == BAD[name], name  # byte for byte (None for the null record)
        assert (letter.original_topic, letter.original_partition, letter.original_offset) == \
            (scenario.src, partition, offset), name
        assert letter.consumer_group == scenario.group and letter.stacktrace, name
        assert letter.exception in {"fastkafka.encoder.JSONSyntaxError", "fastkafka.encoder.ValidationDecodeError",
                                    "fastkafka.encoder.DecodeError", "TypeError"}, (name, letter.exception)
        assert {"kafka_dlt-original-timestamp", "kafka_dlt-exception-message"} <= {k for k, _ in letter.headers}
        logged = [line for line in cmd.out.lines
                  if f"topic={scenario.src} partition={partition} offset={offset}:" in line]
        assert len(logged) == 1 and "[ERROR]" in logged[0], (name, logged)  # one line per bad record
        print(f"{name}: {logged[0][:300]}")
    tracebacks = [line for line in cmd.out.lines + cmd.err.lines if "Traceback (most recent call last)" in line]
    assert len(tracebacks) <= len(BAD), len(tracebacks)


async def test_handler_failing_transiently_and_permanently(scenario: Scenario) -> None:
    n, transient, permanent = 3000, 50, 97
    await produce(scenario.bootstrap, scenario.src, good(n), PARTITIONS)
    cmd = await scenario.run(FAULT_TRANSIENT_EVERY=str(transient), FAULT_PERMANENT_EVERY=str(permanent))
    dead = {i for i in range(n) if i % permanent == 0}
    retried = [i for i in range(n) if i % transient == 0 and i not in dead]
    tally = await scenario.finish(cmd, n, f"{len(retried)} fail twice then succeed, {len(dead)} always fail", dead)
    assert {int(d.key) for d in tally.dead} == dead and len(tally.dead) == len(dead)
    assert all(d.exception == "ValueError" and "can never be handled" in (d.message or "") for d in tally.dead)
    assert set(retried) <= set(tally.out_ids)
    assert len(cmd.out.having("(attempt 1 of 3)")) == len(retried) + len(dead), "one line per retry"
