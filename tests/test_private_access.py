"""No module touches a private attribute of an object defined in another module.

A private name starts with one underscore and is not a dunder (`_x`, `__x`; not `__x__`). Every module under
`fastkafka/` is parsed (except the generated `_modidx.py`) and these are violations:

1. Importing a private name from another module: `from X import _name` (X another fastkafka module, a
   third-party package or the standard library; relative imports are resolved). `X._name` where `X` is bound to
   a module by an import is a violation too, and so is a private module path of a package outside fastkafka
   (`from aiokafka._x import y`, `import aiokafka._x`). fastkafka's own private module paths
   (`fastkafka._components.brokers`) are its layout and are fine.
2. `expr._name`, read, written or deleted, where `expr` is not `self`, `cls` or `super()`, unless `_name` is
   defined in the same module: as a method or class attribute of a class in that module, as `self._name = ...`
   / `cls._name = ...` in that module (methods added with fastcore's `@patch` count as class members), or as
   `obj._name = ...` in that module. Setting or overriding what a
   class inherits from another fastkafka module does not define it (a `Tester(FastKafka)` that sets
   `self._transport` may not then touch `app._transport`), and neither does `obj._name = ...` for a name that
   another fastkafka module defines. `getattr` / `setattr` / `hasattr` / `delattr` with a literal private name
   count as `expr._name`.

The rules go by name, not by type: a module whose own classes define `_stack` may read `other._stack`. Each
violation is reported as `path:line: expr._name`, with the count. There is no allowlist: `_asdict` of a
namedtuple or aiokafka's `_subscription` count like any other private name.
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "fastkafka"
_ATTR_FUNCS = {"getattr", "setattr", "hasattr", "delattr"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and name != "_" and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_fastkafka(module: str) -> bool:
    return module == "fastkafka" or module.startswith("fastkafka.")


def _import_base(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - node.level + 1]
    return ".".join(parts + ([node.module] if node.module else []))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _attr_uses(tree: ast.AST) -> list[tuple[ast.expr, str, int, bool]]:
    "`(expr, name, line, is_write)` for every `expr.name` and every get/set/has/delattr(expr, 'name')."
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            uses.append((node.value, node.attr, node.lineno, isinstance(node.ctx, ast.Store | ast.Del)))
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _ATTR_FUNCS
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
        ):
            uses.append((node.args[0], node.args[1].value, node.lineno, node.func.id in ("setattr", "delattr")))
    return uses


def _is_patch(decorator: ast.expr) -> bool:
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (_dotted(node) or "").rpartition(".")[2] in ("patch", "patch_to")


def _self_writes(node: ast.AST) -> set[str]:
    return {n for e, n, _, w in _attr_uses(node) if w and isinstance(e, ast.Name) and e.id in ("self", "cls")}


def _class_names(node: ast.ClassDef) -> set[str]:
    "Private names a class defines: members of its body and `self._x` / `cls._x` writes in its methods."
    names = _self_writes(node)
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(item.name)
        targets = item.targets if isinstance(item, ast.Assign) else [getattr(item, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return {n for n in names if _is_private(n)}


@dataclass
class Module:
    "One parsed module: its tree and, per class, the private names it defines and its bases."

    path: str  # as reported, e.g. fastkafka/_application/app.py
    name: str  # dotted module name
    tree: ast.Module
    is_package: bool = False
    classes: dict[str, tuple[set[str], list[ast.expr]]] = field(default_factory=dict)  # name -> (names, bases)
    loose: set[str] = field(default_factory=set)  # `@patch`ed methods, `self._x` writes outside classes

    @classmethod
    def parse(cls, source: str, path: str, name: str, is_package: bool = False) -> "Module":
        tree = ast.parse(source)
        mod = cls(path, name, tree, is_package)
        in_class: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                mod.classes[node.name] = (_class_names(node), node.bases)
                in_class |= _self_writes(node)
        patched = {f.name for f in tree.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                   and any(_is_patch(d) for d in f.decorator_list)}  # fastcore's @patch adds methods
        mod.loose = {n for n in (_self_writes(tree) - in_class) | patched if _is_private(n)}
        return mod

    @property
    def primary(self) -> set[str]:
        "Every private name this module's classes define, overrides of inherited ones included."
        return self.loose.union(*(names for names, _ in self.classes.values()))

    def imported(self, modules: set[str]) -> dict[str, str]:
        "Local names imported from fastkafka modules (`from X import Name`) -> X."
        found = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                base = _import_base(node, self.name, self.is_package)
                if base in modules:
                    found |= {a.asname or a.name: base for a in node.names if f"{base}.{a.name}" not in modules}
        return found

    def base_modules(self, cls_name: str, modules: set[str], seen: frozenset[str] = frozenset()) -> set[str]:
        "The other fastkafka modules that class `cls_name` inherits from directly or via this module's classes."
        found: set[str] = set()
        imported, aliases = self.imported(modules), _module_aliases(self, modules)
        for base in self.classes[cls_name][1]:
            dotted = _dotted(base) or ""
            root = dotted.rpartition(".")[0]
            if dotted in self.classes and dotted not in seen:
                found |= self.base_modules(dotted, modules, seen | {cls_name})
            elif dotted in imported:
                found.add(imported[dotted])
            elif root.split(".")[0] in aliases:  # `module.Class`
                first = root.split(".")[0]
                found.add(aliases[first] + root[len(first):])
        return found


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    todo, seen = list(start), set(start)
    while todo:
        for m in edges.get(todo.pop(), set()) - seen:
            seen.add(m)
            todo.append(m)
    return seen


def owned_names(mods: list[Module], modules: set[str]) -> dict[str, set[str]]:
    "Per module, the private names it defines itself: inherited ones set or overridden there do not count."
    by_name = {m.name: m for m in mods}
    edges = {m.name: set().union(*(m.base_modules(c, modules) for c in m.classes)) for m in mods}
    owned = {}
    for m in mods:
        names: set[str] = set()
        for c, (defined, _) in m.classes.items():
            inherited = _closure(m.base_modules(c, modules), edges) - {m.name}
            names |= defined - set().union(*(by_name[x].primary for x in inherited if x in by_name))
        imports = _closure(set(m.imported(modules).values()), edges) - {m.name}
        owned[m.name] = names | (m.loose - set().union(*(by_name[x].primary for x in imports if x in by_name)))
    return owned


def _module_aliases(mod: Module, modules: set[str]) -> dict[str, str]:
    "Local names bound to modules by imports -> the module's dotted name."
    aliases: dict[str, str] = {}
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = _import_base(node, mod.name, mod.is_package)
            for a in node.names:
                if f"{base}.{a.name}" in modules:
                    aliases[a.asname or a.name] = f"{base}.{a.name}"
    return aliases


def _import_violations(mod: Module, modules: set[str]) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.ImportFrom):
            base = _import_base(node, mod.name, mod.is_package)
            if not _is_fastkafka(base) and any(_is_private(p) for p in base.split(".")):
                found.append((node.lineno, f"from {base} import ..."))
            for a in node.names:
                if _is_private(a.name) and base != mod.name and f"{base}.{a.name}" not in modules:
                    found.append((node.lineno, f"from {base} import {a.name}"))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if not _is_fastkafka(a.name) and any(_is_private(p) for p in a.name.split(".")):
                    found.append((node.lineno, f"import {a.name}"))
    return found


def violations(mod: Module, modules: set[str], owned: set[str], foreign: set[str]) -> list[str]:
    "Every private access in `mod` that the rules forbid, as `path:line: what`."
    found = _import_violations(mod, modules)
    aliases = _module_aliases(mod, modules)
    uses = _attr_uses(mod.tree)
    defined = owned | {n for e, n, _, w in uses if w and not _is_self(e) and n not in foreign}
    for expr, name, line, _ in uses:
        if not _is_private(name) or _is_self(expr):
            continue
        dotted = _dotted(expr) or ""
        root = dotted.split(".")[0]
        if root in aliases:
            if f"{aliases[root]}{dotted[len(root):]}.{name}" in modules:
                continue  # a fastkafka module path such as fastkafka._components.brokers
            found.append((line, f"{ast.unparse(expr)}.{name}"))
        elif name not in defined:
            found.append((line, f"{ast.unparse(expr)}.{name}"))
    return [f"{mod.path}:{line}: {what}" for line, what in sorted(set(found))]


def all_violations(mods: list[Module]) -> list[str]:
    "The violations of every module in `mods`, judged against each other."
    names = {m.name for m in mods}
    modules = names | {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    owned = owned_names(mods, modules)
    problems = []
    for m in mods:
        foreign = set().union(*(o.primary for o in mods if o is not m))
        problems += violations(m, modules, owned[m.name], foreign)
    return problems


def package_modules() -> list[Module]:
    files = sorted(p for p in PKG.rglob("*.py") if p.name != "_modidx.py")
    return [
        Module.parse(p.read_text(), str(p.relative_to(ROOT)), _module_name(p), p.name == "__init__.py")
        for p in files
    ]


def test_no_module_touches_another_modules_private_attributes() -> None:
    mods = package_modules()
    assert len(mods) > 20, f"only {len(mods)} modules found under {PKG}"
    problems = all_violations(mods)
    assert not problems, f"{len(problems)} private accesses across modules:\n" + "\n".join(problems)


_OTHER = """
class App:
    _registry = {}
    def __init__(self):
        self._transport = None
    def _start(self):
        pass
