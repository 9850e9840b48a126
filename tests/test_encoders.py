"""Round trips of the JSON and Avro encoders: explicit cases for every supported type, and property-based ones
(hypothesis) over generated models and values."""

# the cases spell Optional / Union on purpose: both typing forms must map to Avro unions
# ruff: noqa: UP007, UP045

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from typing import Annotated, Any, Literal, Optional, Union
from uuid import UUID
from zoneinfo import ZoneInfo

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, Field, HttpUrl, NaiveDatetime, create_model

from fastkafka._components.encoder.avro import AvroType
from fastkafka._components.encoder.registry import resolve_decoder, resolve_encoder
from fastkafka.encoder import (
    AvroBase,
    DecodeError,
    EncodeError,
    avro_decoder,
    avro_encoder,
    avsc_to_pydantic,
    json_decoder,
    json_encoder,
)

# ---------------------------------------------------------------------------------------------------------------
# helpers


def canon(v: Any) -> Any:
    """A value where datetimes/times also compare by wall clock and offset (== on aware datetimes compares instants)."""
    if isinstance(v, BaseModel):
        return (type(v).__name__, {k: canon(getattr(v, k)) for k in type(v).model_fields})
    if isinstance(v, (datetime, time)):
        return (type(v).__name__, v.replace(tzinfo=None).isoformat(), v.utcoffset())
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted((canon(x) for x in v), key=repr)
    return (type(v).__name__, v)


def avro_round_trip(m: BaseModel) -> BaseModel:
    back = avro_decoder(avro_encoder(m), type(m))
    assert type(back) is type(m)
    assert back == m
    assert canon(back) == canon(m)
    return back


def json_round_trip(m: BaseModel) -> BaseModel:
    back = json_decoder(json_encoder(m), type(m))
    assert back == m
    assert canon(back) == canon(m)
    return back


# ---------------------------------------------------------------------------------------------------------------
# explicit Avro round trips, one per listed type


class Colour(str, Enum):
    RED = "RED"
    GREEN = "GREEN"


class Priority(IntEnum):
    LOW = 1
    HIGH = 2


class Spaced(Enum):
    A = "a b"
    B = "c-d"


class Inner(BaseModel):
    name: str
    colour: Colour = Colour.GREEN


class Node(BaseModel):
    value: int
    children: list[Node] = []
    parent: Optional[Node] = None


TZ = timezone(timedelta(hours=5, minutes=30))
CASES: list[tuple[str, Any, Any]] = [
    ("bool", bool, True),
    ("int min", int, -(2**63)),
    ("int max", int, 2**63 - 1),
    ("float", float, -1.2345e-300),
    ("str", str, "zürich ✓ \x00 𝄞"),
    ("bytes", bytes, b"\xff\x00\x80 not utf-8"),
    ("none", Optional[int], None),
    ("optional value", Optional[str], "x"),
    ("union", Union[int, str], "seven"),
    ("pipe optional", int | None, 5),
    ("nested model", Inner, Inner(name="in", colour=Colour.RED)),
    ("list of models", list[Inner], [Inner(name="a"), Inner(name="b", colour=Colour.RED)]),
    ("list of lists", list[list[int]], [[1, 2], [], [3]]),
    ("dict", dict[str, int], {"a": 1, "b": -2}),
    ("dict of models", dict[str, Inner], {"k": Inner(name="v")}),
    ("set", set[int], {3, 1, 2}),
    ("tuple", tuple[str, ...], ("a", "b")),
    ("str enum", Colour, Colour.RED),
    ("int enum", Priority, Priority.HIGH),
    ("enum with non-name values", Spaced, Spaced.B),
    ("list of enums", list[Spaced], [Spaced.A, Spaced.B, Spaced.A]),
    ("optional enum", Optional[Colour], Colour.GREEN),
    ("literal", Literal["x", "y"], "y"),
    ("naive datetime", datetime, datetime(2024, 5, 1, 12, 30, 15, 123456)),
    ("utc datetime", datetime, datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)),
    ("+05:30 datetime", datetime, datetime(2024, 5, 1, 12, 30, tzinfo=TZ)),
    ("negative offset datetime", datetime, datetime(1901, 1, 1, tzinfo=timezone(timedelta(hours=-11)))),
    ("zoneinfo datetime", datetime, datetime(2024, 7, 1, 9, tzinfo=ZoneInfo("Europe/Paris"))),
    ("year 1 datetime", datetime, datetime(1, 1, 1)),
    ("year 9999 datetime", datetime, datetime(9999, 12, 31, 23, 59, 59, 999999)),
    ("optional datetime", Optional[datetime], datetime(2024, 1, 1, tzinfo=TZ)),
    ("list of datetimes", list[datetime], [datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=TZ)]),
    ("date", date, date(1969, 12, 31)),
    ("naive time", time, time(23, 59, 59, 999999)),
    ("aware time", time, time(8, 0, tzinfo=timezone(timedelta(hours=-3)))),
    ("uuid", UUID, UUID("12345678-1234-5678-1234-567812345678")),
    ("decimal", Decimal, Decimal("-1234567890.123456789000")),
    ("constrained decimal", Annotated[Decimal, Field(max_digits=8, decimal_places=3)], Decimal("-12345.678")),
    ("url", HttpUrl, HttpUrl("https://example.com/a?b=1")),
    ("timedelta", timedelta, timedelta(days=-2, microseconds=7)),
    ("pinned int", Annotated[int, AvroType("int")], -(2**31)),
    ("pinned float", Annotated[float, AvroType("float")], 0.5),
]


