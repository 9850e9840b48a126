"""The README demo: run the FastKafka README example app (examples/readme_app.py) with `fastkafka run` against a
throw-away local Kafka broker, send it a few numbers, show what it logged and what it produced, then stop
everything. Nothing is left running afterwards, also after Ctrl-C or an error.

    python examples/demo.py
"""
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupCoordinatorNotAvailableError

from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

HERE = Path(__file__).resolve().parent
APP, GROUP, NUM_WORKERS = "readme_app:kafka_app", "readme-demo", 2
VALUES = [0.5, 1.0, 2.5, 4.0, 10.0, 42.0]
FASTKAFKA = [sys.executable, "-c", "from fastkafka._cli import app; app(prog_name='fastkafka')"]
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[demo {time.monotonic() - T0:5.1f}s] {text}", flush=True)


class Output:
    "The lines `fastkafka run` prints, shown as they come, and an event to wait for a given line."

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            self.lines.append(text)
            print(f"    | {text}", flush=True)
            self.changed.set()

    async def wait_for(self, text: str, count: int = 1, timeout: float = 120) -> list[str]:
        async def enough() -> None:
            while sum(text in line for line in self.lines) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(enough(), timeout)
        return [line for line in self.lines if text in line]


async def create_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("input_data", 2, 1), NewTopic("output_data", 1, 1)])
    finally:
        await admin.close()


async def group_state(bootstrap: str, ready: Callable[[str, int], bool], timeout: float = 60) -> None:
    "Ask the broker about the demo's consumer group until `ready(state, members)` (Kafka does not push this)."
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async def until_ready() -> None:
            while True:
                try:
                    (group,) = (await admin.describe_consumer_groups([GROUP]))[0].groups
                    if ready(group[2], len(group[5])):
                        return
                except GroupCoordinatorNotAvailableError:
                    pass  # a fresh broker sets up its group coordinator on first use
                await asyncio.sleep(0.3)

        await asyncio.wait_for(until_ready(), timeout)
    finally:
        await admin.close()


async def send_and_collect(bootstrap: str) -> list[float]:
    consumer = AIOKafkaConsumer("output_data", bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    try:
        for i, value in enumerate(VALUES):
            await producer.send_and_wait("input_data", json.dumps({"data": value}).encode(), key=str(i).encode())
        say(f"Sent {len(VALUES)} messages to input_data: {VALUES}")
        received: list[float] = []

        async def collect() -> None:
            async for record in consumer:
                received.append(json.loads(record.value)["data"])
                if len(received) == len(VALUES):
                    return

        await asyncio.wait_for(collect(), 60)
        return received
    finally:
        await producer.stop()
        await consumer.stop()


async def stop_run(run: asyncio.subprocess.Process) -> int:
    "SIGTERM `fastkafka run` and wait; SIGKILL its whole process group if it does not stop."
    if run.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            run.send_signal(signal.SIGTERM)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.wait(), 45)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(run.pid, signal.SIGKILL)  # workers too, should any be left
    return await run.wait()


def nothing_left(run: asyncio.subprocess.Process) -> bool:
    try:
        os.killpg(run.pid, 0)
    except ProcessLookupError:
        return True
    return False


async def main() -> int:
    say("Starting a throw-away Kafka broker (Apache Kafka 4, KRaft mode) on 127.0.0.1 ...")
    async with ApacheKafkaBroker() as bootstrap:
        await create_topics(bootstrap)
        await group_state(bootstrap, lambda state, members: True)  # the group coordinator is up
        say(f"Broker up at {bootstrap}; created topics input_data (2 partitions) and output_data.")
        host, port = bootstrap.rsplit(":", 1)
        say(f"Running (in {HERE.name}/): fastkafka run --num-workers {NUM_WORKERS} --kafka-broker localhost {APP}")
        run = await asyncio.create_subprocess_exec(
            *FASTKAFKA, "run", "--num-workers", str(NUM_WORKERS), "--kafka-broker", "localhost", APP,
            cwd=HERE, env={**os.environ, "KAFKA_HOST": host, "KAFKA_PORT": port, "PYTHONUNBUFFERED": "1"},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )
        output = Output()
        pump = asyncio.create_task(output.pump(run.stdout))  # type: ignore[arg-type]
        try:
            await output.wait_for("is running", count=NUM_WORKERS)
            await group_state(bootstrap, lambda state, members: state == "Stable" and members == NUM_WORKERS)
            say(f"Both workers are in consumer group {GROUP!r}; sending messages.")
            received = await send_and_collect(bootstrap)
            say("Stopping: SIGTERM to fastkafka run ...")
        finally:
            code = await stop_run(run)  # also after an error or Ctrl-C
            await asyncio.wait({pump}, timeout=10)
        logged = [line for line in output.lines if "Got data" in line]
    say("Broker stopped.")
    print()
    print("What the app logged (one line per message; the [number] is the worker's pid):")
    for line in logged:
        print(f"    {line}")
    print(f"What arrived on output_data: {sorted(received)}")
    expected = sorted(v + 1.0 for v in VALUES)
    ok = sorted(received) == expected and len(logged) == len(VALUES) and code == 0
    print(f"fastkafka run exited with code {code}; "
          f"{'no broker or worker is left running' if nothing_left(run) else 'SOMETHING IS STILL RUNNING'}.")
    print("Demo OK." if ok else f"Demo FAILED: expected {expected} on output_data.")
    return 0 if ok else 1


async def interruptible() -> int:
    "`main()`, cancelled by Ctrl-C or SIGTERM: its cleanup runs, then the demo ends with code 130."
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await main()
    except asyncio.CancelledError:
        say("Interrupted: the workers and the broker were stopped.")
        return 130


if __name__ == "__main__":
    sys.exit(asyncio.run(interruptible()))
