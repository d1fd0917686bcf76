"""Every command line states each default once, and truly: its ``--help`` is rendered in a
child process (the real parsers, as the scripts build them) and every mention of a default must
be the ``(default: X)`` that ``common.cli.HelpFormatter`` writes from the parser's own value."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Command lines that are not scripts of their own folder: run as modules.
MODULES = ("data.check",)

# Runs each CLI with --help, catching the parser when it prints its help: each flag's rendered
# help text and its default as the formatter shows one.
DUMP = r'''
import argparse, json, runpy, sys
sys.path.insert(0, ".")
from common.cli import shown_default
found = {}

def dump(parser, file=None):
    def walk(p, command):
        formatter = p._get_formatter()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, command + [name])
                continue
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            found.setdefault(CLI, []).append({
                "command": " ".join(command), "flag": action.option_strings[-1],
                "help": formatter._expand_help(action) if action.help is not None else None,
                "default": (None if action.default in (None, False, argparse.SUPPRESS, [], "")
                            else shown_default(action.default)),
                "formatter": type(formatter).__name__})
    walk(parser, [])

argparse.ArgumentParser.print_help = dump
for CLI in sys.argv[1:]:
    sys.argv = [CLI, "--help"]
    try:
        if CLI.endswith(".py"):
            runpy.run_path(CLI, run_name="__main__")
        else:
            runpy.run_module(CLI, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    except Exception as error:   # reported as that command line's failure, the others go on
        found[CLI] = [{"error": f"{type(error).__name__}: {error}"}]
print(json.dumps(found))
'''


def command_lines() -> list[str]:
    """Every script of the repository that builds an argparse parser."""
    scripts = sorted(str(path.relative_to(ROOT)) for path in
                     [*ROOT.glob("*.py"), *(ROOT / "scripts").glob("*.py")]
                     if "ArgumentParser(" in path.read_text(encoding="utf-8"))
    return scripts + list(MODULES)


@pytest.fixture(scope="module")
def helps() -> dict:
    result = subprocess.run([sys.executable, "-c", DUMP, *command_lines()], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_command_line_renders_its_help(helps):
    failed = {cli: helps.get(cli, [{"error": "printed no help"}])[0]["error"]
              for cli in command_lines() if not helps.get(cli) or "error" in helps[cli][0]}
    assert failed == {}


def test_every_flag_has_a_help_text(helps):
    bare = [f"{cli} {entry['command']} {entry['flag']}" for cli, flags in helps.items()
            for entry in flags if "error" not in entry and not entry["help"]]
    assert bare == []


def test_each_default_is_stated_once_and_as_the_parser_holds_it(helps):
    wrong = []
    for cli, flags in helps.items():
        for entry in flags:
            if "error" in entry or entry["help"] is None:
                continue
            text = " ".join(entry["help"].split())
            where = f"{cli} {entry['command']} {entry['flag']}".replace("  ", " ")
            mentions = len(re.findall(r"default", text, flags=re.IGNORECASE))
            stated = re.fullmatch(r".*\(default: (.*)\)", text)
            if entry["default"] is None:
                if mentions:
                    wrong.append(f"{where}: has no default value but its help says "
                                 f"'default': {text!r}")
            elif mentions != 1 or stated is None or stated.group(1) != entry["default"]:
                wrong.append(f"{where}: the parser's default is {entry['default']!r}, the help "
                             f"says {text!r}")
    assert wrong == []


def test_every_command_line_uses_the_shared_formatter(helps):
    others = sorted({f"{cli}: {entry['formatter']}" for cli, flags in helps.items()
                     for entry in flags if entry.get("formatter", "HelpFormatter")
                     != "HelpFormatter"})
    assert others == []


def test_tools_that_read_no_parsing_have_no_parsing_flags(helps):
    # export, serve, evaluate and the baselines took --neck, --label_scheme... and ignored them.
    parsing = {"--label_scheme", "--neck", "--pose_format", "--iuv_channel", "--densepose_dir"}
    for cli in ("test.py", "scripts/export.py", "scripts/serve.py", "scripts/evaluate.py",
                "scripts/baselines.py", "scripts/precision_quality.py"):
        assert {entry["flag"] for entry in helps[cli]} & parsing == set(), cli
        assert {entry["flag"] for entry in helps[cli]} >= {"--dataset", "--category"}, cli
    assert parsing <= {entry["flag"] for entry in helps["data.check"]}
    dataset = next(e for e in helps["scripts/export.py"] if e["flag"] == "--dataset")
    assert dataset["help"].startswith("layout of --calibration:")
