"""The FastKafka README example: a service that reads numbers from `input_data` and writes each one, plus one,
to `output_data`.

Run it with two worker processes (from this folder):

    fastkafka run --num-workers 2 --kafka-broker localhost readme_app:kafka_app

`KAFKA_HOST` / `KAFKA_PORT` override where the "localhost" broker is (examples/demo.py sets them).
"""
import os

from pydantic import BaseModel, Field, NonNegativeFloat

from fastkafka import FastKafka
from fastkafka._components.logger import get_logger

logger = get_logger(__name__)


class Data(BaseModel):
    data: NonNegativeFloat = Field(..., examples=[0.5], description="A non-negative number")


kafka_brokers = {
    "localhost": {
        "url": os.environ.get("KAFKA_HOST", "localhost"),
        "description": "local development kafka broker",
        "port": int(os.environ.get("KAFKA_PORT", "9092")),
    },
    "production": {
        "url": "kafka.example.com",
        "description": "production kafka broker",
        "port": 9092,
        "protocol": "kafka-secure",
        "security": {"type": "plain"},
    },
}

# group_id: the workers of `fastkafka run --num-workers N` share the partitions instead of each one
# receiving every message, and committed offsets survive restarts.
kafka_app = FastKafka(title="Demo Kafka app", kafka_brokers=kafka_brokers, group_id="readme-demo")


@kafka_app.consumes(topic="input_data", auto_offset_reset="earliest")
async def on_input_data(msg: Data) -> None:
    logger.info(f"Got data: {msg.data}")
    await to_output_data(msg.data)


@kafka_app.produces(topic="output_data")
async def to_output_data(data: float) -> Data:
    return Data(data=data + 1.0)
