"""The generated HTML docs, checked in a real browser: headless Chromium (Debian's `chromium`).

The page is served over HTTP on 127.0.0.1, Chromium loads it and runs its JavaScript, and the checks read the
*rendered* DOM (`--dump-dom` after the page's scripts ran; script and style text left out), not the HTML
source: the app's title, every topic and every message name must be there. A screenshot of each page is
saved and its path printed (directory: $FASTKAFKA_SCREENSHOT_DIR, default <tmp>/fastkafka-docs-screenshots).
"""

import asyncio
import os
import shutil
import signal
import tempfile
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from fastkafka._components.asyncapi import app_asyncapi
from fastkafka._components.docs import create_docs, install_docs_deps, serve_docs

from asyncapi_apps import APPS

TESTS_DIR = Path(__file__).parent
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=20000",  # let the page's scripts (parse + render the spec) finish
]


@pytest.fixture(scope="session")
def docs_tools() -> Path:
    return asyncio.run(install_docs_deps(echo=lambda line: None))


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for this test: `apt-get install -y chromium` (`make install` does it)")
    return path


def screenshot_path(name: str) -> Path:
    default = Path(tempfile.gettempdir()) / "fastkafka-docs-screenshots"
    folder = Path(os.environ.get("FASTKAFKA_SCREENSHOT_DIR") or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


class _VisibleText(HTMLParser):
    "Text of a DOM, leaving out <script>, <style> and <noscript> contents."

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self._skip += tag in ("script", "style", "noscript")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style", "noscript")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _VisibleText()
    parser.feed(dom)
    return " ".join(" ".join(parser.parts).split())


async def _chromium(chromium: str, *args: str) -> bytes:
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


async def render_in_chromium(chromium: str, url: str, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    "The visible text of the rendered page; also saves a screenshot and prints its path (even under capture)."
    dom = (await _chromium(chromium, "--dump-dom", url)).decode()
    shot = screenshot_path(name)
    shot.unlink(missing_ok=True)
    await _chromium(chromium, "--window-size=1600,2400", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 20_000, "the screenshot looks empty"
    with capsys.disabled():
        print(f"\nscreenshot of the rendered docs ({name}): {shot}", flush=True)
    return visible_text(dom)


def expected_names(app: Any) -> list[str]:
    "Title, topics and message names the rendered page must show."
    doc = app_asyncapi(app)
    topics = sorted({c["address"] for c in doc["channels"].values()})
    return [doc["info"]["title"], *topics, *doc["components"]["messages"]]


def _assert_rendered(text: str, app: Any) -> None:
    assert "Error" not in text.split("Operations")[0], text[:2000]  # the component shows parse errors on top
    for name in expected_names(app):
        assert name in text, f"{name!r} is not on the rendered page: {text[:3000]}"
    assert "RECEIVE" in text or "SEND" in text, text[:3000]


@pytest.mark.subprocess
@pytest.mark.parametrize("name", ["models", "batch_and_events", "multi_cluster", "both_ways", "dead_letters"])
async def test_rendered_docs_show_every_topic_and_message(
    name: str, docs_tools: Path, chromium: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = APPS[name]()
    files = await asyncio.to_thread(create_docs, app, tmp_path)
    stop, ready, lines = threading.Event(), threading.Event(), []

    def echo(line: str) -> None:
        lines.append(line)
        ready.set()

    server = threading.Thread(target=serve_docs, args=(files.index.parent, "127.0.0.1", 0),
                              kwargs={"echo": echo, "stop": stop})
    server.start()
    try:
        assert await asyncio.to_thread(ready.wait, 30)
        text = await render_in_chromium(chromium, lines[0].split()[3], f"docs-{name}", capsys)
    finally:
        stop.set()
        await asyncio.to_thread(server.join, 30)
    assert not server.is_alive()
    _assert_rendered(text, app)


async def _serve_readme(root: Path) -> tuple[asyncio.subprocess.Process, str]:
    fastkafka = shutil.which("fastkafka")
    assert fastkafka, "the fastkafka console script is not installed (pip install -e .)"
    proc = await asyncio.create_subprocess_exec(
        fastkafka, "docs", "serve", "--root-path", str(root), "--port", "0", "asyncapi_apps:readme_kafka_app",
        cwd=TESTS_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    while not (seen and seen[-1].startswith("Serving documentation on http://127.0.0.1:")):
        line = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode()
        assert line, f"`fastkafka docs serve` ended early: {seen}"
        seen.append(line.strip())
    return proc, seen[-1].split()[3]


async def _stop(proc: asyncio.subprocess.Process, sig: signal.Signals) -> str:
    proc.send_signal(sig)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return out.decode()


@pytest.mark.subprocess
async def test_readme_app_cli_generate_then_serve(
    docs_tools: Path, chromium: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    "The FastKafka README app: `fastkafka docs generate`, then `serve`; both topics and `Data` in the browser."
    gen = await asyncio.create_subprocess_exec(
        shutil.which("fastkafka") or "fastkafka", "docs", "generate", "--root-path", str(tmp_path),
        "asyncapi_apps:readme_kafka_app", cwd=TESTS_DIR, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await asyncio.wait_for(gen.communicate(), 180))[0].decode()
    assert gen.returncode == 0, out
    assert (tmp_path / "asyncapi" / "spec" / "asyncapi.yml").is_file()
    assert (tmp_path / "asyncapi" / "docs" / "index.html").is_file()
    index = (tmp_path / "asyncapi" / "docs" / "index.html").read_text()
    assert "//unpkg.com" not in index and "//cdn" not in index  # ships its JS/CSS; nothing from a CDN

    proc, url = await _serve_readme(tmp_path)
    try:
        text = await render_in_chromium(chromium, url, "docs-readme-app", capsys)
        rest = await _stop(proc, signal.SIGINT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, rest
    assert rest.strip().splitlines()[-1] == "Stopped serving documentation.", rest
    for name in ["Demo Kafka app", "input_data", "output_data", "on_input_data", "to_output_data", "Data"]:
        assert name in text, f"{name!r} is not on the rendered page: {text[:3000]}"
    assert "Schemas Data object" in text, text[:3000]  # the Data schema, rendered in the Schemas section
    _assert_rendered(text, APPS["readme"]())


@pytest.mark.subprocess
async def test_serve_stops_on_sigterm(docs_tools: Path, tmp_path: Path) -> None:
    proc, _ = await _serve_readme(tmp_path)
    try:
        rest = await _stop(proc, signal.SIGTERM)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, rest
    assert rest.strip().endswith("Stopped serving documentation."), rest