@pytest.mark.parametrize("name,ann,value", CASES, ids=[c[0] for c in CASES])
def test_avro_round_trip_of_each_type(name: str, ann: Any, value: Any) -> None:
    Model = create_model(f"Case_{abs(hash(name))}", x=(ann, ...))
    back = avro_round_trip(Model(x=value))
    if isinstance(value, (datetime, time)):
        assert back.x.utcoffset() == value.utcoffset()  # timezone kept as given; naive stays naive
        assert back.x.replace(tzinfo=None) == value.replace(tzinfo=None)
    if name == "decimal":  # unconstrained decimals keep their exact digits (a constrained one is padded to its scale)
        assert str(back.x) == str(value)


@pytest.mark.parametrize(
    "name,ann,value", [c for c in CASES if c[0] not in ("bytes", "pinned float")], ids=lambda v: str(v)[:30]
)
def test_json_round_trip_of_each_type(name: str, ann: Any, value: Any) -> None:
    Model = create_model(f"JCase_{abs(hash(name))}", x=(ann, ...))
    json_round_trip(Model(x=value))


def test_standard_timestamps_keep_the_instant() -> None:
    class Stamps(BaseModel):
        aware: AwareDatetime
        naive: NaiveDatetime

    m = Stamps(aware=datetime(2024, 1, 1, 12, tzinfo=TZ), naive=datetime(2024, 1, 1, 12))
    back = avro_decoder(avro_encoder(m), Stamps)
    assert back == m
    assert back.aware.utcoffset() == timedelta(0)  # documented: AwareDatetime comes back in UTC
    assert back.naive.tzinfo is None
    fields = {f["name"]: f["type"] for f in AvroBase.avro_schema_for_pydantic_class(Stamps)["fields"]}
    assert fields == {"aware": {"type": "long", "logicalType": "timestamp-micros"},
                      "naive": {"type": "long", "logicalType": "local-timestamp-micros"}}


