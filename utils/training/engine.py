"""The one training loop behind the four stage scripts.

A stage (``utils/training/stage.py``) says which models exist, which are trained, which
parameters the optimiser updates in an epoch and how a batch becomes losses. Everything else
happens here, once: device, DDP, precision, seeding, data order, Adam and its schedule,
checkpoints, validation, TensorBoard, the progress bar and the log. ``Trainer.__init__`` builds
a run (or restores it with ``--resume``), ``Trainer.fit`` loops over epochs, and
``Trainer.train_step`` holds every phase of one step in the order it happens.

Run folder ``CHECKPOINTS_DIR/NAME/``: ``config.yaml``, ``train.log``, ``tensorboard/``,
``samples/step_NNNNNNN.png``, ``latest.pth`` (every ``--save_every`` steps and at each epoch's
end), ``epoch_NNN.pth`` (every ``--keep_epoch_every``-th epoch; NNN = epochs completed),
``final.pth`` (at the last epoch or ``--max_steps``) and, with ``--val_root``, ``best.pth``: a
full copy of ``latest.pth`` at the step of the best validation score.

``--resume`` continues the run exactly: weights, Adam, gradient scaler, best score, epoch, step
and the position in the epoch's data order, a pure function of ``(seed, epoch)``; every step
reseeds ``random``, NumPy and torch from ``(seed + rank, step)``.

A non-finite loss (on any rank) or gradient stops the run with ``TrainingDiverged``; under fp16
the gradient scaler skips such steps instead, and more than ``--max_skipped_steps`` skipped in
a row stop it. A save is written only once the next step's loss proves its state finite, so
``latest.pth`` always trains on.
"""

import argparse
import logging
import math
import shutil
import signal
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
import torchvision
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.atomic import remove_stale_temporaries, write_atomic
from common.errors import UserError, exit_on_user_error
from common.precision import AUTOCAST_DTYPES
from models.fast import unwrap
from options.config import ConfigError, config_differences, config_to_dict, parse_config, write_config
from utils.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, checkpoint_payload, load_state,
                              read_checkpoint, save_atomic, state_dict_from)
from utils.logging_utils import close_run_logger, format_terms, image_grid, open_run_logger
from utils.training.distributed import (DistributedContext, barrier, init_distributed,
                                        mean_over_ranks, shutdown_distributed)
from utils.training.sampling import ResumableSampler, derived_seed, seed_everything, seed_worker, to_device
from utils.training.schedule import (check_groups, group_signature, lr_factor, make_optimizer,
                                     set_learning_rates)
from utils.training.stage import Stage, StepContext, StepResult

GRID_SAMPLES = 4
CHECKPOINT_NAMES = ("latest", "best", "final", "epoch_*")


class TrainingDiverged(UserError):
    """A loss or gradient became non-finite (too high a learning rate, fp16 overflow...)."""


@dataclass
class RunResult:
    """What ``run`` returns. ``terms``/``scalars``: the last logged loss terms (with 'total')
    and other scalars, averaged over ranks; ``validation``: the last validation's step and
    scores; ``best``: the best score, its metric and step; ``learning_rates``: by group, last
    epoch; ``models``: all models, unwrapped; ``finished``: the run reached its last epoch or
    ``--max_steps``; ``optimizer_builds``: ``(epoch, group names)`` of every Adam created;
    ``skipped_steps``: fp16 steps the gradient scaler skipped."""
    step: int
    epoch: int
    terms: dict[str, float]
    learning_rates: dict[str, float]
    run_dir: Path
    models: dict[str, nn.Module]
    finished: bool
    optimizer_builds: list[tuple[int, tuple[str, ...]]]
    config: argparse.Namespace
    rank: int
    scalars: dict[str, float] = field(default_factory=dict)
    validation: Optional[dict] = None
    best: Optional[dict] = None
    skipped_steps: int = 0


