"""Validation while training: scores at the configured interval, best.pth, resuming."""

import argparse
import shutil

import pytest
import torch

from data.synthetic import make_dataset
from train_pb_warp import ParserBasedWarp
from utils.checkpoint import read_checkpoint
from utils.training.distributed import DistributedContext
from utils.training.engine import run
from utils.training.validation import BestScore, Validator, is_better


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    found = make_dataset(str(out), num_train=6, num_test=4, seed=2, height=64, width=64)
    return found["train"], found["test"]


def _argv(roots, runs, name, *extra):
    train, test = roots
    return ["--config", "configs/tiny.yaml", "--dataroot", train, "--checkpoints_dir",
            str(runs), "--name", name, "--vgg_layers", "1", "--device", "cpu",
            "--sample_every", "0", "--val_root", test, "--val_every", "2", "--val_unit", "step",
            "--allow_random_weights", *extra]


def _logged(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [(event.step, event.value) for event in events.Scalars(tag)]


def test_validation_interval_best_checkpoint_and_resume(roots, tmp_path):
    runs = tmp_path / "runs"
    whole = run(ParserBasedWarp(), _argv(roots, runs, "whole"))       # 6 steps, 3 per epoch
    ssims = _logged(runs / "whole", "val/ssim")
    assert [step for step, _ in ssims] == [2, 4, 6]
    assert [step for step, _ in _logged(runs / "whole", "val/lpips")] == [2, 4, 6]
    best_step, best_value = max(ssims, key=lambda item: item[1])
    stored = read_checkpoint(runs / "whole" / "best.pth")
    assert stored["best"]["metric"] == "ssim" and stored["step"] == best_step
    assert stored["best"]["value"] == pytest.approx(best_value, abs=1e-6)
    assert stored["validation"]["scores"]["ssim"] == pytest.approx(best_value, abs=1e-6)
    assert whole.best == read_checkpoint(runs / "whole" / "final.pth")["best"]

    # Stopped after 4 steps, resumed to 6: the best of steps 2 and 4 is carried over, and the
    # whole run's validations and best are reproduced exactly.
    first = run(ParserBasedWarp(), _argv(roots, runs, "split", "--max_steps", "4"))
    assert [step for step, _ in _logged(runs / "split", "val/ssim")] == [2, 4]
    resumed = run(ParserBasedWarp(), _argv(roots, runs, "split", "--resume"))
    assert first.best["step"] in (2, 4)
    assert resumed.best == whole.best
    logged = _logged(runs / "split", "val/ssim")
    assert [step for step, _ in logged] == [2, 4, 6]
    assert [value for _, value in logged] == pytest.approx([value for _, value in ssims])
    assert read_checkpoint(runs / "split" / "best.pth")["best"] == whole.best
    log = (runs / "split" / "train.log").read_text()
    assert f"so far {first.best['value']:.4g} at step {first.best['step']}" in log

    # Killed after writing latest.pth at a new best, before copying it to best.pth: best.pth
    # stayed the older best for good. The resume copies it.
    from utils.checkpoint import save_atomic
    run(ParserBasedWarp(), _argv(roots, runs, "killed", "--max_steps", "4"))
    latest = read_checkpoint(runs / "killed" / "latest.pth")
    latest["best"] = {"metric": "ssim", "value": 2.0, "step": 4}   # a best no step will beat
    save_atomic(latest, runs / "killed" / "latest.pth")
    (runs / "killed" / "best.pth").unlink()
    run(ParserBasedWarp(), _argv(roots, runs, "killed", "--resume"))
    assert read_checkpoint(runs / "killed" / "best.pth")["step"] == 4
    assert "--resume: wrote best.pth from latest.pth" in (runs / "killed" / "train.log").read_text()


def test_a_damaged_validation_file_stops_the_run_before_it_trains(roots, tmp_path):
    """Every validation pair is read before the first step: a damaged file is named at once,
    before the run folder is written (before, at the first validation, losing the steps
    since the last save)."""
    from data.files import DatasetError
    runs, test = tmp_path / "runs", tmp_path / "test"
    shutil.copytree(roots[1], test)
    photo = sorted((test / "test_img").iterdir())[-1]
    photo.write_bytes(photo.read_bytes()[:200])
    with pytest.raises(DatasetError, match=f"{photo}: truncated JPEG"):
        run(ParserBasedWarp(), _argv((roots[0], str(test)), runs, "run", "--val_every", "3"))
    assert not (runs / "run" / "config.yaml").exists()


def test_best_direction_per_metric():
    assert is_better("ssim", 0.8, 0.7) and not is_better("ssim", 0.6, 0.7)
    assert is_better("lpips", 0.1, 0.2) and is_better("fid", 9.9, 10.0)
    assert not is_better("fid", 10.1, 10.0) and is_better("fid", 50.0, None)
    assert BestScore.from_dict({"metric": "fid", "value": 3.0, "step": 7}, "ssim").value is None


class _Echo:
    """A stand-in stage whose prediction is the person photo itself, or its negative."""

    name, validation_kind, validation_needs_parser = "echo", "tryon", False

    def __init__(self, negate=False):
        self.negate = negate

    def validation_outputs(self, models, batch, cfg):
        image = batch["image"]
        return (-image if self.negate else image), image


def test_validator_scores_paired_and_unpaired(roots):
    cfg = argparse.Namespace(val_pairs="both", dataset="viton", val_root=roots[1], height=64,
                             width=64, val_max_pairs=3, val_batch_size=2, batch_size=2,
                             workers=0, fid_weights=None, lpips_backbone_weights=None,
                             allow_random_weights=True)
    context = DistributedContext(rank=0, world_size=1, local_rank=0,
                                 device=torch.device("cpu"))
    validator = Validator(_Echo(), cfg, context)
    assert validator.metrics() == ("ssim", "lpips", "fid")
    perfect = validator.run({}, torch.device("cpu"))
    assert perfect["pairs"] == 6                       # 3 paired + 3 unpaired
    # Saved try-ons are truncated to 8 bits (as test.py writes them): the photo itself comes
    # back at most one level off, so the scores are near, not at, their ideal.
    assert perfect["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert perfect["lpips"] == pytest.approx(0.0, abs=1e-3)
    assert abs(perfect["fid"]) < 1e-2
    wrong = Validator(_Echo(negate=True), cfg, context).run({}, torch.device("cpu"))
    assert wrong["ssim"] < 0.5 and wrong["lpips"] > 0.05 and wrong["fid"] > 1.0


def test_warp_stage_refuses_unpaired_validation(roots, tmp_path):
    from options import ConfigError
    with pytest.raises(ConfigError, match="only paired pairs have"):
        run(ParserBasedWarp(), _argv(roots, tmp_path, "x", "--val_pairs", "unpaired"))
    # The weights of a score the stage does not compute were accepted without a word (they
    # are not refused: scripts/train_all.sh gives every stage the same flags).
    run(ParserBasedWarp(), _argv(roots, tmp_path, "y", "--fid_weights", "inception.pth",
                                 "--max_steps", "1"))
    assert "; --fid_weights not used: no FID here" in (tmp_path / "y" / "train.log").read_text()
