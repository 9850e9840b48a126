"""The reference site (`make docs` without Quarto: docs_build/build_site.py), built once, opened in headless Chromium.

* nbdev's docs processing (what `nbdev_proc_nbs` does; docs_build/nbproc.py) passes on every notebook;
* the build passes, and every nbs/sidebar.yml page has its index.html, in the sidebar's order in the site's nav;
* every page renders in Chromium with its title and without an error output or a traceback;
* the FastKafka API page (nbs/07_app) documents `consumes` with its parameters (`group_id`, ...);
* a guide page (the first of nbs/guides/, else the home page) shows its code and the code's output;
* the search box is there and the search index knows the API.

Screenshots are saved (see tests/test_docs_browser.py for the folder) and their paths printed.
"""

import asyncio
import json
import subprocess
import sys
import threading
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
import yaml

from test_docs_browser import _chromium, chromium, render_in_chromium, visible_text  # noqa: F401 -- fixture

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs_build"))

import sidebar_nav as sidebar
from build_site import OUT, SITE, SRC, page_url

PAGES = [nb for _, nb in sidebar.entries(sidebar.load()["website"]["sidebar"]["contents"])]


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def built_site() -> subprocess.CompletedProcess:
    "`python docs_build/build_site.py` (what `make docs` runs without Quarto), once per session."
    return _run("docs_build/build_site.py", timeout=900)


