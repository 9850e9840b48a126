"""FastKafka apps whose AsyncAPI docs are tested (tests/test_asyncapi.py, tests/test_docs_browser.py).

Each entry of `APPS` builds a fresh app. `readme_app` is also importable as `asyncapi_apps:readme_kafka_app`
for the CLI. `SECRETS` are credentials passed to the apps and decorators as client
kwargs; none of them may appear in a generated spec.
"""

from datetime import datetime
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, NonNegativeFloat

from fastkafka import FastKafka, KafkaEvent, Retry

SECRETS = ("s3cr3t-app-password", "s3cr3t-decorator-password", "s3cr3t-oauth-token")


# ---- models -------------------------------------------------------------------------------------------------
class Data(BaseModel):
    data: NonNegativeFloat = Field(..., examples=[0.5], description="Float data example")


class Status(str, Enum):
    "Where an order is."

    new = "new"
    paid = "paid"
    shipped = "shipped"


class Address(BaseModel):
    "A postal address."

    street: str = Field(..., examples=["1 Main St"])
    city: str = Field(..., description="city name", examples=["Springfield"])
    country: str = Field("US", description="ISO country code")


class Card(BaseModel):
    method: Literal["card"] = "card"
    last4: str = Field(..., pattern=r"^\d{4}$")


class Transfer(BaseModel):
    method: Literal["transfer"] = "transfer"
    iban: str


class Order(BaseModel):
    "An order placed in the shop."

    order_id: int = Field(..., description="order number", examples=[1001])
    status: Status = Field(Status.new, description="current status")
    shipping: Address
    billing: Address | None = Field(None, description="billing address, if other than shipping")
    lines: list["Line"] = Field(default_factory=list)
    payment: Annotated[Card | Transfer, Field(discriminator="method")] | None = None
    placed_at: datetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    position: tuple[float, float] | None = None


class Line(BaseModel):
    sku: str
    quantity: int = Field(1, ge=1)


Order.model_rebuild()


class Shipment(BaseModel):
    "A parcel leaving the warehouse."

    order_id: int
    to: Address
    status: Status = Status.shipped


class Event(BaseModel):
    name: str = Field(..., examples=["click"])
    value: float = 0.0


# ---- apps ---------------------------------------------------------------------------------------------------
README_BROKERS = {
    "localhost": {"url": "localhost", "description": "local development kafka broker", "port": 9092},
    "production": {"url": "kafka.airt.ai", "description": "production kafka broker", "port": 9092,
                   "protocol": "kafka-secure", "security": {"type": "plain"}},
}
CONTACT = {"name": "Author", "url": "https://example.com", "email": "author@example.com"}


def readme_app() -> FastKafka:
    "The FastKafka README example: Data in on input_data, Data out on output_data."
    app = FastKafka(title="Demo Kafka app", version="0.0.1", description="A simple example on how to use FastKafka",
                    contact=CONTACT, kafka_brokers=README_BROKERS)

    @app.consumes(topic="input_data", auto_offset_reset="latest")
    async def on_input_data(msg: Data) -> None:
        "Consumes input data and sends it on, doubled."
        await to_output_data(msg.data)

    @app.produces(topic="output_data")
    async def to_output_data(data: float) -> Data:
        "Produces the doubled data."
        return Data(data=data * 2.0)

    return app


readme_kafka_app = readme_app()


def plain_app() -> FastKafka:
    "One consumer, one producer, no description or contact."
    app = FastKafka(title="Plain")

    @app.consumes()
    async def on_events(msg: Event) -> None: ...

    @app.produces()
    async def to_scores(e: Event) -> Event:
        return e

    return app


def models_app() -> FastKafka:
    "Nested models, enums, optional fields, descriptions, examples, discriminated unions, tuples."
    app = FastKafka(title="Shop", description="Orders and shipments.", version="2.0.0",
                    contact={"name": "Shop team", "email": "shop@example.com"})

    @app.consumes()
    async def on_orders(msg: Order) -> None:
        "Validates incoming orders."

    @app.produces(description="Announces shipments (description= wins over the docstring).")
    async def to_shipments(order: Order) -> Shipment:
        "Not shown."
        return Shipment(order_id=order.order_id, to=order.shipping)

    return app


def batch_and_events_app() -> FastKafka:
    "Batch consumers and producers, KafkaEvent-wrapped results, Avro and custom encodings."
    app = FastKafka(title="Batches", description="Batches and events.", contact=CONTACT)

    @app.consumes()
    async def on_events(msgs: list[Event]) -> None:
        "Handles a batch of events."

    @app.consumes(decoder=lambda raw, cls: cls.model_validate_json(raw))
    async def on_custom(msg: Data) -> None: ...

    @app.produces()
    async def to_keyed(e: Event) -> KafkaEvent[Event]:
        "Sends one event with a key."
        return KafkaEvent(e, key=e.name.encode())

    @app.produces()
    async def to_batch(es: list[Event]) -> list[Event]:
        return es

    @app.produces()
    async def to_keyed_batch(es: list[Event]) -> KafkaEvent[list[Event]]:
        return KafkaEvent(es, key=b"k")

    @app.produces(encoder="avro")
    async def to_avro_data(d: Data) -> Data:
        return d

    return app


