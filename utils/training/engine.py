"""The one training loop behind the four stage scripts.

A stage (``utils/training/stage.py``) says which models exist, which are trained, which
parameters Adam updates in an epoch and how a batch becomes losses; everything else happens
here, once. ``Trainer.__init__`` builds a run (or restores it with ``--resume``), ``fit`` loops
over epochs and ``train_step`` holds every phase of one step in the order it happens.

Run folder ``CHECKPOINTS_DIR/NAME/``: ``config.yaml``, ``train.log``, ``tensorboard/``,
``samples/step_NNNNNNN.png``, ``latest.pth`` (every ``--save_every`` steps and at each epoch's
end), ``epoch_NNN.pth`` (every ``--keep_epoch_every``-th epoch; NNN = epochs completed),
``final.pth`` (at the last epoch or ``--max_steps``) and, with ``--val_root``, ``best.pth`` (a
full copy of ``latest.pth`` at the step of the best validation score).

``--resume`` continues the run exactly: weights, Adam, gradient scaler, best score and the
position in the epoch's data order, a pure function of ``(seed, epoch)``; every step reseeds
``random``, NumPy and torch from ``(seed + rank, step)``. A non-finite loss (on any rank) or
gradient stops the run with ``TrainingDiverged``, except that fp16 skips such steps until
``--max_skipped_steps`` in a row. A save is written only once the next step's loss proves its
state finite, so ``latest.pth`` always trains on.
"""

import argparse
import logging
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
import torchvision
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from common.atomic import remove_stale_temporaries, write_atomic
from common.errors import UserError, exit_on_user_error
from common.precision import AUTOCAST_DTYPES
from common.run_folder import CHECKPOINT_NAMES, SET_ASIDE, killed_overwrite, saved_checkpoints
from models.registry import unwrap
from options.config import (
    ConfigError,
    architecture_flag_names,
    config_differences,
    config_to_dict,
    parse_config,
    write_config,
)
from utils.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    StateMismatch,
    checkpoint_payload,
    load_state,
    read_checkpoint,
    save_atomic,
    state_checksum,
    state_dict_from,
)
from utils.logging_utils import close_run_logger, format_terms, image_grid, open_run_logger
from utils.training.distributed import (
    DistributedContext,
    StopRequest,
    all_ranks,
    any_rank,
    barrier,
    init_distributed,
    mean_over_ranks,
    peak_memory_mib,
    set_tf32,
    shutdown_distributed,
    wrap_for_training,
)
from utils.training.run_lock import RunFolderBusy, run_folder_lock
from utils.training.sampling import (
    ResumableSampler,
    check_resumable,
    derived_seed,
    epoch_loader,
    seed_everything,
    seed_worker,
    to_device,
)
from utils.training.schedule import EpochOptimiser
from utils.training.stage import RunResult, Stage, StepContext, StepResult

GRID_SAMPLES = 4
NEW_LOG = ".train.log.new"   # --overwrite's log until the run is built and the old one goes


# The flags that choose each frozen model's weights, named when those weights changed.
FROZEN_FLAGS = {"pb_warp": ("pb_checkpoint", "pb_warp_checkpoint"),
                "pb_gen": ("pb_checkpoint", "pb_gen_checkpoint"),
                "vgg": ("vgg_weights", "vgg_layers")}


class TrainingDiverged(UserError):
    """A loss or gradient became non-finite (too high a learning rate, fp16 overflow...)."""


def run(stage: Stage, argv: Optional[Sequence[str]] = None) -> RunResult:
    """Parse options (``argv``; ``None`` = the command line), then train ``stage``.
    Raises a ``UserError`` (``ConfigError``, ``CheckpointError``...) for bad options or files."""
    cfg = parse_config(argv, stage.add_arguments, stage.defaults, default_name=stage.name,
                       description=stage.description, builds=stage.builds,
                       continues=stage.continues)
    context = init_distributed(cfg.device)
    try:
        return train(stage, cfg, context)
    finally:
        shutdown_distributed(context)


def main(stage: Stage, argv: Optional[Sequence[str]] = None) -> RunResult:
    """``run`` for scripts: an error in the user's input ends the process with one line and
    exit status 2 instead of a traceback; a run a signal stopped (it saved first) exits with
    128 + the signal's number, as a process that signal ended would (a second Ctrl-C too, at
    once, with a line instead of a traceback)."""
    try:
        with exit_on_user_error():
            result = run(stage, argv)
    except KeyboardInterrupt:   # a second Ctrl-C: the saves already written stand
        print("stopped at once by a second Ctrl-C, without saving the step under way; --resume "
              "continues from the run's last save, where it has one", file=sys.stderr,
              flush=True)
        sys.exit(128 + signal.SIGINT)
    if result.stopped_by is not None:   # saved; the shell or scheduler learns it was stopped
        sys.exit(128 + result.stopped_by)
    return result


