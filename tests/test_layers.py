"""The package's import contract: layers import only downward, and no module imports itself back.

Every ``import`` statement of ``paretoapp`` counts, those inside functions too (a lazy import still
ties two modules together). A module may import its own layer or any layer below it; an import of a
higher layer is an upward arrow and fails here with the line that makes it. ``paretoapp.demo`` is a
layer of its own when it exists: it may use trainers, evaluate and scorers, and nothing below it may
import it. To add a module, put it in the lowest layer whose modules it needs.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "paretoapp"

# Lowest first. A name is a module or a package (all of its modules); the root package ``paretoapp``
# holds only its lazy public table and the version.
LAYERS: list[tuple[str, ...]] = [
    ("paretoapp", "paretoapp.errors", "paretoapp.settings"),
    ("paretoapp.atomic", "paretoapp.pareto", "paretoapp.sampling"),
    ("paretoapp.validation",),
    ("paretoapp.gates", "paretoapp.conditioning", "paretoapp.methods", "paretoapp.models"),
    ("paretoapp.family", "paretoapp.hub", "paretoapp.preferences", "paretoapp.preference_search"),
    ("paretoapp.bank", "paretoapp.kvbatch", "paretoapp.family_check", "paretoapp.shrink"),
    ("paretoapp.engine", "paretoapp.generate", "paretoapp.export"),
    ("paretoapp.scorers",),
    ("paretoapp.evaluate", "paretoapp.picking", "paretoapp.frontplot"),
    ("paretoapp.trainers",),
    ("paretoapp.demo",),
    ("paretoapp.ui", "paretoapp.serve"),  # serve: the OpenAI-compatible API, beside the app
    ("paretoapp.cli", "paretoapp.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported paretoapp module, line) for every import statement in the file, resolved to a module:
    ``from pkg import name`` is ``pkg.name`` when that is a module, else ``pkg``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.append((full if full in modules else base, node.lineno))
    return [(target, line) for target, line in found if target.split(".")[0] == "paretoapp"]


def layer_of(name: str) -> int:
    """The index of the most specific layer entry that is ``name`` or a package above it."""
    best, best_len = None, -1
    for i, layer in enumerate(LAYERS):
        for entry in layer:
            inside = name == entry or (entry != "paretoapp" and name.startswith(entry + "."))
            if inside and len(entry) > best_len:
                best, best_len = i, len(entry)
    if best is None:
        raise AssertionError(f"{name} is in no layer of tests/test_layers.py; add it to the lowest layer it fits")
    return best


def import_graph() -> dict[str, list[tuple[str, int]]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def upward_imports(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    out: list[str] = []
    for name, targets in graph.items():
        for target, line in targets:
            if layer_of(target) > layer_of(name):
                out.append(f"{name}:{line} imports {target} (layer {layer_of(target)} > {layer_of(name)})")
    return sorted(set(out))


def cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Import circles between modules; a module importing its own package's ``__init__`` (which Python has
    already started running) is not counted."""
    edges = {name: sorted({t for t, _ in targets if t != name and not name.startswith(t + ".")})
             for name, targets in graph.items()}
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_every_module_is_in_a_layer():
    for name in all_modules():
        layer_of(name)


def test_no_upward_import():
    assert upward_imports(import_graph()) == []


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_the_contract_catches_an_upward_import_and_a_circle():
    graph = {"paretoapp.atomic": [("paretoapp.ui.catalog", 7)], "paretoapp.ui.catalog": [("paretoapp.atomic", 3)]}
    assert upward_imports(graph) == ["paretoapp.atomic:7 imports paretoapp.ui.catalog (layer 11 > 1)"]
    graph = {"paretoapp.a": [("paretoapp.b", 1)], "paretoapp.b": [("paretoapp.a", 2)]}
    assert cycles(graph) == [["paretoapp.a", "paretoapp.b", "paretoapp.a"]]
    assert cycles({"paretoapp.evaluate.front": [("paretoapp.evaluate", 1)]}) == []  # its own package: not a circle


def test_the_demo_sits_between_trainers_and_ui():
    graph = {"paretoapp.demo.build": [("paretoapp.trainers.loop", 1), ("paretoapp.evaluate", 2), ("paretoapp.scorers", 3)],
             "paretoapp.ui.catalog": [("paretoapp.demo.fallback", 4)], "paretoapp.cli.demo": [("paretoapp.demo", 5)]}
    assert upward_imports(graph) == []
    graph = {"paretoapp.trainers.loop": [("paretoapp.demo", 6)], "paretoapp.demo.build": [("paretoapp.ui.app", 7)]}
    assert upward_imports(graph) == ["paretoapp.demo.build:7 imports paretoapp.ui.app (layer 11 > 10)",
                                     "paretoapp.trainers.loop:6 imports paretoapp.demo (layer 10 > 9)"]