def test_defaults_optional_and_aliases() -> None:
    class WithDefaults(AvroBase):
        n: int = 3
        s: str = "x"
        o: Optional[int] = None
        o5: Optional[int] = 5
        tags: list[str] = Field(default_factory=list)
        colour: Colour = Colour.RED
        when: datetime = datetime(2020, 1, 1)
        alias_field: int = Field(0, alias="aliasField")

    m = WithDefaults()
    avro_round_trip(m)
    avro_round_trip(WithDefaults(n=1, o=2, o5=None, tags=["a"], colour=Colour.GREEN, aliasField=9))
    json_round_trip(WithDefaults(aliasField=9))  # aliases round-trip in JSON too (0.8.0 lost them)
    fields = {f["name"]: f for f in WithDefaults.avro_schema()["fields"]}
    assert fields["n"]["default"] == 3
    assert fields["o"] == {"name": "o", "type": ["null", "long"], "default": None}
    assert fields["o5"] == {"name": "o5", "type": ["long", "null"], "default": 5}
    assert fields["tags"]["default"] == []
    assert fields["colour"]["default"] == "RED"
    assert "default" not in fields["when"]  # not expressible: left out, the schema stays valid
    assert "aliasField" in fields
    fastavro.parse_schema(WithDefaults.avro_schema())


def test_strict_models_get_enum_members_back() -> None:
    from pydantic import ConfigDict

    class StrictModel(BaseModel):
        model_config = ConfigDict(strict=True)
        colour: Colour
        colours: list[Colour]
        inner: Inner

    class StrictField(BaseModel):
        colour: Colour = Field(strict=True)
        lax: Colour

    avro_round_trip(StrictModel(colour=Colour.RED, colours=[Colour.GREEN], inner=Inner(name="i")))
    avro_round_trip(StrictField(colour=Colour.GREEN, lax=Colour.RED))


def test_strict_models_get_their_containers_and_parsed_values_back() -> None:
    from pydantic import ConfigDict

    class Strict(BaseModel):
        model_config = ConfigDict(strict=True)
        a: set[int]
        b: tuple[int, ...]
        c: frozenset[str]
        d: Decimal
        e: HttpUrl
        f: timedelta
        g: list[tuple[str, ...]]
        h: Optional[Decimal] = None

    avro_round_trip(Strict(a={1}, b=(1, 2), c=frozenset({"x"}), d=Decimal("1.50"), e=HttpUrl("http://x.com"),
                           f=timedelta(days=1), g=[("a",)], h=Decimal("2")))


def test_recursive_model() -> None:
    tree = Node(value=1, children=[Node(value=2, children=[Node(value=3)])], parent=Node(value=0))
    avro_round_trip(tree)


def test_deep_nesting_with_conversions() -> None:
    class Leaf(BaseModel):
        at: datetime
        colour: Colour

    class Mid(BaseModel):
        leaves: dict[str, list[Optional[Leaf]]]

    class Top(BaseModel):
        mids: list[Mid]
        again: Optional[Leaf] = None

    leaf = Leaf(at=datetime(2024, 1, 1, tzinfo=TZ), colour=Colour.RED)
    avro_round_trip(Top(mids=[Mid(leaves={"a": [leaf, None]}), Mid(leaves={})], again=leaf))


def test_schema_is_cached_per_class() -> None:
    from fastkafka._components.encoder import avro

    class Cached(BaseModel):
        x: int

    avro_encoder(Cached(x=1))
    codec = avro._CODECS[Cached]
    avro_encoder(Cached(x=2))
    avro_decoder(avro_encoder(Cached(x=3)), Cached)
    assert avro._CODECS[Cached] is codec


def test_avro_interoperates_with_plain_fastavro() -> None:
    class Plain(BaseModel):
        id: int
        name: str
        score: float
        tags: list[str]

    m = Plain(id=7, name="seven", score=0.5, tags=["a"])
    parsed = fastavro.parse_schema(AvroBase.avro_schema_for_pydantic_object(m))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, m.model_dump())
    assert buf.getvalue() == avro_encoder(m)
    assert fastavro.schemaless_reader(io.BytesIO(avro_encoder(m)), parsed, None) == m.model_dump()


# ---------------------------------------------------------------------------------------------------------------
# errors