def check_run_folder(run_dir: Path, dataroot: Optional[str], val_root: Optional[str] = None):
    """Refuse, before anything is written, a run folder that cannot be one (a file on its path
    or at its tensorboard/, a name TensorBoard cannot write) or inside the data it reads."""
    try:
        str(run_dir).encode()
    except UnicodeEncodeError:
        raise ConfigError(f"--checkpoints_dir/--name: {run_dir} is not valid UTF-8, which "
                          f"TensorBoard's event files need; choose another folder") from None
    for folder in [run_dir / "tensorboard", run_dir, *run_dir.parents]:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--checkpoints_dir/--name: {folder} is a file where the run "
                              f"{run_dir} needs a folder")
    for what, root in (("training", dataroot), ("validation", val_root)):
        if root and Path(root).resolve() in (run_dir.resolve(), *run_dir.resolve().parents):
            raise ConfigError(f"--checkpoints_dir/--name: the run folder {run_dir} is inside "
                              f"the {what} data {root}; runs are written elsewhere")


def train(stage: Stage, cfg: argparse.Namespace, context: DistributedContext) -> RunResult:
    """The training run of a parsed configuration in a given process context, holding its
    run folder's lock (``utils/training/run_lock.py``) from the first look at the folder to
    the end: a second run on the same folder is refused."""
    run_dir = Path(cfg.checkpoints_dir) / cfg.name
    check_run_folder(run_dir, getattr(cfg, "dataroot", None), cfg.val_root)
    mine = [f for f in cfg.config or () if Path(f).resolve() == (run_dir / "config.yaml").resolve()]
    if mine and not (cfg.resume or cfg.overwrite):   # a new run writes its own config.yaml
        raise ConfigError(f"--config {mine[0]} is the run folder's config.yaml, which a new run "
                          f"rewrites: copy it elsewhere, or --resume the run")
    # Where a killed --overwrite set the run aside, it is put back under the lock.
    home = run_dir / SET_ASIDE if killed_overwrite(run_dir) else run_dir
    if cfg.resume and not (home / "latest.pth").is_file():   # before the lock makes the folder
        raise ConfigError(f"--resume: no checkpoint to continue from: {run_dir / 'latest.pth'} "
                          f"is missing")
    if cfg.resume and not (home / "config.yaml").is_file():   # the defaults would stand in
        raise ConfigError(f"--resume: {run_dir / 'config.yaml'} is missing, and with it the run's "
                          f"options (latest.pth records them, under 'config'): put it back")
    new = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]
    with ExitStack() as held:
        if new and context.is_main:   # after the lock's release: a run that never started
            held.callback(_remove_if_unstarted, new[-1], run_dir / "train.log")
        refused = None
        try:
            lock_note = held.enter_context(run_folder_lock(run_dir, context.is_main))
        except RunFolderBusy as error:
            refused, lock_note = error, ""
        # Every rank learns whether rank 0 took the folder: a rank left alone at the next
        # barrier would wait there until the process group times out.
        if any_rank(refused is not None, context):
            raise refused or RunFolderBusy(f"{run_dir} is held by another run (the first "
                                           f"process says which)")
        return _train_in_folder(stage, cfg, context, run_dir, lock_note)


def _train_in_folder(stage: Stage, cfg: argparse.Namespace, context: DistributedContext,
                     run_dir: Path, lock_note: str) -> RunResult:
    # The run already in the folder: put back from a killed --overwrite, then kept as it was
    # until the new run saves.
    from utils.training.old_run import OldRun, put_back_killed
    put_back = put_back_killed(run_dir, context.is_main, NEW_LOG)
    barrier(context)   # every rank sees the folder as rank 0 left it
    # Any checkpoint a run writes, not only latest.pth: a folder holding a final.pth alone
    # (latest.pth deleted, or a file copied there) would lose it to the new run's.
    saved = sorted(path.name for path in saved_checkpoints(run_dir))
    if not cfg.resume and not cfg.overwrite and saved:
        raise ConfigError(f"{run_dir} already holds a run ({', '.join(saved[:3])}); pass "
                          f"--resume to continue it, --overwrite to start again, or another "
                          f"--name")
    old_run = OldRun(run_dir, cfg, context.is_main)
    barrier(context)  # every rank has looked at the run folder before rank 0 writes to it
    log = run_dir / (NEW_LOG if cfg.overwrite else "train.log")
    logger = open_run_logger(log if context.is_main else None, context.is_main)
    for note in (lock_note, put_back):
        if note:
            logger.warning(note)
    trainer = None
    try:
        with StopRequest(announce=context.is_main) as stop:
            trainer = Trainer(stage, cfg, context, run_dir, logger, stop, old_run=old_run)
            return trainer.fit()
    finally:
        if trainer is not None:
            trainer.close()
        close_run_logger(logger)
        (run_dir / NEW_LOG).unlink(missing_ok=True)   # a run that did not start: the old stays
        old_run.put_back()   # when the new run saved nothing


