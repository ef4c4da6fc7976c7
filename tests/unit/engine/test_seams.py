"""The engine's module seams, checked on its source: imports (``TYPE_CHECKING`` ones included)
form no cycle, the upstream connection knows its owner only by protocol, and no module reaches
into another object's underscore members."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[3] / "gateway" / "engine"


def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(ENGINE.glob("*.py"))}


def _engine_imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("gateway.engine."):
                found.add(node.module.rsplit(".", 1)[1])
            elif node.module == "gateway.engine":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gateway.engine."):
                    found.add(alias.name.split(".")[2])
    return found


def test_engine_imports_have_no_cycle() -> None:
    graph = {name: _engine_imports(tree) for name, tree in _modules().items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for imported in graph.get(name, ()):
            visit(imported, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_the_upstream_connection_does_not_know_the_pool() -> None:
    assert "pool" not in _engine_imports(_modules()["upstream"])


def test_no_module_touches_another_objects_private_members() -> None:
    offences: list[str] = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__"):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            offences.append(f"{name}.py:{node.lineno}: .{attr}")
    assert offences == []
