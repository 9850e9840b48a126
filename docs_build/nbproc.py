"""nbdev's docs processing (what `nbdev_proc_nbs` does) without its Quarto installer, one notebook at a time.

`nbdev_proc_nbs` first calls nbdev's `_ensure_quarto()`, which, when `quarto` is not on PATH, tries to install it
with `sudo` and then runs `pip install -e ".[dev]"`. Quarto cannot be installed here, so this script runs the
rest of `nbdev_proc_nbs` unchanged: nbdev's own `_proc_file` (same mtime cache, same copies of `_quarto.yml`,
styles, ...) and nbdev's own worker `nbdev.serve_drv.main` with nbdev's `FilterDefaults` processors, in spawned
processes exactly as nbdev does. The one difference: a notebook that fails does not stop the others; every
failure is reported with the notebook, the cell and the error, and the exit code is 1.

    python docs_build/nbproc.py [--force] [--n_workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from nbworkers import proc_one

ROOT = Path(__file__).resolve().parents[1]


def summary(err: str) -> str:
    "nbdev's 'Error in cell N' line plus the root cause's last line, from a formatted traceback."
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    where = next((ln.strip() for ln in lines if ln.strip().startswith(("Exception: Error", "Error in"))), "")
    cause = next((ln.strip() for ln in lines if not ln.startswith(" ") and ":" in ln
                  and not ln.startswith(("Traceback", "The above", "During handling"))), lines[-1] if lines else "")
    return f"{where} -- {cause}" if where and where not in cause else cause


def proc_nbs(force: bool = False, n_workers: int = 2, echo=print) -> tuple[Path, dict[str, str]]:
    "Run nbdev's processing into `_proc/`; returns (the _proc folder, {notebook: formatted error})."
    from fastcore.basics import defaults  # noqa: F401 -- nbdev reads it at import
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev import serve

    cfg = get_config()
    cache, path = cfg.config_path / "_proc", cfg.nbs_path
    files = nbglob(path, func=Path, file_glob="", file_re="")
    files += [p for p in (path / "_quarto.yml", path / "_brand.yml") if p.exists()]
    # Same cache rule as nbdev: settings.ini or nbdev newer than the cache folder empties it.
    chk_mtime = max(cfg.config_file.stat().st_mtime, Path(serve.__file__).stat().st_mtime)
    cache.mkdir(parents=True, exist_ok=True)
    if force or cache.stat().st_mtime < chk_mtime:
        import shutil

        shutil.rmtree(cache)
        cache.mkdir()
    cache_mtime = cache.stat().st_mtime
    items = [o for o in (serve._proc_file(f, cache, path, mtime=cache_mtime) for f in files) if o]
    errors: dict[str, str] = {}
    if items:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max(1, n_workers), mp_context=ctx) as pool:
            for src, secs, err in pool.map(proc_one, items):
                rel = str(Path(src).relative_to(path))
                echo(f"{'FAILED' if err else 'ok':6} {rel} ({secs:.1f}s)")
                if err:
                    errors[rel] = err
    cache.touch()
    return cache, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="ignore nbdev's _proc cache and process every notebook")
    ap.add_argument("--n_workers", type=int, default=2)
    args = ap.parse_args(argv)
    start = time.time()
    cache, errors = proc_nbs(args.force, args.n_workers)
    for nb, err in errors.items():
        print(f"\n=== {nb} failed in nbdev's processing:\n{err}", file=sys.stderr)
    n = len(list(cache.rglob("*.ipynb")))
    print(f"nbdev processing: {n} notebooks in {cache.relative_to(ROOT)}, {len(errors)} failed "
          f"({time.time() - start:.1f}s)")
    for nb, err in errors.items():
        print(f"  {nb}: {summary(err)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