class Trainer:
    """One run of one stage, built (or restored with ``--resume``) in ``__init__``. ``fit``
    trains it to its end; ``train_step`` is one step; ``timed_steps`` steps it endlessly for
    ``scripts/benchmark.py``."""

    def __init__(self, stage: Stage, cfg: argparse.Namespace, context: DistributedContext,
                 run_dir: Path, logger: logging.Logger, stop: Optional["StopRequest"] = None,
                 show_progress: bool = True, old_run=None):
        self.stage, self.cfg, self.context, self.device = stage, cfg, context, context.device
        self.run_dir, self.logger, self.stop = run_dir, logger, stop or StopRequest()
        self.old_run = old_run
        self.latest_path = run_dir / "latest.pth"
        self.config_dict = config_to_dict(cfg)
        self.pending = None   # (payload, copies): a save waiting for the next step's finite loss
        self.last_terms: dict[str, float] = {}
        self.writer = None
        set_tf32(cfg.tf32, self.device)
        seed_everything(cfg.seed)   # initial weights must not depend on the rank
        # Bad data, weights, --resume or validation stop the run before the folder is touched.
        self._build_data()
        self._build_models()
        checkpoint = self._restore() if cfg.resume else None
        self._build_optimisation(checkpoint)
        self._build_validation(checkpoint)
        self._start_run_folder()
        self._open_writer(show_progress)
        self.sums, self.counts, self.interval_start = {}, {}, time.perf_counter()
        self.stopping = self.stop.agreed(context) or self.step >= self.stop_at

    def fit(self) -> RunResult:
        """Train from the current position until the last epoch, ``--max_steps`` or a stop
        request (SIGINT/SIGTERM), saving at every epoch's end and where it stops."""
        try:
            while self.epoch < self.total_epochs and not self.stopping:
                for batch in self._start_epoch():
                    if self.train_step(batch):
                        break
                self._log_interval()           # the steps since the last log line
                self._end_epoch()
        except TrainingDiverged:
            raise
        except (Exception, KeyboardInterrupt):
            # Not the state's failure (a damaged image read after the epoch's end): the save
            # it held, of finite weights, is written rather than lost with the epoch.
            self._write_save_proven_finite()
            raise
        return self._finish()

    def train_step(self, batch) -> bool:
        """One optimiser step on ``batch`` and what follows it, in the order it happens.
        Returns True when the epoch ends here or the run stops (``fit`` then saves)."""
        cfg = self.cfg
        seed_everything(derived_seed(cfg.seed + self.context.rank, self.step))
        want_images = self._grid_due()
        result = self._stage_losses(batch, want_images)
        # Every rank takes the same branch: one alone in backward would wait in DDP's forever.
        if all_ranks(torch.isfinite(result.total.detach()), self.context):
            self._write_save_proven_finite()   # the state it was taken from gives a finite loss
            self.scaler.scale(result.total).backward()
            self._optimiser_step()
        else:
            self._stop_or_skip_non_finite_loss(result)
        self.step, self.step_in_epoch = self.step + 1, self.step_in_epoch + 1
        self.progress.update(1)
        self._record(result)
        if want_images and result.images:
            self._write_grid(result.images)
        epoch_end = self.step_in_epoch == self.steps_per_epoch
        if self.step % cfg.log_every == 0:
            self._log_interval()
        self.stopping = self.stop.agreed(self.context) or self.step >= self.stop_at
        if self._validation_due(epoch_end):
            self._validate()                   # a new best is saved with this step's state
        if self.stopping or epoch_end:
            return True
        if self.best_pending or (cfg.save_every and self.step % cfg.save_every == 0):
            self._save()
        return False

    def timed_steps(self) -> Iterator[None]:
        """``train_step`` on batch after batch, endlessly: each ``next`` is one step. At the
        epoch's end the same epoch's data starts again, without saving. For timing the step
        (``scripts/benchmark.py``): give the trainer ``--save_every 0``, ``--sample_every 0``
        and a ``--log_every`` beyond the steps timed, so that no step writes a file."""
        while True:
            self.step_in_epoch = 0
            for batch in self._start_epoch():
                self.train_step(batch)
                yield

    # The phases of a step, in the order train_step calls them.

    def _start_epoch(self) -> DataLoader:
        """The epoch's Adam (new when its groups change), rates, and a loader of its data."""
        cfg, epoch = self.cfg, self.epoch
        fresh = self.adam.start_epoch(epoch)
        if fresh and self.context.is_main:
            self.logger.info(f"epoch {epoch}: new Adam over groups " + ", ".join(
                f"{g['name']} ({sum(p.numel() for p in g['params']):,} parameters)"
                for g in fresh))
        for name in self.trained:
            self.plain[name].train()
        return epoch_loader(self.dataset, self.sampler, epoch, self.step_in_epoch,
                            cfg.batch_size, cfg.workers, cfg.seed + self.context.rank,
                            pin_memory=self.device.type == "cuda")

    def _grid_due(self) -> bool:
        """Rank 0 writes an image grid every ``--sample_every`` steps and at the run's last."""
        every, last = self.cfg.sample_every, self.step + 1 == self.stop_at
        return self.context.is_main and every > 0 and ((self.step + 1) % every == 0 or last)

    def _stage_losses(self, batch, want_images: bool) -> StepResult:
        """The stage's losses on ``batch`` (moved to the device), under autocast with
        ``--precision bf16|fp16``."""
        context = StepContext(cfg=self.cfg, epoch=self.epoch, step=self.step,
                              want_images=want_images)
        dtype = AUTOCAST_DTYPES[self.cfg.precision]
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            result = self.stage.losses(self.wrapped, to_device(batch, self.device), context)
        if not isinstance(result, StepResult):
            raise TypeError(f"{type(self.stage).__name__}.losses must return a StepResult, got "
                            f"{type(result).__name__}")
        return result

    def _write_save_proven_finite(self) -> None:
        """Write the state ``_save`` took, now that a finite loss came from it."""
        if self.pending is None:
            return
        (payload, copies), self.pending = self.pending, None
        save_atomic(payload, self.latest_path)
        if self.old_run:   # a --resume's flags go into config.yaml there
            self.old_run.saved_one()
        for copy in copies:
            _copy_atomic(self.latest_path, self.run_dir / copy)
        self.logger.info(f"saved {self.latest_path.name}{''.join(', ' + c for c in copies)} at "
                         f"step {payload['step']}")

    def _optimiser_step(self) -> None:
        """Clip (``--grad_clip``), step, and clear the gradients. Non-finite gradients stop the
        run, except under fp16, where the scaler skips the step and lowers its scale."""
        fp16, optimizer, parameters = (self.scaler.is_enabled(), self.adam.optimizer,
                                       self.adam.parameters)
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(parameters, self.cfg.grad_clip)
        elif not fp16:
            norm = torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
        if not fp16 and not torch.isfinite(norm):
            self._stop_diverged(f"the gradients are not finite (norm {float(norm)}) though the "
                                f"loss is", "lower --lr or set --grad_clip")
        scale = self.scaler.get_scale()
        self.scaler.step(optimizer)
        self.scaler.update()
        if fp16:
            self._count_fp16_skip(self.scaler.get_scale() < scale, "the gradients overflowed")
        for name in self.trained:
            self.plain[name].zero_grad(set_to_none=True)

    def _stop_or_skip_non_finite_loss(self, result: StepResult) -> None:
        """Stop at once, or under fp16 skip the step (no ``backward``: the sampling's CPU
        backward can crash on a NaN grid) and count it."""
        bad = {name: float(value) for name, value in result.terms.items()
               if not torch.isfinite(value)}
        where = (f"loss {float(result.total.detach())}; terms not finite: "
                 f"{format_terms(bad) if bad else '(on another process)'}")
        if not self.scaler.is_enabled():
            self._stop_diverged(where, "lower --lr" + (" (or --precision fp32)"
                                                       if self.cfg.precision == "bf16" else ""))
        self.logger.warning(f"step {self.step} (epoch {self.epoch}): {where}; fp16: the step is "
                            f"skipped")
        self._count_fp16_skip(True, "the loss was not finite")

    def _count_fp16_skip(self, skipped: bool, why: str) -> None:
        """Count a step fp16 skipped; more than ``--max_skipped_steps`` in a row stop the run."""
        self.skipped_in_a_row = self.skipped_in_a_row + 1 if skipped else 0
        self.skipped_steps += int(skipped)
        limit = self.cfg.max_skipped_steps
        if limit and self.skipped_in_a_row > limit:
            self._stop_diverged(f"fp16 skipped {self.skipped_in_a_row} steps in a row (last: "
                                f"{why}; loss scale {self.scaler.get_scale():.3g}); the run has "
                                f"diverged or overflows float16", "lower --lr or --precision bf16")

    def _stop_diverged(self, what: str, remedy: str) -> None:
        last = (f"Nothing was saved after the last good checkpoint {self.latest_path}; {remedy}, "
                f"and --resume" if self.latest_path.is_file() else f"Nothing was saved; {remedy}")
        raise TrainingDiverged(f"step {self.step} (epoch {self.epoch}): {what}. {last}")

    def _record(self, result: StepResult) -> None:
        """Add the step's terms and scalars to the interval's sums."""
        for name, value in {"total": result.total, **result.terms, **result.scalars}.items():
            value = value.detach().float().reshape(())
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def _write_grid(self, images) -> None:
        grid = image_grid(images, GRID_SAMPLES)
        self.writer.add_image("samples", grid, self.step)
        self.writer.add_text("samples/columns", ", ".join(images), self.step)
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        try:
            path.parent.mkdir(exist_ok=True)
            torchvision.utils.save_image(grid, path)
        except OSError as error:   # a picture lost (a full disk) does not stop the run
            self.logger.warning(f"cannot write {path} ({error.strerror or error}); training "
                                f"goes on")

    def _log_interval(self) -> None:
        """The interval's terms, averaged over its steps and the ranks, to TensorBoard, the log
        and the progress bar; nothing when no step was taken since the last call."""
        if not self.sums:
            return
        keys = ["total"] + sorted(k for k in self.sums if k != "total")
        averaged = mean_over_ranks({k: self.sums[k] / self.counts[k] for k in keys}, self.context)
        samples = self.counts["total"] * self.cfg.batch_size * self.context.world_size
        samples_per_s = samples / max(time.perf_counter() - self.interval_start, 1e-9)
        self.last_terms = averaged
        self.sums, self.counts, self.interval_start = {}, {}, time.perf_counter()
        if not self.context.is_main:
            return
        step, memory = self.step, peak_memory_mib(self.device)
        scalars = {name if "/" in name else f"loss/{name}": v for name, v in averaged.items()}
        scalars.update({f"lr/{name}": value for name, value in self.adam.rates.items()})
        scalars.update({"speed/samples_per_s": samples_per_s, "speed/peak_memory_mib": memory,
                        "progress/epoch": self.epoch + self.step_in_epoch / self.steps_per_epoch})
        if self.scaler.is_enabled():
            scalars.update({"amp/loss_scale": self.scaler.get_scale(),
                            "amp/skipped_steps": self.skipped_steps})
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.progress.set_postfix(loss=f"{averaged['total']:.4g}")
        # The log line: the losses and the distillation gate; TensorBoard: every scalar.
        shown = {name: value for name, value in averaged.items()
                 if "/" not in name or name == "distill/teacher_better_fraction"}
        self.logger.info(f"epoch {self.epoch} step {step}/{self.stop_at}: {format_terms(shown)} "
                         f"| lr {format_terms(self.adam.rates)} | {samples_per_s:.3g} samples/s "
                         f"| peak {memory:.0f} MiB")

    def _validation_due(self, epoch_end: bool) -> bool:
        cfg = self.cfg
        return self.validator is not None and (
            (cfg.val_unit == "step" and self.step % cfg.val_every == 0)
            or (cfg.val_unit == "epoch" and epoch_end and (self.epoch + 1) % cfg.val_every == 0)
            or self.step >= self.stop_at)

    def _validate(self) -> None:
        """Score the models on --val_root (every process its share); a new best is kept as
        ``best.pth`` by the next save."""
        self._recalibrate_norms()
        scores = self.validator.run(self.plain, self.device)
        improved = self.best.update(scores[self.best.metric], self.step)
        self.best_pending = self.best_pending or improved
        self.last_validation = {"step": self.step, "epoch": self.epoch, "scores": scores}
        if self.context.is_main:
            for name in (*self.validator.metrics(), "seconds"):
                self.writer.add_scalar(f"val/{name}", scores[name], self.step)
            self.logger.info(self.validator.report(self.step, scores, self.best, improved))

    def _recalibrate_norms(self) -> None:
        """``--bn_recalibration N``: the trained models' BatchNorm running statistics become the
        plain average over the first N batches of the training set (each process its share)
        under the current weights, computed by the stage's own forward pass without gradients
        (``utils/training/batch_norm.py``)."""
        count, cfg = self.cfg.bn_recalibration, self.cfg
        if not count:
            return
        from utils.training.batch_norm import batch_norms, recalibrating  # only with the flag
        norms = batch_norms(self.plain[name] for name in self.trained)
        if not norms:
            return
        world, rank = self.context.world_size, self.context.rank
        samples = min(count * cfg.batch_size, len(self.dataset) // world)
        loader = DataLoader(Subset(self.dataset, range(rank, samples * world, world)),
                            batch_size=cfg.batch_size, num_workers=cfg.workers, drop_last=True,
                            worker_init_fn=seed_worker)
        seed_everything(derived_seed(cfg.seed + rank, self.step, 2))
        with recalibrating(norms), torch.no_grad():
            for batch in loader:
                self._stage_losses(batch, want_images=False)

    def _save(self, copies: Sequence[str] = ()) -> None:
        """Take the state for ``latest.pth`` (and ``copies``, ``best.pth`` when a new best
        waits) on rank 0, copied to the CPU (the next step changes it in place), for
        ``_write_save_proven_finite`` or the run's end. Non-finite weights stop the run."""
        copies = list(copies) + (["best.pth"] if self.best_pending else [])
        self.best_pending = False
        if not self.context.is_main:
            return
        trained = {name: unwrap(self.plain[name]) for name in self.trained}
        payload, non_finite = checkpoint_payload(
            self.stage.name, trained, self.config_dict,
            optimizer=self.adam.optimizer.state_dict(), optimizer_epoch=self.adam.epoch,
            scaler=self.scaler.state_dict(), epoch=self.epoch, step=self.step,
            step_in_epoch=self.step_in_epoch, steps_per_epoch=self.steps_per_epoch,
            world_size=self.context.world_size, batch_size=self.cfg.batch_size,
            best=self.best.as_dict() if self.best else None, validation=self.last_validation,
            skipped_steps=self.skipped_steps, skipped_in_a_row=self.skipped_in_a_row,
            frozen=self.frozen)
        if non_finite:
            raise TrainingDiverged(
                f"step {self.step}: the weights of {', '.join(non_finite)} are not "
                f"finite; not saved, the last good checkpoint is {self.latest_path}")
        copies = sorted(set(copies) | set(self.pending[1] if self.pending else ()))
        self.pending = (_cpu_copy(payload), copies)

    def _end_epoch(self) -> None:
        """Save where the epoch's loop ended: at its end, counting the epoch and keeping
        ``epoch_NNN.pth`` every ``--keep_epoch_every`` epochs, or mid-epoch when stopping."""
        keep = []
        if self.validator is None and self.step >= self.stop_at:
            self._recalibrate_norms()          # with validation, done before the last one
        if self.step_in_epoch == self.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
            every = self.cfg.keep_epoch_every
            if every and self.epoch % every == 0:
                keep.append(f"epoch_{self.epoch:03d}.pth")
        self._save(keep)

    def _finish(self) -> RunResult:
        self._write_save_proven_finite()       # the run's last state: nothing follows it
        finished, final = self.step >= self.stop_at, self.run_dir / "final.pth"
        if self.context.is_main:
            if finished and self.latest_path.is_file():
                _copy_atomic(self.latest_path, final)
            by = f" by {self.stop.signum.name}" if self.stop.signum else ""
            message = f"stopped at epoch {self.epoch}, step {self.step}{by}; continue with --resume"
            if not self.latest_path.is_file():
                message = f"stopped{by} before its first step, with nothing to save"
            if finished and self.step < self.schedule_steps:
                message = (f"stopped at --max_steps {self.cfg.max_steps} (step {self.step} of "
                           f"the schedule's {self.schedule_steps}): {final}; --resume without "
                           f"--max_steps trains the rest")
            elif finished:
                message = f"finished at epoch {self.epoch}, step {self.step}: {final}"
            self.logger.info(message)
        self.close()
        terms = self.last_terms
        return RunResult(step=self.step, epoch=self.epoch, validation=self.last_validation,
                         best=self.best.as_dict() if self.best else None,
                         terms={k: v for k, v in terms.items() if "/" not in k},
                         scalars={k: v for k, v in terms.items() if "/" in k},
                         learning_rates=self.adam.rates, run_dir=self.run_dir,
                         models={k: unwrap(v) for k, v in self.plain.items()}, finished=finished,
                         optimizer_builds=self.adam.builds, config=self.cfg,
                         rank=self.context.rank, skipped_steps=self.skipped_steps,
                         stopped_by=None if finished else self.stop.signum)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.progress.close()

    def _build_data(self) -> None:
        cfg, context = self.cfg, self.context
        self.dataset = self.stage.make_dataset(cfg)
        if len(self.dataset) == 0:
            raise ConfigError(f"the training dataset of stage {self.stage.name} is empty")
        self.sampler = ResumableSampler(self.dataset, context.world_size, context.rank, cfg.seed)
        self.steps_per_epoch = self.sampler.num_samples // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(f"{len(self.dataset)} samples over {context.world_size} "
                              f"process(es) give fewer than --batch_size {cfg.batch_size} per "
                              f"process")
        self.total_epochs = cfg.niter + cfg.niter_decay
        self.schedule_steps = total_steps = self.steps_per_epoch * self.total_epochs
        self.stop_at = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps

    def _start_run_folder(self) -> None:
        if not self.context.is_main:
            return
        cfg, log = self.cfg, self.logger.info
        if self.old_run:   # --overwrite sets the old run's files aside (utils/training/old_run.py)
            self.old_run.set_aside()
        if (self.run_dir / NEW_LOG).exists():   # --overwrite's log takes the old one's name
            (self.run_dir / NEW_LOG).replace(self.run_dir / "train.log")
        # A --resume rewrites config.yaml at its first save (OldRun.saved_one): one killed
        # before it saved left its flags there, which a plain --resume then took.
        if not cfg.resume:
            write_config(cfg, self.run_dir / "config.yaml")
        for stale in remove_stale_temporaries(self.run_dir, CHECKPOINT_NAMES):
            log(f"removed {stale.name}, left by a save that was interrupted")
        if cfg.resume:
            self._mend_copies()
        log(f"stage {self.stage.name}: {'resuming' if cfg.resume else 'starting'} run "
            f"{self.run_dir} on {self.device}, {self.context.world_size} process(es)")
        if cfg.precision == "fp16" and self.device.type == "cpu":
            self.logger.warning("--precision fp16 on cpu: emulated, many times slower than fp32")
        log("configuration:\n" + "\n".join(f"  {k}: {v}" for k, v in self.config_dict.items()))
        for line in self.stage.describe_dataset(self.dataset, cfg):
            log(line)

    def _mend_copies(self) -> None:
        """The copies of ``latest.pth`` a kill kept from being made after it was written: the
        best.pth of the best it records at its own step, its step's kept epoch file."""
        due, every = [], self.cfg.keep_epoch_every
        kept = self.run_dir / f"epoch_{self.epoch:03d}.pth"
        if every and self.epoch and not self.step_in_epoch and self.epoch % every == 0 \
                and not kept.is_file():
            due.append(kept)
        best = self.run_dir / "best.pth"
        if self.best is not None and self.best.step == self.step and (
                not best.is_file() or read_checkpoint(best, "best.pth").get("step") != self.step):
            due.append(best)
        for path in due:
            _copy_atomic(self.latest_path, path)
            self.logger.warning(f"--resume: wrote {path.name} from {self.latest_path.name}: the "
                                f"run stopped before copying it")

    def _build_models(self) -> None:
        models = self.stage.build_models(self.cfg, self.device)
        self.trained = tuple(self.stage.trained_models(models))
        missing = [name for name in self.trained if name not in models]
        if missing:
            raise ValueError(f"{type(self.stage).__name__}.build_models returned "
                             f"{sorted(models)}; it lacks the trained model(s) {missing}")
        self.models = {name: model.to(self.device) for name, model in models.items()}
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0
        # The frozen models (a teacher, a loss network): --resume refuses others.
        self.frozen = {name: state_checksum(unwrap(model).state_dict())
                       for name, model in self.models.items() if name not in self.trained}

    def _restore(self) -> dict:
        """Read ``latest.pth`` for ``--resume``, check that it continues this run exactly, and
        restore the trained weights and the position."""
        path, cfg, context = self.latest_path, self.cfg, self.context
        checkpoint = read_checkpoint(path, "--resume")
        if (checkpoint.get("format"), checkpoint.get("stage")) != (CHECKPOINT_FORMAT,
                                                                   self.stage.name):
            raise CheckpointError(f"--resume: {path} is a '{checkpoint.get('stage')}' checkpoint "
                                  f"(format {checkpoint.get('format')!r}); this is stage "
                                  f"'{self.stage.name}'")
        check_resumable(checkpoint, context.world_size, cfg.batch_size, self.steps_per_epoch,
                        path)
        differences = config_differences(checkpoint["config"], self.config_dict)
        if checkpoint["step_in_epoch"] and "seed" in differences:   # the epoch's order
            raise ConfigError(f"--resume: {path} stopped mid-epoch, in the data order of "
                              f"--seed {differences['seed'][0]}; continue with it (another seed "
                              f"may start at an epoch's end)")
        for key in (key for key in self.stage.start_flags   # None: a run from before the flag
                    if differences.get(key, (None,))[0] is not None):
            raise ConfigError(f"--resume: --{key} {differences[key][1]} would change nothing: "
                              f"{path} continues weights that started as --{key} "
                              f"{differences[key][0]} said; leave it out, or start a new run")
        replaced = sorted(name for name, digest in checkpoint.get("frozen", {}).items()
                          if self.frozen.get(name, digest) != digest)
        if replaced:
            changed = "".join(f", --{key} was {old!r}, now {new!r}" for key, (old, new)
                              in differences.items()
                              if any(key in FROZEN_FLAGS.get(name, ()) for name in replaced))
            raise CheckpointError(f"--resume: {path} trained beside other weights of the frozen "
                                  f"{', '.join(replaced)} than those given now{changed}; give "
                                  f"the files and flags its config.yaml names, or start a new "
                                  f"run")
        for name in self.trained:
            try:
                load_state(self.models[name], state_dict_from(checkpoint, name, path,
                                                              "--resume"), f"--resume: {path}")
            except StateMismatch:   # named by the architecture flags that changed, if any did
                changed = ", ".join(f"--{key} was {old!r}, now {new!r}" for key, (old, new)
                                    in differences.items() if key in architecture_flag_names())
                if not changed:
                    raise
                raise CheckpointError(f"--resume: {path} holds another architecture: {changed}; "
                                      f"resume without changing them") from None
        self.epoch, self.step = checkpoint["epoch"], checkpoint["step"]
        self.step_in_epoch = checkpoint["step_in_epoch"]
        if self.step > self.stop_at:   # it would copy a later state over final.pth
            raise ConfigError(f"--resume: {path} is at step {self.step}, past this run's end at "
                              f"step {self.stop_at} (--max_steps or the schedule)")
        if context.is_main:
            for key, (old, new) in differences.items():
                self.logger.warning(f"--resume: option {key} was {old!r}, now {new!r}")
            if checkpoint["world_size"] != context.world_size:
                self.logger.warning(f"--resume: saved by {checkpoint['world_size']} process(es), "
                                    f"continued by {context.world_size}: the data order and "
                                    f"random draws from here differ from the uninterrupted run's")
            self.logger.info(f"resumed from {path}: epoch {self.epoch}, step {self.step} "
                             f"({self.step_in_epoch} into the epoch)")
        return checkpoint

    def _build_optimisation(self, checkpoint: Optional[dict]) -> None:
        """DDP wrappers, Adam (restored with ``--resume``) and the gradient scaler."""
        saved = checkpoint or {}
        self.plain, self.wrapped = wrap_for_training(self.models, self.trained, self.context,
                                                     self.stage.find_unused_parameters)
        self.adam = EpochOptimiser(self.stage, self.plain, self.trained, self.cfg)
        if saved.get("optimizer") is not None:
            self.adam.restore(saved["optimizer_epoch"], saved["optimizer"], self.latest_path,
                              (saved.get("config") or {}).get("niter"))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.cfg.precision == "fp16")
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.skipped_in_a_row = saved.get("skipped_in_a_row", 0)
        self.skipped_steps = saved.get("skipped_steps", 0)

    def _build_validation(self, checkpoint: Optional[dict]) -> None:
        self.validator, self.best, self.last_validation = None, None, None
        self.best_pending = False   # best.pth is written with the next save
        if not self.cfg.val_root:
            return
        from utils.training.validation import BestScore, Validator
        self.validator = Validator(self.stage, self.cfg, self.context)
        metric = self.validator.best_metric(self.cfg.best_metric)
        self.best = BestScore.from_dict((checkpoint or {}).get("best"), metric)
        self.last_validation = (checkpoint or {}).get("validation")
        if self.context.is_main:
            self.logger.info(self.validator.describe(self.best))

    def _open_writer(self, show_progress: bool) -> None:
        if self.context.is_main:
            from torch.utils.tensorboard import SummaryWriter
            # purge_step drops events a crashed invocation logged after its last checkpoint;
            # the events of the checkpoint's own step were all logged before it was saved.
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                        purge_step=self.step + 1 if self.step else None)
        self.progress = tqdm(total=self.stop_at, initial=self.step,
                             desc=self.stage.name, unit="step", dynamic_ncols=True,
                             disable=None if self.context.is_main and show_progress else True)


def _remove_if_unstarted(top: Path, log: Path) -> None:
    """Remove ``top``, the outermost folder made for a run, if it holds no more than its log."""
    if top.is_dir() and all(path.is_dir() or path == log for path in top.rglob("*")):
        shutil.rmtree(top, ignore_errors=True)


def _cpu_copy(value):
    """``value`` (nested dicts, lists, tensors) with every tensor copied to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(item) for item in value)
    return value


def _copy_atomic(source: Path, target: Path) -> None:
    try:
        write_atomic(target, lambda temporary: shutil.copyfile(source, temporary))
    except OSError as error:   # a full disk: one line, as save_atomic's
        raise CheckpointError(f"cannot write {target} ({error.strerror or error}); {source} "
                              f"holds the same state") from None