@pytest.fixture(scope="session")
def site_url(built_site: subprocess.CompletedProcess) -> Iterator[str]:
    "The built site served over HTTP on 127.0.0.1 (a free port) for the session."
    if not (SITE / "index.html").is_file():
        pytest.fail(f"the build wrote no site:\n{built_site.stdout[-3000:]}\n{built_site.stderr[-3000:]}")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(SITE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(10)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _nav_titles() -> dict[str, str]:
    "{notebook: page title} from the generated MkDocs nav."
    out: dict[str, str] = {}

    def walk(items: list) -> None:
        for item in items:
            ((title, value),) = item.items()
            walk(value) if isinstance(value, list) else out.__setitem__(value, title)

    walk(yaml.safe_load((OUT / "mkdocs.yml").read_text())["nav"])
    return out


class _Links(HTMLParser):
    "hrefs of the <a class='md-nav__link'> in the primary sidebar, in document order."

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self._primary = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        a = dict(attrs)
        if tag == "nav" and "md-nav--primary" in (a.get("class") or ""):
            self._primary = 1
        if self._primary and tag == "a" and "md-nav__link" in (a.get("class") or "") and a.get("href"):
            self.hrefs.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        pass


def _errors_in(text: str) -> list[str]:
    "Traceback/error-output traces in a page's visible text."
    marks = ["Traceback (most recent call last)", "Error in notebook", "NameError:", "ImportError:"]
    return [m for m in marks if m in text]


@pytest.mark.subprocess
def test_nbdev_processing_passes_on_every_notebook() -> None:
    "nbdev's docs processing (executes export, import and show_doc cells) fails on no notebook."
    res = _run("docs_build/nbproc.py", timeout=600)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    n = len([p for p in (ROOT / "nbs").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts])
    assert f"nbdev processing: {n} notebooks in _proc, 0 failed" in res.stdout, res.stdout[-2000:]


@pytest.mark.subprocess
def test_build_passes_with_a_page_per_sidebar_entry(built_site: subprocess.CompletedProcess) -> None:
    out = built_site.stdout + built_site.stderr
    missing = [nb for nb in PAGES if not (SITE / page_url(nb) / "index.html").is_file()]
    assert not missing, f"sidebar pages with no index.html: {missing}\n{built_site.stdout[-3000:]}"
    assert built_site.returncode == 0, out[-6000:]
    assert f"{len(PAGES)} of {len(PAGES)} sidebar pages built" in built_site.stdout, built_site.stdout[-2000:]
    for nb in PAGES:  # the pages' notebooks carry no error output (a cell that raised while the build ran it)
        errors = [c.get("id") for c in json.loads((SRC / nb).read_text())["cells"]
                  for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{nb}: cells {errors} have an error output"


@pytest.mark.subprocess
def test_nav_follows_the_sidebar(site_url: str) -> None:
    "The site's nav lists the built pages in nbs/sidebar.yml's order (sections included)."
    parser = _Links()
    parser.feed((SITE / "index.html").read_text())
    wanted = [page_url(nb) for nb in PAGES if (SITE / page_url(nb) / "index.html").is_file()]
    got = [("" if h in (".", "./") else h.removeprefix("./")).split("#")[0] for h in parser.hrefs]
    got = [h for h in dict.fromkeys(got) if h in set(wanted)]  # page links only, each once
    assert got == wanted, f"nav order {got} != sidebar order {wanted}"


@pytest.mark.subprocess
async def test_every_sidebar_page_renders_without_errors(site_url: str, chromium: str) -> None:  # noqa: F811
    titles = _nav_titles()
    missing = [nb for nb in PAGES if not (SITE / page_url(nb) / "index.html").is_file()]
    sem = asyncio.Semaphore(2)  # two cores

    async def render(nb: str) -> tuple[str, str]:
        async with sem:
            return nb, visible_text((await _chromium(chromium, "--dump-dom", site_url + page_url(nb))).decode())

    rendered = await asyncio.gather(*(render(nb) for nb in PAGES if nb not in missing))
    bad = {}
    for nb, text in rendered:
        if titles[nb] not in text:
            bad[nb] = f"title {titles[nb]!r} not rendered: {text[:300]}"
        elif errs := _errors_in(text):
            bad[nb] = f"shows {errs}"
    assert not bad and not missing, f"{len(rendered)} pages rendered; failing: {bad}; missing: {missing}"


@pytest.mark.subprocess
async def test_app_page_documents_consumes_with_its_parameters(
    site_url: str, chromium: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    "The FastKafka page (nbs/07_app) has a `consumes` reference entry whose signature lists `group_id`."
    assert (SITE / page_url("07_app.ipynb") / "index.html").is_file(), "no page for nbs/07_app.ipynb"
    text = await render_in_chromium(chromium, site_url + page_url("07_app.ipynb"), "site-07_app", capsys)
    assert "FastKafka" in text and not _errors_in(text), text[:2000]
    # show_doc renders `### FastKafka.consumes` then `> FastKafka.consumes (topic:..., group_id..., ...)`
    entry = text.find("FastKafka.consumes (")
    assert entry >= 0, f"no `FastKafka.consumes (...)` signature (a show_doc entry) on the page: {text[:1500]}"
    signature = text[entry: text.find(")", text.find("group_id", entry)) + 1]
    for param in ("topic", "group_id", "decoder", "executor"):
        assert param in signature, f"{param!r} is not in the rendered signature {signature[:800]!r}"


def _first_output_cell(nb: str) -> tuple[str, str]:
    "(a code line, an output line) of the first code cell of the page's notebook that has a text output."
    for cell in json.loads((SRC / nb).read_text())["cells"]:
        if cell["cell_type"] != "code" or "remove-input" in cell["metadata"].get("tags", []):
            continue
        code = [ln for ln in "".join(cell["source"]).splitlines() if ln.strip() and not ln.startswith("#")]
        for o in cell.get("outputs", []):
            txt = "".join(o.get("text") or (o.get("data") or {}).get("text/plain") or "")
            if code and txt.strip() and o.get("name") != "stderr":
                return code[0].strip(), txt.strip().splitlines()[0].strip()
    raise AssertionError(f"{nb}: no code cell with a text output in the built page's notebook")


@pytest.mark.subprocess
async def test_guide_page_shows_code_and_output(
    site_url: str, chromium: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    guides = sidebar.guides()
    nb = guides[0] if guides else "index.ipynb"
    assert (SITE / page_url(nb) / "index.html").is_file(), f"no page for {nb}"
    code, output = _first_output_cell(nb)
    text = await render_in_chromium(chromium, site_url + page_url(nb), "site-" + Path(nb).stem, capsys)
    norm = " ".join
    assert norm(code.split()) in text, f"{nb}: code {code!r} not shown: {text[:2000]}"
    assert norm(output.split()) in text, f"{nb}: output {output!r} not shown: {text[:2000]}"
    assert text.find(norm(code.split())) < text.rfind(norm(output.split())), "the output comes before its code"
    assert not _errors_in(text), text[:2000]


@pytest.mark.subprocess
async def test_home_page_has_a_search_box_and_an_index(
    site_url: str, chromium: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    dom = (await _chromium(chromium, "--dump-dom", site_url)).decode()
    assert 'class="md-search__input"' in dom, "no search box on the home page"
    await render_in_chromium(chromium, site_url, "site-home", capsys)
    index = json.loads((SITE / "search" / "search_index.json").read_text())
    text = " ".join(d["text"] for d in index["docs"])
    for word in ("consumes", "Tester", "InMemoryBroker"):
        assert word in text, f"{word!r} is not in the search index"
