"""The training engine on a tiny fake stage: schedule, exact resume, DDP, logs, optimiser switch."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from data.files import DatasetError
from options import ConfigError
from tests.fake_stage import FakeStage
from utils.checkpoint import CHECKPOINT_FORMAT, CheckpointError, read_checkpoint
from utils.training.distributed import set_tf32
from utils.training.engine import NEW_LOG, TrainingDiverged, main, run
from utils.training.old_run import OldRun
from utils.training.sampling import ResumableSampler, seed_everything
from utils.training.schedule import in_first_phase, lr_factor, make_optimizer
from utils.training.stage import Stage, StepContext, StepResult

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "configs" / "tiny.yaml")


def fake_argv(tmp_path, name, *extra):
    # 6 samples, batch 2: 3 steps per epoch; niter 0 + niter_decay 2 = 6 steps in all, the
    # second epoch at half the rate (the release's schedule: 1 - max(0, e - 0) / 2).
    return ["--config", TINY, "--device", "cpu", "--checkpoints_dir", str(tmp_path),
            "--name", name, "--height", "64", "--width", "64", "--log_every", "1",
            "--sample_every", "0", "--save_every", "1", "--niter", "0", "--niter_decay", "2",
            *extra]


def assert_same_state(first, second):
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


@pytest.mark.parametrize("niter, niter_decay, expected",
                         [(2, 3, [1.0, 1.0, 1.0, 2 / 3, 1 / 3]),
                          (1, 1, [1.0, 1.0]),
                          (0, 4, [1.0, 0.75, 0.5, 0.25]),
                          (3, 0, [1.0, 1.0, 1.0])])
def test_release_lr_factor_values(niter, niter_decay, expected):
    # The release lowers the rate by lr / niter_decay after every 1-based epoch E > niter.
    factors = [lr_factor(e, niter, niter_decay) for e in range(niter + niter_decay)]
    assert factors == pytest.approx(expected)
    assert factors[-1] > 0


def _release_factors(niter, niter_decay):
    """The release's own bookkeeping, 1-based epochs: train epoch E at the current rate, then
    ``if E > niter: lr -= lr0 / niter_decay``. Returns the factor of each epoch."""
    lr0, lr, factors = 1.0, 1.0, []
    for epoch in range(1, niter + niter_decay + 1):
        factors.append(lr / lr0)
        if epoch > niter:
            lr -= lr0 / niter_decay
    return factors


@pytest.mark.parametrize("niter, niter_decay", [(50, 50), (100, 100)])
def test_paper_schedules_follow_the_release(niter, niter_decay):
    factors = [lr_factor(e, niter, niter_decay) for e in range(niter + niter_decay)]
    assert factors == pytest.approx(_release_factors(niter, niter_decay), abs=1e-12)
    # By hand: full rate for niter + 1 epochs, then 1/niter_decay less per epoch.
    assert factors[:niter + 1] == [1.0] * (niter + 1)
    assert factors[niter + 1] == pytest.approx(1 - 1 / niter_decay)
    assert factors[-3:] == pytest.approx([3 / niter_decay, 2 / niter_decay, 1 / niter_decay])


@pytest.mark.parametrize("niter, first_phase", [(50, 49), (100, 99), (1, 0), (0, 0)])
def test_first_phase_length(niter, first_phase):
    phases = [in_first_phase(e, niter) for e in range(niter + 3)]
    assert phases == [True] * first_phase + [False] * (niter + 3 - first_phase)


def test_tf32_sets_the_cuda_backends_and_is_refused_on_a_cpu(tmp_path):
    with pytest.raises(UserError, match="--tf32: TF32 is a mode of CUDA GPUs.*CPU"):
        run(FakeStage(6), fake_argv(tmp_path, "tf32", "--max_steps", "1", "--tf32"))
    assert not (tmp_path / "tf32" / "latest.pth").exists()
    set_tf32(True, torch.device("cuda"))             # the switches only; no GPU needed
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    run(FakeStage(6), fake_argv(tmp_path, "fp32", "--max_steps", "1"))
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert read_checkpoint(tmp_path / "fp32" / "latest.pth")["config"]["tf32"] is False
    with torch.backends.cudnn.flags(enabled=True):    # still readable (torch.compile reads it)
        pass


def test_sampler_order_depends_only_on_seed_and_epoch():
    data = list(range(10))
    full = ResumableSampler(data, num_replicas=2, rank=1, seed=3)
    full.set_epoch(4)
    order = list(full)
    again = ResumableSampler(data, num_replicas=2, rank=1, seed=3)
    again.set_epoch(4)
    again.start_index = 2
    assert list(again) == order[2:] and len(again) == len(order) - 2
    other = ResumableSampler(data, num_replicas=2, rank=0, seed=3)
    other.set_epoch(4)
    assert sorted(order + list(other)) == data     # the two ranks split the epoch
    full.set_epoch(5)
    assert list(full) != order


@pytest.mark.parametrize("split, total, partial", [(2, 4, 0), (3, 4, 1), (4, 5, 1)])
def test_resume_equals_uninterrupted_run(tmp_path, split, total, partial):
    """`total` steps in one go == `split` steps, stop, --resume, the rest: bitwise equal
    weights and optimiser state. split 2: mid-epoch; 3: at the epoch end, where the partial
    phase ends and a new Adam starts; 4: in the second epoch (decayed lr)."""
    extra = ("--partial_epochs", str(partial))
    whole = run(FakeStage(6), fake_argv(tmp_path, "whole", "--max_steps", str(total), *extra))
    first = run(FakeStage(6), fake_argv(tmp_path, "split", "--max_steps", str(split), *extra))
    assert first.step == split and first.finished     # --max_steps ends the run cleanly
    stopped = read_checkpoint(tmp_path / "split" / "latest.pth")
    assert (stopped["step"], stopped["format"], stopped["stage"]) == (split, CHECKPOINT_FORMAT,
                                                                     "fake")
    assert stopped["epoch"] * 3 + stopped["step_in_epoch"] == split
    second = run(FakeStage(6), fake_argv(tmp_path, "split", "--max_steps", str(total),
                                         "--resume", *extra))
    assert whole.step == second.step == total
    assert_same_state(whole.models["net"].state_dict(), second.models["net"].state_dict())
    a = read_checkpoint(tmp_path / "whole" / "latest.pth")
    b = read_checkpoint(tmp_path / "split" / "latest.pth")
    assert (a["epoch"], a["step_in_epoch"]) == (b["epoch"], b["step_in_epoch"]) == (1, total - 3)
    for state_a, state_b in zip(a["optimizer"]["state"].values(),
                                b["optimizer"]["state"].values()):
        assert_same_state(state_a, state_b)
    assert whole.terms == second.terms
    # The run really trained: the weights moved away from their initial values.
    seed_everything(0)
    initial = FakeStage(6).build_models(whole.config, torch.device("cpu"))["net"]
    assert not torch.equal(initial.tail.weight, whole.models["net"].tail.weight)


class SignalledStage(FakeStage):
    """FakeStage whose process receives ``signum`` during its step ``at`` (0-based)."""

    def __init__(self, signum, at):
        super().__init__(6)
        self.signum, self.at = signum, at

    def losses(self, models, batch, context):
        if context.step == self.at:
            os.kill(os.getpid(), self.signum)
        return super().losses(models, batch, context)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_step_under_way_and_exits_with_its_status(tmp_path, signum):
    """SIGTERM or SIGINT ends the step under way, saves it, and the script exits 128 + the
    signal's number (143 for SIGTERM, 130 for SIGINT); --resume then trains the rest to the
    uninterrupted run's weights."""
    whole = run(FakeStage(6), fake_argv(tmp_path, "whole", "--max_steps", "4"))
    handler = signal.getsignal(signum)
    with pytest.raises(SystemExit) as stopped:
        main(SignalledStage(signum, at=1), fake_argv(tmp_path, "cut", "--max_steps", "4"))
    assert stopped.value.code == 128 + signum
    assert signal.getsignal(signum) is handler           # the handlers were put back
    assert read_checkpoint(tmp_path / "cut" / "latest.pth")["step"] == 2
    assert not (tmp_path / "cut" / "final.pth").exists()
    log = (tmp_path / "cut" / "train.log").read_text()
    assert f"stopped at epoch 0, step 2 by {signal.Signals(signum).name}; continue with " \
           f"--resume" in log
    rest = run(FakeStage(6), fake_argv(tmp_path, "cut", "--max_steps", "4", "--resume"))
    assert rest.finished and rest.stopped_by is None and rest.step == 4
    assert_same_state(whole.models["net"].state_dict(), rest.models["net"].state_dict())


