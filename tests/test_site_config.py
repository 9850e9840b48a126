"""The nbdev/quarto site config stays correct without quarto: checked against settings.ini and nbs/."""

import configparser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"


def _settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def _entries(contents: list) -> list[str]:
    out: list[str] = []
    for e in contents:
        out.extend([e] if isinstance(e, str) else _entries(e["contents"]))
    return out


def test_sidebar_lists_every_notebook_once() -> None:
    sidebar = yaml.safe_load((NBS / "sidebar.yml").read_text())
    listed = _entries(sidebar["website"]["sidebar"]["contents"])
    notebooks = sorted(str(p.relative_to(NBS)) for p in NBS.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    assert len(listed) == len(set(listed)), "a notebook is listed twice in nbs/sidebar.yml"
    assert sorted(listed) == notebooks, (f"sidebar and nbs/ differ: {set(listed) ^ set(notebooks)} "
                                         "(`python docs_build/sidebar_nav.py` lists nbs/guides/; `make docs` runs it)")


def test_guides_section_lists_the_guides_in_file_name_order() -> None:
    "The sidebar's Guides section is nbs/guides/*.ipynb sorted by file name (written by docs_build/sidebar_nav.py)."
    sidebar = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    sections = [e for e in sidebar if isinstance(e, dict) and e.get("section") == "Guides"]
    guides = sorted(p.name for p in (NBS / "guides").glob("*.ipynb"))
    if not guides:
        assert not sections, "a Guides section in nbs/sidebar.yml but no nbs/guides/*.ipynb"
        return
    assert len(sections) == 1, f"nbs/sidebar.yml needs one Guides section, found {len(sections)}"
    assert sections[0]["contents"] == [f"guides/{g}" for g in guides], (
        f"Guides section {sections[0]['contents']} != nbs/guides/ {guides}: run `python docs_build/sidebar_nav.py`")


def test_quarto_and_nbdev_yml_agree_with_settings() -> None:
    s = _settings()
    assert s.getboolean("custom_sidebar"), "nbs/sidebar.yml is hand-written, so settings.ini must say custom_sidebar"
    quarto = yaml.safe_load((NBS / "_quarto.yml").read_text())
    assert quarto["project"]["type"] == "website"
    for f in quarto["metadata-files"]:
        assert (NBS / f).exists(), f
    nbdev = yaml.safe_load((NBS / "nbdev.yml").read_text())
    assert nbdev["project"]["output-dir"] == s["doc_path"]
    site = nbdev["website"]
    assert site["title"] == s["title"]
    assert site["site-url"] == s["doc_host"] + s["doc_baseurl"]
    assert site["repo-url"] == s["git_url"]
    assert site["repo-branch"] == s["branch"]
    assert site["description"] == s["description"]
    assert (NBS / s["readme_nb"]).exists()


def test_every_notebook_opens_with_title_and_summary() -> None:
    import json

    for path in sorted(NBS.glob("*.ipynb")):
        md = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
        first = "".join(md[0]["source"]) if md else ""
        assert first.lstrip().startswith("# "), f"{path.name}: first markdown cell must be an H1 title"
        assert "\n> " in first or "\n\n> " in first, f"{path.name}: the title needs a one-line '>' summary"
