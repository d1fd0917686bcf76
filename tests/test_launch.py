"""scripts/launch.sh, run with a stand-in interpreter that prints what it is asked to run."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

STAND_IN = """#!/bin/sh
[ "$1" = -c ] && exit 0
echo "$@"
"""


def launch(tmp_path, *flags, **env):
    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    environment = {key: value for key, value in os.environ.items() if key != "BATCH"}
    environment.update(PYTHON=str(python), **env)
    done = subprocess.run(["bash", str(ROOT / "scripts/launch.sh"), "pb_warp", *flags],
                          capture_output=True, text=True, env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def batch_flags(argv):
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--batch_size"]


@pytest.mark.parametrize("flags, env, expected", [
    ((), {}, ["32"]),                                           # the paper's total batch
    ((), {"NGPU": "4"}, ["8"]),
    ((), {"BATCH": "6"}, ["6"]),
    (("--config", "configs/vitonhd_512.yaml"), {}, []),          # the config's 4 per process
    (("--config=configs/demo.yaml",), {}, []),
    (("--config", "configs/demo.yaml"), {"BATCH": "2"}, ["2"]),
    (("--config", "configs/mobile_student.yaml"), {}, ["32"]),  # a config without the key
])
def test_the_batch_size_comes_from_batch_then_the_config_then_32(tmp_path, flags, env,
                                                                   expected):
    argv = launch(tmp_path, *flags, **env)
    assert argv[:2] == ["-m", "torch.distributed.run"] and "train_pb_warp.py" in argv
    assert batch_flags(argv) == expected


def test_no_pytorch_is_one_line(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "scripts/launch.sh"), "pb_warp"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": "/bin/false"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("/bin/false has no PyTorch: run 'source scripts/setup_env.sh' "
                                   "(it creates .venv) or set PYTHON to an interpreter that "
                                   "has it")


@pytest.mark.parametrize("key, variable", [("dataroot", "DATAROOT"),
                                           ("checkpoints_dir", "RUNS"), ("name", "NAME")])
def test_a_config_setting_what_the_variables_set_is_refused(tmp_path, key, variable):
    """launch.sh passes --dataroot, --checkpoints_dir and --name from DATAROOT, RUNS and NAME;
    a --config's values would lose to them without a word."""
    config = tmp_path / "run.yaml"
    config.write_text(f"{key}: elsewhere\nlr: 0.001\n")
    python = tmp_path / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / "scripts/launch.sh"), "pb_warp", "--config",
                           str(config)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHON": str(python)})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (f"launch.sh: a --config sets {key}, which the launch scripts "
                                   f"take from the variable {variable}: set {variable} instead")
