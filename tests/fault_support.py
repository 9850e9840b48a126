"""Fault injection on a real local broker (freeze its JVM, as a network partition looks to clients), and the fault
suite's helpers: reading topics, waiting for progress, counting what was lost and duplicated, the table."""
import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition


def broker_pid(bootstrap: str) -> int:
    "The pid of the local Kafka JVM whose client listener is `bootstrap` (\"127.0.0.1:<port>\")."
    port = bootstrap.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" not in args:
            continue
        config = Path(args[args.index(b"kafka.Kafka") + 1].decode())
        if not config.is_absolute():
            config = Path(os.readlink(proc / "cwd")) / config
        if f"PLAINTEXT://127.0.0.1:{port}" in config.read_text():
            return int(proc.name)
    raise LookupError(f"no local Kafka JVM listens on {bootstrap}")


class Frozen:
    "`with Frozen(bootstrap):` stops the broker's JVM (SIGSTOP) for the block: connections stay open, nothing answers."

    def __init__(self, bootstrap: str) -> None:
        self.pid = broker_pid(bootstrap)

    def __enter__(self) -> "Frozen":
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.pid, signal.SIGCONT)




async def read_topic(bootstrap: str, topic: str, partitions: int) -> list[ConsumerRecord[Any, Any]]:
    "Every record of `topic`, up to its end offsets now (all partitions)."
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[Any, Any]] = []
        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def end_total(bootstrap: str, topic: str, partitions: int) -> int:
    "How many records `topic` holds."
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def poll_until(check: Any, what: str, timeout: float, every: float = 0.25) -> None:
    "Ask the broker `check()` until it is true (Kafka has no notification for offsets or topic sizes)."
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = await check()
            if last is True:
                return
        except Exception as e:  # the broker may be away or restarting: ask again
            last = repr(e)
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s (last answer: {last})")
        await asyncio.sleep(every)


async def output_reaches(bootstrap: str, topic: str, partitions: int, count: int, timeout: float) -> None:
    "Return once `topic` holds at least `count` records."
    async def check() -> bool | int:
        n = await end_total(bootstrap, topic, partitions)
        return True if n >= count else n
    await poll_until(check, f"{count} records in {topic}", timeout)


async def all_committed(bootstrap: str, group: str, topic: str, partitions: int, timeout: float) -> None:
    "Return once `group` has committed the end offset of every partition of `topic`."
    async def check() -> bool | dict[int, Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(partitions)]
            ends = await consumer.end_offsets(tps)
            got = {tp.partition: await consumer.committed(tp) for tp in tps}
            return True if all(got[tp.partition] == ends[tp] for tp in tps) else got
        finally:
            await consumer.stop()
    await poll_until(check, f"group {group} committed all of {topic}", timeout, every=0.5)


async def produce(bootstrap: str, topic: str, values: list[bytes | None], partitions: int) -> list[tuple[int, int]]:
    "Send `values` (key = the index), spread over the partitions; (partition, offset) of each."
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2_000_000)
    await producer.start()
    try:
        futs = [await producer.send(topic, v, key=str(i).encode(), partition=i % partitions)
                for i, v in enumerate(values)]
        return [(m.partition, m.offset) for m in await asyncio.gather(*futs)]
    finally:
        await producer.stop()


def good(n: int) -> list[bytes | None]:
    return [b'{"id": %d}' % i for i in range(n)]


@dataclass
class Tally:
    "What came out of a scenario, counted per input id."

    sent: int
    out_ids: Counter[int] = field(default_factory=Counter)
    dead: list[Any] = field(default_factory=list)  # DeadLetter records

    @classmethod
    async def read(cls, bootstrap: str, sent: int, out_topic: str, dlt_topic: str | None,
                   partitions: int) -> "Tally":
        from fastkafka import DeadLetter
        t = cls(sent)
        t.out_ids.update(json.loads(r.value)["id"] for r in await read_topic(bootstrap, out_topic, partitions))
        if dlt_topic is not None:
            t.dead = [DeadLetter.from_record(r) for r in await read_topic(bootstrap, dlt_topic, 1)]
        return t

    def lost(self, expected_out: set[int], expected_dead: set[int]) -> list[int]:
        "Ids that reached neither the output nor the dead-letter topic as expected."
        dead_ids = {int(d.key) for d in self.dead if d.key is not None}
        return sorted((expected_out - set(self.out_ids)) | (expected_dead - dead_ids))

    @property
    def duplicated(self) -> int:
        return sum(c - 1 for c in self.out_ids.values() if c > 1)


FAULT_TABLE: list[dict[str, Any]] = []  # rows added by the scenarios, printed at the end of the session


def fault_table_lines() -> list[str]:
    cols = ["scenario", "messages", "processed", "dead-lettered", "lost", "duplicated", "faults", "log lines",
            "seconds"]
    rows = [[str(r.get(c, "")) for c in cols] for r in FAULT_TABLE]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "| " + " | ".join(s.ljust(w) for s, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return [line(cols), line(["-" * w for w in widths]), *(line(r) for r in rows)]
