"""The package's import graph has no cycle, and no feature imports the stream manager.

Read from the source (ast), so nothing is imported. Imports under `if TYPE_CHECKING:` count:
a cycle through type hints is still two modules that cannot be understood one without the
other. Imports inside a function are deliberate late imports and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import streamwarden

ROOT = Path(streamwarden.__file__).parent
FEATURES = ("streamwarden.recording.control", "streamwarden.restream.server",
            "streamwarden.live.viewers", "streamwarden.pixels.shared",
            "streamwarden.inference.controller")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _top_level_imports(body: list[ast.stmt]) -> list[str]:
    """Modules imported at module level (also inside if/try blocks), not inside functions."""
    names: list[str] = []
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.If | ast.Try):
            blocks = [node.body, node.orelse, *(h.body for h in getattr(node, "handlers", []))]
            for block in blocks:
                names += _top_level_imports(block)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {dep for dep in _top_level_imports(ast.parse(path.read_text()).body)
                   if dep in modules and dep != name}
            for name, path in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = _find_cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_features_do_not_import_the_stream_manager():
    graph = _graph()
    for feature in FEATURES:
        assert feature in graph, f"{feature} moved: update FEATURES"
        assert "streamwarden.manager" not in graph[feature], feature
