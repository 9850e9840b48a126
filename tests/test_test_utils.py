"""The 0.8.0 helpers of `fastkafka.testing`: `import *`, stable seeds, the scoped aiokafka mock, running a script
and cancelling it (also a real app under `fastkafka run` against Kafka), and `display_docs`."""
import asyncio
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import pytest
from aiokafka import AIOKafkaProducer
from helpers import unique_topic
from run_support import fastkafka_cli, process_exits

import fastkafka.testing as testing
from fastkafka._testing import test_utils
from fastkafka.testing import display_docs, mock_AIOKafkaProducer_send, nb_safe_seed, run_script_and_cancel, true_after

@contextlib.contextmanager
def socket_in_use() -> Iterator[int]:
    "A port on 127.0.0.1 that something is listening on."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


PUBLIC = {
    "ApacheKafkaBroker", "InMemoryBroker", "LocalRedpandaBroker", "Tester",
    "nb_safe_seed", "true_after", "mock_AIOKafkaProducer_send", "run_script_and_cancel", "display_docs",
}


def test_star_import_exposes_exactly_all() -> None:
    namespace: dict = {}
    exec("from fastkafka.testing import *", namespace)
    assert set(testing.__all__) == PUBLIC
    assert set(namespace) - {"__builtins__"} == PUBLIC
    assert namespace["true_after"] is true_after


@pytest.mark.subprocess
def test_importing_fastkafka_testing_does_not_need_ipython(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("docs")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["IPython"] = None  # as if IPython were not installed
        from fastkafka.testing import *
        display_docs({str(tmp_path)!r}, port=0)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Serving the docs on http://127.0.0.1:"), result.stdout


def test_nb_safe_seed_is_stable_across_processes() -> None:
    code = "from fastkafka.testing import nb_safe_seed; print(nb_safe_seed('my-notebook')(7))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(salt)}).stdout.strip() for salt in (1, 2)}
    assert runs == {str(nb_safe_seed("my-notebook")(7))}
    assert nb_safe_seed("my-notebook")(7) == nb_safe_seed("my-notebook")(0) + 7
    assert nb_safe_seed("a")(0) != nb_safe_seed("b")(0)


async def test_true_after_turns_true_once_the_time_has_passed() -> None:
    assert not true_after(3600)()
    soon = true_after(0.1)
    assert not soon()

    async def until() -> None:
        while not soon():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(), 5)


async def test_mock_send_is_scoped_and_restored() -> None:
    real = AIOKafkaProducer.send
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1")  # never started: nothing may reach the network
    with mock_AIOKafkaProducer_send() as send:
        assert AIOKafkaProducer.send is send
        metadata = await (await producer.send("t", b"v", partition=2))
        await producer.send_and_wait("t", b"w")
    assert AIOKafkaProducer.send is real
    assert (metadata.topic, metadata.partition) == ("t", 2)
    send.assert_any_await("t", b"v", partition=2)
    assert send.await_count == 2
    await producer.stop()

    with pytest.raises(ValueError), mock_AIOKafkaProducer_send() as send:
        send.side_effect = ValueError("broker says no")
        await producer.send("t", b"v")
    assert AIOKafkaProducer.send is real


SLEEPER = "import os, time\nprint('running in', os.getcwd(), flush=True)\ntime.sleep(600)\n"


def test_run_script_and_cancel_from_sync_code() -> None:
    rc, out = run_script_and_cancel(SLEEPER, cancel_after=1)
    assert rc == -signal.SIGTERM, out
    folder = out.decode().removeprefix("running in ").strip()
    assert Path(folder).name.startswith("fastkafka-script-") and not Path(folder).exists(), out


async def test_run_script_and_cancel_inside_a_running_loop() -> None:
    rc, out = run_script_and_cancel(SLEEPER, script_file="other.py", cmd=f"{shlex.quote(sys.executable)} other.py",
                                    cancel_after=1)
    assert rc == -signal.SIGTERM and out.startswith(b"running in "), out