def test_decode_errors_name_the_field_and_problem() -> None:
    class Point(BaseModel):
        x: int
        y: int = Field(gt=0)

    with pytest.raises(DecodeError) as e:
        json_decoder(b'{"x": "one", "y": 1}', Point)
    assert "Could not decode JSON bytes as Point: x: Input should be a valid integer" in str(e.value)
    assert e.value.model is Point and e.value.errors()[0]["loc"] == ("x",)
    assert isinstance(e.value, ValueError)

    with pytest.raises(DecodeError, match="not valid JSON"):
        json_decoder(b"{nope", Point)
    with pytest.raises(DecodeError, match="not valid UTF-8"):
        json_decoder(b'{"x": "\xc3\x28"}', Point)

    raw = avro_encoder(Point(x=1, y=1))
    assert avro_decoder(raw, Point) == Point(x=1, y=1)
    with pytest.raises(DecodeError, match="y: Input should be greater than 0"):
        avro_decoder(avro_encoder(Point.model_construct(x=1, y=-1)), Point)
    with pytest.raises(DecodeError, match="left over"):
        avro_decoder(json_encoder(Point(x=1, y=1)), Point)
    with pytest.raises(DecodeError, match="not an Avro record"):
        avro_decoder(raw[:1], Point)


def test_encode_errors() -> None:
    class Big(BaseModel):
        n: int

    with pytest.raises(EncodeError, match="Could not encode Big as Avro"):
        avro_encoder(Big(n=2**64))
    with pytest.raises(TypeError, match=r"Bad.x: .* has no Avro form"):

        class Bad(BaseModel):
            x: Any

        avro_encoder(Bad(x=1))


def test_registry() -> None:
    assert resolve_encoder("avro") == (avro_encoder, "avro")
    assert resolve_decoder("json") == (json_decoder, "json")
    with pytest.raises(ValueError, match="Unknown decoder - xml: valid names are 'json', 'avro'"):
        resolve_decoder("xml")


def test_json_and_registry_work_without_fastavro() -> None:
    probe = (
        "import sys; sys.modules['fastavro'] = None\n"
        "from pydantic import BaseModel\n"
        "import fastkafka.encoder as e\n"
        "from fastkafka._components.encoder.registry import resolve_encoder\n"
        "class M(BaseModel):\n    x: int\n"
        "assert e.json_decoder(e.json_encoder(M(x=1)), M) == M(x=1)\n"
        "assert resolve_encoder('json')[1] == 'json'\n"
        "try:\n    resolve_encoder('avro')\nexcept ModuleNotFoundError as err:\n    print(err)\n"
        "try:\n    e.avro_encoder(M(x=1))\nexcept ModuleNotFoundError as err:\n    print(err)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 2
    assert all("Please install FastKafka using the command 'fastkafka[avro]'" in line for line in lines)


# ---------------------------------------------------------------------------------------------------------------
# avsc_to_pydantic


LOGICAL_AVSC = {
    "type": "record", "name": "Event", "namespace": "com.example",
    "fields": [
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "fx", "type": {"type": "fixed", "name": "Fx", "size": 8, "logicalType": "decimal",
                                "precision": 12, "scale": 4}},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "local_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "local_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "small", "type": "int"},
        {"name": "ratio", "type": "float"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}, "default": "B"},
        {"name": "sub", "type": {"type": "record", "name": "Sub", "fields": [
            {"name": "when", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}], "default": None}]}},
        {"name": "subs", "type": {"type": "map", "values": "Sub"}, "default": {}},
        {"name": "raw", "type": "bytes", "default": "\u00ff"},
        {"name": "next", "type": ["null", "Event"], "default": None},
    ],
}


