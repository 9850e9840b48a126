"""Every notebook runs top to bottom in a real Jupyter kernel (ipykernel), not only under nbdev_test's execnb.

Cells carrying one of the `tst_flags` from settings.ini (broker, subprocess, slow, notest) are left out here
exactly as `nbdev_test` leaves them out; what they show is covered by the other pytest files.
"""

import configparser
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"


def _skip_flags() -> set[str]:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return set(cfg["DEFAULT"]["tst_flags"].split())


def _cell_flags(source: str) -> set[str]:
    flags: set[str] = set()
    for line in source.splitlines():
        m = re.match(r"^#\s*\|\s*([\w-]+)\s*$", line.strip())
        if m:
            flags.add(m.group(1))
    return flags


NOTEBOOKS = sorted(p for p in NBS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(NBS)) for p in NOTEBOOKS])
def test_notebook_runs_in_jupyter_kernel(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    skip = _skip_flags()
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or not (_cell_flags(c.source) & skip)]
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
