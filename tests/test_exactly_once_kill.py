"""Exactly-once under `kill -9` on a real broker: 20,000 messages, two `fastkafka run` workers in one group, workers
killed mid-stream; a read_committed reader finds every id exactly once (tests/eos_kill.py has the scenario; run it as
a script for the full table). The table is printed at the end of the pytest run (conftest.py)."""
import pytest
from eos_kill import EOS_TABLE, run_scenario

pytestmark = [pytest.mark.broker, pytest.mark.subprocess, pytest.mark.slow, pytest.mark.timeout(420)]


async def test_kill_9_workers_mid_stream_loses_and_duplicates_nothing(kafka_broker: str) -> None:
    result = await run_scenario(kafka_broker, messages=20_000, kills=4, timeout=300)
    EOS_TABLE.append(result)
    print(result)
    assert result.kills == 4
    assert result.lost == 0, f"{result}\n{result.details}"
    assert result.duplicated == 0, f"{result}\n{result.details}"
    assert result.aborted_transactions >= 1, f"no kill left an open transaction behind: {result}"
