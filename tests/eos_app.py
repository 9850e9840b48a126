"""The app of the exactly-once kill scenario (tests/eos_kill.py), run by `fastkafka run`, configured by the environment.

It reads `{"id": n}` records from EOS_IN and, for each one, sends `{"id": n, "pid": <worker pid>, "partition": p,
"offset": o}` (p and o: where the input record was) to EOS_OUT, with `processing_guarantee` EOS_GUARANTEE
("exactly_once" by default). Each message takes EOS_DELAY seconds, so that the stream lasts long enough for the kills.
With EOS_DEBUG set, each worker prints a line per assignment, revocation, commit and release of its transactions
(the scenario shows them when something was lost or duplicated).
"""
import asyncio
import os

from pydantic import BaseModel

from fastkafka import EventMetadata, FastKafka

host, port = os.environ["EOS_BOOTSTRAP"].rsplit(":", 1)
DELAY = float(os.environ.get("EOS_DELAY", "0"))


class Item(BaseModel):
    id: int


class Done(BaseModel):
    id: int
    pid: int
    partition: int
    offset: int


kafka_app = FastKafka(
    kafka_brokers={"local": {"url": host, "port": int(port)}}, group_id=os.environ["EOS_GROUP"],
    processing_guarantee=os.environ.get("EOS_GUARANTEE", "exactly_once"),
    session_timeout_ms=3000, heartbeat_interval_ms=500,  # a killed worker's partitions move on within seconds
)


@kafka_app.consumes(topic=os.environ["EOS_IN"], auto_offset_reset="earliest")
async def on_input(msg: Item, meta: EventMetadata) -> None:
    if DELAY:
        await asyncio.sleep(DELAY)
    await to_output(Done(id=msg.id, pid=os.getpid(), partition=meta.partition, offset=meta.offset))


@kafka_app.produces(topic=os.environ["EOS_OUT"])
async def to_output(done: Done) -> Done:
    return done


if os.environ.get("EOS_DEBUG"):  # one line per transaction event of this worker, to trace a failed scenario
    from fastkafka._components import exactly_once as _eos

    def _traced(name: str, show: object) -> None:
        inner = getattr(_eos.TransactionalRunner, name)

        async def traced(self: object, *args: object) -> object:
            result = await inner(self, *args)
            print(f"EOSDBG {os.getpid()} {name} {show(self, *args)}", flush=True)  # type: ignore[operator]
            return result

        setattr(_eos.TransactionalRunner, name, traced)

    def _txns(self: object) -> str:
        return " ".join(f"{t.tp.partition}:base={t.base}:gen={t.generation}" for t in self._txns.values())  # type: ignore[attr-defined]

    _traced("_on_assigned", lambda self, assigned: f"assigned {sorted(tp.partition for tp in assigned)} "
                                                   f"-> {_txns(self)}")
    _traced("_on_revoked", lambda self, revoked: f"revoked {sorted(tp.partition for tp in revoked)}")
    _traced("_commit_txn", lambda self, txn: f"commit p{txn.tp.partition} base={txn.base} gen={txn.generation} "
                                             f"open={txn.open} failure={txn.failure!r}")
    _traced("_release", lambda self, txn, po: f"release p{txn.tp.partition} base={txn.base} open={txn.open} "
                                              f"committable={getattr(po, 'committable', None)} failure={txn.failure!r}")
