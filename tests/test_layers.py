"""The layers of the README hold, read from the code: no import circle among the project's
modules, and each floor imports only what lies below it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("common", "models", "data", "options", "utils")
# What each folder must not import (its upper floors).
FORBIDDEN = {"common": ("models", "data", "options", "utils", "scripts"),
             "models": ("data", "options", "utils", "scripts"),
             "data": ("models", "options", "utils", "scripts"),
             "options": ("utils", "scripts")}


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    for path in ROOT.glob("*.py"):
        found[path.stem] = path
    return found


def imports_of(name: str, path: Path, known: dict) -> set[str]:
    """The project modules ``name`` imports (anywhere in the file, function bodies too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[:len(parts) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


@pytest.fixture(scope="module")
def graph():
    known = project_modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_no_module_imports_an_upper_floor(graph):
    upward = [f"{name} imports {target}" for name, targets in sorted(graph.items())
              for target in sorted(targets)
              if target.split(".")[0] in FORBIDDEN.get(name.split(".")[0], ())]
    assert upward == []


def test_there_is_no_import_circle(graph):
    # Depth-first search; a module met again while still on the path closes a circle.
    state, circles = {}, []

    def visit(name, path):
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_the_checker_sees_imports(graph):
    # The graph is not empty by accident: known arrows are found.
    assert "models.registry" in graph["models.afwm"]
    assert "utils.training.engine" in graph["train_pb_warp"]
    assert "common.errors" in graph["data.files"]
