"""Rules the code keeps, read from the source with ``ast`` and ``tokenize``: no function of the
core over 60 lines, no docstring or comment naming a repository path that does not exist, and
the stage scripts within their reach (``scripts/reach.py``)."""

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ("models", "data", "utils", "options", "common")
MAX_FUNCTION_LINES = 60
# A repository path as docstrings and comments name them: a folder of ours, then a file name
# with one of the project's extensions (an optional ':line' is not part of it).
PATH = re.compile(r"(?<![\w./-])((?:models|data|utils|options|common|scripts|tests|configs|"
                  r"docs)/[\w./-]*\.(?:py|yaml|json|md|sh|png))\b")


def core_files() -> list[Path]:
    files = [path for folder in CORE for path in (ROOT / folder).rglob("*.py")]
    return sorted(files + list(ROOT.glob("*.py")))


def python_files() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py")
                  if not any(part.startswith(".") for part in path.relative_to(ROOT).parts))


def test_no_function_of_the_core_is_longer_than_a_screen():
    long = []
    for path in core_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines})")
    assert long == []


def _docstrings_and_comments(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of ``source``."""
    found = [(token.start[0], token.string) for token in
             tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[0] if node.body else None
            if (isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant)
                    and isinstance(body.value.value, str)):
                found.append((body.lineno, body.value.value))
    return found


def test_docstrings_and_comments_name_files_that_exist():
    stale = []
    for path in python_files():
        for line, text in _docstrings_and_comments(path.read_text(encoding="utf-8")):
            for named in PATH.findall(text):
                if not (ROOT / named.rstrip(".")).exists():
                    stale.append(f"{path.relative_to(ROOT)}:{line} names {named}")
    assert stale == []


def test_docstrings_keep_the_line_breaks_of_their_commands():
    # A lone backslash at a line's end inside a (non-raw) string joins the lines: a command
    # shown in --help would run on with the next line's indentation.
    joined = []
    for path in python_files():
        for token in tokenize.generate_tokens(io.StringIO(path.read_text("utf-8")).readline):
            if (token.type == tokenize.STRING and not token.string.lower().startswith(("r", "br"))
                    and re.search(r"(?<!\\)(?:\\\\)*\\\n", token.string)):
                joined.append(f"{path.relative_to(ROOT)}:{token.start[0]}")
    assert joined == []


def test_the_path_rule_finds_what_it_should():
    text = "see models/afwm.py:20, utils/x/y.py and not checkpoints/pf_gen/final.pth"
    assert PATH.findall(text) == ["models/afwm.py", "utils/x/y.py"]


def test_stage_one_reaches_no_more_than_its_ceiling():
    """The reach may only fall: today's figures with a small margin (``scripts/reach.py``;
    its TARGETS, lower, are not reached yet)."""
    import runpy
    reach = runpy.run_path(str(ROOT / "scripts" / "reach.py"))
    entry = ROOT / "train_pb_warp.py"
    module_level = reach["lines"](reach["reachable"](entry, True))
    any_import = reach["lines"](reach["reachable"](entry, False))
    ceiling_module_level, ceiling_any_import = reach["CEILINGS"]["train_pb_warp.py"]
    assert module_level <= ceiling_module_level and any_import <= ceiling_any_import, (
        module_level, any_import)


def test_reach_counts_imports_inside_functions_and_by_discovery(tmp_path):
    import runpy
    reach = runpy.run_path(str(ROOT / "scripts" / "reach.py"))
    registry = ROOT / "models" / "registry.py"
    found = reach["discovered"](registry)
    assert ROOT / "models" / "afwm.py" in found and ROOT / "models" / "fsvton.py" in found
    assert ROOT / "models" / "losses.py" not in found        # registers nothing
    test_py = reach["reachable"](ROOT / "test.py", False)
    assert ROOT / "utils" / "metrics" / "folders.py" in test_py      # imported inside evaluate()
    assert ROOT / "utils" / "metrics" / "folders.py" not in reach["reachable"](ROOT / "test.py",
                                                                               True)
