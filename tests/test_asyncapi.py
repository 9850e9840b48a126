"""The generated AsyncAPI spec goes through the official parser (@asyncapi/parser, pinned) for a set of apps.

Any parser error fails. With AsyncAPI 3.1.0 (the default) the parser must give no diagnostic at all; with 3.0.0
only its "latest version not used" information; with 2.6.0 exactly the warnings explained in the
06e_docs notebook, which only the app's author can fix (license always; description and contact when missing).
The parser needs about a second per document, so the 3.0.0 label is checked on three apps only.
Each app is also checked for structure: a channel per topic (dead-letter topics included), both operations on a
topic consumed and produced, every $ref resolving, servers and security schemes that match, and no credential
anywhere. The parser does not check examples against their schemas, so the dead-letter messages' are checked here.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastkafka._components.asyncapi import app_asyncapi, export_spec
from fastkafka._components.docs import install_docs_deps, validate_spec

from asyncapi_apps import APPS, SECRETS

EXPLAINED_2X = {"asyncapi-info-license", "asyncapi-info-description", "asyncapi-info-contact",
                "asyncapi-info-contact-properties"}


@pytest.fixture(scope="session")
def docs_tools() -> Path:
    "The pinned AsyncAPI tools, installed once (a no-op when they are there)."
    return asyncio.run(install_docs_deps(echo=lambda line: None))


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"external $ref {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _expected_2x_warnings(app: Any) -> list[str]:
    "The 2.x warnings only the app's author can fix, as explained in the 06e_docs notebook."
    expected = ["asyncapi-info-license"]
    if not app._description:
        expected.append("asyncapi-info-description")
    contact = app._contact or {}
    if not contact:
        expected.append("asyncapi-info-contact")
    elif not all(contact.get(k) for k in ("name", "url", "email")):
        expected.append("asyncapi-info-contact-properties")
    return sorted(expected)


def _check_structure(app: Any, doc: dict[str, Any]) -> None:
    for ref in _refs(doc):
        assert isinstance(_resolve(doc, ref), dict), f"$ref {ref} does not resolve"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == app.model.topics()
    ops = doc["operations"]
    for spec, action in [(s, "receive") for s in app._consumers] + [(s, "send") for s in app._producers]:
        matching = [o for k, o in ops.items() if k.startswith(spec.func.__name__) and o["action"] == action
                    and _resolve(doc, o["channel"]["$ref"])["address"] == spec.topic]
        assert len(matching) >= 1, (spec.func.__name__, action, spec.topic)
        op = matching[0]
        if spec.description:
            assert op["description"].split("\n\n")[0] == spec.description
        if spec.message_type is not None:
            message = _resolve(doc, op["messages"][0]["$ref"])
            assert _resolve(doc, message["$ref"])["title"] == spec.message_type.__name__
    for server in doc["servers"].values():
        for req in server.get("security", []):
            assert _resolve(doc, req["$ref"])["type"]


async def _parse(app: Any, version: str, tmp_path: Path) -> tuple[dict[str, Any], Any]:
    path = export_spec(app, tmp_path / f"asyncapi-{version}.yml", version)  # type: ignore[arg-type]
    text = path.read_text()
    for secret in SECRETS:
        assert secret not in text, f"credential {secret!r} leaked into the spec"
    return yaml.safe_load(text), await validate_spec(path)


@pytest.mark.subprocess
@pytest.mark.parametrize("name", sorted(APPS))
async def test_spec_passes_official_parser(name: str, docs_tools: Path, tmp_path: Path) -> None:
    app = APPS[name]()
    (doc3, r31), (doc2, r26) = await asyncio.gather(*(_parse(app, v, tmp_path) for v in ("3.1.0", "2.6.0")))
    for version, report in (("3.1.0", r31), ("2.6.0", r26)):
        assert report.valid and not report.of("error"), (version, report.of("error"))
    assert r31.diagnostics == [], r31.diagnostics
    assert sorted(d["code"] for d in r26.of("warning")) == _expected_2x_warnings(app), r26.of("warning")
    assert {d["code"] for d in r26.of("information")} <= {"asyncapi-latest-version"}, r26.diagnostics
    assert doc3 == app_asyncapi(app)
    _check_structure(app, doc3)
    for ref in _refs(doc2):
        _resolve(doc2, ref)


@pytest.mark.subprocess
async def test_asyncapi_3_0_0_label(docs_tools: Path, tmp_path: Path) -> None:
    "3.0.0 is the 3.1.0 document under the older label; the parser only notes that a newer version exists."
    for name in ("security", "multi_cluster", "dead_letters"):
        doc, report = await _parse(APPS[name](), "3.0.0", tmp_path)
        assert report.valid, report.of("error")
        assert [(d["severity"], d["code"]) for d in report.diagnostics] == [("information", "asyncapi-latest-version")]
        assert doc == app_asyncapi(APPS[name]()) | {"asyncapi": "3.0.0"}


def test_topic_consumed_and_produced_has_both_operations() -> None:
    doc = app_asyncapi(APPS["both_ways"]())
    on_topic = {k: o["action"] for k, o in doc["operations"].items() if o["channel"]["$ref"] == "#/channels/orders"}
    assert sorted(on_topic.values()) == ["receive", "send"], on_topic
    doc2 = app_asyncapi(APPS["both_ways"](), "2.6.0")
    assert {"publish", "subscribe"} <= set(doc2["channels"]["orders"])


def test_override_clusters_are_documented() -> None:
    doc = app_asyncapi(APPS["multi_cluster"]())
    by_address: dict[str, list[list[str]]] = {}
    for channel in doc["channels"].values():
        by_address.setdefault(channel["address"], []).append(sorted(r["$ref"] for r in channel["servers"]))
    # "events" is read from the app's cluster and written to the analytics cluster: two channels
    assert by_address["events"] == [
        ["#/servers/localhost", "#/servers/production"],
        ["#/servers/localhost-override-1", "#/servers/production-override-1"],
    ]
    assert doc["servers"]["production-override-1"]["host"] == "analytics.example.com:9094"


def test_multi_address_security_references_resolve() -> None:
    doc = app_asyncapi(APPS["security"]())
    schemes = doc["components"]["securitySchemes"]
    for key, server in doc["servers"].items():
        if key.startswith("production-bootstrap-server-"):
            (req,) = server["security"]
            assert req["$ref"].rsplit("/", 1)[1] in schemes
    assert {s["type"] for s in schemes.values()} >= {"scramSha512", "plain", "X509", "oauth2", "httpApiKey"}


def test_no_credentials_from_kwargs() -> None:
    for name, make in APPS.items():
        text = yaml.safe_dump(app_asyncapi(make()))
        for secret in SECRETS:
            assert secret not in text, (name, secret)


# ------------------------------------------------------------------------------------------ dead-letter topics


def test_dead_letter_topics_are_channels_the_app_sends_to() -> None:
    app = APPS["dead_letters"]()
    doc = app_asyncapi(app)
    assert set(app.model.dead_letter_topics()) == {"billing-dlt", "payments-dlt"}
    by_address = {c["address"]: (k, c) for k, c in doc["channels"].items()}
    for topic, specs in app.model.dead_letter_topics().items():
        key, channel = by_address[topic]
        assert channel["description"].startswith("Dead-letter topic of "), channel
        for spec in specs:
            assert f"`{spec.topic}`" in channel["description"]
            op = doc["operations"][f"{spec.func.__name__}_dead_letters"]
            assert op["action"] == "send" and op["channel"] == {"$ref": f"#/channels/{key}"}
            assert f"from topic `{spec.topic}`" in op["description"]
            (ref,) = op["messages"]
            assert ref["$ref"].startswith(f"#/channels/{key}/messages/")
            message = _resolve(doc, _resolve(doc, ref["$ref"])["$ref"])
            assert message["headers"] == {"$ref": "#/components/schemas/DeadLetterHeaders"}
            assert message["payload"]["oneOf"][0] == {"$ref": f"#/components/schemas/{spec.message_type.__name__}"}
            assert "could not be decoded" in message["description"]
    # the payments consumer reads another cluster: its dead letters go there too
    assert by_address["payments-dlt"][1]["servers"] == [{"$ref": "#/servers/localhost-override-1"}]
    avro_letter = doc["components"]["messages"]["Data_dead_letter"]
    assert avro_letter["contentType"] == "avro/binary"  # the original bytes, so the original content type


def test_dead_letter_headers_are_documented_one_by_one() -> None:
    from fastkafka._components.retry import DLT_HEADERS

    headers = app_asyncapi(APPS["dead_letters"]())["components"]["schemas"]["DeadLetterHeaders"]
    assert headers["type"] == "object" and list(headers["properties"]) == list(DLT_HEADERS)
    for name, kind in DLT_HEADERS.items():
        prop = headers["properties"][name]
        assert prop["description"], name
        if kind == "str":
            assert prop["type"] == "string", name
        else:  # Spring writes these as binary ints, and so do we
            assert prop["type"] == "integer" and prop["format"] == kind, name
            assert "big-endian" in prop["description"] and "not text" in prop["description"], name
    assert "big-endian" in headers["description"]
    assert set(DLT_HEADERS) - set(headers["required"]) == {"kafka_dlt-original-consumer-group",
                                                            "kafka_dlt-exception-cause-fqcn"}


def test_consumer_operations_describe_their_retries_and_dead_letters() -> None:
    ops = app_asyncapi(APPS["dead_letters"]())["operations"]
    orders = ops["on_orders"]["description"]
    assert orders.startswith("Bills each order.\n\n**Retries**: a call of the handler that raises `TimeoutError`, "
                             "`ConnectionError` is made again, up to 4 calls in all, after waits of 0.2 s, 0.4 s, "
                             "0.8 s")
    assert "goes to the dead-letter topic `billing-dlt`" in orders
    assert "up to 3 calls in all, after waits of 0.5 s, 1 s" in ops["on_refunds"]["description"]
    assert "**Retries**" not in ops["on_payments"]["description"]  # a dead-letter topic, no retries
    events = ops["on_events"]["description"]
    assert "up to 2 calls" in events and "logged and skipped" in events
    assert "with no dead-letter topic it is kept nowhere" in events
    assert ops["to_invoices"].get("description") is None
    # apps without retries or dead letters keep their descriptions as they were
    plain = app_asyncapi(APPS["models"]())["operations"]["on_orders"]
    assert plain["description"] == "Validates incoming orders."


def test_dead_letter_examples_match_their_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = app_asyncapi(APPS["dead_letters"]())
    letters = {k: m for k, m in doc["components"]["messages"].items() if "headers" in m}
    assert sorted(letters) == ["Data_dead_letter", "Order_dead_letter"]
    for message in letters.values():
        (example,) = message["examples"]
        for part in ("headers", "payload"):
            if part in example:
                schema = {**message[part], "components": doc["components"]}  # so "#/components/..." resolves
                jsonschema.validate(example[part], schema)
        assert example["headers"]["kafka_dlt-original-topic"] in {"orders", "payments"}
    raw = doc["components"]["messages"]["Order_dead_letter"]["payload"]["oneOf"][1]
    jsonschema.validate(None, raw)  # a null value (a tombstone that could not be decoded) is a dead letter too


def test_dead_letters_in_the_2_6_layout() -> None:
    doc = app_asyncapi(APPS["dead_letters"](), "2.6.0")
    channel = doc["channels"]["billing-dlt"]
    assert set(channel) == {"description", "servers", "subscribe"}  # the app only sends there
    op = channel["subscribe"]
    assert op["operationId"] == "on_orders_dead_letters__on_refunds_dead_letters"
    assert op["message"] == {"$ref": "#/components/messages/Order_dead_letter"}
    assert doc["components"]["messages"]["Order_dead_letter"]["messageId"] == "Order_dead_letter"
    for ref in _refs(doc):
        _resolve(doc, ref)
