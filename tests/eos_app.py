"""The app of the exactly-once kill scenario (tests/eos_kill.py), run by `fastkafka run`, configured by the environment.

It reads `{"id": n}` records from EOS_IN and, for each one, sends `{"id": n, "pid": <worker pid>, "partition": p,
"offset": o}` (p and o: where the input record was) to EOS_OUT, with `processing_guarantee` EOS_GUARANTEE
("exactly_once" by default). Each message takes EOS_DELAY seconds, so that the stream lasts long enough for the kills.
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