def test_avsc_to_pydantic_with_logical_types() -> None:
    Event = avsc_to_pydantic(LOGICAL_AVSC)
    assert issubclass(Event, AvroBase)
    utc = timezone.utc
    e = Event(
        id=UUID(int=3), amount=Decimal("1234567.89"), fx=Decimal("-1.2345"),
        ts_ms=datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=utc), ts_us=datetime(2024, 1, 1, 12, 0, 0, 1, tzinfo=utc),
        local_ms=datetime(2024, 1, 1, 12, 0, 0, 5000), local_us=datetime(2024, 1, 1, 12, 0, 0, 5),
        day=date(2024, 2, 29), t_ms=time(1, 2, 3, 4000), t_us=time(1, 2, 3, 4),
        small=-5, ratio=0.25, sub={"when": datetime(2000, 1, 1, tzinfo=utc)},
        next={"id": UUID(int=4), "amount": "0", "fx": "0", "ts_ms": 0, "ts_us": 0,
              "local_ms": datetime(1970, 1, 1), "local_us": datetime(1970, 1, 1), "day": date(1970, 1, 1),
              "t_ms": time(0), "t_us": time(0), "small": 0, "ratio": 0, "sub": {}, "raw": b"ok"},
    )
    # real Python types, defaults applied
    assert isinstance(e.id, UUID) and isinstance(e.amount, Decimal) and isinstance(e.day, date)
    assert isinstance(e.t_ms, time) and e.ts_ms.tzinfo is not None and e.local_us.tzinfo is None
    assert e.kind.value == "B" and e.raw == b"\xff" and e.subs == {} and e.next.next is None
    avro_round_trip(e)
    json_round_trip(e.model_copy(update={"raw": b"JSON bytes must be UTF-8"}))
    # the bytes are those fastavro writes with the original schema, and it reads ours
    assert to_parsing_canonical_form(fastavro.parse_schema(Event.avro_schema())) == to_parsing_canonical_form(
        fastavro.parse_schema(LOGICAL_AVSC)
    )
    read = fastavro.schemaless_reader(io.BytesIO(avro_encoder(e)), fastavro.parse_schema(LOGICAL_AVSC), None)
    assert read["amount"] == Decimal("1234567.89") and read["kind"] == "B" and read["next"]["small"] == 0
    # invalid values are rejected on instantiation
    with pytest.raises(ValueError):
        Event(**{**e.model_dump(), "small": 2**31})
    with pytest.raises(ValueError):
        Event(**{**e.model_dump(), "ts_us": datetime(2024, 1, 1)})  # timestamp-micros is an instant: needs a zone


def test_avsc_to_pydantic_errors_of_0_8_0() -> None:
    with pytest.raises(AttributeError, match="Type not supported"):
        avsc_to_pydantic({"type": "enum", "name": "E", "symbols": ["A"]})
    with pytest.raises(AttributeError, match="Name is required"):
        avsc_to_pydantic({"type": "record", "fields": [{"name": "a", "type": "int"}]})
    with pytest.raises(AttributeError, match="fields are required"):
        avsc_to_pydantic({"type": "record", "name": "R"})
    with pytest.raises(ValueError, match="Avro schema has no fields"):
        avsc_to_pydantic({"type": "record", "name": "R", "fields": []})


# ---------------------------------------------------------------------------------------------------------------
# property-based round trips


class Spec:
    "An annotation with a strategy for its values."

    def __init__(self, ann: Any, values: st.SearchStrategy[Any], json_ok: bool = True, label: str = ""):
        self.ann, self.values, self.json_ok, self.label = ann, values, json_ok, label

    def __repr__(self) -> str:
        return self.label


_offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
_zones = st.none() | _offsets
LEAVES = [
    Spec(bool, st.booleans(), label="bool"),
    Spec(int, st.integers(-(2**63), 2**63 - 1), label="int"),
    Spec(float, st.floats(allow_nan=False, allow_infinity=False), label="float"),
    Spec(str, st.text(max_size=8), label="str"),
    Spec(bytes, st.binary(max_size=8), json_ok=False, label="bytes"),
    Spec(datetime, st.datetimes(timezones=_zones), label="datetime"),
    Spec(date, st.dates(), label="date"),
    Spec(time, st.times(timezones=_zones), label="time"),
    Spec(UUID, st.uuids(), label="UUID"),
    Spec(Decimal, st.decimals(allow_nan=False, allow_infinity=False), label="Decimal"),
    Spec(Annotated[Decimal, Field(max_digits=9, decimal_places=3)],
         st.decimals(min_value=-999999, max_value=999999, places=3), label="Decimal(9,3)"),
    Spec(Colour, st.sampled_from(Colour), label="Colour"),
    Spec(Spaced, st.sampled_from(Spaced), label="Spaced"),
    Spec(Priority, st.sampled_from(Priority), label="Priority"),
]
_model_ids = iter(range(10**9))


