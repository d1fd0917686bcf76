"""scripts/demo_report.py on a tiny synthetic test split: the outside-garment difference, the
headline table without random-network scores, the contact sheet's columns, the learning curves,
the closing commands and the test pairs the demo writes; scripts/demo.sh's refusals."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.images import to_uint8
from common.results import result_name
from data.synthetic import make_dataset
from scripts import demo_report


@pytest.fixture(scope="module")
def test_root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_data")
    make_dataset(str(folder), num_train=0, num_test=3, seed=0, height=128, width=96)
    return folder / "VITON_test"


def _write(folder, pairs, image_of):
    folder.mkdir(parents=True)
    for pair in pairs:
        Image.fromarray(image_of(pair)).save(folder / result_name(pair["person_name"],
                                                                  pair["cloth_name"]))


def test_outside_garment_difference_is_zero_for_the_photo_and_counts_levels(tmp_path, test_root):
    pairs = list(demo_report.test_pairs(test_root, "test_pairs_same.txt"))
    assert len(pairs) == 3
    _write(tmp_path / "same", pairs, lambda p: to_uint8(p["image"]))
    # The photo with its worn garment blacked out: outside the garment it is still the photo.
    _write(tmp_path / "garment_changed", pairs,
           lambda p: to_uint8(p["image"]) * (demo_report.person_clothes_edge(
               p["label"][None])[0, 0].numpy() == 0)[..., None].astype(np.uint8))
    _write(tmp_path / "brighter", pairs,
           lambda p: np.clip(to_uint8(p["image"]).astype(int) + 10, 0, 255).astype(np.uint8))
    names = ("same", "garment_changed", "brighter")
    levels = demo_report.outside_garment_difference({n: tmp_path / n for n in names}, pairs)
    assert levels["same"] == 0 and levels["garment_changed"] == 0
    assert 5 < levels["brighter"] <= 10


def test_backdrop_floor_is_the_error_of_one_backdrop_colour():
    """Two photos whose backdrops (label 0) are grey 100 and grey 120, and whose other half is
    a person's region (label 12, face) outside the garment: the median backdrop colour is 110,
    10 levels from each backdrop pixel, and the backdrop is half the outside region."""
    import torch

    pairs = []
    for grey in (100, 120):
        image = torch.full((3, 8, 8), grey / 127.5 - 1)
        label = torch.zeros(8, 8)
        label[4:] = 12
        pairs.append({"image": image, "label": label})
    assert demo_report.backdrop_floor(pairs) == pytest.approx(5.0, abs=0.01)
    assert "one colour would differ by 5.00 levels" in demo_report.score_table([], 5.0)


def test_half_resolution_difference_is_what_outlines_cost():
    """A flat photo loses nothing at half resolution; a one-pixel stripe of 255 on 0 (a 2x2
    average of 127.5, scaled back up) costs about 1/8 of 255 over its pixels and their
    neighbours, which the garment does not cover (label 12, face)."""
    import torch

    label = torch.full((8, 8), 12.0)
    flat = {"image": torch.full((3, 8, 8), 0.2), "label": label}
    assert demo_report.half_resolution_difference([flat]) == 0
    image = torch.full((3, 8, 8), -1.0)
    image[:, :, 3] = 1.0
    stripe = demo_report.half_resolution_difference([{"image": image, "label": label}])
    assert 20 < stripe < 64
    # A garment pixel (label 4) is not counted: the stripe under a garment costs nothing.
    covered = torch.full((8, 8), 4.0)
    covered[:, 0] = 12
    assert demo_report.half_resolution_difference([{"image": image, "label": covered}]) == 0
    assert "half its resolution (2x2 averages scaled back up) would differ by 3.25 levels" in \
        demo_report.score_table([], 1.0, 3.25)


def test_a_test_split_without_parsing_is_reported_without_the_outside_difference(tmp_path,
                                                                                 test_root):
    """PF-AFN's own VITON_test has photos, garments and masks only: no labels, no pairs file
    of own garments. The report still scores SSIM and draws the sheet; the outside-garment
    column says '–' and no backdrop floor is printed."""
    import shutil

    bare = tmp_path / "VITON_test"
    bare.mkdir()
    for name in ("test_img", "test_clothes", "test_edge", "test_pairs.txt"):
        source = test_root / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, bare / name)
    assert demo_report.has_labels(test_root) and not demo_report.has_labels(bare)
    out = tmp_path / "demo_out"
    pairs = list(demo_report.test_pairs(bare, "paired", labels=False))
    assert len(pairs) == 3 and all(p["person_name"] for p in pairs)
    folder = out / "results" / "paired"
    _write(folder, pairs, lambda p: to_uint8(p["image"]))
    (folder / "scores.json").write_text(json.dumps({"ssim": 0.7}))
    rows = demo_report.score_rows(out, None)
    assert rows == [("PF-AFN student", 0.7, None, rows[0][3])]
    table = demo_report.score_table(rows)
    assert "| PF-AFN student | 0.7000 | – | – |" in table and "backdrop" not in table


def test_table_shows_the_margin_over_paste_and_no_random_network_scores():
    rows = [("PF-AFN student", 0.70, 3.5, "a"), ("paste baseline", 0.60, 12.0, "b")]
    table = demo_report.score_table(rows)
    assert "| PF-AFN student | 0.7000 | +0.1000 | 3.50 | a |" in table
    assert "| paste baseline | 0.6000 | – | 12.00 | b |" in table
    assert "FID ↓" not in table and "LPIPS ↓" not in table


def test_report_writes_the_sheet_the_curves_and_the_commands(tmp_path, test_root, capsys):
    out = tmp_path / "demo_out"
    for mode, pairs_file in (("paired", "test_pairs_same.txt"), ("unpaired", "test_pairs.txt")):
        pairs = list(demo_report.test_pairs(test_root, pairs_file))
        for folder in (f"{mode}", f"{mode}_fsvton", f"{mode}_mobile", f"paste_{mode}"):
            _write(out / "results" / folder, pairs, lambda p: to_uint8(p["image"]))
            if mode == "paired":
                (out / "results" / folder / "scores.json").write_text(json.dumps({"ssim": 0.9}))
    demo_report.report(out, test_root)
    sheet = Image.open(out / "tryon_examples.png")
    # Header row, then one row per unpaired pair: person | garment | paste | three students.
    assert sheet.size == (2 * 96 * 6, 2 * (16 + 3 * 128))
    text = (out / "report.md").read_text()
    assert text.count("| 0.9000 |") == 4 and "tryon_examples.png" in text
    printed = capsys.readouterr().out
    assert f"--checkpoint {out / 'runs' / 'pf_gen' / 'final.pth'}" in printed
    assert "scripts/serve.py" in printed and "test.py --person" in printed


def test_the_printed_commands_survive_the_shell_with_spaces_in_paths():
    import shlex
    out, data = Path("/tmp/my demo/out"), Path("/tmp/my demo/data's test")
    commands = [line.strip() for line in demo_report.next_commands(out, data).splitlines()
                if line.startswith("    python")]
    words = [shlex.split(command) for command in commands]
    assert [w[1] for w in words] == ["test.py", "scripts/serve.py"]
    for w in words:
        assert w[w.index("--checkpoint") + 1] == str(out / "runs" / "pf_gen" / "final.pth")
    assert words[1][words[1].index("--dataroot") + 1] == str(data)


def test_learning_curves_draw_each_stage_and_the_paste_line(tmp_path):
    curves = {"pb_warp": [(20, 0.75), (40, 0.80)], "pb_gen": [(20, 0.55), (40, 0.70)],
              "pf_gen": [(20, 0.62), (40, 0.68)]}
    target = tmp_path / "curves.png"
    assert demo_report.learning_curves(curves, 0.60, target)
    image = np.asarray(Image.open(target).convert("RGB"))
    for name in ("pb_warp", "pf_gen"):
        assert (image == demo_report.COLOURS[name]).all(-1).sum() > 20
    assert (image == (120, 120, 120)).all(-1).sum() > 100   # the dashed paste baseline
    assert not demo_report.learning_curves({}, None, tmp_path / "none.png")


def test_the_demo_tests_and_scores_the_first_pairs_it_wrote(tmp_path, test_root):
    """--write_pairs 2: OUT/pairs holds the first two lines of each of the split's lists, and
    the report reads those pairs only (no result exists for the third)."""
    out = tmp_path / "demo_out"
    demo_report.main(["--out", str(out), "--dataroot", str(test_root), "--write_pairs", "2"])
    for mode, own in (("paired", "test_pairs_same.txt"), ("unpaired", "test_pairs.txt")):
        written = (out / "pairs" / f"{mode}.txt").read_text().splitlines()
        assert written == (test_root / own).read_text().splitlines()[:2]
        pairs = list(demo_report.test_pairs(test_root, str(out / "pairs" / f"{mode}.txt")))
        for folder in (mode, f"{mode}_fsvton", f"{mode}_mobile", f"paste_{mode}"):
            _write(out / "results" / folder, pairs, lambda p: to_uint8(p["image"]))
            if mode == "paired":
                (out / "results" / folder / "scores.json").write_text(json.dumps({"ssim": 0.9}))
    demo_report.report(out, test_root, out / "pairs")
    assert Image.open(out / "tryon_examples.png").size == (2 * 96 * 6, 2 * (16 + 2 * 128))
    assert "| PF-AFN student | 0.9000 | +0.0000 | 0.00 |" in (out / "report.md").read_text()
    demo_report.main(["--out", str(tmp_path / "all"), "--dataroot", str(test_root),
                      "--write_pairs", "0"])
    assert len((tmp_path / "all" / "pairs" / "paired.txt").read_text().splitlines()) == 3
    with pytest.raises(SystemExit):
        demo_report.main(["--out", str(out), "--dataroot", str(test_root), "--write_pairs", "-1"])


def test_a_split_without_an_unpaired_list_dresses_each_person_in_the_next_garment(tmp_path,
                                                                                  test_root):
    import shutil

    split = tmp_path / "VITON_test"
    shutil.copytree(test_root, split)
    (split / "test_pairs.txt").unlink()
    demo_report.main(["--out", str(tmp_path / "out"), "--dataroot", str(split),
                      "--write_pairs", "0"])
    paired = [line.split() for line in (tmp_path / "out/pairs/paired.txt").read_text().splitlines()]
    unpaired = [line.split() for line in
                (tmp_path / "out/pairs/unpaired.txt").read_text().splitlines()]
    assert len(paired) == 3
    assert unpaired == [[paired[i][0], paired[(i + 1) % 3][1]] for i in range(3)]


@pytest.fixture
def demo_copy(tmp_path):
    """scripts/demo.sh in a folder whose set-up step only says it was reached."""
    scripts = tmp_path / "repo" / "scripts"
    scripts.mkdir(parents=True)
    (scripts / "demo.sh").write_bytes((Path(__file__).parents[1] / "scripts/demo.sh").read_bytes())
    (scripts / "setup_env.sh").write_text("echo SET-UP REACHED >&2; exit 99\n")
    return scripts / "demo.sh"


def _run_demo(script, **variables):
    env = {key: value for key, value in os.environ.items() if not key.startswith("DEMO_")}
    return subprocess.run(["bash", str(script)], env={**env, **variables}, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("variables, message", [
    ({"DEMO_TEST": "ten"}, "DEMO_TEST=ten: expected a count (0 or more)"),
    ({"DEMO_TRAIN": "00"}, "DEMO_TRAIN=0 / DEMO_TEST=0 (all) need DEMO_DATA"),
    ({"DEMO_TRAIN": "3"}, "DEMO_TRAIN=3: at least 4 training persons"),
    ({"DEMO_DATA": "/nonexistent/viton"}, "DEMO_DATA=/nonexistent/viton: no VITON_traindata/"),
    ({"DEMO_SEED": "-1"}, "DEMO_SEED=-1: expected a number"),
    ({"DEMO_SEED": "1", "DEMO_DATA": "/data/viton"}, "DEMO_SEED=1: the seed of the synthetic"),
    ({"DEMO_PRECISION": "fp16"}, "DEMO_PRECISION=fp16: expected fp32 or bf16"),
])
def test_the_demo_refuses_what_it_cannot_do_before_setting_anything_up(tmp_path, demo_copy,
                                                                        variables, message):
    out = tmp_path / "demo_out"
    done = _run_demo(demo_copy, DEMO_OUT=str(out), **variables)
    assert done.returncode == 2 and message in done.stderr
    assert "SET-UP REACHED" not in done.stderr and not out.exists()
    # The same variables, corrected, pass the checks and reach the set-up.
    assert "SET-UP REACHED" in _run_demo(demo_copy, DEMO_OUT=str(out)).stderr


def test_the_demo_deletes_no_folder_but_a_previous_demos(tmp_path, demo_copy):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    done = _run_demo(demo_copy, DEMO_OUT=str(mine))
    assert done.returncode == 2 and "not a demo's output folder and not empty" in done.stderr
    assert (mine / "thesis.tex").read_text() == "months of work"
    # Data inside the output folder the demo would replace.
    previous = tmp_path / "demo_out"
    for split in ("VITON_traindata", "VITON_test"):
        (previous / "data" / split).mkdir(parents=True)
    (previous / ".demo_out").touch()
    done = _run_demo(demo_copy, DEMO_OUT=str(previous), DEMO_DATA=str(previous / "data"))
    assert done.returncode == 2 and "is inside the output folder" in done.stderr
    assert (previous / "data" / "VITON_test").is_dir()
    # A previous demo's folder, or an empty one, passes on to the set-up.
    (tmp_path / "empty").mkdir()
    for folder in (previous, tmp_path / "empty"):
        assert "SET-UP REACHED" in _run_demo(demo_copy, DEMO_OUT=str(folder)).stderr


def test_the_teachers_try_ons_score_as_its_validation_did(tmp_path):
    """--write_teacher: the stage-2 teacher's try-ons of the paired pairs, scored from their
    8-bit files, give the paired SSIM its own validation logged, and the report puts the
    teacher in the table beside the students."""
    from train_pb_gen import ParserBasedGenerator
    from train_pb_warp import ParserBasedWarp
    from utils.metrics.folders import evaluate_folders
    from utils.training.engine import run

    roots = make_dataset(str(tmp_path / "data"), num_train=4, num_test=3, seed=1, height=128,
                         width=96)
    test_root, runs = Path(roots["test"]), tmp_path / "runs"
    flags = ["--config", "configs/tiny.yaml", "--dataroot", roots["train"], "--height", "128",
             "--width", "96", "--checkpoints_dir", str(runs), "--max_steps", "2",
             "--vgg_layers", "0", "--device", "cpu"]
    run(ParserBasedWarp(), [*flags, "--name", "pb_warp"])
    run(ParserBasedGenerator(), [*flags, "--name", "pb_gen", "--pb_warp_checkpoint",
                                 str(runs / "pb_warp" / "final.pth"), "--val_root",
                                 str(test_root), "--val_pairs", "paired", "--val_unit", "step",
                                 "--val_every", "2", "--lr", "0.01"])
    validated = demo_report.validation_series(runs / "pb_gen")[-1][1]
    out = tmp_path / "demo_out"
    demo_report.main(["--out", str(out), "--dataroot", str(test_root), "--write_teacher",
                      str(runs / "pb_gen" / "final.pth")])
    folder = out / "results" / "paired_teacher"
    assert len(list(folder.glob("*.png"))) == 3
    scores = evaluate_folders(folder, test_root / "test_img",
                              test_root / "test_pairs_same.txt", metrics=("ssim",))
    assert abs(scores["ssim"] - validated) < 0.002
    assert json.loads((folder / "scores.json").read_text())["ssim"] == scores["ssim"]
    demo_report.report(out, test_root)
    assert f"| parser-based teacher | {scores['ssim']:.4f} |" in (out / "report.md").read_text()