def test_a_first_ctrl_c_is_acknowledged_and_a_second_stops_at_once_in_one_line(tmp_path,
                                                                               capfd):
    """The first Ctrl-C went unanswered on screen until the step ended; a second one ended the
    run in a KeyboardInterrupt traceback."""
    class TwiceInterrupted(FakeStage):
        def losses(self, models, batch, context):
            if context.step == 1:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            return super().losses(models, batch, context)

    with pytest.raises(SystemExit) as stopped:
        main(TwiceInterrupted(6), fake_argv(tmp_path, "twice", "--max_steps", "4"))
    assert stopped.value.code == 128 + signal.SIGINT
    err = capfd.readouterr().err
    assert "SIGINT: stopping after the step under way, with a save (Ctrl-C again stops at " \
           "once)" in err
    assert err.strip().endswith("stopped at once by a second Ctrl-C, without saving the step "
                                "under way; --resume continues from the run's last save, where "
                                "it has one")
    assert "Traceback" not in err


def test_a_signal_before_the_first_step_says_nothing_was_saved(tmp_path):
    class SignalledWhileBuilding(FakeStage):
        def make_dataset(self, cfg):
            os.kill(os.getpid(), signal.SIGTERM)
            return super().make_dataset(cfg)

    with pytest.raises(SystemExit) as stopped:
        main(SignalledWhileBuilding(6), fake_argv(tmp_path, "early", "--max_steps", "4"))
    assert stopped.value.code == 128 + signal.SIGTERM
    assert not (tmp_path / "early" / "latest.pth").exists()
    assert "stopped by SIGTERM before its first step, with nothing to save" in (
        tmp_path / "early" / "train.log").read_text()


def test_resuming_on_another_process_count_is_logged(tmp_path):
    run(FakeStage(6), fake_argv(tmp_path, "moved", "--max_steps", "3"))   # an epoch's end
    path = tmp_path / "moved" / "latest.pth"
    checkpoint = read_checkpoint(path)
    checkpoint["world_size"] = 2                         # as if saved by two processes
    torch.save(checkpoint, path)
    run(FakeStage(6), fake_argv(tmp_path, "moved", "--max_steps", "4", "--resume"))
    log = (tmp_path / "moved" / "train.log").read_text()
    assert "--resume: saved by 2 process(es), continued by 1: the data order" in log


