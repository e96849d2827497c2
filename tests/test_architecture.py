"""The module rules of docs/architecture.md: who may import whom, no cycles, no private names
across modules, and modules of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lakehouse", "dashboard")
MAX_LINES = 620  # "about 600"; the generator may be larger (one simulation, docs/architecture.md)
LARGER_ALLOWED = {"lakehouse.generator"}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


MODULES = _modules()


def _imports(name: str) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import in the module, function-level ones included."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")
                base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append((sub, None) if sub in MODULES else (base, a.name))
    return [(m, n) for m, n in found if m.split(".")[0] in PACKAGES]


def _internal(module: str) -> str | None:
    while module and module not in MODULES:
        module = module.rpartition(".")[0]
    return module or None


def test_no_import_cycle_between_modules():
    graph = {m: {t for i, _ in _imports(m) if (t := _internal(i)) and t != m} for m in MODULES}
    # A package imports its own submodules (re-exports); the rule is about modules importing each other.
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            assert state.get(t) != 1, "import cycle: " + " -> ".join(path[path.index(t):] + [t]) if t in path else t
            if t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(MODULES):
        if m not in state:
            visit(m, [m])


def test_no_module_imports_another_modules_private_names():
    bad = [f"{m} imports {name} from {src}" for m in MODULES for src, name in _imports(m)
           if name and name.startswith("_") and not name.startswith("__") and _internal(src) != m]
    assert bad == []


def test_transforms_are_pure_and_import_only_other_transforms():
    for m in MODULES:
        if m.startswith("lakehouse.transforms."):
            others = {_internal(i) for i, _ in _imports(m)} - {None}
            assert all(o.startswith("lakehouse.transforms") for o in others), (m, others)


def test_the_dashboard_reads_the_lake_without_the_pipelines_steps():
    # names, paths and the object store's storage options only, no step
    allowed = {"lakehouse.catalog", "lakehouse.tables", "lakehouse.objectstore", "lakehouse.transforms"}
    for m in MODULES:
        if m.startswith("dashboard"):
            used = {_internal(i) for i, _ in _imports(m)} - {None}
            assert {u for u in used if u.startswith("lakehouse")} <= allowed | {u for u in used if u.startswith("lakehouse.transforms")}, m


def test_no_module_is_over_about_600_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert {m: n for m, n in long.items() if m not in LARGER_ALLOWED} == {}