def run(stage: Stage, argv: Optional[Sequence[str]] = None) -> RunResult:
    """Parse options (``argv``; ``None`` = the command line), then train ``stage``.
    Raises a ``UserError`` (``ConfigError``, ``CheckpointError``...) for bad options or files."""
    cfg = parse_config(argv, stage.add_arguments, stage.defaults, default_name=stage.name,
                       description=stage.description)
    context = init_distributed(cfg.device)
    try:
        return train(stage, cfg, context)
    finally:
        shutdown_distributed(context)


def main(stage: Stage, argv: Optional[Sequence[str]] = None) -> RunResult:
    """``run`` for scripts: an error in the user's input ends the process with one line and
    exit status 2 instead of a traceback."""
    with exit_on_user_error():
        return run(stage, argv)


def check_run_folder(run_dir: Path, dataroot: Optional[str]) -> None:
    """Refuse a run folder that cannot be one (a file on its path) or that lies inside the
    training data, before anything is written."""
    for folder in [run_dir, *run_dir.parents]:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"--checkpoints_dir/--name: {folder} is a file, so the run "
                              f"folder {run_dir} cannot be made")
    if dataroot:
        data = Path(dataroot).resolve()
        if run_dir.resolve() == data or data in run_dir.resolve().parents:
            raise ConfigError(f"--checkpoints_dir/--name: the run folder {run_dir} is inside "
                              f"the training data {dataroot}; runs are written elsewhere")


def train(stage: Stage, cfg: argparse.Namespace, context: DistributedContext) -> RunResult:
    """The training run of a parsed configuration in a given process context."""
    run_dir = Path(cfg.checkpoints_dir) / cfg.name
    check_run_folder(run_dir, getattr(cfg, "dataroot", None))
    latest_path = run_dir / "latest.pth"
    if cfg.resume and not latest_path.is_file():
        raise ConfigError(f"--resume: no checkpoint to continue from: {latest_path} does not "
                          f"exist")
    if not cfg.resume and not cfg.overwrite and latest_path.is_file():
        raise ConfigError(f"{run_dir} already holds a run ({latest_path.name}); pass --resume to "
                          f"continue it, --overwrite to start again, or another --name")
    barrier(context)  # every rank has looked at the run folder before rank 0 writes to it
    logger = open_run_logger(run_dir / "train.log" if context.is_main else None, context.is_main)
    trainer = None
    try:
        with StopRequest() as stop:
            trainer = Trainer(stage, cfg, context, run_dir, logger, stop)
            return trainer.fit()
    finally:
        if trainer is not None:
            trainer.close()
        close_run_logger(logger)


