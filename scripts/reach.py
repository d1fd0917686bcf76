"""How much code a reader crosses: the project files and lines reachable from each entry
script through its imports, counted two ways: through module-level imports only (what runs
when the script starts) and through any import, those inside functions included.

    python scripts/reach.py                  # a table for the stage scripts and test.py
    python scripts/reach.py --check          # also fail when train_pb_warp.py exceeds the limits
    python scripts/reach.py --list train_pb_warp.py   # the reachable files, module level

Read from the code with ``ast``; nothing is imported. A module counts with its package's
``__init__.py`` files, as Python runs them. The architecture registry imports, on its first
lookup, every module of ``models/`` that registers something (``models/registry.py``): those
count as imports inside a function of the registry.
"""

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.cli import HelpFormatter  # noqa: E402

ENTRIES = ("train_pb_warp.py", "train_pb_gen.py", "train_pf_warp.py", "train_pf_gen.py",
           "test.py")
# The targets for stage 1: module-level imports, any import.
# Lines reachable from stage 1 (module level, any import). TARGETS is where the core should get
# to and is not reached yet; CEILINGS are today's figures, which --check (and CI) holds: the
# reach grows only by a commit that raises them and says why.
TARGETS = {"train_pb_warp.py": (5000, 7000)}
CEILINGS = {"train_pb_warp.py": (8043, 11009)}


# Files that import other files by discovery, not by name: file -> (folder, what a discovered
# file's source contains).
DISCOVERY = {"models/registry.py": ("models", re.compile(r"^register(_family)?\(", re.MULTILINE))}


def discovered(path: Path) -> set[Path]:
    """The files ``path`` imports by discovery (at its first lookup, inside a function)."""
    rule = DISCOVERY.get(str(path.relative_to(ROOT)))
    if rule is None:
        return set()
    folder, pattern = rule
    return {file for file in (ROOT / folder).glob("*.py")
            if file != path and pattern.search(file.read_text(encoding="utf-8"))}


def module_path(name: str) -> Path | None:
    """The file of project module ``name`` ('models.afwm'), or None when it is not ours."""
    parts = name.split(".")
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"),
                      ROOT.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def _is_module_level(node: ast.AST, parents: dict) -> bool:
    """Whether ``node`` runs when its module is imported: not inside a function body."""
    parent = parents.get(node)
    while parent is not None:
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return False
        parent = parents.get(parent)
    return True


def imported_modules(path: Path, module_level_only: bool) -> set[Path]:
    """The project files ``path`` imports, with the packages' ``__init__.py`` on the way."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    relative_to = path.relative_to(ROOT).with_suffix("").parts
    package = relative_to[:-1] if path.name != "__init__.py" else relative_to[:-1]
    names = []
    for node in ast.walk(tree):
        if module_level_only and not _is_module_level(node, parents):
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    found = set() if module_level_only else discovered(path)
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            file = module_path(".".join(parts[:end]))
            if file is not None:
                found.add(file)
    return found


def reachable(entry: Path, module_level_only: bool) -> set[Path]:
    seen, todo = set(), [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        todo += imported_modules(path, module_level_only) - seen
    return seen


def lines(paths) -> int:
    return sum(len(path.read_text(encoding="utf-8").splitlines()) for path in paths)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when an entry exceeds its ceiling in CEILINGS")
    parser.add_argument("--list", metavar="SCRIPT", default=None,
                        help="print the files reachable from SCRIPT through module-level "
                             "imports, largest first")
    args = parser.parse_args(argv)
    if args.list:
        files = reachable(ROOT / args.list, True)
        for path in sorted(files, key=lambda p: -lines([p])):
            print(f"{lines([path]):6d}  {path.relative_to(ROOT)}")
        return 0
    print(f"{'entry':<18} {'module level':>20} {'any import':>20}")
    failed = []
    for entry in ENTRIES:
        top = reachable(ROOT / entry, True)
        every = reachable(ROOT / entry, False)
        print(f"{entry:<18} {len(top):5d} files {lines(top):6d} lines "
              f"{len(every):5d} files {lines(every):6d} lines")
        figures = (lines(top), lines(every))
        if entry in TARGETS and any(f > t for f, t in zip(figures, TARGETS[entry])):
            print(f"  {entry} is above its target {TARGETS[entry]}")
        ceiling = CEILINGS.get(entry)
        if ceiling and any(f > c for f, c in zip(figures, ceiling)):
            failed.append(f"{entry}: {figures[0]} / {figures[1]} lines, ceiling {ceiling}")
    if args.check and failed:
        print("over the ceiling: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
