"""nbs/sidebar.yml (Quarto's sidebar, nbdev `custom_sidebar = True`): its pages, and its generated Guides section.

The Guides section lists nbs/guides/*.ipynb in file-name order and is written by this script (`make docs` runs it;
nothing else in the sidebar is touched, and the file is left alone when the section is already right):

    python docs_build/sidebar_nav.py          # sync the Guides section
    python docs_build/sidebar_nav.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
SIDEBAR = NBS / "sidebar.yml"
GUIDES_SECTION, GUIDES_DIR = "Guides", "guides"


def entries(contents: list, section: str | None = None) -> list[tuple[str | None, str]]:
    "(section, notebook path relative to nbs/) for every page listed in Quarto sidebar `contents`, in order."
    out: list[tuple[str | None, str]] = []
    for e in contents:
        if isinstance(e, str):
            out.append((section, e))
        elif isinstance(e, dict) and "section" in e:
            out.extend(entries(e.get("contents") or [], e["section"]))
        elif isinstance(e, dict) and ("href" in e or "file" in e):
            out.append((section, e.get("href") or e["file"]))
        else:
            raise ValueError(f"nbs/sidebar.yml: unsupported sidebar entry {e!r}; allowed: a notebook path, "
                             "{section: ..., contents: [...]} or {href: ..., text: ...}")
    return out


def load(path: Path = SIDEBAR) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def guides(nbs: Path = NBS) -> list[str]:
    "nbs/guides/*.ipynb, relative to nbs/, in file-name order."
    return [f"{GUIDES_DIR}/{p.name}" for p in sorted((nbs / GUIDES_DIR).glob("*.ipynb"), key=lambda p: p.name)]


def with_guides(sidebar: dict[str, Any], found: list[str]) -> dict[str, Any]:
    "`sidebar` whose Guides section lists exactly `found` (placed after the first page; dropped when empty)."
    contents = [e for e in sidebar["website"]["sidebar"]["contents"]
                if not (isinstance(e, dict) and e.get("section") == GUIDES_SECTION)]
    if found:
        old = next((i for i, e in enumerate(sidebar["website"]["sidebar"]["contents"])
                    if isinstance(e, dict) and e.get("section") == GUIDES_SECTION), None)
        contents.insert(1 if old is None else old, {"section": GUIDES_SECTION, "contents": list(found)})
    return {**sidebar, "website": {**sidebar["website"], "sidebar": {**sidebar["website"]["sidebar"],
                                                                     "contents": contents}}}


def dump(sidebar: dict[str, Any]) -> str:
    from nbdev.quarto import IndentDumper  # nbdev's own style for sidebar.yml

    return yaml.dump(sidebar, Dumper=IndentDumper, sort_keys=False)


def sync(check: bool = False, path: Path = SIDEBAR, nbs: Path = NBS) -> bool:
    "Bring the Guides section up to date (or only tell, with `check`); True when the file was already right."
    current = load(path)
    wanted = with_guides(current, guides(nbs))
    if wanted == current:
        return True
    if not check:
        path.write_text(dump(wanted))
    return False


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    ok = sync(check)
    if not ok:
        print(f"nbs/sidebar.yml: the {GUIDES_SECTION} section {'is out of date' if check else 'was updated'}: "
              f"it lists {guides() or 'no guides'}" + (" (run `python docs_build/sidebar_nav.py`)" if check else ""))
    sys.exit(1 if check and not ok else 0)