@pytest.mark.subprocess
async def test_a_command_ignoring_sigterm_is_killed_with_its_whole_group(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child", child.pid, flush=True)
        time.sleep(600)
    """)
    rc, out = await test_utils._run_and_cancel([sys.executable, "-c", script], str(tmp_path), 2, terminate_timeout=0.5)
    assert rc == -signal.SIGKILL, out
    child = int(re.search(rb"child (\d+)", out).group(1))  # type: ignore[union-attr]
    await process_exits(child, timeout=10)


def test_bad_arguments_are_refused() -> None:
    bad_file = re.escape("script_file must be a plain Python file name like 'app.py', got 'a/b.py'")
    with pytest.raises(ValueError, match=bad_file):
        run_script_and_cancel("", script_file="a/b.py")
    with pytest.raises(ValueError, match="cancel_after must be zero or more seconds, got -1"):
        run_script_and_cancel("", cancel_after=-1)
    with pytest.raises(FileNotFoundError):
        run_script_and_cancel("", cmd="no-such-command-xyz --flag")


DOCS_APP = textwrap.dedent("""
    from pydantic import BaseModel
    from fastkafka import FastKafka

    class Ping(BaseModel):
        n: int

    my_app = FastKafka(title="Pinger", kafka_brokers={"local": {"url": "127.0.0.1", "port": 9092}})

    @my_app.consumes(topic="pings")
    async def on_ping(msg: Ping) -> None:
        pass
""")


@pytest.mark.subprocess
@pytest.mark.slow
def test_generate_docs_runs_before_the_command() -> None:
    listing = "import os; print(sorted(os.listdir('asyncapi/docs')), os.path.isfile('asyncapi/spec/asyncapi.yml'))"
    rc, out = run_script_and_cancel(DOCS_APP, app_name="pinger", kafka_app_name="my_app", generate_docs=True,
                                    cmd=shlex.join([sys.executable, "-c", listing]), cancel_after=60)
    assert rc == 0, out
    assert b"'index.html'" in out and out.rstrip().endswith(b"True"), out


@pytest.mark.subprocess
def test_generate_docs_failure_says_what_failed() -> None:
    with pytest.raises(RuntimeError, match=r"`fastkafka docs generate pinger:no_such_app` failed with exit code 2"):
        run_script_and_cancel(DOCS_APP, app_name="pinger", kafka_app_name="no_such_app", generate_docs=True)


APP = """
from pydantic import BaseModel
from fastkafka import FastKafka

class Ping(BaseModel):
    n: int

kafka_app = FastKafka(kafka_brokers={{"local": {{"url": "{host}", "port": {port}}}}})

@kafka_app.consumes(topic="{topic}", auto_offset_reset="earliest")
async def on_ping(msg: Ping) -> None:
    print(f"got ping {{msg.n}}", flush=True)
"""


@pytest.mark.broker
@pytest.mark.subprocess
async def test_real_app_under_fastkafka_run_is_cancelled_cleanly(kafka_broker: str) -> None:
    topic = unique_topic("ping")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"n": 42}')
    finally:
        await producer.stop()
    host, port = kafka_broker.rsplit(":", 1)
    cmd = shlex.join(fastkafka_cli("run", "--num-workers", "1", "--kafka-broker", "local", "server:kafka_app"))
    # the default cancel_after (10 s) leaves a wide margin: the app is consuming about a second after the start
    rc, out = run_script_and_cancel(APP.format(host=host, port=port, topic=topic), app_name="server", cmd=cmd)
    text = out.decode(errors="replace")
    assert rc == 0, text
    assert "is running" in text and "got ping 42" in text, text
    assert "Received SIGTERM" in text and "All workers stopped cleanly" in text, text
    assert "Traceback" not in text, text


def test_display_docs_serves_briefly_then_stops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "index.html").write_text("<h1>docs</h1>")
    with patch.object(test_utils, "_DISPLAY_SECONDS", 0.5), patch("IPython.get_ipython", return_value=None):
        display_docs(str(tmp_path), port=0)
    url = capsys.readouterr().out.split()[4]
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"<h1>docs</h1>"
    for thread in [t for t in threading.enumerate() if t.name == "fastkafka-display-docs"]:
        thread.join(timeout=10)
        assert not thread.is_alive()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(url, timeout=5)


def test_display_docs_shows_an_iframe_under_ipython(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>docs</h1>")
    with patch("IPython.display.display") as shown, patch("IPython.get_ipython", return_value=object()):
        display_docs(str(tmp_path), port=0)
    (iframe,) = shown.call_args.args
    with urllib.request.urlopen(iframe.src, timeout=5) as response:
        assert response.read() == b"<h1>docs</h1>"


def test_display_docs_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape("No index.html in")):
        display_docs(str(tmp_path))
    (tmp_path / "index.html").write_text("x")
    with socket_in_use() as port, pytest.raises(OSError, match=f"Could not serve the docs on 127.0.0.1:{port}"):
        display_docs(str(tmp_path), port=port)