class Trainer:
    """One run of one stage, built (or restored with ``--resume``) in ``__init__``. ``fit``
    trains it to its end; ``train_step`` is one step; ``timed_steps`` steps it endlessly for
    ``scripts/benchmark.py``."""

    def __init__(self, stage: Stage, cfg: argparse.Namespace, context: DistributedContext,
                 run_dir: Path, logger: logging.Logger, stop: Optional["StopRequest"] = None,
                 show_progress: bool = True):
        self.stage, self.cfg, self.context, self.device = stage, cfg, context, context.device
        self.run_dir, self.logger, self.stop = run_dir, logger, stop or StopRequest()
        self.latest_path = run_dir / "latest.pth"
        self.config_dict = config_to_dict(cfg)
        self.pending = None   # (payload, copies): a save waiting for the next step's finite loss
        self.last_terms: dict[str, float] = {}
        self.writer, self.grid_written = None, False
        set_tf32(cfg.tf32)
        seed_everything(cfg.seed)   # initial weights must not depend on the rank
        self._build_data()          # first: a bad dataset stops the run before anything is written
        self._start_run_folder()
        self._build_models()
        checkpoint = self._restore() if cfg.resume else None
        self._build_optimisation(checkpoint)
        self._build_validation(checkpoint)
        self._open_writer(show_progress)
        self._start_interval()
        self.stopping = self.step >= self.stop_at or self.stop.requested

    # ------------------------------------------------------------------ the loop

    def fit(self) -> RunResult:
        """Train from the current position until the last epoch, ``--max_steps`` or a stop
        request (SIGINT/SIGTERM), saving at every epoch's end and where it stops."""
        while self.epoch < self.total_epochs and not self.stopping:
            for batch in self._start_epoch():
                if self.train_step(batch):
                    break
            self._log_interval()           # the steps since the last log line
            self._end_epoch()
        return self._finish()

    def train_step(self, batch) -> bool:
        """One optimiser step on ``batch`` and what follows it, in the order it happens.
        Returns True when the epoch ends here or the run stops (``fit`` then saves)."""
        cfg = self.cfg
        seed_everything(derived_seed(cfg.seed + self.context.rank, self.step))
        want_images = self._grid_due()
        result = self._stage_losses(batch, want_images)
        if self._all_ranks_finite(result.total):
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
        self.stopping = self._agree_to_stop() or self.step >= self.stop_at
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

    # ------------------------------------------------------------------ a step's phases

    def _start_epoch(self) -> DataLoader:
        """The epoch's optimiser (a fresh Adam when its parameter groups change, as in stage
        3's second phase) and learning rates, and a loader of the rest of its data order."""
        cfg, stage, epoch = self.cfg, self.stage, self.epoch
        groups = stage.param_groups(self.plain, cfg, epoch)
        check_groups(groups, self.trained_ids, self.trained, stage, epoch)
        if self.optimizer is None or group_signature(groups) != self.signature:
            self.optimizer = make_optimizer(groups, cfg.beta1)
            self.signature, self.optimizer_epoch = group_signature(groups), epoch
            self.optimizer_builds.append((epoch, tuple(g["name"] for g in groups)))
            if self.context.is_main:
                self.logger.info(f"epoch {epoch}: new Adam over groups " + ", ".join(
                    f"{g['name']} ({sum(p.numel() for p in g['params']):,} parameters)"
                    for g in groups))
        self.rates = set_learning_rates(self.optimizer, groups,
                                        lr_factor(epoch, cfg.niter, cfg.niter_decay))
        self.optimised = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.sampler.set_epoch(epoch)
        self.sampler.start_index = self.step_in_epoch * cfg.batch_size
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        for name in self.trained:
            self.plain[name].train()
        seed = derived_seed(cfg.seed + self.context.rank, epoch, 1)
        return DataLoader(self.dataset, batch_size=cfg.batch_size, sampler=self.sampler,
                          num_workers=cfg.workers, pin_memory=self.device.type == "cuda",
                          drop_last=True, worker_init_fn=seed_worker,
                          generator=torch.Generator().manual_seed(seed))

    def _grid_due(self) -> bool:
        """Rank 0 writes an image grid every ``--sample_every`` steps, and at the run's last
        step when it has written none, so that every run shows its images."""
        every = self.cfg.sample_every
        last = self.step + 1 == self.stop_at and not self.grid_written
        return self.context.is_main and every > 0 and ((self.step + 1) % every == 0 or last)

    def _stage_losses(self, batch, want_images: bool) -> StepResult:
        """The stage's losses on ``batch`` (moved to the device), under autocast with
        ``--precision bf16|fp16``."""
        context = StepContext(cfg=self.cfg, epoch=self.epoch, step=self.step,
                              want_images=want_images)
        dtype = AUTOCAST_DTYPES[self.cfg.precision]
        with torch.autocast(self.device.type, dtype=dtype) if dtype is not None else nullcontext():
            result = self.stage.losses(self.wrapped, to_device(batch, self.device), context)
        if not isinstance(result, StepResult):
            raise TypeError(f"{type(self.stage).__name__}.losses must return a StepResult, got "
                            f"{type(result).__name__}")
        return result

    def _all_ranks_finite(self, total: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank (one all-reduce: a rank that skipped
        ``backward`` alone would leave the others waiting in DDP's)."""
        finite = torch.isfinite(total.detach()).to(torch.float32).reshape(1)
        if self.context.distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        return bool(finite.item())

    def _write_save_proven_finite(self) -> None:
        """Write the state ``_save`` took, now that a finite loss came from it."""
        if self.pending is None:
            return
        payload, copies = self.pending
        self.pending = None
        save_atomic(payload, self.latest_path)
        for copy in copies:
            _copy_atomic(self.latest_path, self.run_dir / copy)
        self.logger.info(f"saved {self.latest_path.name}{''.join(', ' + c for c in copies)} at "
                         f"step {payload['step']}")

    def _optimiser_step(self) -> None:
        """Clip (``--grad_clip``), step, and clear the gradients. Non-finite gradients stop the
        run, except under fp16, where the scaler skips the step and lowers its scale."""
        fp16 = self.scaler.is_enabled()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.optimised, self.cfg.grad_clip)
        elif not fp16:
            norm = torch.nn.utils.get_total_norm(
                [p.grad for p in self.optimised if p.grad is not None])
        if not fp16 and not torch.isfinite(norm):
            raise TrainingDiverged(
                f"step {self.step} (epoch {self.epoch}): the gradients are not finite (norm "
                f"{float(norm)}) though the loss is; nothing was saved after the last good "
                f"checkpoint {self.latest_path}. Lower --lr, or set --grad_clip, and --resume")
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if fp16:
            self._count_fp16_skip(self.scaler.get_scale() < scale, "the gradients overflowed")
        for name in self.trained:
            self.plain[name].zero_grad(set_to_none=True)

    def _stop_or_skip_non_finite_loss(self, result: StepResult) -> None:
        """Stop at once, or under fp16 skip the step (no ``backward``: the sampling's CPU
        backward can crash on a NaN grid) and count it."""
        bad = {name: float(value) for name, value in result.terms.items()
               if not math.isfinite(float(value))}
        where = (f"step {self.step} (epoch {self.epoch}): loss {float(result.total.detach())}; "
                 f"terms not finite: {format_terms(bad) if bad else '(on another process)'}")
        if not self.scaler.is_enabled():
            raise TrainingDiverged(f"{where}. Nothing was saved after the last good checkpoint "
                                   f"{self.latest_path}; lower --lr (or --precision fp32) and "
                                   f"--resume")
        self.logger.warning(f"{where}; fp16: the step is skipped")
        self._count_fp16_skip(True, "the loss was not finite")

    def _count_fp16_skip(self, skipped: bool, why: str) -> None:
        """Count a step fp16 skipped; more than ``--max_skipped_steps`` in a row stop the run."""
        self.skipped_in_a_row = self.skipped_in_a_row + 1 if skipped else 0
        self.skipped_steps += int(skipped)
        limit = self.cfg.max_skipped_steps
        if limit and self.skipped_in_a_row > limit:
            raise TrainingDiverged(
                f"step {self.step} (epoch {self.epoch}): fp16 skipped {self.skipped_in_a_row} "
                f"steps in a row (last: {why}; loss scale {self.scaler.get_scale():.3g}); the run "
                f"has diverged or overflows float16. Nothing was saved after the last good "
                f"checkpoint {self.latest_path}: --resume with a lower --lr or --precision bf16")

    def _record(self, result: StepResult) -> None:
        """Add the step's terms and scalars to the interval's sums."""
        self.interval_steps += 1
        for name, value in {"total": result.total, **result.terms, **result.scalars}.items():
            value = value.detach().float().reshape(())
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def _write_grid(self, images) -> None:
        grid = image_grid(images, GRID_SAMPLES)
        self.writer.add_image("samples", grid, self.step)
        self.writer.add_text("samples/columns", ", ".join(images), self.step)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        torchvision.utils.save_image(grid, self.run_dir / "samples" / f"step_{self.step:07d}.png")
        self.grid_written = True

    def _start_interval(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.interval_start, self.interval_steps = time.perf_counter(), 0

    def _log_interval(self) -> None:
        """The interval's terms, averaged over its steps and the ranks, to TensorBoard, the log
        and the progress bar; nothing when no step was taken since the last call."""
        if not self.sums:
            return
        keys = ["total"] + sorted(k for k in self.sums if k != "total")
        averaged = mean_over_ranks({k: self.sums[k] / self.counts[k] for k in keys}, self.context)
        seconds = max(time.perf_counter() - self.interval_start, 1e-9)
        samples_per_s = self.interval_steps * self.cfg.batch_size * self.context.world_size / seconds
        self.last_terms = averaged
        self._start_interval()
        if not self.context.is_main:
            return
        step, memory = self.step, peak_memory_mib(self.device)
        scalars = {name if "/" in name else f"loss/{name}": value for name, value in averaged.items()}
        scalars.update({f"lr/{name}": value for name, value in self.rates.items()})
        scalars.update({"speed/samples_per_s": samples_per_s, "speed/peak_memory_mib": memory,
                        "progress/epoch": self.epoch + self.step_in_epoch / self.steps_per_epoch})
        if self.scaler.is_enabled():
            scalars.update({"amp/loss_scale": self.scaler.get_scale(),
                            "amp/skipped_steps": self.skipped_steps})
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.progress.set_postfix(loss=f"{averaged['total']:.4g}")
        # The log line holds the losses; the other scalars (flow lengths...) are in
        # TensorBoard, except the distillation gate, which says how distillation weighs.
        shown = {name: value for name, value in averaged.items()
                 if "/" not in name or name == "distill/teacher_better_fraction"}
        self.logger.info(f"epoch {self.epoch} step {step}/{self.stop_at}: {format_terms(shown)} "
                         f"| lr {format_terms(self.rates)} | {samples_per_s:.3g} samples/s "
                         f"| peak {memory:.0f} MiB")

    def _agree_to_stop(self) -> bool:
        """Whether any rank was asked to stop (SIGINT/SIGTERM), the same answer on every rank,
        so that all stop after the same step."""
        if not self.context.distributed:
            return self.stop.requested
        requested = torch.tensor([float(self.stop.requested)], device=self.device)
        dist.all_reduce(requested, op=dist.ReduceOp.MAX)
        return bool(requested.item())

    def _validation_due(self, epoch_end: bool) -> bool:
        cfg = self.cfg
        return self.validator is not None and (
            (cfg.val_unit == "step" and self.step % cfg.val_every == 0)
            or (cfg.val_unit == "epoch" and epoch_end and (self.epoch + 1) % cfg.val_every == 0)
            or self.step >= self.stop_at)

    def _validate(self) -> None:
        """Score the models on --val_root (every process its share); a new best is marked for
        the next save (``best.pth``)."""
        from utils.training.validation import is_better
        for name in self.trained:
            self.plain[name].eval()
        try:
            scores = self.validator.run(self.plain, self.device)
        finally:
            for name in self.trained:
                self.plain[name].train()
        best, value = self.best, scores[self.best.metric]
        improved = is_better(best.metric, value, best.value)
        if improved:
            best.value, best.step, self.best_pending = value, self.step, True
        self.last_validation = {"step": self.step, "epoch": self.epoch, "scores": scores}
        if not self.context.is_main:
            return
        metrics = self.validator.metrics()
        for name in (*metrics, "seconds"):
            self.writer.add_scalar(f"val/{name}", scores[name], self.step)
        random = self.validator.random_weights
        self.logger.info(
            f"validation at step {self.step} ({scores['pairs']} pairs, {scores['seconds']:.1f} "
            f"s): " + " ".join(f"{name} {scores[name]:.4g}" for name in metrics)
            + f" | best {best.metric} {best.value:.4g} at step {best.step}"
            + (" (new best)" if improved else "")
            + (f" [RANDOM {', '.join(random)} weights: not comparable to published scores]"
               if random else ""))

    def _save(self, copies: Sequence[str] = ()) -> None:
        """Take the current state for ``latest.pth`` (with ``copies`` of it, and ``best.pth``
        when a new best waits), on rank 0. It is written by ``_write_save_proven_finite`` or at
        the end of the run; a state with non-finite weights is never taken. The state is
        copied to the CPU: the next step changes weights, Adam's state and BatchNorm's
        statistics in place."""
        copies = list(copies) + (["best.pth"] if self.best_pending else [])
        self.best_pending = False
        if not self.context.is_main:
            return
        trained = {name: unwrap(self.plain[name]) for name in self.trained}
        payload, non_finite = checkpoint_payload(
            self.stage.name, trained, self.config_dict,
            optimizer=self.optimizer.state_dict(), optimizer_epoch=self.optimizer_epoch,
            scaler=self.scaler.state_dict(), epoch=self.epoch, step=self.step,
            step_in_epoch=self.step_in_epoch, steps_per_epoch=self.steps_per_epoch,
            world_size=self.context.world_size, batch_size=self.cfg.batch_size,
            best=self.best.as_dict() if self.best else None, validation=self.last_validation,
            skipped_steps=self.skipped_steps, skipped_in_a_row=self.skipped_in_a_row)
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
        if self.step_in_epoch == self.steps_per_epoch:
            self.epoch, self.step_in_epoch = self.epoch + 1, 0
            every = self.cfg.keep_epoch_every
            if every and self.epoch % every == 0:
                keep.append(f"epoch_{self.epoch:03d}.pth")
        self._save(keep)

    def _finish(self) -> RunResult:
        self._write_save_proven_finite()       # the run's last state: nothing follows it
        finished = self.step >= self.stop_at
        if finished and self.context.is_main:
            final = self.run_dir / "final.pth"
            if self.latest_path.is_file():
                _copy_atomic(self.latest_path, final)
            self.logger.info(f"finished at epoch {self.epoch}, step {self.step}: {final}")
        elif self.context.is_main:
            self.logger.info(f"stopped at epoch {self.epoch}, step {self.step}; continue with "
                             f"--resume")
        self.progress.close()
        if self.writer is not None:
            self.writer.flush()
        terms = self.last_terms
        return RunResult(step=self.step, epoch=self.epoch, validation=self.last_validation,
                         best=self.best.as_dict() if self.best else None,
                         terms={k: v for k, v in terms.items() if "/" not in k},
                         scalars={k: v for k, v in terms.items() if "/" in k},
                         learning_rates=self.rates, run_dir=self.run_dir,
                         models={k: unwrap(v) for k, v in self.plain.items()}, finished=finished,
                         optimizer_builds=self.optimizer_builds, config=self.cfg,
                         rank=self.context.rank, skipped_steps=self.skipped_steps)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if getattr(self, "progress", None) is not None:
            self.progress.close()

    # ------------------------------------------------------------------ building

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
        total_steps = self.steps_per_epoch * self.total_epochs
        self.stop_at = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps

    def _start_run_folder(self) -> None:
        if not self.context.is_main:
            return
        cfg, log = self.cfg, self.logger.info
        write_config(cfg, self.run_dir / "config.yaml")
        for stale in remove_stale_temporaries(self.run_dir, CHECKPOINT_NAMES):
            log(f"removed {stale.name}, left by a save that was interrupted")
        log(f"stage {self.stage.name}: {'resuming' if cfg.resume else 'starting'} run "
            f"{self.run_dir} on {self.device}, {self.context.world_size} process(es)")
        log("configuration:\n" + "\n".join(f"  {k}: {v}" for k, v in self.config_dict.items()))
        for line in self.stage.describe_dataset(self.dataset, cfg):
            log(line)

    def _build_models(self) -> None:
        models = self.stage.build_models(self.cfg, self.device)
        self.trained = tuple(self.stage.trained_models(models))
        missing = [name for name in self.trained if name not in models]
        if missing:
            raise ValueError(f"{type(self.stage).__name__}.build_models returned "
                             f"{sorted(models)}; it lacks the trained model(s) {missing}")
        self.models = {name: model.to(self.device) for name, model in models.items()}
        self.epoch, self.step, self.step_in_epoch = 0, 0, 0

    def _restore(self) -> dict:
        """Read ``latest.pth`` for ``--resume``: the trained weights and the position."""
        checkpoint = _read_resume_checkpoint(self.latest_path, self.stage, self.trained, self.cfg,
                                             self.context, self.steps_per_epoch)
        for name in self.trained:
            state = state_dict_from(checkpoint, name, self.latest_path, "--resume")
            load_state(self.models[name], state, f"--resume: {self.latest_path}")
        self.epoch, self.step = checkpoint["epoch"], checkpoint["step"]
        self.step_in_epoch = checkpoint["step_in_epoch"]
        if self.context.is_main:
            changed = config_differences(checkpoint["config"], self.config_dict)
            for key, (old, new) in changed.items():
                self.logger.warning(f"--resume: option {key} was {old!r}, now {new!r}")
            self.logger.info(f"resumed from {self.latest_path}: epoch {self.epoch}, step "
                             f"{self.step} ({self.step_in_epoch} into the epoch)")
        return checkpoint

    def _build_optimisation(self, checkpoint: Optional[dict]) -> None:
        """DDP wrappers, the optimiser (restored with ``--resume``) and the gradient scaler."""
        cfg, stage, saved = self.cfg, self.stage, checkpoint or {}
        self.plain, self.wrapped = _wrap_for_training(self.models, self.trained, stage,
                                                      self.context)
        self.trained_ids = {id(p) for name in self.trained for p in self.plain[name].parameters()}
        self.optimizer, self.signature, self.optimizer_epoch = None, None, None
        self.optimizer_builds: list[tuple[int, tuple[str, ...]]] = []
        self.rates: dict[str, float] = {}
        if saved.get("optimizer") is not None:
            epoch = self.optimizer_epoch = saved["optimizer_epoch"]
            groups = stage.param_groups(self.plain, cfg, epoch)
            check_groups(groups, self.trained_ids, self.trained, stage, epoch)
            self.optimizer = make_optimizer(groups, cfg.beta1)
            self.signature = group_signature(groups)
            try:
                self.optimizer.load_state_dict(saved["optimizer"])
            except (ValueError, KeyError) as error:
                raise CheckpointError(f"--resume: the optimiser state in {self.latest_path} does "
                                      f"not fit the parameter groups of epoch {epoch}: "
                                      f"{error}") from error
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")
        if saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.skipped_in_a_row = saved.get("skipped_in_a_row", 0)
        self.skipped_steps = saved.get("skipped_steps", 0)

    def _build_validation(self, checkpoint: Optional[dict]) -> None:
        cfg, saved = self.cfg, checkpoint or {}
        self.validator, self.best, self.last_validation = None, None, None
        self.best_pending = False   # best.pth is written with the next save
        if not cfg.val_root:
            return
        from utils.training.validation import BestScore, Validator
        self.validator = Validator(self.stage, cfg, self.context)
        metrics = self.validator.metrics()
        metric = cfg.best_metric
        if metric == "auto":
            metric = "fid" if "fid" in metrics else "ssim"
        if metric not in metrics:
            raise ConfigError(f"--best_metric {metric}: stage {self.stage.name} validated on "
                              f"{cfg.val_pairs} pairs gives {', '.join(metrics)}")
        self.best = BestScore.from_dict(saved.get("best"), metric)
        self.last_validation = saved.get("validation")
        if self.context.is_main:
            so_far = (f" (so far {self.best.value:.4g} at step {self.best.step})"
                      if self.best.value is not None else "")
            self.logger.info(f"validation on {cfg.val_root}: {', '.join(metrics)} every "
                             f"{cfg.val_every} {cfg.val_unit}(s) and at the end; best.pth keeps "
                             f"the best {metric}{so_far}")

    def _open_writer(self, show_progress: bool) -> None:
        if self.context.is_main:
            from torch.utils.tensorboard import SummaryWriter
            # purge_step drops events a crashed invocation logged after its last checkpoint;
            # the events of the checkpoint's own step were all logged before it was saved.
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                        purge_step=self.step + 1 if self.step else None)
        self.progress = tqdm(total=self.stop_at, initial=min(self.step, self.stop_at),
                             desc=self.stage.name, unit="step", dynamic_ncols=True,
                             disable=None if self.context.is_main and show_progress else True)


# ----------------------------------------------------------------------------------------------
# Pieces


class StopRequest:
    """SIGINT/SIGTERM ask the loop to save and stop after the current step (a second SIGINT
    interrupts at once). The handlers are installed by ``with``, in the main thread only."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def peak_memory_mib(device: torch.device) -> float:
    """The most memory this process has held: CUDA's allocator peak on a GPU, the peak resident
    set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KiB on Linux


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 in CUDA convolutions and matrix products, process-wide.

    Through the ``allow_tf32`` switches: PyTorch's newer per-backend ``fp32_precision``
    settings, once used, make those switches unreadable (an error "mix of the legacy and new
    APIs"), which torch.compile's convolution code reads."""
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


def _cpu_copy(value):
    """``value`` (nested dicts and lists of tensors and plain values) with every tensor copied
    to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(item) for item in value)
    return value


def _copy_atomic(source: Path, target: Path) -> None:
    write_atomic(target, lambda temporary: shutil.copyfile(source, temporary))


def _read_resume_checkpoint(path: Path, stage: Stage, trained: Sequence[str],
                            cfg: argparse.Namespace, context: DistributedContext,
                            steps_per_epoch: int) -> dict:
    """Read ``latest.pth`` for ``--resume`` and check it can continue this run exactly."""
    checkpoint = read_checkpoint(path, "--resume")
    if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("stage") != stage.name:
        raise CheckpointError(f"--resume: {path} is a '{checkpoint.get('stage')}' checkpoint "
                              f"(format {checkpoint.get('format')!r}); this is stage "
                              f"'{stage.name}'")
    missing = [name for name in trained if name not in checkpoint.get("model", {})]
    if missing:
        raise CheckpointError(f"--resume: {path} lacks the trained model(s) {missing}")
    if checkpoint["step_in_epoch"] and (checkpoint["world_size"] != context.world_size
                                        or checkpoint["batch_size"] != cfg.batch_size):
        raise ConfigError(
            f"--resume: {path} stopped mid-epoch with {checkpoint['world_size']} process(es) x "
            f"batch {checkpoint['batch_size']}; its data order can only be continued with the "
            f"same (now {context.world_size} x {cfg.batch_size})")
    if checkpoint["steps_per_epoch"] != steps_per_epoch:
        raise ConfigError(f"--resume: {path} had {checkpoint['steps_per_epoch']} steps per "
                          f"epoch, this configuration has {steps_per_epoch} (the dataset size, "
                          f"batch size or process count changed)")
    return checkpoint


def _wrap_for_training(models: dict, trained: Sequence[str], stage: Stage,
                       context: DistributedContext) -> tuple[dict, dict]:
    """(plain, wrapped) model dicts. When distributed, each trained model is wrapped in DDP,
    after turning its BatchNorms into SyncBatchNorm on CUDA (SyncBatchNorm has no CPU kernel);
    frozen models run as they are on every rank."""
    plain, wrapped = dict(models), dict(models)
    if not context.distributed:
        return plain, wrapped
    device = context.device
    for name in trained:
        if device.type == "cuda":
            plain[name] = nn.SyncBatchNorm.convert_sync_batchnorm(plain[name])
        wrapped[name] = nn.parallel.DistributedDataParallel(
            plain[name], device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=stage.find_unused_parameters)
    return plain, wrapped
