"""The app the fault suite runs with `fastkafka run` (tests/test_faults.py), configured through the environment.

It reads `{"id": n}` records from FAULT_IN, and for each one sends `{"id": n, "pid": <worker pid>}` to FAULT_OUT.
Ids divisible by FAULT_TRANSIENT_EVERY fail on their first two calls in a worker and then succeed; ids divisible
by FAULT_PERMANENT_EVERY always fail. Failed and undecodable records go to "<FAULT_IN>-dlt". FAULT_TRANSPORT names
the transport ("librdkafka"; aiokafka without it).
"""
import asyncio
import os
from collections import Counter

from pydantic import BaseModel

from fastkafka import FastKafka, Retry

host, port = os.environ["FAULT_BOOTSTRAP"].rsplit(":", 1)
TRANSIENT_EVERY = int(os.environ.get("FAULT_TRANSIENT_EVERY", "0"))
PERMANENT_EVERY = int(os.environ.get("FAULT_PERMANENT_EVERY", "0"))
DELAY = float(os.environ.get("FAULT_DELAY", "0"))  # seconds each message takes, so faults land mid-stream
producer_options = {}
if "FAULT_REQUEST_TIMEOUT_MS" in os.environ:
    producer_options["request_timeout_ms"] = int(os.environ["FAULT_REQUEST_TIMEOUT_MS"])


class Item(BaseModel):
    id: int


class Done(BaseModel):
    id: int
    pid: int


kafka_app = FastKafka(kafka_brokers={"local": {"url": host, "port": int(port)}}, group_id=os.environ["FAULT_GROUP"],
                      transport=os.environ.get("FAULT_TRANSPORT"))  # None: aiokafka
calls: Counter[int] = Counter()


@kafka_app.consumes(
    topic=os.environ["FAULT_IN"], auto_offset_reset="earliest", dead_letter_topic=True,
    retry=Retry(attempts=3, delay=0.05, max_delay=0.2, on=(ConnectionError, ValueError)),
    executor=os.environ.get("FAULT_EXECUTOR", "SequentialExecutor"),
)
async def on_input(msg: Item) -> None:
    calls[msg.id] += 1
    if PERMANENT_EVERY and msg.id % PERMANENT_EVERY == 0:
        raise ValueError(f"id {msg.id} can never be handled")
    if TRANSIENT_EVERY and msg.id % TRANSIENT_EVERY == 0 and calls[msg.id] <= 2:
        raise ConnectionError(f"the downstream service is flaky (id {msg.id}, call {calls[msg.id]})")
    if DELAY:
        await asyncio.sleep(DELAY)
    await to_output(msg.id)


@kafka_app.produces(topic=os.environ["FAULT_OUT"], **producer_options)
async def to_output(id: int) -> Done:
    return Done(id=id, pid=os.getpid())
