"""The API reference: every public name has a `show_doc` entry, in the notebook that defines it, with an example.

The public names are the `__all__` of `fastkafka`, `fastkafka.encoder`, `fastkafka.executors` and
`fastkafka.testing`, plus the public methods and properties of `FastKafka` (those it defines, not `object`'s) and
of `Tester` (those it defines or overrides; the inherited ones are documented on the FastKafka page).

* some notebook of nbs/ (not the guides) has a `show_doc(<Name>)` / `show_doc(<Class>.<method>)` cell for each
  (a top-level `show_doc(...)` statement, the rule nbdev's docs processor uses to run and render a cell);
* that entry is in the notebook that defines the name (the one whose `#| export` cell the source comes from);
* a visible code cell follows it, before the next export cell, that uses the name (`X`, or `y` of `X.y`) and
  tests something (a `test_*` call or an `assert`): the example that is also a test (entries shown one after the
  other may share one such cell);
* nbdev's processing of nbs/07_app.ipynb (nbdev's own worker, as docs_build/nbproc.py runs it) renders
  `FastKafka.consumes` with its signature, its one-line summary and its docments parameter table.

Each failing check prints the entries it misses, with the notebook where each belongs.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
PUBLIC_MODULES = ("fastkafka", "fastkafka.encoder", "fastkafka.executors", "fastkafka.testing")
_EXPORT_DIRS = {"export", "exporti", "exports"}


def _is_member(value: Any) -> bool:
    "A method or a property (functions, class/static methods, properties, cached properties), not a data attribute."
    return isinstance(value, (property, classmethod, staticmethod)) or inspect.isfunction(value) or (
        hasattr(value, "__set_name__") and hasattr(value, "func")  # functools.cached_property
    )


@cache
def public_entries() -> dict[str, Any]:
    "{'Name' or 'Class.member': the object} for every public name and public member of FastKafka and Tester."
    entries: dict[str, Any] = {}
    for mod_name in PUBLIC_MODULES:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            entries[name] = getattr(mod, name)
    from fastkafka import FastKafka
    from fastkafka.testing import Tester

    for cls in (FastKafka, Tester):
        for name, value in vars(cls).items():  # defined (or overridden) by the class itself, never object's
            if not name.startswith("_") and _is_member(value):
                entries[f"{cls.__name__}.{name}"] = value
    return entries


def _code_of(obj: Any) -> tuple[str, int] | None:
    "(file, first line) of the code of a function, method or property, decorators unwrapped."
    for attr in ("fget", "__func__", "func"):
        obj = getattr(obj, attr, None) or obj
    code = getattr(inspect.unwrap(obj), "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code else None


def _class_line(name: str, obj: type) -> tuple[str, int] | None:
    """(file, line) of `class <name>` in the private module nbdev's index records it in.

    The public classes report their public module (`fastkafka.testing`, ...), so `inspect` would look in the
    facade; nbdev's `_modidx` knows the module that defines them."""
    from fastkafka._modidx import d

    for mod_name, syms in d["syms"].items():
        if mod_name in PUBLIC_MODULES or f"{mod_name}.{name}" not in syms:
            continue
        if getattr(importlib.import_module(mod_name), name, None) is not obj:
            continue
        path = ROOT / syms[f"{mod_name}.{name}"][1]
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(rf"class {re.escape(name)}\b", line):
                return str(path), i
    return None


@cache
def defining_notebook(entry: str) -> str | None:
    "The notebook (e.g. '07_app.ipynb') whose export cell holds the definition of `entry`."
    obj = public_entries()[entry]
    where = _class_line(entry, obj) if inspect.isclass(obj) else _code_of(obj)
    if where is None:
        return None
    lines = Path(where[0]).read_text().splitlines()[: where[1]]
    for line in reversed(lines):  # the nearest nbdev cell marker above the definition
        m = re.match(r"# %% (?:\.\./)+nbs/(\S+\.ipynb)", line)
        if m:
            return m.group(1)
    return None


def _directives(src: str) -> set[str]:
    return {m.group(1).rstrip(":") for m in re.finditer(r"^#\|\s*([\w:-]+)", src, re.MULTILINE)}


def _trees(src: str) -> list[ast.stmt]:
    "Top-level statements of a cell (magic and shell lines dropped); [] when it does not parse."
    code = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())
    try:
        return ast.parse(code).body
    except SyntaxError:
        return []


def _shown(stmt: ast.stmt) -> str | None:
    "'X' or 'X.y' for a top-level `show_doc(X)` / `show_doc(X.y, ...)` statement, else None."
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    call = stmt.value
    if not (isinstance(call.func, ast.Name) and call.func.id == "show_doc" and call.args):
        return None
    return ast.unparse(call.args[0]) if isinstance(call.args[0], (ast.Name, ast.Attribute)) else None


def _tests_using(stmts: list[ast.stmt], name: str) -> bool:
    "Does the code use `name` (an identifier or an attribute) and assert something (`assert`, a `test_*` call)?"
    nodes = [n for s in stmts for n in ast.walk(s)]
    uses = any((isinstance(n, ast.Name) and n.id == name) or (isinstance(n, ast.Attribute) and n.attr == name)
               for n in nodes)
    asserts = any(isinstance(n, ast.Assert) or (isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                                                and n.func.id.startswith("test_")) for n in nodes)
    return uses and asserts