@pytest.mark.parametrize("saved, resumed", [(1, 2), (2, 1)])
def test_resume_with_another_niter_at_the_phase_boundary_continues(tmp_path, saved, resumed):
    """Stage 3's first phase is counted in --niter: resumed at an epoch's end under another
    --niter, the saved Adam was of the other phase's groups, and --resume stopped with a
    message about optimiser groups that did not name the flag."""
    from utils.training.schedule import in_first_phase

    class Phased(FakeStage):
        def param_groups(self, models, cfg, epoch):
            if in_first_phase(epoch, cfg.niter):
                return [{"name": "net_tail", "params": list(models["net"].tail.parameters()),
                         "lr": cfg.lr}]
            return super().param_groups(models, cfg, epoch)

    first = run(Phased(6), fake_argv(tmp_path, "phased", "--niter", str(saved), "--max_steps",
                                     "3"))
    assert first.step == 3   # the end of epoch 0
    rest = run(Phased(6), fake_argv(tmp_path, "phased", "--niter", str(resumed), "--resume"))
    assert rest.finished
    log = (tmp_path / "phased" / "train.log").read_text()
    assert f"--resume: option niter was {saved}, now {resumed}" in log
    # Epoch 1 is in the second phase either way: the whole net from there on, in the saved
    # Adam where it was the whole net's, else in a new one.
    assert rest.optimizer_builds == ([] if saved == 1 else [(1, ("net",))])


def test_param_group_switch_builds_a_new_optimizer(tmp_path):
    stage = FakeStage(6)
    result = run(stage, fake_argv(tmp_path, "switch", "--partial_epochs", "1", "--lr", "0.01"))
    assert result.optimizer_builds == [(0, ("net_tail",)), (1, ("net",))]
    assert result.learning_rates == {"net": pytest.approx(0.005)}   # epoch 1 of 0 + 2
    assert stage.dataset.epochs_seen == [0, 1]
    # During the partial epoch only net.tail moved: check against a run stopped there.
    seed_everything(0)
    initial = FakeStage(6).build_models(result.config, torch.device("cpu"))["net"]
    partial = run(FakeStage(6), fake_argv(tmp_path, "partial", "--partial_epochs", "1",
                                          "--max_steps", "3"))
    net = partial.models["net"]
    assert torch.equal(net.head[0].weight, initial.head[0].weight)
    assert not torch.equal(net.tail.weight, initial.tail.weight)
    assert not torch.equal(result.models["net"].head[0].weight, initial.head[0].weight)
    saved = read_checkpoint(tmp_path / "switch" / "final.pth")
    assert [g["name"] for g in saved["optimizer"]["param_groups"]] == ["net"]


def test_make_optimizer_keeps_names_and_betas():
    layer = torch.nn.Linear(2, 2)
    optimizer = make_optimizer([{"name": "a", "params": [layer.weight], "lr": 0.1},
                                {"name": "b", "params": [layer.bias], "lr": 0.2}], beta1=0.5)
    assert [(g["name"], g["lr"], g["base_lr"], g["betas"]) for g in optimizer.param_groups] == \
        [("a", 0.1, 0.1, (0.5, 0.999)), ("b", 0.2, 0.2, (0.5, 0.999))]


def test_checkpoints_and_logs_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    argv = fake_argv(tmp_path, "logs", "--sample_every", "2", "--log_every", "2",
                     "--save_every", "0", "--keep_epoch_every", "2")
    result = run(FakeStage(6), argv)
    run_dir = tmp_path / "logs"
    assert result.finished and result.step == 6 and result.epoch == 2
    assert sorted(p.name for p in run_dir.glob("*.pth")) == ["epoch_002.pth", "final.pth",
                                                            "latest.pth"]
    final = read_checkpoint(run_dir / "final.pth")
    assert (final["epoch"], final["step"], final["step_in_epoch"]) == (2, 6, 0)
    assert final["config"]["name"] == "logs" and final["config"]["height"] == 64
    assert_same_state(final["model"]["net"], result.models["net"].state_dict())
    assert "teacher" not in final["model"]
    assert (run_dir / "config.yaml").is_file()
    log = (run_dir / "train.log").read_text()
    assert "lr: 0.01" in log and "epoch 1 step 6/6: total" in log
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "step_0000002.png", "step_0000004.png", "step_0000006.png"]

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/l1", "loss/agree", "lr/net", "speed/samples_per_s"} <= scalars
    assert [e.step for e in events.Scalars("loss/total")] == [2, 3, 4, 6]  # every 2 + epoch end
    assert [e.value for e in events.Scalars("lr/net")] == pytest.approx([0.01, 0.01, 0.005,
                                                                         0.005])
    assert "samples" in events.Tags()["images"]
    assert result.terms.keys() == {"total", "l1", "agree"}
    assert result.terms["total"] == pytest.approx(events.Scalars("loss/total")[-1].value)


@pytest.mark.parametrize("every, steps", [(1000, [3]), (2, [2, 3])])
def test_the_last_step_has_a_grid_and_a_log_line_of_terms_only(tmp_path, every, steps):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    # 3 steps, stopped by --max_steps between two log lines: the last line is written at the
    # stop, and a grid at the last step (also after others: it was left out then).
    run(FakeStage(6), fake_argv(tmp_path, "short", "--max_steps", "3", "--log_every", "2",
                                "--sample_every", str(every)))
    run_dir = tmp_path / "short"
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        f"step_{step:07d}.png" for step in steps]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Images("samples")] == steps
    lines = [line for line in (run_dir / "train.log").read_text().splitlines()
             if " step " in line and "/3: " in line]
    assert len(lines) == 2 and "step 3/3: " in lines[-1]
    for line in lines:
        names = line.split(": ", 1)[1].split(" | ")[0].split()[::2]
        assert names == ["total", "agree", "l1"], line


