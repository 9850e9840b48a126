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

from test_docs_browser import _chromium, chromium, screenshot_path, visible_text  # noqa: F401 -- fixture

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs_build"))

import sidebar_nav as sidebar
from build_site import ERROR_TAG, OUT, SITE, SRC, page_url

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


class _Outputs(HTMLParser):
    "Cells tagged as raising (`celltag_<ERROR_TAG>`) and stderr-looking output blocks of a rendered notebook page."

    def __init__(self) -> None:
        super().__init__()
        self.error_cells = self.stderr_blocks = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        a = dict(attrs)
        self.error_cells += f"celltag_{ERROR_TAG}" in (a.get("class") or "").split()
        self.stderr_blocks += tag == "div" and a.get("data-mime-type") == "application/vnd.jupyter.stderr"


def _error_outputs(dom: str, nb: str) -> list[str]:
    """What on a rendered page is an error output (a cell that raised), not counting logs the cell printed.

    nbconvert renders an error output and a stderr stream alike, so the stderr blocks may be at most the
    notebook's stderr streams (logs, warnings); any more is an error output. The build tags cells that raised."""
    parsed = _Outputs()
    parsed.feed(dom)
    streams = sum(o.get("output_type") == "stream" and o.get("name") == "stderr"
                  for c in json.loads((SRC / nb).read_text())["cells"] for o in c.get("outputs", []))
    problems = [f"{parsed.error_cells} cells that raised"] if parsed.error_cells else []
    if parsed.stderr_blocks > streams:
        problems.append(f"{parsed.stderr_blocks - streams} error outputs ({parsed.stderr_blocks} stderr blocks, "
                        f"{streams} stderr streams in the notebook)")
    return problems


async def _open(chromium: str, url: str, name: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:  # noqa: F811
    "(rendered DOM, its visible text) of `url`; a screenshot is saved too and its path printed."
    dom = (await _chromium(chromium, "--dump-dom", url)).decode()
    shot = screenshot_path(name)
    shot.unlink(missing_ok=True)
    await _chromium(chromium, "--window-size=1400,2400", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert shot.stat().st_size > 20_000, f"the screenshot of {url} looks empty"
    with capsys.disabled():
        print(f"\nscreenshot of the rendered site ({name}): {shot}", flush=True)
    return dom, visible_text(dom)


@pytest.mark.subprocess
def test_nbdev_processing_passes_on_every_notebook() -> None:
    "nbdev's docs processing (executes export, import and show_doc cells) fails on no notebook."
    res = _run("docs_build/nbproc.py", timeout=600)
    assert res.returncode == 0, f"{res.stdout[-4000:]}\n{res.stderr[-6000:]}"
    assert " 0 failed " in res.stdout.strip().splitlines()[-1], res.stdout[-2000:]


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


def _directives(cell: dict) -> dict:
    from fastcore.basics import AttrDict
    from nbdev.process import extract_directives

    return extract_directives(AttrDict(source="".join(cell["source"])), remove=False)


@pytest.mark.subprocess
def test_cells_are_treated_as_nbdev_treats_them(built_site: subprocess.CompletedProcess) -> None:
    """`#| hide` and `#| export` cells are not on the page; cells flagged with a settings.ini `tst_flags` flag
    are shown (code, no directive line) but were not run: no output."""
    from nbdev.config import get_config

    flags = set(get_config().tst_flags.split())
    seen_flagged = 0
    for nb in PAGES:
        if not (SRC / nb).exists():
            continue
        page = {c.get("id"): c for c in json.loads((SRC / nb).read_text())["cells"]}
        for cell in json.loads((ROOT / "nbs" / nb).read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            d, shown = _directives(cell), page.get(cell["id"])
            if d.keys() & {"hide", "export", "exporti", "default_exp"}:
                assert shown is None, f"{nb}: cell {cell['id']} ({sorted(d)}) is on the page"
            elif d.keys() & flags:
                seen_flagged += 1
                assert shown is not None and "".join(shown["source"]).strip(), f"{nb}: flagged {cell['id']} not shown"
                assert not shown["outputs"], f"{nb}: flagged cell {cell['id']} ({sorted(d)}) has outputs: it ran"
                assert not "".join(shown["source"]).lstrip().startswith("#|"), f"{nb}: {cell['id']} keeps a directive"
    assert seen_flagged > 0, "no flagged cell found on any page: the check checked nothing"


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
            return nb, (await _chromium(chromium, "--dump-dom", site_url + page_url(nb))).decode()

    rendered = await asyncio.gather(*(render(nb) for nb in PAGES if nb not in missing))
    bad = {}
    for nb, dom in rendered:
        text = visible_text(dom)
        if f"{titles[nb]} ¶" not in text:  # the page's H1 (with its anchor), not only the nav entry
            bad[nb] = f"title {titles[nb]!r} not rendered: {text[:300]}"
        elif errs := _error_outputs(dom, nb):
            bad[nb] = f"shows {errs}"
    assert not bad and not missing, f"{len(rendered)} pages rendered; failing: {bad}; missing: {missing}"


@pytest.mark.subprocess
async def test_app_page_documents_consumes_with_its_parameters(
    site_url: str, chromium: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    "The FastKafka page (nbs/07_app) has a `consumes` reference entry whose signature lists `group_id`."
    assert (SITE / page_url("07_app.ipynb") / "index.html").is_file(), "no page for nbs/07_app.ipynb"
    dom, text = await _open(chromium, site_url + page_url("07_app.ipynb"), "site-07_app", capsys)
    assert "FastKafka ¶" in text and not _error_outputs(dom, "07_app.ipynb"), _error_outputs(dom, "07_app.ipynb")
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
    dom, text = await _open(chromium, site_url + page_url(nb), "site-" + Path(nb).stem, capsys)
    norm = " ".join
    assert norm(code.split()) in text, f"{nb}: code {code!r} not shown: {text[:2000]}"
    assert norm(output.split()) in text, f"{nb}: output {output!r} not shown: {text[:2000]}"
    assert text.find(norm(code.split())) < text.rfind(norm(output.split())), "the output comes before its code"
    assert not _error_outputs(dom, nb), _error_outputs(dom, nb)


@pytest.mark.subprocess
async def test_home_page_has_a_search_box_and_an_index(
    site_url: str, chromium: str, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    dom, _ = await _open(chromium, site_url, "site-home", capsys)
    assert 'class="md-search__input"' in dom, "no search box on the home page"
    index = json.loads((SITE / "search" / "search_index.json").read_text())
    text = " ".join(d["text"] for d in index["docs"])
    for word in ("consumes", "Tester", "InMemoryBroker"):
        assert word in text, f"{word!r} is not in the search index"
