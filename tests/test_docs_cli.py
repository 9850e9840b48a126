"""`fastkafka docs ...` as a user runs it: exit codes and the messages on the terminal."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent


def _fastkafka(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("fastkafka")
    assert exe, "the fastkafka console script is not installed (pip install -e .)"
    return subprocess.run([exe, "docs", *args], cwd=TESTS_DIR, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


@pytest.mark.subprocess
@pytest.mark.parametrize("app_str, message", [
    ("no_colon", 'Import string "no_colon" must be in format "<module>:<attribute>"'),
    ("no_such_module_xyz:app", 'Could not import module "no_such_module_xyz"'),
    ("asyncapi_apps:no_such_app", 'Attribute "no_such_app" not found in module "asyncapi_apps".'),
    ("asyncapi_apps:SECRETS", '"asyncapi_apps:SECRETS" is a tuple, not a FastKafka app.'),
])
@pytest.mark.parametrize("command", ["generate", "serve"])
def test_bad_app_strings(command: str, app_str: str, message: str) -> None:
    result = _fastkafka(command, app_str)
    assert result.returncode == 2, result
    text = " ".join(result.stderr.replace("│", " ").split())
    assert message in text, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.subprocess
def test_install_deps_without_node() -> None:
    result = _fastkafka("install_deps", env={"PATH": str(Path(sys.executable).parent / "no-such-dir")})
    assert result.returncode == 1, result
    assert "node and npm not found on PATH" in result.stderr and "https://nodejs.org" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.subprocess
def test_install_deps_second_run_is_a_noop() -> None:
    first = _fastkafka("install_deps", timeout=900)
    assert first.returncode == 0, first
    second = _fastkafka("install_deps", timeout=60)
    assert second.returncode == 0, second
    assert second.stdout.strip().endswith("nothing to do."), second.stdout


@pytest.mark.subprocess
def test_generate_into_a_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    result = _fastkafka("generate", "--root-path", str(tmp_path / "not-a-dir"), "asyncapi_apps:readme_kafka_app")
    assert result.returncode == 1, result
    assert result.stderr.startswith("Error: generating the docs of asyncapi_apps:readme_kafka_app failed:"), result


@pytest.mark.subprocess
def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _fastkafka("serve", "--root-path", str(tmp_path), "--port", str(port),
                            "asyncapi_apps:readme_kafka_app")
    assert result.returncode == 1, result
    assert f"Error: could not serve on 127.0.0.1:{port}: Address already in use" in result.stderr, result.stderr
