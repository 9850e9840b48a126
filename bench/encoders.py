"""Encode + decode throughput of fastkafka's JSON and Avro encoders next to the bare pydantic / fastavro calls.

Not a test: run `python bench/encoders.py` and read the ratios. Each figure is the best of several timed rounds,
with the wrapper and its baseline interleaved so both see the same machine load.
"""

from __future__ import annotations

import argparse
import io
import timeit
from collections.abc import Callable
from datetime import datetime, timezone
from enum import Enum

import fastavro
from pydantic import AwareDatetime, BaseModel

from fastkafka.encoder import AvroBase, avro_decoder, avro_encoder, json_decoder, json_encoder


class Trade(BaseModel):
    trade_id: int
    symbol: str
    side: str
    price: float
    quantity: int
    trader: str
    venue: str
    settled: bool


class Side(str, Enum):
    BUY = "buy"
    SELL = "sell"


class StampedTrade(BaseModel):
    trade_id: int
    symbol: str
    side: Side
    price: float
    quantity: int
    venue: str
    at: datetime


class AwareTrade(BaseModel):
    trade_id: int
    symbol: str
    side: Side
    price: float
    quantity: int
    venue: str
    at: AwareDatetime  # standard timestamp-micros on the wire: the instant is kept, the offset is not


TRADE = Trade(trade_id=123456789, symbol="ACME", side="buy", price=101.25, quantity=500, trader="alice.smith",
              venue="XNAS", settled=False)
STAMPED = StampedTrade(trade_id=123456789, symbol="ACME", side=Side.BUY, price=101.25, quantity=500, venue="XNAS",
                       at=datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone.utc))
AWARE = AwareTrade(**STAMPED.model_dump())


def bare_json(m: BaseModel) -> Callable[[], object]:
    cls = type(m)
    return lambda: cls.model_validate_json(m.model_dump_json().encode())


def ours_json(m: BaseModel) -> Callable[[], object]:
    cls = type(m)
    return lambda: json_decoder(json_encoder(m), cls)


def bare_avro(m: BaseModel, schema: dict) -> Callable[[], object]:
    cls, parsed = type(m), fastavro.parse_schema(schema)
    writer, reader = fastavro.schemaless_writer, fastavro.schemaless_reader

    def run() -> object:
        buf = io.BytesIO()
        writer(buf, parsed, m.model_dump())
        return cls.model_validate(reader(io.BytesIO(buf.getvalue()), parsed, None))
    return run


def ours_avro(m: BaseModel) -> Callable[[], object]:
    cls = type(m)
    return lambda: avro_decoder(avro_encoder(m), cls)


def best_per_second(pairs: dict[str, Callable[[], object]], number: int, repeat: int) -> dict[str, float]:
    "Messages per second (encode + decode) of each callable, best of `repeat` interleaved rounds."
    best = {k: float("inf") for k in pairs}
    for _ in range(repeat):
        for k, f in pairs.items():
            best[k] = min(best[k], timeit.timeit(f, number=number) / number)
    return {k: 1 / t for k, t in best.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--number", type=int, default=500, help="calls per timed round")
    p.add_argument("--repeat", type=int, default=200, help="timed rounds (the best one counts)")
    args = p.parse_args()

    # the "bare" Avro baseline of StampedTrade writes what fastavro takes without help: the enum as its str value
    # and the datetime as a standard timestamp-micros (which does not keep the offset, see 02a_avro)
    stamped_std = AvroBase.avro_schema_for_pydantic_class(StampedTrade)
    stamped_std["fields"][6]["type"] = {"type": "long", "logicalType": "timestamp-micros"}
    stamped_std["fields"][2]["type"] = {"type": "enum", "name": "Side", "symbols": ["buy", "sell"]}

    cases = {
        "JSON, Trade": (ours_json(TRADE), bare_json(TRADE), len(json_encoder(TRADE))),
        "Avro, Trade": (ours_avro(TRADE), bare_avro(TRADE, AvroBase.avro_schema_for_pydantic_class(Trade)),
                        len(avro_encoder(TRADE))),
        "JSON, StampedTrade": (ours_json(STAMPED), bare_json(STAMPED), len(json_encoder(STAMPED))),
        "Avro, StampedTrade": (ours_avro(STAMPED), bare_avro(STAMPED, stamped_std), len(avro_encoder(STAMPED))),
        "Avro, AwareTrade": (ours_avro(AWARE), bare_avro(AWARE, AvroBase.avro_schema_for_pydantic_class(AwareTrade)),
                             len(avro_encoder(AWARE))),
    }
    print(f"{'case':<20} {'bytes':>5} {'fastkafka msg/s':>16} {'bare msg/s':>12} {'ours/bare time':>15}")
    for name, (ours, bare, size) in cases.items():
        ours(), bare()  # warm up (builds the Avro codec)
        rates = best_per_second({"ours": ours, "bare": bare}, args.number, args.repeat)
        ratio = rates["bare"] / rates["ours"]
        print(f"{name:<20} {size:>5} {rates['ours']:>16,.0f} {rates['bare']:>12,.0f} {ratio:>14.3f}x")


if __name__ == "__main__":
    main()