"""


@pytest.mark.parametrize(
    "source, expected",
    [
        ("class A:\n    def __init__(self):\n        self._x = 1\n    def same(self, other):\n"
         "        return other._x + self._x + super()._y + type(self)._helper\n    _helper = 2\n", []),
        ("def mark(f):\n    f._spec = 1\n    return f\n\ndef spec(f):\n    return f._spec\n", []),
        ("class B:\n    def __init__(self, o):\n        self._transport = o._transport\n", []),
        ("from fastcore.basics import patch\nclass A:\n    pass\n@patch\ndef _go(self: A):\n    self._n = 1\n"
         "def f(a):\n    return a._go, a._n\n", []),
        ("from fastcore.basics import patch\nfrom .other import App\n@patch\ndef _start(self: App):\n"
         "    self._transport = 1\ndef f(a):\n    return a._start, a._transport\n",
         ["m.py:7: a._start", "m.py:7: a._transport"]),
        ("import fastkafka._components.other\nx = fastkafka._components.other.App\n", []),
        ("from fastkafka._components import other\nfrom . import other as o\nx = o.App\n", []),
        ("def f(x):\n    return x.__class__.__name__, x.__dict__\n", []),
        ("def f(app):\n    return app._transport\n", ["m.py:2: app._transport"]),
        ("def f(app):\n    app._transport = 1\n", ["m.py:2: app._transport"]),
        ("def f(app):\n    return getattr(app, '_start')\n", ["m.py:2: app._start"]),
        ("class A:\n    def f(self):\n        return self.app._registry\n", ["m.py:3: self.app._registry"]),
        ("from .other import App\nclass T(App):\n    def __init__(self, app):\n        self._transport = 1\n"
         "        app._transport = 2\n", ["m.py:5: app._transport"]),
        ("from fastkafka._components import other\nclass T(other.App):\n    def __init__(self, app):\n"
         "        self._registry = app._registry\n", ["m.py:4: app._registry"]),
        ("from .other import App\nclass T(App):\n    def _start(self):\n        pass\nclass U(T):\n"
         "    def f(self, a):\n        return a._start\n", ["m.py:7: a._start"]),
        ("from fastkafka._components.other import _HIDDEN\n",
         ["m.py:1: from fastkafka._components.other import _HIDDEN"]),
        ("from .other import _HIDDEN\n", ["m.py:1: from fastkafka._components.other import _HIDDEN"]),
        ("from aiokafka.util import _frozen\n", ["m.py:1: from aiokafka.util import _frozen"]),
        ("from aiokafka._x import y\nimport kafka._z\n",
         ["m.py:1: from aiokafka._x import ...", "m.py:2: import kafka._z"]),
        ("from fastkafka._components import other\nother._HIDDEN\n", ["m.py:2: other._HIDDEN"]),
        ("import asyncio\nclass A:\n    _loop = 1\nasyncio._loop\n", ["m.py:4: asyncio._loop"]),
    ],
)
def test_rules_on_small_sources(source: str, expected: list[str]) -> None:
    other = Module.parse(_OTHER, "other.py", "fastkafka._components.other")
    mod = Module.parse(source, "m.py", "fastkafka._components.m")
    found = [v for v in all_violations([other, mod]) if v.startswith("m.py:")]
    assert found == expected
    assert all_violations([other]) == []
