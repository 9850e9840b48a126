"""Notebooks are in dependency order: a module never imports one exported by a later notebook (nor itself)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "fastkafka"


def _notebook_of(path: Path) -> str | None:
    m = re.search(r"File to edit: \.\./(?:\.\./)*nbs/(\S+)\.ipynb", path.read_text())
    return m.group(1) if m else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from X import y` imports module X.y when there is one, else the name y from module X
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names}
    return {f for f in found if f == "fastkafka" or f.startswith("fastkafka.")}


def test_modules_only_import_from_earlier_notebooks() -> None:
    owner: dict[str, str] = {}
    files = [p for p in PKG.rglob("*.py") if p.name != "_modidx.py"]
    for p in files:
        nb = _notebook_of(p)
        if nb is not None:
            owner[_module_name(p)] = nb
    assert owner, "no exported modules found"
    problems = []
    for p in files:
        me = owner.get(_module_name(p))
        if me is None:
            continue
        for target in _imports(p, _module_name(p), set(owner)):
            dep = owner.get(target)
            if dep is not None and dep > me:
                problems.append(f"{me} ({_module_name(p)}) imports {target} from later notebook {dep}")
    assert not problems, "\n".join(sorted(problems))
