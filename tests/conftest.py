"""Shared pytest fixtures: real Kafka brokers for the session and unique topic names.

* `kafka_broker` (session): bootstrap string `"127.0.0.1:<port>"` of one ApacheKafkaBroker started for the
  whole session (on port 9092 if free, else a free port), stopped at the end.
* `second_kafka_broker` (session): a second, independent broker, started only when a test asks for it.
* `topic` (function): a fresh topic name; `unique_topic(prefix)` (from tests/helpers.py) makes more.

Topics are auto-created on first use with one partition; create them explicitly (aiokafka admin client)
when a test needs more partitions.
"""
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can `from helpers import unique_topic`

from helpers import unique_topic

from fastkafka._testing.apache_kafka_broker import ApacheKafkaBroker

__all__ = ["unique_topic"]


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[str]:
    "Bootstrap server of a real Kafka broker shared by the whole test session."
    broker = ApacheKafkaBroker()
    bootstrap_server = broker.start()
    try:
        yield bootstrap_server
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def second_kafka_broker() -> Iterator[str]:
    "Bootstrap server of a second, independent broker (for multi-cluster tests); started on first use."
    broker = ApacheKafkaBroker(listener_port=9192)
    bootstrap_server = broker.start()
    try:
        yield bootstrap_server
    finally:
        broker.stop()


@pytest.fixture
def topic() -> str:
    "A topic name no other test uses."
    return unique_topic()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    "The tables of the fault suite (tests/test_faults.py) and of the exactly-once kill test, when they ran."
    from eos_kill import EOS_TABLE, table
    from fault_support import FAULT_TABLE, fault_table_lines
    if EOS_TABLE:
        terminalreporter.section("exactly-once under kill -9 (read_committed reader)")
        for line in table(EOS_TABLE).splitlines():
            terminalreporter.write_line(line)
    if FAULT_TABLE:
        terminalreporter.section("fault suite: lost and duplicated messages per scenario")
        for line in fault_table_lines():
            terminalreporter.write_line(line)
