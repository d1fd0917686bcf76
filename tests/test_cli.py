"""Every command-line tool answers a missing file, a missing VGG19 and a bad dataset with one
line, ``error: <message>`` naming the flag or file, and exit status 2: never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import test as test_script
import train_pb_gen
import train_pb_warp
import train_pf_gen
import train_pf_warp
from data.synthetic import make_dataset
from scripts import (
    baselines,
    bench_data,
    benchmark,
    convert_data,
    demo_report,
    eval_garment_masks,
    evaluate,
    export,
    make_garment_masks,
    make_synthetic_data,
    serve,
)

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """A small VITON-layout dataset, and a 'bad' copy of its training folder without labels."""
    out = tmp_path_factory.mktemp("cli_data")
    made = make_dataset(str(out), num_train=2, num_test=2, seed=0, height=64, width=64)
    bad = out / "bad_train"
    bad.mkdir()
    for name in ("train_img", "train_color", "train_edge", "train_pose"):
        os.symlink(Path(made["train"]) / name, bad / name)
    return {"train": made["train"], "test": made["test"], "bad": str(bad)}


def stage_main(module):
    stage = next(value for value in vars(module).values()
                 if isinstance(value, type) and value.__module__ == module.__name__
                 and hasattr(value, "trained"))
    return lambda argv: module.main(stage(), argv)


def train_argv(tmp_path, dataroot, *extra):
    return ["--config", str(TINY), "--dataroot", dataroot, "--checkpoints_dir",
            str(tmp_path / "runs"), "--device", "cpu", "--max_steps", "1", *extra]


MISSING = "missing.pth"


def missing_file_cases(tmp_path, roots):
    """(name, call, what the message must hold) for each tool, its input file missing."""
    missing = str(tmp_path / MISSING)
    test_folder = ["--dataroot", roots["test"], "--results_dir", str(tmp_path / "r"),
                   "--workers", "0", "--device", "cpu"]
    return [
        ("train_pb_warp", lambda: stage_main(train_pb_warp)(
            train_argv(tmp_path, str(tmp_path / "absent"))), "--dataroot: not a folder"),
        ("train_pb_gen", lambda: stage_main(train_pb_gen)(
            train_argv(tmp_path, roots["train"], "--pb_warp_checkpoint", missing)), MISSING),
        ("train_pf_warp", lambda: stage_main(train_pf_warp)(
            train_argv(tmp_path, roots["train"], "--pb_checkpoint", missing)), MISSING),
        ("train_pf_gen", lambda: stage_main(train_pf_gen)(
            train_argv(tmp_path, roots["train"], "--pb_checkpoint", missing,
                       "--pf_warp_checkpoint", missing)), MISSING),
        ("test.py", lambda: test_script.main(test_folder + ["--checkpoint", missing]), MISSING),
        ("export.py", lambda: export.main(["--checkpoint", missing, "--out",
                                           str(tmp_path / "m.onnx")]), MISSING),
        ("serve.py", lambda: serve.main(["--checkpoint", missing]), MISSING),
        ("evaluate.py", lambda: evaluate.main(["--results_dir", str(tmp_path / "absent"),
                                               "--dataroot", roots["test"], "--pairs",
                                               "paired", "--metrics", "ssim"]), "absent"),
        ("baselines.py", lambda: baselines.main(["--dataroot", str(tmp_path / "absent"),
                                                 "--results_dir", str(tmp_path / "b")]),
         "absent"),
        ("convert_data.py", lambda: convert_data.main(["labels", "--src", str(tmp_path / "absent"),
                                                       "--out", str(tmp_path / "o"), "--scheme",
                                                       "lip"]), "--src"),
        ("make_garment_masks.py", lambda: make_garment_masks.main(
            ["--images", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]), "--images"),
        ("eval_garment_masks.py", lambda: eval_garment_masks.main(
            ["--images", str(tmp_path / "absent"), "--true", str(tmp_path / "t")]), "absent"),
        ("bench_data.py", lambda: bench_data.main(["--root", str(tmp_path / "absent")]),
         "absent"),
        ("benchmark.py", lambda: benchmark.main(["--devices", "cpu", "--sections", "data",
                                                 "--data_root", str(tmp_path / "absent"),
                                                 "--json", str(tmp_path / "b.json")]),
         "absent"),
        ("demo_report.py", lambda: demo_report.main(["--out", str(tmp_path / "absent")]),
         "absent"),
    ]


def test_every_tool_names_a_missing_file(tmp_path, roots, user_error):
    for name, call, expected in missing_file_cases(tmp_path, roots):
        err = user_error(call)
        # Training logs its configuration first; the error is one line of its own.
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and expected in errors[0], (name, err)


def test_category_of_a_viton_folder_is_refused_where_it_chooses_nothing(tmp_path, roots,
                                                                         user_error):
    # The pairs of a VITON-layout folder are the same in every category: the flag did nothing.
    category = ["--dataroot", roots["test"], "--category", "lower_body"]
    for call in (lambda: evaluate.main(category + ["--results_dir", str(tmp_path), "--pairs", "p"]),
                 lambda: baselines.main(category + ["--results_dir", str(tmp_path / "b")]),
                 lambda: export.main(["--checkpoint", "c.pth", "--out", "m.onnx", "--int8",
                                      "--calibration", roots["test"], "--category", "dresses"])):
        assert "--category: for choosing DressCode's category folders" in user_error(call)
    assert not (tmp_path / "b").exists()


def test_the_tools_that_read_photos_take_the_megapixel_limit_they_name(tmp_path, capsys,
                                                                         user_error):
    # "raise the limit (--max_megapixels)" named a flag these tools did not have.
    photos, true = tmp_path / "photos", tmp_path / "true"
    photos.mkdir()
    true.mkdir()
    Image.new("RGB", (200, 100), "white").save(photos / "a.png")
    Image.new("L", (200, 100)).save(true / "a.png")
    limit = ["--max_megapixels", "0.01"]
    for call in (
            lambda: make_garment_masks.main(["--images", str(photos), "--out",
                                             str(tmp_path / "m")] + limit),
            lambda: eval_garment_masks.main(["--images", str(photos), "--true", str(true)]
                                            + limit),
            lambda: convert_data.main(["labels", "--src", str(photos), "--out",
                                       str(tmp_path / "l"), "--scheme", "lip"] + limit),
            lambda: convert_data.main(["densepose", "--src", str(true), "--out",
                                       str(tmp_path / "d")] + limit)):
        capsys.readouterr()
        assert call() == 1
        printed = "".join(capsys.readouterr())
        assert "a.png: 100x200 image (0.02 megapixels) is more than the 0.01 megapixels" \
            in printed, printed
    # Two photos of one stem: one was scored against the other's true mask, unsaid.
    Image.new("RGB", (200, 100), "white").save(photos / "a.jpg")
    assert "a.jpg and a.png share the stem a" in user_error(lambda: eval_garment_masks.main([
        "--images", str(photos), "--true", str(true)]))


def test_synthetic_data_refuses_a_file_as_its_folder(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("mine")
    with pytest.raises(SystemExit) as stop:
        make_synthetic_data.main(["--out", str(target), "--num_train", "1"])
    assert stop.value.code == 2 and "exists and is not a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_training_without_vgg19_says_how_to_get_it(tmp_path, roots, monkeypatch, user_error):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    config = tmp_path / "tiny_real_vgg.yaml"
    config.write_text(TINY.read_text().replace("allow_random_weights: true", ""))
    argv = ["--config", str(config), "--dataroot", roots["train"], "--checkpoints_dir",
            str(tmp_path / "runs"), "--device", "cpu", "--max_steps", "1"]
    message = user_error(lambda: stage_main(train_pb_warp)(argv))
    assert "vgg19-dcbb9e9d.pth" in message and "--vgg_weights" in message


@pytest.mark.parametrize("module", [train_pb_warp, train_pb_gen, train_pf_warp, train_pf_gen])
def test_every_stage_names_a_bad_dataset(tmp_path, roots, module, user_error):
    # The stage's own earlier-stage checkpoints are never reached: the data is read first.
    message = user_error(lambda: stage_main(module)(train_argv(tmp_path, roots["bad"])))
    assert "train_label" in message


def test_test_py_names_a_bad_dataset(tmp_path, user_error):
    empty = tmp_path / "empty_test"
    empty.mkdir()
    message = user_error(lambda: test_script.main(
        ["--dataroot", str(empty), "--results_dir", str(tmp_path / "r"), "--checkpoint",
         str(tmp_path / MISSING), "--device", "cpu"]))
    assert MISSING in message or "test_img" in message


@pytest.mark.parametrize("script", ["train_pb_warp.py", "test.py"])
def test_the_real_entry_points_print_one_line(tmp_path, script):
    done = subprocess.run([sys.executable, str(ROOT / script), "--dataroot",
                           str(tmp_path / "absent"), "--results_dir", str(tmp_path / "r"),
                           "--checkpoint", str(tmp_path / MISSING), "--device", "cpu"]
                          if script == "test.py" else
                          [sys.executable, str(ROOT / script), "--dataroot",
                           str(tmp_path / "absent"), "--device", "cpu"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
