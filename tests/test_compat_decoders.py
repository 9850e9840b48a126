"""Decoder errors as code written against FastKafka 0.8.0 catches them: pydantic's ValidationError for a message
that does not fit its model, json.JSONDecodeError for bytes that are not JSON; `raw_msg=` by keyword."""

# written as 0.8.0 users wrote it, with typing.List
# ruff: noqa: UP006, UP035

import json
import pickle
from typing import List

import pytest
from pydantic import BaseModel, Field, ValidationError

from fastkafka import FastKafka
from fastkafka.encoder import DecodeError, avro_decoder, avro_encoder, json_decoder, json_encoder
from fastkafka.testing import Tester


class Order(BaseModel):
    order_id: int = Field(..., description="the order")
    qty: int = Field(..., gt=0)


def test_json_validation_error_is_pydantics() -> None:
    try:
        json_decoder(raw_msg=b'{"order_id": 1, "qty": 0}', cls=Order)
    except ValidationError as e:  # as a 0.8.0 user wrote it
        assert e.error_count() == 1 and e.errors()[0]["loc"] == ("qty",)
        assert e.errors()[0]["type"] == "greater_than"
        assert "Could not decode JSON bytes as Order: qty: Input should be greater than 0" in str(e)
        assert isinstance(e, DecodeError) and isinstance(e, ValueError)
        again = pickle.loads(pickle.dumps(e))
        assert type(again) is type(e) and str(again) == str(e) and again.errors() == e.errors()
    else:
        pytest.fail("json_decoder accepted qty=0")


def test_avro_validation_error_is_pydantics() -> None:
    raw = avro_encoder(Order.model_construct(order_id=1, qty=-5))
    with pytest.raises(ValidationError, match="Order: qty: Input should be greater than 0"):
        avro_decoder(raw_msg=raw, cls=Order)
    assert avro_decoder(raw_msg=avro_encoder(Order(order_id=2, qty=3)), cls=Order) == Order(order_id=2, qty=3)
    assert avro_decoder(raw=avro_encoder(Order(order_id=2, qty=3)), cls=Order).qty == 3


def test_not_json_is_json_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError) as e:
        json_decoder(raw_msg=b'{"order_id": 1,', cls=Order)
    assert "Could not decode JSON bytes as Order: the bytes are not valid JSON" in str(e.value)
    assert (e.value.lineno, e.value.colno, e.value.doc) == (1, 15, '{"order_id": 1,')
    with pytest.raises(ValueError, match="the bytes are not valid UTF-8"):
        json_decoder(raw_msg=b"\xfe\xff", cls=Order)
    assert json_decoder(raw=json_encoder(Order(order_id=1, qty=1)), cls=Order) == Order(order_id=1, qty=1)


async def test_consumer_skips_a_message_that_does_not_validate() -> None:
    "In a running app a bad message is logged and skipped; the next one still reaches the handler."
    app = FastKafka()
    got: List[Order] = []

    @app.consumes(topic="orders")
    async def on_orders(msg: Order) -> None:
        got.append(msg)

    async with Tester(app) as tester:
        await tester.to_orders(Order.model_construct(order_id=1, qty=0))
        await tester.to_orders(Order(order_id=2, qty=1))
        await app.awaited_mocks.on_orders.assert_called_with(Order(order_id=2, qty=1), timeout=5)
    assert got == [Order(order_id=2, qty=1)]
