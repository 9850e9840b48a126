"""Exactly-once under `kill -9`: two `fastkafka run` workers in one group, workers killed mid-stream, every id counted.

As a script: `python tests/eos_kill.py [--messages 20000] [--kills 8] [--compare]` starts its own broker, runs the
scenario and prints the table (`--compare` adds the same scenario with `processing_guarantee="at_least_once"`, for
the duplicates exactly-once removes). `tests/test_exactly_once_kill.py` runs it under pytest, bounded.

The scenario: an input topic with 4 partitions holds N keyed `{"id": n}` records; `fastkafka run --num-workers 2
eos_app:kafka_app` forwards each id to an output topic (tests/eos_app.py). Each time the output reaches the next
fraction of N, one worker (the newest, then the oldest, in turn) gets SIGKILL; the supervisor starts a new one and
the group rebalances. Once the group has committed every input offset, the workers are stopped (SIGTERM) and the
output is read twice:

* with `isolation_level="read_committed"` (what a downstream consumer sees): *lost* = ids missing, *duplicated* =
  copies beyond the first;
* with `read_uncommitted`: the records only it sees are those of aborted transactions. They carry the worker pid and
  the input partition and offset that produced them; *aborted transactions* counts the runs of them per (worker,
  input partition), a new run starting wherever the input offset goes back.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from app_support import create_topics
from fault_support import all_committed, end_total, poll_until, produce
from helpers import unique_topic
from run_support import Command, fastkafka_cli

PARTITIONS = 4


async def read_all(bootstrap: str, topic: str, partitions: int, committed: bool) -> list[ConsumerRecord[Any, Any]]:
    "Every record of `topic` a reader with that isolation level gets, up to the end offsets now."
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                                isolation_level="read_committed" if committed else "read_uncommitted")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)  # a read_committed reader stops at the last stable offset: none open
        out: list[ConsumerRecord[Any, Any]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


@dataclass
class Result:
    guarantee: str
    messages: int
    kills: int
    aborted_transactions: int
    aborted_records: int
    lost: int
    duplicated: int
    seconds: float
    details: str = field(default="", repr=False)  # what went wrong, and the workers' output, when anything did

    def row(self) -> list[str]:
        return [self.guarantee, f"{self.messages:,}", str(self.kills), str(self.aborted_transactions),
                f"{self.aborted_records:,}", str(self.lost), f"{self.duplicated:,}", f"{self.seconds:.0f}"]


EOS_TABLE: list[Result] = []  # filled by tests/test_exactly_once_kill.py, printed at the end of the run (conftest.py)
COLUMNS = ["guarantee", "messages", "kill -9", "aborted transactions", "records in them", "lost", "duplicated",
           "seconds"]


def table(results: list[Result]) -> str:
    rows = [COLUMNS, *(r.row() for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *(line(r) for r in rows[1:])])


def aborted_transactions(records: list[ConsumerRecord[Any, Any]]) -> int:
    """How many transactions the aborted records came from, at least.

    A transaction of worker W for input partition p covers consecutive input offsets, so per (W, p): a transaction
    starts wherever an input offset appears more often than the one before it (an abort re-reads from the same
    place, so aborted transactions can overlap), or follows a gap."""
    by_source: dict[tuple[int, int], Counter[int]] = {}
    for r in records:
        d = json.loads(r.value)
        by_source.setdefault((d["pid"], d["partition"]), Counter())[d["offset"]] += 1
    return sum(max(0, c - counts.get(offset - 1, 0)) for counts in by_source.values() for offset, c in counts.items())


def worker_pids(cmd: Command) -> list[int]:
    return [int(m.group(1)) for line in cmd.out.lines if (m := re.search(r"Started worker (\d+)", line))]


async def run_scenario(bootstrap: str, messages: int = 20_000, kills: int = 8, guarantee: str = "exactly_once",
                       delay: float = 0.001, timeout: float = 300, echo: bool = False) -> Result:
    "Run the scenario on the broker at `bootstrap`; the figures."
    started = time.monotonic()
    src, dst, group = unique_topic("eos-in"), unique_topic("eos-out"), unique_topic("eos-g")
    await create_topics(bootstrap, src, dst, partitions=PARTITIONS)
    await produce(bootstrap, src, [b'{"id": %d}' % i for i in range(messages)], PARTITIONS)
    env = {"EOS_BOOTSTRAP": bootstrap, "EOS_IN": src, "EOS_OUT": dst, "EOS_GROUP": group, "EOS_GUARANTEE": guarantee,
           "EOS_DELAY": str(delay), "EOS_DEBUG": "1"}
    cmd = Command(fastkafka_cli("run", "--num-workers", "2", "--kafka-broker", "local", "eos_app:kafka_app"),
                  cwd=str(HERE), env=env)
    await cmd.start()
    try:
        killed: list[int] = []
        for k in range(kills):
            target = (k + 1) * messages // (kills + 1)

            async def progress(target: int = target) -> bool | int:
                n = await end_total(bootstrap, dst, PARTITIONS)  # markers and aborted records count as progress too
                return True if n >= target else n

            await poll_until(progress, f"{target} records in {dst}", timeout / 2)
            workers = 2 + k  # the last one killed was replaced
            await cmd.out.wait_until(lambda lines, workers=workers: len(worker_pids(cmd)) >= workers, 60)
            live = [p for p in worker_pids(cmd) if p not in killed]
            victim = live[-1] if k % 2 == 0 else live[0]  # the newest worker, then the oldest, ...
            killed.append(victim)
            os.kill(victim, signal.SIGKILL)
            await cmd.out.wait_for(f"Worker {victim} was killed by signal SIGKILL", timeout=30)
            if echo:
                print(f"  kill -9 {k + 1} of {kills}: worker {victim}, after {target:,} output records", flush=True)
        await all_committed(bootstrap, group, src, PARTITIONS, timeout)
        cmd.send_signal(signal.SIGTERM)
        rc = await cmd.wait(60)
        assert rc == 0, cmd.output()[-5000:]
    except BaseException:
        if echo:
            print(cmd.output()[-5000:], file=sys.stderr)
        raise
    finally:
        await cmd.cleanup()
    committed = await read_all(bootstrap, dst, PARTITIONS, committed=True)
    everything = await read_all(bootstrap, dst, PARTITIONS, committed=False)
    ids = Counter(json.loads(r.value)["id"] for r in committed)
    seen = {(r.partition, r.offset) for r in committed}
    aborted = [r for r in everything if (r.partition, r.offset) not in seen]
    result = Result(guarantee, messages, len(killed), aborted_transactions(aborted), len(aborted),
                    lost=len(set(range(messages)) - set(ids)), duplicated=sum(c - 1 for c in ids.values() if c > 1),
                    seconds=time.monotonic() - started)
    if result.lost or (result.duplicated and guarantee == "exactly_once"):
        copies: dict[int, list[str]] = {}
        for r in committed:
            d = json.loads(r.value)
            if ids[d["id"]] > 1:
                copies.setdefault(d["id"], []).append(
                    f"out {r.partition}@{r.offset} from worker {d['pid']} input {d['partition']}@{d['offset']}")
        lines = [f"{i}: {'; '.join(c)}" for i, c in sorted(copies.items())[:40]]
        trace = [line for line in cmd.output().splitlines() if "EOSDBG" in line or "WARNING" in line or "ERROR" in line]
        result.details = "\n".join([f"killed: {killed}", *lines, *trace])
    return result


async def main(args: argparse.Namespace) -> None:
    from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

    guarantees = ["exactly_once", "at_least_once"] if args.compare else ["exactly_once"]
    print(f"command: {' '.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])}", flush=True)
    results = []
    async with ApacheKafkaBroker(listener_port=0) as bootstrap:
        for g in guarantees:
            print(f"{g}: {args.messages:,} messages, {args.kills} x kill -9 of a worker, 2 workers", flush=True)
            results.append(await run_scenario(bootstrap, args.messages, args.kills, g, args.delay, echo=True))
    print()
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.001, help="seconds each message takes in the handler")
    parser.add_argument("--compare", action="store_true", help="also run it with processing_guarantee='at_least_once'")
    asyncio.run(main(parser.parse_args()))