@cache
def show_doc_entries() -> dict[str, list[tuple[str, bool]]]:
    "{'X' or 'X.y': [(notebook, a visible test cell using it follows), ...]} over the notebooks of nbs/ (no guides)."
    found: dict[str, list[tuple[str, bool]]] = {}
    for nb in sorted(NBS.glob("*.ipynb")):
        cells = [("".join(c["source"]), c["cell_type"]) for c in json.loads(nb.read_text())["cells"]]
        for i, (src, kind) in enumerate(cells):
            shown = [s for s in map(_shown, _trees(src)) if s] if kind == "code" else []
            for name in shown:
                tested = False
                for nsrc, nkind in cells[i + 1:]:
                    if nkind != "code":
                        continue
                    dirs, trees = _directives(nsrc), _trees(nsrc)
                    if dirs & _EXPORT_DIRS:
                        break
                    if "hide" not in dirs and _tests_using(trees, name.rsplit(".", 1)[-1]):
                        tested = True
                        break
                found.setdefault(name, []).append((nb.name, tested))
    return found


def _report(title: str, missing: list[str]) -> str:
    lines = [f"{title} ({len(missing)} of {len(public_entries())}):"]
    lines += [f"  {e:40} -> {defining_notebook(e) or '?'}" for e in missing]
    return "\n".join(lines)


def test_the_public_names_are_found() -> None:
    "The collection itself: the facades' names and the members the reference must list are all there."
    entries = public_entries()
    for expected in ("FastKafka", "KafkaEvent", "json_decoder", "StreamExecutor", "Tester", "InMemoryBroker",
                     "FastKafka.consumes", "FastKafka.produces", "FastKafka.run_in_background",
                     "Tester.using_inmemory_broker"):
        assert expected in entries, f"{expected!r} not collected; collected: {sorted(entries)}"
    assert "Tester.consumes" not in entries, "inherited FastKafka members belong to the FastKafka page"
    unknown = [e for e in entries if defining_notebook(e) is None]
    assert not unknown, f"no defining notebook found for {unknown}"
    test_eq_nb = {e: defining_notebook(e) for e in ("FastKafka.consumes", "KafkaEvent", "Tester", "json_decoder")}
    assert test_eq_nb == {"FastKafka.consumes": "07_app.ipynb", "KafkaEvent": "01_events.ipynb",
                          "Tester": "10_tester.ipynb", "json_decoder": "02_encoders.ipynb"}, test_eq_nb


def test_every_public_name_has_a_show_doc_entry() -> None:
    docs = show_doc_entries()
    missing = [e for e in public_entries() if e not in docs]
    print(_report("public names with no show_doc entry in any notebook", missing))
    assert not missing, _report("public names with no show_doc entry in any notebook", missing)


def test_each_entry_is_in_the_defining_notebook_and_followed_by_a_test() -> None:
    docs = show_doc_entries()
    misplaced = [e for e in public_entries() if e in docs
                 and defining_notebook(e) not in {nb for nb, _ in docs[e]}]
    untested = [e for e in public_entries() if e in docs and e not in misplaced
                and not any(tested for nb, tested in docs[e] if nb == defining_notebook(e))]
    report = "\n".join([_report("show_doc entries not in the notebook that defines the name", misplaced),
                        _report("show_doc entries with no visible test cell using the name after them "
                                "(before the next export cell)", untested)])
    print(report)
    assert not misplaced and not untested, report


@pytest.mark.subprocess
def test_nbdev_processing_renders_the_consumes_entry(tmp_path: Path) -> None:
    "nbdev's own worker (as docs_build/nbproc.py runs it) renders `show_doc(FastKafka.consumes)` of nbs/07_app."
    from fastkafka import FastKafka

    dst = tmp_path / "07_app.ipynb"
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, 'docs_build')\n"
        "from nbdev.processors import FilterDefaults\n"
        "from nbworkers import proc_one\n"
        f"src, secs, err = proc_one((Path('nbs/07_app.ipynb'), Path({str(dst)!r}), FilterDefaults))\n"
        "print(err or f'ok {secs:.1f}s'); sys.exit(1 if err else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"nbdev's processing of nbs/07_app failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    cells = [c for c in json.loads(dst.read_text())["cells"]
             if c["cell_type"] == "code" and "show_doc(FastKafka.consumes)" in "".join(c["source"])]
    assert cells, "the processed notebook has no show_doc(FastKafka.consumes) cell"
    md = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in cells[0].get("outputs", []))
    assert "### FastKafka.consumes" in md, f"no rendered entry heading: {cells[0].get('outputs')!r:.1500}"
    signature = md[md.find(">"): md.find("\n\n", md.find(">"))]
    for param in ("topic", "decoder", "executor", "group_id"):
        assert f"{param}:" in signature or f"{param}=" in signature, f"{param!r} not in the signature {signature!r}"
    summary = FastKafka.consumes.__doc__.strip().splitlines()[0]
    assert f"*{summary}*" in md, f"the one-line summary {summary!r} is not rendered: {md[:2000]}"
    assert "| **Type** | **Default** | **Details** |" in md, f"no parameter table: {md[:2000]}"
    row = next((ln for ln in md.splitlines() if ln.startswith("| topic |")), "")
    details = row.rstrip("| ").rsplit("|", 1)[-1].strip()
    assert details, f"the `topic` row has no docments description: {row!r}"
