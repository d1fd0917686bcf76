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
    assert "train_pb_warp.py" in argv
    assert batch_flags(argv) == expected


@pytest.mark.parametrize("env, torchrun", [
    ({}, []),   # one process: plainly, without torchrun's report after every error
    ({"NGPU": "2"}, ["--standalone", "--nproc_per_node", "2"]),
    ({"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "node0"},
     ["--nnodes", "2", "--node_rank", "1", "--nproc_per_node", "1", "--master_addr", "node0",
      "--master_port", "29500"]),
])
def test_torchrun_runs_more_than_one_process_only(tmp_path, env, torchrun):
    argv = launch(tmp_path, **env)
    start = argv.index("train_pb_warp.py")
    assert argv[:start] == (["-m", "torch.distributed.run", *torchrun] if torchrun else [])


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


# scripts/train_all.sh, its stages run by a stand-in interpreter that logs each training command
# (and runs the real one for the checks it makes with -c).
LOGGING_STAND_IN = """#!/bin/sh
[ "$1" = -c ] && [ "$2" = "import torch" ] && exit 0
[ "$1" = -c ] && exec {python} "$@"
echo "$@" >> {log}
"""


def _checkpoint(path, step, max_steps=None):
    """A project checkpoint of a 2-step-per-epoch, 6-step schedule at ``step``; with
    ``max_steps`` the final.pth of a --max_steps trial."""
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"stage": path.parent.name, "step": step, "steps_per_epoch": 2, "model": {},
                "config": {"niter": 2, "niter_decay": 1, "max_steps": max_steps}}, path)


def train_all(tmp_path, *flags, status=0):
    """Runs scripts/train_all.sh; returns its output and, per stage, the flags of its command
    that say how it starts (--resume, --overwrite), or None where it did not run."""
    import sys
    log = tmp_path / "commands.log"
    python = tmp_path / "python"
    python.write_text(LOGGING_STAND_IN.format(python=sys.executable, log=log))
    python.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / "scripts/train_all.sh"), "--device", "cpu", *flags],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHON": str(python), "RUNS": str(tmp_path)})
    assert done.returncode == status, done.stderr
    if status:
        return done.stderr, None
    started = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        argv = line.split()
        stage = argv[0].removeprefix("train_").removesuffix(".py")
        started[stage] = sorted({flag for flag in argv if flag in ("--resume", "--overwrite")})
    return done.stdout, {stage: started.get(stage) for stage in
                         ("pb_warp", "pb_gen", "pf_warp", "pf_gen")}


def test_train_all_after_a_trial_resumes_its_first_stage_and_starts_the_others_again(tmp_path):
    """Each later stage of a --max_steps trial started from its earlier stage's partly trained
    file: once that stage trains on, they start again. Resuming them trained stage 2 on a warp
    of two steps and stopped stage 3 (a teacher other than its run's)."""
    for stage in ("pb_warp", "pb_gen", "pf_warp", "pf_gen"):
        _checkpoint(tmp_path / stage / "final.pth", 2, max_steps=2)
        _checkpoint(tmp_path / stage / "latest.pth", 2, max_steps=2)
    out, started = train_all(tmp_path)
    assert started == {"pb_warp": ["--resume"], "pb_gen": ["--overwrite"],
                       "pf_warp": ["--overwrite"], "pf_gen": ["--overwrite"]}
    assert (f"== pf_warp: its run in {tmp_path}/pf_warp started from the pb_gen file that this "
            f"command changed; starting it again (--overwrite)") in out.splitlines()


def test_train_all_skips_finished_stages_and_resumes_an_interrupted_one(tmp_path):
    for stage in ("pb_warp", "pb_gen"):
        _checkpoint(tmp_path / stage / "final.pth", 6)
    _checkpoint(tmp_path / "pf_warp" / "latest.pth", 3)
    out, started = train_all(tmp_path)
    assert started == {"pb_warp": None, "pb_gen": None, "pf_warp": ["--resume"], "pf_gen": []}
    assert f"== pb_gen: done ({tmp_path}/pb_gen/final.pth), skipping" in out.splitlines()


def test_train_all_names_a_damaged_final_file_and_trains_nothing(tmp_path):
    (tmp_path / "pb_warp").mkdir()
    (tmp_path / "pb_warp" / "final.pth").write_bytes(b"not a checkpoint")
    err, _ = train_all(tmp_path, status=2)
    assert len(err.strip().splitlines()) == 1 and f"{tmp_path}/pb_warp/final.pth" in err
    assert not (tmp_path / "commands.log").exists()


def test_train_all_overwrite_starts_every_stage_again_and_resume_is_refused(tmp_path):
    """--overwrite skipped the finished stages, its flag passed to none of them."""
    for stage in ("pb_warp", "pb_gen"):
        _checkpoint(tmp_path / stage / "final.pth", 6)
    _checkpoint(tmp_path / "pf_warp" / "latest.pth", 3)
    _, started = train_all(tmp_path, "--overwrite")
    assert started == dict.fromkeys(("pb_warp", "pb_gen", "pf_warp", "pf_gen"), ["--overwrite"])
    err, _ = train_all(tmp_path, "--resume", status=2)
    assert err.strip().startswith("train_all.sh: leave out --resume")