def test_timed_steps_repeat_the_epoch_without_saving(tmp_path):
    import logging

    from options.config import parse_config
    from utils.training.distributed import DistributedContext
    from utils.training.engine import Trainer
    stage = FakeStage(6)
    cfg = parse_config(fake_argv(tmp_path, "timed", "--save_every", "0", "--log_every", "1000"),
                       stage.add_arguments, stage.defaults, default_name="timed")
    context = DistributedContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    trainer = Trainer(stage, cfg, context, tmp_path / "timed", logging.getLogger("timed"),
                      show_progress=False)
    steps = trainer.timed_steps()
    for _ in range(7):                        # 3 steps per epoch: two epoch ends crossed
        next(steps)
    trainer.close()
    assert trainer.step == 7 and trainer.epoch == 0 and stage.dataset.epochs_seen == [0, 0, 0]
    assert not list((tmp_path / "timed").glob("*.pth"))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs(tmp_path, precision):
    result = run(FakeStage(6), fake_argv(tmp_path, precision, "--precision", precision,
                                         "--max_steps", "2"))
    assert result.step == 2 and torch.isfinite(torch.tensor(result.terms["total"]))
    saved = read_checkpoint(tmp_path / precision / "latest.pth")
    assert bool(saved["scaler"]) == (precision == "fp16")   # a gradient scaler only for fp16
    # fp16 on a CPU is emulated, about 12 times slower than fp32 here: it passed unsaid.
    warned = "--precision fp16 on cpu: emulated" in (tmp_path / precision / "train.log").read_text()
    assert warned == (precision == "fp16")


def test_a_grid_that_cannot_be_written_is_said_and_training_goes_on(tmp_path):
    # The picture's OSError (a full disk; here a file where samples/ goes) ended the run with a
    # traceback, losing the step's save.
    (tmp_path / "grids").mkdir()
    (tmp_path / "grids" / "samples").write_text("not a folder")
    result = run(FakeStage(6), fake_argv(tmp_path, "grids", "--max_steps", "2",
                                         "--sample_every", "1"))
    assert result.finished and read_checkpoint(tmp_path / "grids" / "final.pth")["step"] == 2
    log = (tmp_path / "grids" / "train.log").read_text()
    for step in (1, 2):
        assert f"cannot write {tmp_path / 'grids' / 'samples' / f'step_000000{step}.png'}" in log
    assert "training goes on" in log