def multi_cluster_app() -> FastKafka:
    "Decorators with brokers= overrides: a topic read on one cluster and written to another."
    app = FastKafka(title="Bridge", description="Copies events between clusters.", contact=CONTACT,
                    kafka_brokers={"localhost": {"url": "localhost", "port": 9092},
                                   "production": {"url": "kafka.example.com"}})
    analytics = {"localhost": {"url": "localhost", "port": 9094},
                 "production": {"url": "analytics.example.com", "port": 9094}}

    @app.consumes(topic="events")
    async def on_events(msg: Event) -> None:
        "Reads events from the main cluster."

    @app.produces(topic="events", brokers=analytics)
    async def to_events(e: Event) -> Event:
        "Copies events to the analytics cluster."
        return e

    @app.consumes(topic="events", brokers=analytics)
    async def on_analytics_events(msg: Event) -> None: ...

    return app


def security_app() -> FastKafka:
    "Brokers with documented security, several addresses each, and credentials in kwargs."
    scram = {"type": "scramSha512", "description": "SCRAM-SHA-512 over TLS"}
    brokers = {
        "localhost": {"url": "localhost", "port": 9092},
        "production": [
            {"url": "kafka-1.example.com", "port": 9093, "protocol": "kafka-secure", "security": scram},
            {"url": "kafka-2.example.com", "port": 9093, "protocol": "kafka-secure", "security": scram},
        ],
        "staging": [{"url": "staging.example.com", "port": 9093, "protocol": "kafka-secure",
                     "security": {"type": "plain"}}],
        "mtls": {"url": "mtls.example.com", "port": 9094, "protocol": "kafka-secure", "security": {"type": "X509"}},
        "oauth": {"url": "oauth.example.com", "port": 9095, "protocol": "kafka-secure", "security": {
            "type": "oauth2", "description": "OAuth bearer tokens",
            "flows": '{"clientCredentials": {"tokenUrl": "https://auth.example.com/token", "availableScopes": {}}}'}},
        "gateway": {"url": "gw.example.com", "port": 443, "protocol": "kafka-secure",
                    "security": {"type": "httpApiKey", "name": "X-Api-Key", "in": "header"}},
    }
    app = FastKafka(title="Secure", description="Authenticated brokers.", contact=CONTACT, kafka_brokers=brokers,
                    security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_plain_username="svc",
                    sasl_plain_password=SECRETS[0])

    @app.consumes(sasl_plain_password=SECRETS[1])
    async def on_payments(msg: Data) -> None:
        "Reads payments."

    @app.produces(sasl_oauth_token_provider=SECRETS[2])
    async def to_receipts(d: Data) -> Data:
        "Writes receipts."
        return d

    return app


def both_ways_app() -> FastKafka:
    "A topic both consumed and produced by the app (the case FastKafka 0.8.0 lost one side of)."
    app = FastKafka(title="Loop", description="Reads and writes orders.", contact=CONTACT)

    @app.consumes()
    async def on_orders(msg: Order) -> None:
        "Checks new orders."

    @app.produces()
    async def to_orders(order: Order) -> Order:
        "Re-publishes corrected orders."
        return order

    return app


def dead_letters_app() -> FastKafka:
    "Retries and dead-letter topics: two consumers share one, another has its own on an override cluster."
    app = FastKafka(title="Billing", description="Bills orders; what it cannot bill goes to dead-letter topics.",
                    contact=CONTACT, group_id="billing")
    other = {"localhost": {"url": "localhost", "port": 9094}}

    @app.consumes(retry=Retry(attempts=4, delay=0.2, max_delay=1.0, on=(TimeoutError, ConnectionError)),
                  dead_letter_topic="billing-dlt")
    async def on_orders(msg: Order) -> None:
        "Bills each order."

    @app.consumes(topic="refunds", retry=3, dead_letter_topic="billing-dlt")
    async def on_refunds(msg: Order) -> None: ...

    @app.consumes(decoder="avro", dead_letter_topic=True, brokers=other)
    async def on_payments(msg: Data) -> None:
        "Records payments (Avro)."

    @app.consumes(retry=2)
    async def on_events(msgs: list[Event]) -> None:
        "Retries, but no dead-letter topic."

    @app.produces()
    async def to_invoices(order: Order) -> Shipment:
        return Shipment(order_id=order.order_id, to=order.shipping)

    return app


APPS = {
    "readme": readme_app, "plain": plain_app, "models": models_app, "batch_and_events": batch_and_events_app,
    "multi_cluster": multi_cluster_app, "security": security_app, "both_ways": both_ways_app,
    "dead_letters": dead_letters_app,
}