def _record(specs: list[Spec]) -> Spec:
    Model = create_model(f"Gen{next(_model_ids)}", **{f"f{i}": (s.ann, ...) for i, s in enumerate(specs)})
    values = st.fixed_dictionaries({f"f{i}": s.values for i, s in enumerate(specs)}).map(lambda d: Model(**d))
    return Spec(Model, values, all(s.json_ok for s in specs), f"{Model.__name__}{specs}")


def _specs(depth: int) -> st.SearchStrategy[Spec]:
    leaf = st.sampled_from(LEAVES)
    if depth == 0:
        return leaf
    sub = _specs(depth - 1)
    return st.one_of(
        leaf,
        sub.filter(lambda s: "Optional" not in s.label).map(
            lambda s: Spec(Optional[s.ann], st.none() | s.values, s.json_ok, f"Optional[{s.label}]")),
        sub.map(lambda s: Spec(list[s.ann], st.lists(s.values, max_size=3), s.json_ok, f"list[{s.label}]")),
        sub.map(lambda s: Spec(dict[str, s.ann], st.dictionaries(st.text(max_size=4), s.values, max_size=3),
                               s.json_ok, f"dict[{s.label}]")),
        st.lists(sub, min_size=1, max_size=4).map(_record),
    )


@st.composite
def models(draw: st.DrawFn, json_only: bool = False) -> BaseModel:
    specs = draw(st.lists(_specs(2).filter(lambda s: s.json_ok or not json_only), min_size=1, max_size=5))
    return draw(_record(specs).values)


PROPS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(models())
def test_avro_round_trips_generated_models(m: BaseModel) -> None:
    avro_round_trip(m)


@PROPS
@given(models(json_only=True))
def test_json_round_trips_generated_models(m: BaseModel) -> None:
    json_round_trip(m)


@PROPS
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
                       st.sampled_from(["int", "long", "float", "double", "string", "bytes", "boolean",
                                        "uuid", "date", "timestamp-millis", "time-micros"]),
                       min_size=1, max_size=6),
       st.data())
def test_avsc_models_round_trip(fields: dict[str, str], data: st.DataObject) -> None:
    logical = {"uuid": ("string", "uuid"), "date": ("int", "date"), "timestamp-millis": ("long", "timestamp-millis"),
               "time-micros": ("long", "time-micros")}
    avsc = {"type": "record", "name": "Gen", "fields": [
        {"name": n, "type": {"type": logical[t][0], "logicalType": t} if t in logical else t}
        for n, t in fields.items()]}
    Model = avsc_to_pydantic(avsc)
    strategies = {
        "int": st.integers(-(2**31), 2**31 - 1), "long": st.integers(-(2**63), 2**63 - 1),
        "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
        "double": st.floats(allow_nan=False, allow_infinity=False), "string": st.text(max_size=5),
        "bytes": st.binary(max_size=5), "boolean": st.booleans(), "uuid": st.uuids(), "date": st.dates(),
        "timestamp-millis": st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                                         timezones=st.just(timezone.utc)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
        "time-micros": st.times(),
    }
    values = {n: data.draw(strategies[t]) for n, t in fields.items()}
    m = Model(**{Model.model_fields[p].alias or p: v for p, v in zip(Model.model_fields, values.values(), strict=True)})
    avro_round_trip(m)
    parsed = fastavro.parse_schema(avsc)
    read = fastavro.schemaless_reader(io.BytesIO(avro_encoder(m)), parsed, None)
    assert read == values