def test_run_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="--resume: no checkpoint"):
        run(FakeStage(6), fake_argv(tmp_path, "none", "--resume"))
    assert not (tmp_path / "none").exists()
    # Without its config.yaml a resumed run took the script's defaults, a whole other schedule.
    run(FakeStage(6), fake_argv(tmp_path, "lost", "--max_steps", "1", "--lr", "0.0003"))
    (tmp_path / "lost" / "config.yaml").unlink()
    with pytest.raises(ConfigError, match="--resume: .*lost/config.yaml is missing, and with it "
                                          "the run's options"):
        run(FakeStage(6), fake_argv(tmp_path, "lost", "--resume"))
    assert read_checkpoint(tmp_path / "lost" / "latest.pth")["step"] == 1
    # A config.yaml of one's own in the run folder, given as --config, was rewritten.
    mine = tmp_path / "mine" / "config.yaml"
    mine.parent.mkdir()
    mine.write_text("# my settings\n" + Path(TINY).read_text())
    with pytest.raises(ConfigError, match="mine/config.yaml is the run folder's config.yaml"):
        run(FakeStage(6), fake_argv(tmp_path, "mine", "--max_steps", "1", "--config", str(mine)))
    assert mine.read_text().startswith("# my settings")
    # A --max_steps below where the run is: it copied latest.pth (step 2) over final.pth.
    run(FakeStage(6), fake_argv(tmp_path, "past", "--max_steps", "2"))
    final = (tmp_path / "past" / "final.pth").read_bytes()
    with pytest.raises(ConfigError, match=r"past/latest.pth is at step 2, past this run's end at "
                                          r"step 1 \(--max_steps or the schedule\)"):
        run(FakeStage(6), fake_argv(tmp_path, "past", "--resume", "--max_steps", "1"))
    assert (tmp_path / "past" / "final.pth").read_bytes() == final
    run(FakeStage(6), fake_argv(tmp_path, "once", "--max_steps", "1"))
    with pytest.raises(ConfigError, match="already holds a run"):
        run(FakeStage(6), fake_argv(tmp_path, "once", "--max_steps", "1"))
    # Without latest.pth (deleted as a copy of final.pth), final.pth was replaced unsaid.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "final.pth").write_bytes(b"a teacher")
    with pytest.raises(ConfigError, match=r"kept already holds a run \(final.pth\)"):
        run(FakeStage(6), fake_argv(tmp_path, "kept", "--max_steps", "1"))
    assert (kept / "final.pth").read_bytes() == b"a teacher"
    # --beta1 given with --resume was logged and recorded, and Adam kept the saved one.
    resumed = run(FakeStage(6), fake_argv(tmp_path, "once", "--resume", "--max_steps", "2",
                                          "--beta1", "0.9"))
    betas = read_checkpoint(tmp_path / "once" / "latest.pth")["optimizer"]["param_groups"]
    assert resumed.step == 2 and {group["betas"][0] for group in betas} == {0.9}
    # --overwrite starts again without the old run's outputs (its best.pth, epoch files,
    # samples and TensorBoard events stayed beside the new run's), and keeps any other file.
    folder = tmp_path / "once"
    stale = ["best.pth", "epoch_002.pth", "samples/step_0000008.png",
             "tensorboard/events.out.tfevents.1.old"]
    for name in stale + ["notes.txt"]:
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"old")
    again = run(FakeStage(6), fake_argv(tmp_path, "once", "--max_steps", "1", "--overwrite"))
    assert again.step == 1
    assert not any((folder / name).exists() for name in stale)
    assert not (folder / ".replaced").exists()   # set aside until the first step, then deleted
    assert (folder / "notes.txt").read_bytes() == b"old"
    assert read_checkpoint(folder / "latest.pth")["step"] == 1
    # A run refused (here its data) or a --resume refused touches nothing of the old run: it
    # was deleted by --overwrite, or its config.yaml rewritten, before the refusal.
    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    with pytest.raises(ConfigError, match="fewer than --batch_size"):
        run(FakeStage(1), fake_argv(tmp_path, "once", "--overwrite"))
    with pytest.raises(ConfigError, match="stopped mid-epoch with 1 process"):
        run(FakeStage(6), fake_argv(tmp_path, "once", "--resume", "--batch_size", "1"))
    # Another seed drew the rest of the epoch from another order: samples twice, some never.
    with pytest.raises(ConfigError, match="stopped mid-epoch, in the data order of --seed 0"):
        run(FakeStage(6), fake_argv(tmp_path, "once", "--resume", "--seed", "5"))
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    # A new run refused before it starts leaves no folder behind (it left one with an empty
    # train.log), nor the folders made on its path; a folder that was there stays.
    nested = fake_argv(tmp_path, "refused", "--checkpoints_dir", str(tmp_path / "new" / "runs"))
    (tmp_path / "empty").mkdir()
    for argv in (nested, fake_argv(tmp_path / "empty", "refused")):
        with pytest.raises(ConfigError, match="fewer than --batch_size"):
            run(FakeStage(1), argv)
    assert not (tmp_path / "new").exists() and list((tmp_path / "empty").iterdir()) == []

    # A run that stops before it saves (a damaged image, a loss that is not finite) leaves the
    # old run as it was: --overwrite deleted it, and a --resume rewrote its config.yaml with
    # the failing flag, which a plain --resume then kept using.
    class FailingStage(FakeStage):
        def losses(self, models, batch, context):
            if context.step >= int(os.environ.get("FAIL_AT", "0")):
                raise DatasetError("train_img/x.jpg: damaged")
            return super().losses(models, batch, context)

    with pytest.raises(DatasetError, match="damaged"):
        run(FailingStage(6), fake_argv(tmp_path, "once", "--overwrite"))
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    os.environ["FAIL_AT"] = "2"   # two steps taken, nothing saved yet (--save_every 0)
    try:
        with pytest.raises(DatasetError, match="damaged"):
            run(FailingStage(6), fake_argv(tmp_path, "once", "--overwrite", "--save_every", "0"))
    finally:
        del os.environ["FAIL_AT"]
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    with pytest.raises(DatasetError, match="damaged"):
        run(FailingStage(6), fake_argv(tmp_path, "once", "--resume", "--lr", "0.5"))
    for name in ("config.yaml", "latest.pth", "final.pth"):   # its log tells of the attempt
        assert (folder / name).read_bytes() == before[folder / name]

    # --overwrite deleted a checkpoint the new run reads from the folder it replaces.
    class ReadingStage(FakeStage):
        def add_arguments(self, parser):
            super().add_arguments(parser)
            parser.add_argument("--teacher_checkpoint", default=None)

    before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
    with pytest.raises(ConfigError, match=r"--overwrite would delete .*latest.pth, which "
                                          r"--teacher_checkpoint reads"):
        run(ReadingStage(6), fake_argv(tmp_path, "once", "--overwrite", "--teacher_checkpoint",
                                       str(folder / "latest.pth")))
    assert {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()} == before
    # What a killed --overwrite set aside, once its new run has saved: every run refuses it.
    (folder / ".replaced").mkdir()
    for flags in (["--resume"], ["--overwrite"]):
        with pytest.raises(ConfigError, match=r"\.replaced holds the run that an --overwrite "
                                              r"replaced, and .*once the new run's final.pth, "
                                              r"latest.pth, saved before its process was killed: "
                                              r"delete .*\.replaced to keep the new run"):
            run(FakeStage(6), fake_argv(tmp_path, "once", *flags))
    (folder / ".replaced").rmdir()
    assert run(FakeStage(6), fake_argv(tmp_path, "once", "--resume", "--max_steps", "2")).step == 2
    # Killed before its new run saved, it holds the only saved run: the next run puts it back
    # (--resume said "latest.pth is missing", and moving the files back by hand collided with
    # the new run's tensorboard/).
    killed = tmp_path / "killed"
    run(FakeStage(6), fake_argv(tmp_path, "killed", "--max_steps", "1"))
    kept = {path: path.read_bytes() for path in killed.rglob("*") if path.is_file()}
    OldRun(killed, argparse.Namespace(overwrite=True, resume=False), True).set_aside()
    for name in (NEW_LOG, "config.yaml", "tensorboard/events.out.tfevents.9.new"):
        (killed / name).write_text("the killed run's")
    resumed = run(FakeStage(6), fake_argv(tmp_path, "killed", "--resume", "--max_steps", "2"))
    assert resumed.step == 2 and not (killed / ".replaced").exists()
    assert not (killed / NEW_LOG).exists()
    assert not (killed / "tensorboard/events.out.tfevents.9.new").exists()
    log = (killed / "train.log").read_text()
    assert f"{killed}/.replaced: an --overwrite whose process was killed before it saved had " \
           f"set the run in {killed} aside; it is back in place" in log
    assert all(path.exists() for path in kept)   # its events and config.yaml among them

    class OtherStage(FakeStage):
        name = "other"

    with pytest.raises(CheckpointError, match="is a 'fake' checkpoint"):
        run(OtherStage(6), fake_argv(tmp_path, "once", "--resume"))
    with pytest.raises(ConfigError, match="fewer than --batch_size"):
        run(FakeStage(1), fake_argv(tmp_path, "small"))


def test_missing_dataroot_is_a_clear_error(tmp_path):
    class NeedsData(Stage):
        name = "needs_data"
        trained = ("net",)

    with pytest.raises(ConfigError, match="--dataroot is required"):
        run(NeedsData(), ["--checkpoints_dir", str(tmp_path), "--device", "cpu"])
    with pytest.raises(ConfigError, match="--dataroot: not a folder"):
        run(NeedsData(), ["--checkpoints_dir", str(tmp_path), "--device", "cpu",
                          "--dataroot", str(tmp_path / "absent")])


