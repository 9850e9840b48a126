"""Functions run in spawned worker processes (a module of their own: IPython replaces `__main__` in a worker)."""

from __future__ import annotations

import time
import traceback


def proc_one(item: tuple) -> tuple[str, float, str | None]:
    "Process one file with nbdev's own worker; return (source, seconds, formatted error or None)."
    import nbdev.serve_drv

    start = time.time()
    try:
        nbdev.serve_drv.main(item)
        return str(item[0]), time.time() - start, None
    except BaseException as e:
        return str(item[0]), time.time() - start, "".join(traceback.format_exception(e))



def exec_one(src: str, skip_flags: list[str], basepath: str, timeout: float) -> tuple[str, float, dict, str | None]:
    """Run the source notebook `src` the way `nbdev_test` does, keeping the outputs.

    Cells carrying one of `skip_flags` (settings.ini `tst_flags`) or `#| eval: false` are not run, like
    `nbdev_test` (nbdev's own `test_nb` rules). Returns (src, seconds, {cell id: outputs}, error or None); the
    error names the cell (id and its first line) and carries the traceback."""
    import os
    import signal
    import sys
    from pathlib import Path

    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    from nbdev.processors import FrontmatterProc

    start, path = time.time(), Path(src)
    sys.path.insert(0, basepath)
    os.environ["IN_TEST"] = "1"
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    flags = set(skip_flags)

    def skip(cell) -> bool:
        if cell.cell_type != "code" or "nbdev_export" + "(" in cell.source:
            return True
        direc = getattr(cell, "directives_", {}) or {}
        return direc.get("eval:", [""])[0].lower() == "false" or bool(flags & direc.keys())

    def on_alarm(signum, frame):
        raise TimeoutError(f"{path.name}: still running after {timeout:.0f}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(timeout))
    shell = CaptureShell(path)
    outputs: dict = {}
    try:
        with working_directory(path.parent):
            for cell in nb.cells:
                if skip(cell):
                    continue
                shell.cell(cell)
                outs = [dict(o) for o in (cell.get("outputs") or [])]
                if cell.get("id"):
                    outputs[cell["id"]] = outs
                if shell.exc is not None:
                    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                    tb = shell.prettytb(fname=path)
                    return src, time.time() - start, outputs, f"cell {cell.get('id')} ({first!r}) raised:\n{tb}"
    except BaseException as e:
        return src, time.time() - start, outputs, "".join(traceback.format_exception(e))
    finally:
        signal.alarm(0)
    return src, time.time() - start, outputs, None
