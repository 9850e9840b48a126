"""The generated AsyncAPI spec goes through the official parser (@asyncapi/parser, pinned) for a set of apps.

Any parser error fails. With AsyncAPI 3.1.0 (the default) the parser must give no diagnostic at all; with 3.0.0
only its "latest version not used" information; with 2.6.0 exactly the warnings explained in the
06e_docs notebook, which only the app's author can fix (license always; description and contact when missing).
The parser needs about a second per document, so the 3.0.0 label is checked on two apps only.
Each app is also checked for structure: a channel per topic, both operations on a topic consumed and produced,
every $ref resolving, servers and security schemes that match, and no credential anywhere.
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
    topics = {s.topic for s in [*app._consumers, *app._producers]}
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == topics
    ops = doc["operations"]
    for spec, action in [(s, "receive") for s in app._consumers] + [(s, "send") for s in app._producers]:
        matching = [o for k, o in ops.items() if k.startswith(spec.func.__name__) and o["action"] == action
                    and _resolve(doc, o["channel"]["$ref"])["address"] == spec.topic]
        assert len(matching) >= 1, (spec.func.__name__, action, spec.topic)
        op = matching[0]
        if spec.description:
            assert op["description"] == spec.description
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
    for name in ("security", "multi_cluster"):
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