def test_two_process_ddp_on_cpu(tmp_path):
    """torchrun with 2 gloo processes: finishes, rank 0 writes the checkpoint, ranks agree,
    and validation (each rank scores its share of the pairs) gives both the same scores."""
    from data.synthetic import make_dataset
    val_root = make_dataset(str(tmp_path / "val"), num_train=0, num_test=5, seed=4,
                            height=64, width=48)["test"]
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_DATASET_SIZE="8",
               PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "tests" / "fake_stage.py"),
               *fake_argv(tmp_path, "ddp", "--max_steps", "3", "--save_every", "0",
                          "--dump_dir", str(tmp_path / "dump"), "--val_root", val_root,
                          "--val_pairs", "paired", "--allow_random_weights")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / "dump" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == 3
    # Parameters agree; BatchNorm running statistics are each rank's own after the last
    # forward on CPU (DDP broadcasts rank 0's at the next forward; SyncBatchNorm is CUDA-only).
    parameters = [k for k in ranks[0]["net"] if not k.endswith(("running_mean", "running_var"))]
    assert_same_state({k: ranks[0]["net"][k] for k in parameters},
                      {k: ranks[1]["net"][k] for k in parameters})
    assert ranks[0]["terms"] == ranks[1]["terms"]        # losses averaged over the ranks
    assert ranks[0]["validation"]["scores"]["pairs"] == 5      # 3 on rank 0, 2 on rank 1
    for name in ("ssim", "lpips"):
        assert ranks[0]["validation"]["scores"][name] == ranks[1]["validation"]["scores"][name]
    assert ranks[0]["best"] == ranks[1]["best"] and ranks[0]["best"]["step"] == 3
    saved = read_checkpoint(tmp_path / "ddp" / "final.pth")
    assert saved["world_size"] == 2 and saved["step"] == 3
    assert_same_state(saved["model"]["net"], ranks[0]["net"])
    assert not any(k.startswith("module.") for k in saved["model"]["net"])
    # 8 samples over 2 ranks in batches of 2: 2 steps per epoch, so step 3 is mid-epoch 1.
    assert (saved["epoch"], saved["step_in_epoch"], saved["steps_per_epoch"]) == (1, 1, 2)


def test_a_damaged_validation_file_in_one_ranks_share_stops_both(tmp_path):
    """Each rank reads its share of the validation pairs before the first step: a damaged
    photo in rank 1's share stops both ranks at once (rank 1 names it), not at a validation
    where rank 0 would wait in the gather."""
    from data.datasets import DataOptions, pair_samples
    from data.synthetic import make_dataset
    val_root = make_dataset(str(tmp_path / "val"), num_train=0, num_test=5, seed=4,
                            height=64, width=48)["test"]
    photo = Path(pair_samples(DataOptions(), val_root, "paired")[1].person.image)
    photo.write_bytes(photo.read_bytes()[:300])
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_DATASET_SIZE="8", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "tests" / "fake_stage.py"),
               *fake_argv(tmp_path, "ddp", "--max_steps", "3", "--val_root", val_root,
                          "--val_pairs", "paired", "--allow_random_weights")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert f"{photo}: truncated JPEG" in done.stderr
    assert "--val_root: a file is damaged (another process names it)" in done.stderr
    assert not (tmp_path / "ddp" / "config.yaml").exists()


def test_a_signal_to_one_rank_stops_every_rank_alike(tmp_path):
    """SIGTERM to rank 1 alone during step 0: both ranks stop after it, and rank 0 (which
    logs and saves) knows the signal."""
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_DATASET_SIZE="8", PYTHONPATH=str(ROOT),
               FAKE_SIGTERM_AT="1:0")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "tests" / "fake_stage.py"),
               *fake_argv(tmp_path, "ddp", "--max_steps", "4", "--dump_dir",
                          str(tmp_path / "dump"))]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / "dump" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [(r["step"], r["stopped_by"]) for r in ranks] == [(1, signal.SIGTERM)] * 2
    assert read_checkpoint(tmp_path / "ddp" / "latest.pth")["step"] == 1
    assert "stopped at epoch 0, step 1 by SIGTERM" in (tmp_path / "ddp" / "train.log").read_text()


def test_a_sigterm_to_the_process_group_with_loader_workers_saves_and_stops(tmp_path):
    """scancel and kill -- -PGID signal the DataLoader's workers too: one killed by it ended
    the run in a traceback, unsaved. The workers leave the signal to the main process."""
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_DATASET_SIZE="64", PYTHONPATH=str(ROOT),
               FAKE_SIGTERM_GROUP_AT="1")
    command = [sys.executable, str(ROOT / "tests" / "fake_stage.py"),
               *fake_argv(tmp_path, "group", "--max_steps", "4", "--workers", "2")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, start_new_session=True)   # a group of its own
    assert done.returncode == 0 and "killed by signal" not in done.stderr, done.stderr[-3000:]
    assert read_checkpoint(tmp_path / "group" / "latest.pth")["step"] == 2
    assert "stopped at epoch 0, step 2 by SIGTERM" in (
        tmp_path / "group" / "train.log").read_text()


