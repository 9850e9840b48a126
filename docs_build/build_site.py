"""Build the reference site without Quarto: nbdev's `_proc/` notebooks rendered by MkDocs (material + mkdocs-jupyter).

1. `nbs/sidebar.yml`: its Guides section is synced with nbs/guides/*.ipynb (sidebar_nav.py).
2. nbdev's processing into `_proc/` (nbproc.py: what `nbdev_proc_nbs` does): `#| hide` and `#| export` cells gone,
   directive lines stripped, show_doc cells added and executed, links added.
3. The notebooks are committed without outputs, so each *source* notebook is run like `nbdev_test` runs it
   (cells flagged with a settings.ini `tst_flags` flag, or `#| eval: false`, are not run) and the outputs are put
   on the `_proc` cells with the same cell id. nbdev strips the flag lines in `_proc`, so the flags are read from
   the source cell with that id, never guessed from `_proc`. Flagged cells show their code without output.
4. Quarto cell options left by nbdev (`#| echo: false`, `#| output: asis`, `#| include: false`, ...) become
   notebook tags mkdocs-jupyter honours; nbdev's front matter becomes the page's H1 and summary.
5. `build/docs/mkdocs.yml` is generated (nav from nbs/sidebar.yml, in its order) and `mkdocs build` writes the
   site to `build/docs/site/` (one index.html per page, search box included).

    python docs_build/build_site.py [--force]

Exit 1, after building every page it can, when a notebook fails nbdev's processing or its run (each failure is
printed with the notebook, the cell and the error) or a sidebar page has no index.html.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

import sidebar_nav as sidebar
from nbworkers import exec_one
from nbproc import proc_nbs, summary

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
OUT = ROOT / "build" / "docs"
SRC, SITE, CACHE = OUT / "src", OUT / "site", OUT / "cache"
ERROR_TAG = "error-output"  # a cell whose run raised (the build then fails too)
EXEC_TIMEOUT = 30  # seconds one notebook may run (they take 0.1-5 s; a hung cell must not stall the build)


def settings() -> dict[str, str]:
    from nbdev.config import get_config

    cfg = get_config()
    return {k: cfg.get(k, "") for k in ("title", "description", "git_url", "doc_host", "doc_baseurl", "tst_flags")}


def page_url(nb: str) -> str:
    "Site path of the page of notebook `nb` (relative to nbs/), MkDocs directory URLs: `07_app.ipynb` -> `07_app/`."
    stem = nb[: -len(".ipynb")]
    if stem == "index":
        return ""
    return stem[: -len("index")] if stem.endswith("/index") else stem + "/"


# ---- running the source notebooks ----------------------------------------------------------------------------

def _fingerprint(nb: Path, flags: list[str]) -> str:
    "Hash of what a notebook's outputs depend on: the notebook, the package, the skip flags."
    h = hashlib.sha256(nb.read_bytes())
    for p in sorted((ROOT / "fastkafka").rglob("*.py")):
        h.update(p.read_bytes())
    h.update(" ".join(flags).encode())
    return h.hexdigest()


def run_notebooks(nbs: list[str], flags: list[str], force: bool, n_workers: int = 2) -> tuple[dict, dict]:
    "({nb: {cell id: outputs}}, {nb: error}); outputs are cached in build/docs/cache by fingerprint."
    outputs, errors, todo = {}, {}, []
    for nb in nbs:
        cached = CACHE / "exec" / (nb + ".json")
        key = _fingerprint(NBS / nb, flags)
        if not force and cached.exists() and json.loads(cached.read_text()).get("key") == key:
            outputs[nb] = json.loads(cached.read_text())["outputs"]
            print(f"cached {nb}")
        else:
            todo.append((nb, key))
    if todo:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_workers, mp_context=ctx, max_tasks_per_child=1) as pool:  # a fresh process each
            futs = {pool.submit(exec_one, str(NBS / nb), flags, str(ROOT), EXEC_TIMEOUT): (nb, key) for nb, key in todo}
            for fut, (nb, key) in futs.items():
                _, secs, outs, err = fut.result()
                print(f"{'FAILED' if err else 'ran':6} {nb} ({secs:.1f}s)")
                outputs[nb] = outs
                if err:
                    errors[nb] = err
                else:
                    cached = CACHE / "exec" / (nb + ".json")
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.write_text(json.dumps({"key": key, "outputs": outs}))
    return outputs, errors


# ---- turning a _proc notebook into the page's notebook -------------------------------------------------------

_QUARTO_OPT = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
_PANDOC_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}")


def _split_quarto_options(source: str) -> tuple[dict[str, str], str]:
    "Leading `#| key: value` lines (Quarto cell options nbdev leaves in `_proc`) and the rest of the source."
    lines, opts = source.splitlines(), {}
    while lines and (m := _QUARTO_OPT.match(lines[0])):
        opts[m[1]] = m[2].strip("'\"").lower()
        lines.pop(0)
    return opts, "\n".join(lines)


def _pandoc_links(md: str) -> str:
    "`[text](url){target=... style=...}` (Pandoc link attributes in show_doc output) as an HTML link."
    return _PANDOC_LINK.sub(lambda m: f'<a href="{m[2]}" {m[3]}>{m[1]}</a>', md)


def _local_links(text: str, pages: dict[str, str], here: str, base: str) -> str:
    "Links nbdev made to the hosted site (`{doc_host}{doc_baseurl}/app.html#x`) as links to this site's page."
    up = "../" * here.count("/")

    def repl(m: re.Match) -> str:
        target = pages.get(m[1])
        return m[0] if target is None else f"{up}{target}{m[2] or ''}"

    return re.sub(re.escape(base.rstrip("/")) + r"/([\w./-]+?\.html)(#[\w.-]+)?", repl, text)


def _joined(src: Any) -> str:
    return "".join(src) if isinstance(src, list) else (src or "")


def page_notebook(proc_nb: dict, source_nb: dict, outputs: dict[str, list], flags: set[str],
                  link: Any) -> tuple[dict, str | None]:
    "The notebook MkDocs renders for one page, and its title."
    from nbdev.process import extract_directives
    from fastcore.basics import AttrDict

    flagged = set()
    for c in source_nb["cells"]:
        if c["cell_type"] == "code" and c.get("id"):
            d = extract_directives(AttrDict(source=_joined(c["source"])), remove=False)
            if flags & d.keys():
                flagged.add(c["id"])
    cells, title = [], None
    for cell in proc_nb["cells"]:
        src = _joined(cell.get("source"))
        if cell["cell_type"] == "raw" and src.startswith("---"):  # nbdev's front matter: title and summary
            fm = yaml.safe_load(src.strip().strip("-")) or {}
            title = fm.get("title")
            md = (f"# {title}\n" if title else "") + (f"\n> {fm['description']}\n" if fm.get("description") else "")
            cells.append({"cell_type": "markdown", "metadata": {}, "source": md})
            continue
        if cell["cell_type"] == "markdown" and src.strip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"):
            continue
        if cell["cell_type"] == "raw":
            continue
        new = dict(cell, metadata=dict(cell.get("metadata") or {}))
        if cell["cell_type"] == "markdown":
            new["source"] = link(src)
            cells.append(new)
            continue
        opts, code = _split_quarto_options(src)
        if opts.get("include") == "false":
            continue
        tags = list(new["metadata"].get("tags") or [])
        if opts.get("echo") == "false":
            tags.append("remove-input")
        if opts.get("output") == "false":
            tags.append("remove-output")
        cid = cell.get("id")
        outs = list(cell.get("outputs") or [])
        if cid in flagged:
            outs, tags = [], [*tags, "not-run"]
        elif cid in outputs:
            outs = outputs[cid]
        if any(o.get("output_type") == "error" for o in outs):
            tags.append(ERROR_TAG)  # rendered as class `celltag_<tag>`: the browser test looks for it
        for o in outs:
            data = o.get("data") or {}
            if "text/markdown" in data:
                data["text/markdown"] = link(_pandoc_links(_joined(data["text/markdown"])))
        new.update(source=code, outputs=outs, execution_count=None)
        new["metadata"]["tags"] = tags
        cells.append(new)
    return dict(proc_nb, cells=cells), title


# ---- MkDocs config -------------------------------------------------------------------------------------------

def nav(contents: list, titles: dict[str, str], present: set[str]) -> list:
    "MkDocs nav from Quarto sidebar `contents`, in the same order; pages that could not be built are left out."
    out: list = []
    for e in contents:
        if isinstance(e, dict) and "section" in e:
            sub = nav(e.get("contents") or [], titles, present)
            if sub:
                out.append({e["section"]: sub})
        else:
            for _, nb in sidebar.entries([e]):
                if nb in present:
                    text = e.get("text") if isinstance(e, dict) else None
                    out.append({text or titles.get(nb) or Path(nb).stem: nb})
    return out


def mkdocs_config(s: dict[str, str], nav_: list) -> dict[str, Any]:
    return {
        "site_name": s["title"],
        "site_description": s["description"],
        "site_url": "",  # the site works from any folder or host (relative links)
        "repo_url": s["git_url"],
        "docs_dir": "src",
        "site_dir": "site",
        "use_directory_urls": True,
        "nav": nav_,
        "theme": {"name": "material", "font": False,  # no web fonts: the site needs nothing from the network
                  "features": ["navigation.sections", "navigation.top", "search.highlight", "content.code.copy"]},
        "plugins": [
            "search",
            {"mkdocs-jupyter": {
                "execute": False,  # already run (see run_notebooks): flagged cells must not run
                "include_source": False,
                "no_prompt": True,  # nbdev sites show no In[ ]/Out[ ] prompts
                "allow_errors": False,
                "ignore_h1_titles": True,  # the nav's titles (nbdev's front matter) name the pages
                "cache_dir": str(CACHE / "mkdocs-jupyter"),
                "remove_tag_config": {"remove_input_tags": ["remove-input"],
                                      "remove_all_outputs_tags": ["remove-output"]},
            }},
        ],
        "markdown_extensions": ["tables", "admonition", "attr_list"],
    }


# ---- the build -----------------------------------------------------------------------------------------------

def build(force: bool = False) -> int:
    t0 = time.time()
    if not sidebar.sync():
        print(f"nbs/sidebar.yml: Guides section updated to {sidebar.guides()}")
    s = settings()
    flags = s["tst_flags"].split()
    pages = [nb for _, nb in sidebar.entries(sidebar.load()["website"]["sidebar"]["contents"])]

    cache, proc_errors = proc_nbs(force=force)
    t_proc = time.time()
    built = [nb for nb in pages if nb not in proc_errors and (cache / nb).exists()]
    outputs, exec_errors = run_notebooks(built, flags, force)
    t_exec = time.time()

    import shutil

    shutil.rmtree(SRC, ignore_errors=True)
    SRC.mkdir(parents=True)
    procs = {nb: json.loads((cache / nb).read_text()) for nb in built}
    out_files = {}
    for nb, p in procs.items():
        fm = next((yaml.safe_load(_joined(c["source"]).strip().strip("-")) for c in p["cells"]
                   if c["cell_type"] == "raw" and _joined(c["source"]).startswith("---")), None) or {}
        out_files[fm.get("output-file") or Path(nb).stem + ".html"] = page_url(nb)
    titles = {}
    base = s["doc_host"].rstrip("/") + "/" + s["doc_baseurl"].strip("/")
    for nb in built:
        src_nb = json.loads((NBS / nb).read_text())

        def link(text: str, nb: str = nb) -> str:
            return _local_links(text, out_files, page_url(nb), base)

        page, title = page_notebook(procs[nb], src_nb, outputs.get(nb, {}), set(flags), link)
        titles[nb] = (title or Path(nb).stem).replace("`", "")  # nav entries are plain text
        (SRC / nb).parent.mkdir(parents=True, exist_ok=True)
        (SRC / nb).write_text(json.dumps(page, indent=1))
    nav_ = nav(sidebar.load()["website"]["sidebar"]["contents"], titles, set(built))
    (OUT / "mkdocs.yml").write_text(yaml.safe_dump(mkdocs_config(s, nav_), sort_keys=False))
    shutil.rmtree(SITE, ignore_errors=True)
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(OUT / "mkdocs.yml")], cwd=OUT)
    t_site = time.time()

    missing = [nb for nb in pages if not (SITE / page_url(nb) / "index.html").is_file()]
    n_html = len(list(SITE.rglob("index.html"))) if SITE.exists() else 0
    for nb, err in {**proc_errors, **exec_errors}.items():
        print(f"\n=== {nb}:\n{err}", file=sys.stderr)
    print(f"\nsite: {SITE.relative_to(ROOT)}/ -- {len(pages) - len(missing)} of {len(pages)} sidebar pages built, "
          f"{n_html} index.html files; nbdev processing {t_proc - t0:.1f}s, running notebooks "
          f"{t_exec - t_proc:.1f}s, mkdocs {t_site - t_exec:.1f}s, total {t_site - t0:.1f}s")
    for nb, err in proc_errors.items():
        print(f"  nbdev processing failed: {nb}: {summary(err)}")
    for nb, err in exec_errors.items():
        print(f"  running the notebook failed: {nb}: {err.strip().splitlines()[0]} ... {err.strip().splitlines()[-1]}")
    if missing:
        print(f"  sidebar pages without a page: {missing}")
    return 1 if (res.returncode or proc_errors or exec_errors or missing) else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="ignore the caches (nbdev's _proc, notebook outputs)")
    sys.exit(build(ap.parse_args().force))
