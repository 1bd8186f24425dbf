"""Dependencies point one way (ARCHITECTURE.md): routes -> domain packages -> (mail,
models, db); jobs -> domain packages; nothing imports routes but the add-on object that
registers the blueprint; no domain package imports the add-on object; ``mail/`` knows
nothing of Flask or SQLAlchemy; no cycle between packages.

Every import counts, including those inside functions. Imports under
``if TYPE_CHECKING:`` count for every rule but the cycle check: they never run, so they
cannot close an import cycle (``current.get_addon`` is annotated with the add-on class).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[2] / "plugin"

#: packages holding the use cases, by domain
DOMAIN = ("setup", "fetching", "linking", "sharing", "reading", "sending")
#: the composition root: it wires the blueprint, the CLI and the jobs together
COMPOSITION_ROOT = "plugin.addon"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PLUGIN.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_only_nodes(tree: ast.AST) -> set[int]:
    """ids of the import statements inside ``if TYPE_CHECKING:`` blocks."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return ids


def _imports(path: Path, runtime_only: bool = False) -> set[str]:
    """Every module ``path`` imports, absolute, wherever the import statement sits."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_only_nodes(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # ``from plugin.sending import bulk`` imports the module plugin.sending.bulk
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) in ("import_module", "__import__"):
            found.add("<dynamic import>")
    return found


def _graph(runtime_only: bool = False) -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PLUGIN.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic's scripts: loaded by Alembic, import only models
        graph[_module_name(path)] = _imports(path, runtime_only)
    return graph


GRAPH = _graph()
RUNTIME_GRAPH = _graph(runtime_only=True)


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: plugin.sending.bulk.runner
    -> plugin.sending; plugin.db -> plugin.db."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _plugin_imports(module: str, graph: dict[str, set[str]] | None = None) -> set[str]:
    return {m for m in (graph or GRAPH)[module] if m == "plugin" or m.startswith("plugin.")}


def test_the_walk_sees_the_tree():
    """Guards the test itself: it must find the rooms and their imports."""
    for room in DOMAIN:
        assert any(m.startswith(f"plugin.{room}.") for m in GRAPH), room
    assert "plugin.routes.blueprint" in _plugin_imports(COMPOSITION_ROOT)
    assert any("plugin.mail.imap" in _plugin_imports(m) for m in GRAPH)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_nothing_outside_routes_imports_routes(module):
    if module.startswith("plugin.routes") or module == COMPOSITION_ROOT:
        return
    bad = sorted(m for m in _plugin_imports(module) if m.startswith("plugin.routes"))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _unit(m).split(".")[-1] in (
    *DOMAIN, "mail", "models", "jobs")))
def test_no_domain_package_imports_the_addon_object(module):
    bad = sorted(m for m in _plugin_imports(module)
                 if m in (COMPOSITION_ROOT, "plugin.current", "plugin.cli"))
    assert not bad, f"{module} imports {bad}: pass the host, engine or config in"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _unit(m).split(".")[-1] in DOMAIN))
def test_domain_packages_do_not_import_jobs(module):
    bad = sorted(m for m in _plugin_imports(module) if m.startswith("plugin.jobs"))
    assert not bad, f"{module} imports {bad}: jobs call use cases, not the reverse"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("plugin.mail")))
def test_mail_knows_nothing_of_flask_or_the_database(module):
    bad = sorted(m for m in GRAPH[module] if m.split(".")[0] in ("flask", "sqlalchemy")
                 or m.startswith(("plugin.models", "plugin.db")) or m == "plugin.addon")
    assert not bad, f"{module} imports {bad}"


def test_no_dynamic_imports():
    bad = sorted(m for m, imports in GRAPH.items() if "<dynamic import>" in imports)
    assert not bad, f"importlib/__import__ hides dependencies in {bad}"


def test_no_cycle_between_packages():
    edges: dict[str, set[str]] = defaultdict(set)
    for module in RUNTIME_GRAPH:
        for target in _plugin_imports(module, RUNTIME_GRAPH):
            a, b = _unit(module), _unit(target)
            if a != b and b != "plugin":
                edges[a].add(b)
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "package cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_a_cycle_would_be_found():
    """The cycle check itself fails on a cycle (so a green run means something)."""
    global RUNTIME_GRAPH
    saved = RUNTIME_GRAPH
    RUNTIME_GRAPH = {**saved, "plugin.mail.fake": {"plugin.setup.fake"},
                     "plugin.setup.fake": {"plugin.mail.fake"}}
    try:
        with pytest.raises(AssertionError, match="package cycles"):
            test_no_cycle_between_packages()
    finally:
        RUNTIME_GRAPH = saved