def test_a_damaged_file_read_by_a_loader_worker_ends_the_run(tmp_path):
    """The error was printed and the process never exited: the workers, which ignore SIGTERM,
    outlived the epoch the error ended, and the exit waited for them."""
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_DATASET_SIZE="16", PYTHONPATH=str(ROOT),
               FAKE_DAMAGED_INDEX="5", FAKE_AS_SCRIPT="1")
    command = [sys.executable, str(ROOT / "tests" / "fake_stage.py"),
               *fake_argv(tmp_path, "damaged", "--workers", "2")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().endswith("error: sample 5: damaged")


def test_two_processes_on_a_held_run_folder_both_stop_at_once(tmp_path):
    """Only rank 0 takes the run folder's lock; when another run holds it, every rank stops
    with the refusal instead of waiting at the next barrier for the process group's timeout."""
    from utils.training.run_lock import run_folder_lock
    env = dict(os.environ, OMP_NUM_THREADS="1", FAKE_DATASET_SIZE="8", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(ROOT / "tests" / "fake_stage.py"),
               *fake_argv(tmp_path, "held", "--max_steps", "1")]
    with run_folder_lock(tmp_path / "held"):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    assert done.returncode != 0
    assert "in use by another training run" in done.stderr
    assert not (tmp_path / "held" / "latest.pth").exists()


def test_step_result_from_terms():
    loss_a = torch.tensor(1.5, requires_grad=True)
    result = StepResult.from_terms({"a": loss_a * 2, "b": torch.tensor(0.25)})
    assert result.total.item() == 3.25 and result.total.requires_grad
    assert not result.terms["a"].requires_grad and result.images == {}


class RecordingStage(FakeStage):
    """Records the context of every step and the dtype of an activation under autocast."""

    def __init__(self, size=6):
        super().__init__(size)
        self.contexts, self.dtypes = [], []

    def losses(self, models, batch, context):
        self.contexts.append(context)
        self.dtypes.append(models["net"].head[0](batch["person"]).dtype)
        return super().losses(models, batch, context)


def test_each_step_receives_its_context(tmp_path):
    stage = RecordingStage(6)
    run(stage, fake_argv(tmp_path, "context", "--sample_every", "2"))
    assert all(isinstance(c, StepContext) for c in stage.contexts)
    assert [(c.epoch, c.step, c.want_images) for c in stage.contexts] == [
        (0, 0, False), (0, 1, True), (0, 2, False), (1, 3, True), (1, 4, False), (1, 5, True)]
    assert all(c.cfg.name == "context" for c in stage.contexts)
    assert sorted(p.name for p in (tmp_path / "context" / "samples").iterdir()) == [
        "step_0000002.png", "step_0000004.png", "step_0000006.png"]


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16),
                                              ("fp16", torch.float16)])
def test_autocast_is_applied(tmp_path, precision, dtype):
    stage = RecordingStage(6)
    run(stage, fake_argv(tmp_path, precision, "--precision", precision, "--max_steps", "2"))
    assert stage.dtypes == [dtype, dtype]


def test_grad_clip_bounds_the_gradient_the_optimiser_sees(tmp_path):
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    norms = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.nn.utils.get_total_norm(grads)))

    handle = register_optimizer_step_pre_hook(record)
    try:
        run(FakeStage(6), fake_argv(tmp_path, "free", "--max_steps", "3"))
        free = list(norms)
        norms.clear()
        run(FakeStage(6), fake_argv(tmp_path, "clipped", "--max_steps", "3", "--grad_clip", "0.01"))
    finally:
        handle.remove()
    assert min(free) > 0.05                      # the fake task's gradients exceed the clip
    assert len(norms) == 3 and max(norms) <= 0.01 * (1 + 1e-5)


class DivergingStage(FakeStage):
    """Its loss becomes NaN from step ``bad_from`` on (``terms['l1']`` among others)."""

    def __init__(self, size=6, bad_from=2):
        super().__init__(size)
        self.bad_from = bad_from

    def losses(self, models, batch, context):
        result = super().losses(models, batch, context)
        if context.step >= self.bad_from:
            nan = torch.tensor(float("nan"))
            return StepResult(total=result.total * nan, terms={"l1": nan,
                                                               "agree": result.terms["agree"]})
        return result


def test_a_non_finite_loss_stops_before_backward_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"step 2 \(epoch 0\).*terms not finite: l1 nan"):
        run(DivergingStage(6, bad_from=2), fake_argv(tmp_path, "nan"))
    saved = read_checkpoint(tmp_path / "nan" / "latest.pth")
    # --save_every 1: the state after step 2 gave the NaN loss, so the last written is step 1.
    assert saved["step"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"]["net"].values()
               if v.is_floating_point())
    resumed = run(FakeStage(6), fake_argv(tmp_path, "nan", "--resume"))
    assert resumed.finished and resumed.step == 6
    # At the first step there is nothing to resume, and an fp32 run is not told to use fp32.
    with pytest.raises(TrainingDiverged) as stop:
        run(DivergingStage(6, bad_from=0), fake_argv(tmp_path, "nan0", "--precision", "fp32"))
    assert str(stop.value).endswith("terms not finite: l1 nan. Nothing was saved; lower --lr")
    with pytest.raises(TrainingDiverged, match=r"\(or --precision fp32\)$"):
        run(DivergingStage(6, bad_from=0), fake_argv(tmp_path, "nan1", "--precision", "bf16"))


def test_fp16_stops_when_every_step_is_skipped(tmp_path):
    with pytest.raises(TrainingDiverged, match="fp16 skipped 4 steps in a row"):
        run(DivergingStage(6, bad_from=0), fake_argv(tmp_path, "fp16nan", "--precision", "fp16",
                                                      "--max_skipped_steps", "3"))
    # No state was ever followed by a finite loss: none is written.
    assert not (tmp_path / "fp16nan" / "latest.pth").exists()


def test_fp16_survives_a_few_skipped_steps(tmp_path):
    class FewBad(DivergingStage):
        def losses(self, models, batch, context):
            if context.step in (1, 2):
                return super().losses(models, batch, context)
            return FakeStage.losses(self, models, batch, context)

    result = run(FewBad(6, bad_from=0), fake_argv(tmp_path, "few", "--precision", "fp16",
                                                 "--max_skipped_steps", "3"))
    assert result.finished and result.skipped_steps >= 2


def test_stale_temporary_checkpoints_are_removed_on_resume(tmp_path):
    run(FakeStage(6), fake_argv(tmp_path, "stale", "--max_steps", "2"))
    leftover = tmp_path / "stale" / ".latest.abcd1234.pth"
    leftover.write_bytes(b"half a checkpoint")
    other = tmp_path / "stale" / "notes.txt"
    other.write_text("mine")
    run(FakeStage(6), fake_argv(tmp_path, "stale", "--max_steps", "3", "--resume"))
    assert not leftover.exists() and other.exists()
    assert "removed .latest.abcd1234.pth" in (tmp_path / "stale" / "train.log").read_text()


def test_bn_recalibration_leaves_the_plain_average_of_the_first_batches(tmp_path):
    """--bn_recalibration 2 at batch size 2: before the last save, the BatchNorm running
    statistics become the average over the first two training batches (samples 0-1, 2-3) of
    their statistics under the final weights; the layer's momentum is restored after."""
    stage = FakeStage(6)
    result = run(stage, fake_argv(tmp_path, "recalibrated", "--bn_recalibration", "2"))
    net = result.models["net"].eval()
    norm = net.head[1]
    with torch.no_grad():
        features = [net.head[0](torch.stack([stage.dataset[i]["person"] for i in pair]))
                    for pair in ((0, 1), (2, 3))]
    mean = torch.stack([f.mean((0, 2, 3)) for f in features]).mean(0)
    var = torch.stack([f.var((0, 2, 3), unbiased=True) for f in features]).mean(0)
    torch.testing.assert_close(norm.running_mean, mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norm.running_var, var, rtol=1e-5, atol=1e-6)
    assert norm.momentum == 0.1
    saved = read_checkpoint(tmp_path / "recalibrated" / "final.pth")["model"]["net"]
    assert torch.equal(saved["head.1.running_mean"], norm.running_mean)
    # Without the flag the statistics are the momentum average of training, not these.
    plain = run(FakeStage(6), fake_argv(tmp_path, "plain"))
    assert not torch.allclose(plain.models["net"].head[1].running_mean, mean, atol=1e-3)


def test_a_file_where_tensorboard_goes_is_refused_before_the_run(tmp_path):
    # It ended the run with tensorboard's own traceback, after the run folder was started.
    run(FakeStage(6), fake_argv(tmp_path, "events", "--max_steps", "1"))
    events = tmp_path / "events" / "tensorboard"
    shutil.rmtree(events)
    events.write_text("not a folder")
    log = (tmp_path / "events" / "train.log").read_text()
    with pytest.raises(ConfigError, match=f"{events} is a file where the run"):
        run(FakeStage(6), fake_argv(tmp_path, "events", "--max_steps", "2", "--resume"))
    assert read_checkpoint(tmp_path / "events" / "latest.pth")["step"] == 1
    assert (tmp_path / "events" / "train.log").read_text() == log


def test_a_data_error_after_an_epoch_keeps_that_epochs_save(tmp_path):
    # The epoch-end save waits for the next step's finite loss; a damaged file read by that
    # step lost it, and with it the epoch (no latest.pth to resume).
    from data.files import DatasetError

    class DamagedInSecondEpoch(FakeStage):
        def make_dataset(self, cfg):
            inner = super().make_dataset(cfg)

            class Damaged(torch.utils.data.Dataset):
                def __len__(self):
                    return len(inner)

                def set_epoch(self, epoch):
                    inner.set_epoch(epoch)

                def __getitem__(self, index):
                    if inner.epoch == 1:
                        raise DatasetError(f"sample {index}: damaged")
                    return inner[index]
            return Damaged()

    with pytest.raises(DatasetError, match="damaged"):
        run(DamagedInSecondEpoch(6), fake_argv(tmp_path, "damaged", "--save_every", "0"))
    assert read_checkpoint(tmp_path / "damaged" / "latest.pth")["step"] == 3


def test_a_full_disk_while_copying_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    # The copy to final.pth (best.pth, epoch files) ended in OSError's traceback.
    import shutil

    from utils.checkpoint import CheckpointError

    def full(source, target):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(CheckpointError, match=r"cannot write .*final.pth \(No space left on "
                                              r"device\); .*latest.pth holds the same state"):
        run(FakeStage(6), fake_argv(tmp_path, "full", "--max_steps", "1"))


def test_resume_makes_the_kept_epoch_file_a_kill_prevented(tmp_path):
    # A kill between writing latest.pth at an epoch's end and copying it to epoch_NNN.pth lost
    # that epoch's file for good.
    run(FakeStage(6), fake_argv(tmp_path, "epochs", "--max_steps", "3", "--keep_epoch_every", "1"))
    kept = tmp_path / "epochs" / "epoch_001.pth"
    saved = kept.read_bytes()
    kept.unlink()
    run(FakeStage(6), fake_argv(tmp_path, "epochs", "--resume", "--max_steps", "4"))
    assert kept.read_bytes() == saved


def test_a_resume_writes_its_flags_into_config_yaml_when_it_saves(tmp_path):
    """A --resume with other flags rewrites config.yaml at its first save, not at its start:
    one killed before it saved (no cleanup runs) left its flags there for a plain --resume."""
    run(FakeStage(6), fake_argv(tmp_path, "r", "--max_steps", "2"))
    config = tmp_path / "r" / "config.yaml"
    before = config.read_text()
    seen = []

    class Watching(FakeStage):
        def losses(self, models, batch, context):
            seen.append(config.read_text())
            return super().losses(models, batch, context)

    run(Watching(6), fake_argv(tmp_path, "r", "--resume", "--lr", "0.005", "--max_steps", "4"))
    assert seen[0] == before and "lr: 0.005" not in before   # its first step: nothing saved
    assert "lr: 0.005" in config.read_text()
