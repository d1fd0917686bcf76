"""The one training loop behind the four stage scripts.

A stage script says what its stage is, by subclassing ``Stage``: which models exist and which
of them are trained, which parameters the optimiser updates in a given epoch, and how a batch
becomes losses. Everything else happens here, once: options, device, ``torchrun``/DDP, mixed
precision, seeding, the data loader, Adam and its learning-rate schedule, checkpoints and
resuming, TensorBoard, the progress bar and the log file::

    class PbWarpStage(Stage):
        name = "pb_warp"
        trained = ("warp",)
        defaults = {"lr": 5e-5, "niter": 50, "niter_decay": 50}
        def build_models(self, cfg, device): ...
        def losses(self, models, batch, cfg, step, want_images=False): ...

    if __name__ == "__main__":
        main(PbWarpStage())

Run folder ``CHECKPOINTS_DIR/NAME/``: ``config.yaml`` (the resolved options), ``train.log``,
``tensorboard/`` (event files), ``samples/step_NNNNNNN.png`` (image grids), ``latest.pth``
(every ``--save_every`` steps and at each epoch end), ``epoch_NNN.pth`` (after every
``--save_epoch_freq``-th epoch; NNN = epochs completed), ``final.pth`` (when the run ends
at the last epoch or at ``--max_steps``) and, with ``--val_root``, ``best.pth``: a full copy
of ``latest.pth`` (optimiser included) taken at the step of the best validation score, which
every checkpoint records under ``best`` beside the last validation's scores.

Resuming (``--resume``) continues the same run exactly: weights, Adam state, gradient scaler,
epoch, step and the position in the epoch's data order. The data order of epoch ``e`` is a
pure function of ``(seed, e)`` (``ResumableSampler``), and every step reseeds ``random``,
NumPy and torch from ``(seed + rank, step)``, so random choices inside a step (dropout, random
garments) do not depend on how the run was split into invocations. A dataset whose items are
random should likewise derive them from ``(seed, epoch, index)`` (``set_epoch`` is called).
"""

import argparse
import inspect
import logging
import math
import random
import shutil
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from options.config import (ConfigError, config_differences, config_to_dict, parse_config,
                            write_config)
from common.atomic import write_atomic
from utils.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, load_state, read_checkpoint,
                              save_atomic, unwrap)
from utils.distributed import (DistributedContext, barrier, init_distributed, mean_over_ranks,
                               shutdown_distributed)
from utils.logging_utils import (LOGGER_NAME, close_run_logger, format_terms, image_grid,
                                 open_run_logger)

ADAM_BETA2 = 0.999
GRID_SAMPLES = 4


# ----------------------------------------------------------------------------------------------
# The stage protocol

@dataclass
class StepResult:
    """What a stage returns for one batch.

    ``total``: the scalar loss to minimise (graph attached).
    ``terms``: named scalar tensors for logging, detached (e.g. ``{'warp_l1': ..., 'gen_vgg':
    ...}``); the engine averages them over the logging interval and over ranks.
    ``images``: named (B, C, H, W) tensors for the image grid, in column order: images in
    [-1, 1] (C = 3) or masks in [0, 1] (C = 1); only looked at when the engine asked with
    ``want_images=True``. The grid's header names each column after its key.
    ``scalars``: other named scalar tensors to watch, detached, logged under their own name
    (which holds a '/', e.g. ``'distill/teacher_better_fraction'``), averaged like the terms.
    """
    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    images: dict[str, torch.Tensor] = field(default_factory=dict)
    scalars: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def from_terms(cls, terms: Mapping[str, torch.Tensor],
                   images: Optional[Mapping[str, torch.Tensor]] = None,
                   scalars: Optional[Mapping[str, torch.Tensor]] = None) -> "StepResult":
        """``total`` = the sum of ``terms`` (each already weighted); the terms are kept,
        detached, for logging."""
        if not terms:
            raise ValueError("StepResult.from_terms needs at least one loss term")
        total = sum(terms.values())
        return cls(total=total, terms={name: value.detach() for name, value in terms.items()},
                   images=dict(images or {}),
                   scalars={name: value.detach() for name, value in (scalars or {}).items()})


class Stage:
    """One training stage. Subclass it, set the class attributes, implement ``build_models``
    and ``losses``, and call ``run(stage)`` (or ``main(stage)`` from a script).

    Class attributes:
        name: 'pb_warp' | 'pb_gen' | 'pf_warp' | 'pf_gen'; stored in checkpoints, the default
            run name, and checked on ``--resume``.
        trained: names (keys of ``build_models``' dict) of the models this stage trains and
            saves, e.g. ``('warp',)`` or ``('warp', 'gen')``. Only these are wrapped in DDP,
            put in train mode and written to checkpoints.
        defaults: this stage's paper values overriding the common defaults (any flag, common or
            added by ``add_arguments``), e.g. ``{'lr': 5e-5, 'niter': 50, 'niter_decay': 50}``.
        description: the ``--help`` text of the script.
        find_unused_parameters: passed to DDP; set True only if a trained model has parameters
            that some steps do not use.
        validation_kind: what ``--val_root`` scores (``utils/validation.py``): 'warp' (the
            warped garment against the worn one) or 'tryon' (the try-on against the photo);
            None: the stage cannot be validated.
        validation_needs_parser: validation pairs must have parsing and keypoints.
    """
    name: str = "stage"
    trained: tuple[str, ...] = ()
    defaults: dict[str, Any] = {}
    description: Optional[str] = None
    find_unused_parameters: bool = False
    validation_kind: Optional[str] = None
    validation_needs_parser: bool = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this stage's own flags (e.g. ``--pb_warp_checkpoint``, ``--lr_gen``), each with
        a help string. ``parser`` is an argument group of the script's parser."""

    def make_dataset(self, cfg: argparse.Namespace) -> Dataset:
        """The map-style training dataset. Items are dicts of tensors (plus e.g. an 'id'
        string); an optional ``set_epoch(epoch)`` is called before each epoch.
        Default: the training set at ``--dataroot`` in the ``--dataset`` layout."""
        if not cfg.dataroot:
            raise ConfigError("--dataroot is required: the training data (a VITON_traindata "
                              "folder, or the top folder of VITON-HD or DressCode)")
        if not Path(cfg.dataroot).is_dir():
            raise ConfigError(f"--dataroot: not a folder: {cfg.dataroot}")
        # Imported here: only this stage hook needs the data modules.
        from data.datasets import DataOptions, make_train_dataset
        options = DataOptions.from_config(cfg)
        dataset = make_train_dataset(options, cfg.dataroot, cfg.height, cfg.width, cfg.seed)
        logger = logging.getLogger(LOGGER_NAME)
        logger.info(f"training data: {len(dataset)} samples of {cfg.dataroot} ({options.dataset} "
                    f"layout, {', '.join(options.categories)}; labels "
                    f"{dataset.formats.label_scheme}, keypoints {dataset.formats.pose_format})")
        if not dataset.has_densepose:
            logger.info("no DensePose part indices for some or all samples: the parser-based "
                        "inputs use the replacement of data/inputs.py (DensePose channels "
                        "empty, hands near the wrist keypoints, skin from the parsing)")
        return dataset

    def build_models(self, cfg: argparse.Namespace, device: torch.device) -> dict[str, nn.Module]:
        """All models of the stage by name, on ``device``, including frozen teachers, with the
        weights of earlier stages already loaded (a missing file is an error). Frozen models
        must be in ``eval()`` with ``requires_grad_(False)``. Called after seeding torch with
        ``--seed`` (the same on every rank); ``--resume`` then overwrites the trained ones."""
        raise NotImplementedError

    def param_groups(self, models: Mapping[str, nn.Module], cfg: argparse.Namespace,
                     epoch: int) -> list[dict[str, Any]]:
        """The optimiser's parameter groups for ``epoch`` (0-based):
        ``[{'name': 'warp', 'params': [...], 'lr': base_lr}, ...]``. ``models`` are the
        unwrapped modules, so submodules can be picked by attribute. The schedule multiplies
        each ``lr`` by ``lr_factor``. When the groups (names and parameter objects) differ from
        the previous epoch's, the engine starts a fresh Adam. Default: one group per trained
        model, all its parameters, at ``cfg.lr``."""
        return [{"name": name, "params": list(models[name].parameters()), "lr": cfg.lr}
                for name in self.trained]

    def validation_outputs(self, models: Mapping[str, nn.Module], batch: Mapping[str, Any],
                           cfg: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, target), each (B, 3, H, W) in [-1, 1], of a batch of validation pairs
        (``data.datasets.TryOnPairsDataset`` items on the device): what is scored and what it
        is compared with on paired pairs. ``models`` are unwrapped, in eval mode, under
        ``torch.no_grad``."""
        raise NotImplementedError(f"stage {self.name} has no validation")

    def losses(self, models: Mapping[str, nn.Module], batch: Mapping[str, Any],
               cfg: argparse.Namespace, step: int, want_images: bool = False) -> StepResult:
        """Forward one batch and return its losses. ``models``: the trained models wrapped in
        DDP when distributed (call them, so gradients are synchronised; use ``unwrap`` for
        attributes), the others as built. ``batch``: the collated dataset items, tensors on the
        device. ``step``: optimiser steps done before this one. Runs under autocast when
        ``--amp`` is set. ``want_images``: fill ``StepResult.images`` this time (a stage whose
        ``losses`` has no such parameter is called without it, and its images are used only
        on sample steps)."""
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------
# Schedule, data order, seeding

def lr_factor(epoch: int, niter: int, niter_decay: int, schedule: str = "release") -> float:
    """Learning-rate multiplier for 0-based ``epoch``: constant, then linear decay.

    ``release`` (the released code, whose epochs count from 1 and whose rate drops by
    ``lr / niter_decay`` at the end of every epoch ``E > niter``)::

        factor(e) = 1 - max(0, e - niter) / niter_decay

    full rate for epochs 0..niter (niter + 1 of them), the last epoch
    (e = niter + niter_decay - 1) at 1 / niter_decay; niter_decay = 0 keeps the full rate.

    ``zero_based`` (this project's earlier schedule)::

        factor(e) = 1                                      for e < niter
        factor(e) = 1 - (e - niter + 1) / (niter_decay + 1)  for e >= niter
    """
    if schedule == "release":
        if niter_decay <= 0:
            return 1.0
        return max(0.0, 1.0 - max(0, epoch - niter) / niter_decay)
    if schedule == "zero_based":
        if epoch < niter:
            return 1.0
        return max(0.0, 1.0 - (epoch - niter + 1) / (niter_decay + 1))
    raise ValueError(f"unknown schedule {schedule!r}")


def in_first_phase(epoch: int, niter: int, schedule: str = "release") -> bool:
    """Whether 0-based ``epoch`` belongs to "the first niter epochs" of stages 3 and 4.

    The release tests ``epoch < niter`` on its 1-based epoch, so its first phase is
    ``niter - 1`` epochs: ``e + 1 < niter``. ``zero_based``: ``e < niter``."""
    if schedule == "release":
        return epoch + 1 < niter
    if schedule == "zero_based":
        return epoch < niter
    raise ValueError(f"unknown schedule {schedule!r}")


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 in CUDA convolutions and matrix products, process-wide.

    Through the ``allow_tf32`` switches: PyTorch's newer per-backend ``fp32_precision``
    settings, once used, make those switches unreadable (an error "mix of the legacy and new
    APIs"), which torch.compile's convolution code reads."""
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled; its order of epoch ``e`` is a pure function of
    ``(seed, e)``, split across ranks) that can start part-way through the epoch:
    ``start_index`` samples of this rank's share are skipped."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=False)
        self.start_index = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.start_index:])

    def __len__(self) -> int:
        return self.num_samples - self.start_index


def derived_seed(*parts: int) -> int:
    """A 32-bit seed that is a pure function of ``parts`` (non-negative ints), different
    tuples giving unrelated seeds."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; pass that on to random and NumPy.
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: _to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in batch):
        return type(batch)(_to_device(value, device) for value in batch)
    return batch


# ----------------------------------------------------------------------------------------------
# Optimiser

def _check_groups(groups: Sequence[Mapping[str, Any]], trained_parameters: set[int],
                  stage: Stage, epoch: int) -> None:
    where = f"{type(stage).__name__}.param_groups(epoch={epoch})"
    if not groups:
        raise ValueError(f"{where} returned no parameter groups")
    names = [group.get("name") for group in groups]
    if None in names or len(set(names)) != len(names):
        raise ValueError(f"{where}: every group needs a distinct 'name', got {names}")
    for group in groups:
        if "params" not in group or "lr" not in group:
            raise ValueError(f"{where}: group '{group['name']}' needs 'params' and 'lr'")
        params = list(group["params"])
        if not params:
            raise ValueError(f"{where}: group '{group['name']}' has no parameters")
        outside = [p for p in params if id(p) not in trained_parameters]
        if outside:
            raise ValueError(f"{where}: group '{group['name']}' holds {len(outside)} parameters "
                             f"that belong to no model in Stage.trained={stage.trained}; they "
                             f"would never be saved")
        if not all(p.requires_grad for p in params):
            raise ValueError(f"{where}: group '{group['name']}' holds parameters with "
                             f"requires_grad=False")


def _group_signature(groups: Sequence[Mapping[str, Any]]) -> tuple:
    return tuple((group["name"], tuple(id(p) for p in group["params"])) for group in groups)


def make_optimizer(groups: Sequence[Mapping[str, Any]], beta1: float) -> torch.optim.Adam:
    """Adam over ``groups``; each optimiser group keeps its ``name`` and ``base_lr``."""
    return torch.optim.Adam(
        [{"params": list(g["params"]), "lr": g["lr"], "name": g["name"], "base_lr": g["lr"]}
         for g in groups],
        betas=(beta1, ADAM_BETA2))


def _set_learning_rates(optimizer: torch.optim.Optimizer, groups: Sequence[Mapping[str, Any]],
                        factor: float) -> dict[str, float]:
    rates = {}
    for own, group in zip(optimizer.param_groups, groups):
        own["base_lr"] = group["lr"]
        own["lr"] = group["lr"] * factor
        rates[own["name"]] = own["lr"]
    return rates


# ----------------------------------------------------------------------------------------------
# The run

@dataclass
class RunResult:
    """What ``run`` returns: ``step`` (optimiser steps in total), ``epoch`` (epochs completed),
    ``terms`` (the last logged, rank-averaged loss terms incl. 'total'), ``scalars`` (the
    stage's other scalars, likewise), ``validation`` (the last validation's step and scores)
    and ``best`` (the best score, its metric and step), ``learning_rates`` (by
    group, last epoch), ``run_dir``, ``models`` (all models, unwrapped), ``finished`` (the run
    reached its last epoch or ``--max_steps``) and ``optimizer_builds`` (``(epoch, group
    names)`` for every Adam created, in order), ``config`` (the resolved options) and
    ``rank``."""
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


class _StopRequest:
    """SIGINT/SIGTERM ask the loop to save and stop at the next step boundary (a second
    SIGINT interrupts at once). Installed only in the main thread."""

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


def _copy_atomic(source: Path, target: Path) -> None:
    write_atomic(target, lambda temporary: shutil.copyfile(source, temporary))


def _read_resume_checkpoint(path: Path, stage: Stage, cfg: argparse.Namespace,
                            context: DistributedContext, steps_per_epoch: int) -> dict:
    """Read ``latest.pth`` for ``--resume`` and check it can continue this run exactly."""
    checkpoint = read_checkpoint(path, "--resume")
    if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint.get("stage") != stage.name:
        raise CheckpointError(f"--resume: {path} is a '{checkpoint.get('stage')}' checkpoint "
                              f"(format {checkpoint.get('format')!r}); this is stage "
                              f"'{stage.name}'")
    missing = [name for name in stage.trained if name not in checkpoint.get("model", {})]
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


def _wrap_for_training(models: Mapping[str, nn.Module], stage: Stage,
                       context: DistributedContext) -> tuple[dict, dict]:
    """(plain, wrapped) model dicts. When distributed, each trained model is wrapped in DDP,
    after turning its BatchNorms into SyncBatchNorm on CUDA (SyncBatchNorm has no CPU kernel);
    frozen models run as they are on every rank."""
    plain, wrapped = dict(models), dict(models)
    if not context.distributed:
        return plain, wrapped
    device = context.device
    for name in stage.trained:
        if device.type == "cuda":
            plain[name] = nn.SyncBatchNorm.convert_sync_batchnorm(plain[name])
        wrapped[name] = nn.parallel.DistributedDataParallel(
            plain[name], device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=stage.find_unused_parameters)
    return plain, wrapped


def run(stage: Stage, argv: Optional[Sequence[str]] = None) -> RunResult:
    """Parse options (``argv``; ``None`` = the command line), then train ``stage``.
    Raises ``ConfigError`` / ``CheckpointError`` for bad options or files."""
    cfg = parse_config(argv, stage.add_arguments, stage.defaults, default_name=stage.name,
                       description=stage.description)
    context = init_distributed(cfg.device)
    try:
        return train(stage, cfg, context)
    finally:
        shutdown_distributed(context)


def main(stage: Stage, argv: Optional[Sequence[str]] = None) -> RunResult:
    """``run`` for scripts: configuration, checkpoint, dataset and metric-weight errors end the
    process with their message (exit status 2) instead of a traceback."""
    from data.files import DatasetError
    from utils.metrics import MetricsError, MissingWeightsError, WeightsFileError
    try:
        return run(stage, argv)
    except (ConfigError, CheckpointError, DatasetError, MetricsError, MissingWeightsError,
            WeightsFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2)


def train(stage: Stage, cfg: argparse.Namespace, context: DistributedContext) -> RunResult:
    """The training loop for a parsed configuration in a given process context."""
    run_dir = Path(cfg.checkpoints_dir) / cfg.name
    latest_path = run_dir / "latest.pth"
    if cfg.resume and not latest_path.is_file():
        raise ConfigError(f"--resume: no checkpoint to continue from: {latest_path} does not "
                          f"exist")
    if not cfg.resume and not cfg.overwrite and latest_path.is_file():
        raise ConfigError(f"{run_dir} already holds a run ({latest_path.name}); pass --resume to "
                          f"continue it, --overwrite to start again, or another --name")
    barrier(context)  # every rank has looked at the run folder before rank 0 writes to it

    logger = open_run_logger(run_dir / "train.log" if context.is_main else None, context.is_main)
    writers: list = []  # the TensorBoard writer, once rank 0 has opened it
    try:
        with _StopRequest() as stop:
            return _train(stage, cfg, context, run_dir, logger, stop, writers)
    finally:
        for writer in writers:
            writer.close()
        close_run_logger(logger)


def _train(stage: Stage, cfg: argparse.Namespace, context: DistributedContext, run_dir: Path,
           logger, stop: _StopRequest, writers: list) -> RunResult:
    """Build or restore everything, then loop over epochs and batches (see the module doc)."""
    device = context.device
    latest_path = run_dir / "latest.pth"
    config_dict = config_to_dict(cfg)
    if context.is_main:
        write_config(cfg, run_dir / "config.yaml")
        logger.info(f"stage {stage.name}: {'resuming' if cfg.resume else 'starting'} run "
                    f"{run_dir} on {device}, {context.world_size} process(es)")
        logger.info("configuration:\n" + "\n".join(f"  {k}: {v}" for k, v in config_dict.items()))

    set_tf32(cfg.tf32)
    # Model initialisation must not depend on the rank (DDP also broadcasts rank 0's weights).
    seed_everything(cfg.seed)
    dataset = stage.make_dataset(cfg)
    if len(dataset) == 0:
        raise ConfigError(f"the training dataset of stage {stage.name} is empty")
    sampler = ResumableSampler(dataset, context.world_size, context.rank, cfg.seed)
    steps_per_epoch = sampler.num_samples // cfg.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"{len(dataset)} samples over {context.world_size} process(es) give "
                          f"fewer than --batch_size {cfg.batch_size} per process")
    total_epochs = cfg.niter + cfg.niter_decay
    total_steps = steps_per_epoch * total_epochs
    stop_at = min(total_steps, cfg.max_steps) if cfg.max_steps else total_steps

    models = stage.build_models(cfg, device)
    missing = [name for name in stage.trained if name not in models]
    if missing:
        raise ValueError(f"{type(stage).__name__}.build_models returned {sorted(models)}; "
                         f"it lacks the trained model(s) {missing}")
    models = {name: model.to(device) for name, model in models.items()}

    epoch, step, step_in_epoch = 0, 0, 0
    checkpoint = None
    if cfg.resume:
        checkpoint = _read_resume_checkpoint(latest_path, stage, cfg, context, steps_per_epoch)
        for name in stage.trained:
            load_state(models[name], checkpoint["model"][name], f"--resume: {latest_path}")
        epoch, step = checkpoint["epoch"], checkpoint["step"]
        step_in_epoch = checkpoint["step_in_epoch"]
        if context.is_main:
            for key, (old, new) in config_differences(checkpoint["config"], config_dict).items():
                logger.warning(f"--resume: option {key} was {old!r}, now {new!r}")
            logger.info(f"resumed from {latest_path}: epoch {epoch}, step {step} "
                        f"({step_in_epoch} into the epoch)")

    plain, wrapped = _wrap_for_training(models, stage, context)
    trained_parameters = [p for name in stage.trained for p in plain[name].parameters()]
    trained_ids = {id(p) for p in trained_parameters}

    optimizer, signature, optimizer_epoch = None, None, None
    optimizer_builds: list[tuple[int, tuple[str, ...]]] = []
    if checkpoint is not None and checkpoint.get("optimizer") is not None:
        optimizer_epoch = checkpoint["optimizer_epoch"]
        groups = stage.param_groups(plain, cfg, optimizer_epoch)
        _check_groups(groups, trained_ids, stage, optimizer_epoch)
        optimizer, signature = make_optimizer(groups, cfg.beta1), _group_signature(groups)
        try:
            optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"--resume: the optimiser state in {latest_path} does not fit "
                                  f"the parameter groups of epoch {optimizer_epoch}: "
                                  f"{error}") from error
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    if checkpoint is not None and checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)

    validator, best, last_validation = None, None, None
    if cfg.val_root:
        from utils.validation import BestScore, Validator
        validator = Validator(stage, cfg, context)
        metric = cfg.best_metric
        if metric == "auto":
            metric = "fid" if "fid" in validator.metrics() else "ssim"
        if metric not in validator.metrics():
            raise ConfigError(f"--best_metric {metric}: stage {stage.name} validated on "
                              f"{cfg.val_pairs} pairs gives {', '.join(validator.metrics())}")
        best = BestScore.from_dict(checkpoint.get("best") if checkpoint else None, metric)
        last_validation = checkpoint.get("validation") if checkpoint else None
        if context.is_main:
            logger.info(f"validation on {cfg.val_root}: {', '.join(validator.metrics())} every "
                        f"{cfg.val_every} {cfg.val_unit}(s) and at the end; best.pth keeps the "
                        f"best {metric}" + (f" (so far {best.value:.4g} at step {best.step})"
                                            if best.value is not None else ""))
    del checkpoint
    asks_for_images = "want_images" in inspect.signature(stage.losses).parameters

    writer = None
    if context.is_main:
        from torch.utils.tensorboard import SummaryWriter
        # purge_step drops events a crashed invocation logged after its last checkpoint; the
        # events of the checkpoint's own step were all logged before it was saved.
        writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=step + 1 if step else None)
        writers.append(writer)

    best_pending = False   # best.pth is written with the next save

    def save(epoch_value: int, in_epoch: int, copies: Iterable[str] = ()) -> None:
        nonlocal best_pending
        copies = list(copies) + (["best.pth"] if best_pending else [])
        best_pending = False
        if not context.is_main:
            return
        payload = {
            "format": CHECKPOINT_FORMAT, "stage": stage.name,
            "model": {name: unwrap(plain[name]).state_dict() for name in stage.trained},
            "optimizer": optimizer.state_dict(), "optimizer_epoch": optimizer_epoch,
            "scaler": scaler.state_dict(),
            "epoch": epoch_value, "step": step, "step_in_epoch": in_epoch,
            "steps_per_epoch": steps_per_epoch, "world_size": context.world_size,
            "batch_size": cfg.batch_size, "config": config_dict,
            "best": best.as_dict() if best is not None else None,
            "validation": last_validation,
        }
        save_atomic(payload, latest_path)
        for copy in copies:
            _copy_atomic(latest_path, run_dir / copy)
        logger.info(f"saved {latest_path.name}{''.join(', ' + c for c in copies)} at step {step}")

    progress = tqdm(total=stop_at, initial=min(step, stop_at), desc=stage.name, unit="step",
                    dynamic_ncols=True, disable=None if context.is_main else True)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    last_terms: dict[str, float] = {}
    rates: dict[str, float] = {}
    interval_start, interval_steps = time.perf_counter(), 0
    stopping = step >= stop_at or stop.requested

    def validate() -> bool:
        """Score the models on --val_root (every process its share); True on a new best."""
        nonlocal last_validation, best_pending
        from utils.validation import is_better
        for name in stage.trained:
            plain[name].eval()
        try:
            scores = validator.run(plain, device)
        finally:
            for name in stage.trained:
                plain[name].train()
        value = scores[best.metric]
        improved = is_better(best.metric, value, best.value)
        if improved:
            best.value, best.step = value, step
            best_pending = True
        last_validation = {"step": step, "epoch": epoch, "scores": scores}
        if context.is_main:
            for name in validator.metrics():
                writer.add_scalar(f"val/{name}", scores[name], step)
            writer.add_scalar("val/seconds", scores["seconds"], step)
            random = validator.random_weights
            logger.info(f"validation at step {step} ({scores['pairs']} pairs, "
                        f"{scores['seconds']:.1f} s): "
                        + " ".join(f"{name} {scores[name]:.4g}" for name in validator.metrics())
                        + f" | best {best.metric} {best.value:.4g} at step {best.step}"
                        + (" (new best)" if improved else "")
                        + (f" [RANDOM {', '.join(random)} weights: not comparable to published "
                           f"scores]" if random else ""))
        return improved

    def log_interval() -> None:
        nonlocal sums, counts, interval_start, interval_steps, last_terms, stopping
        keys = ["total"] + sorted(k for k in sums if k != "total")
        local = {k: sums[k] / counts[k] for k in keys}
        local["_stop"] = torch.tensor(float(stop.requested), device=device)
        averaged = mean_over_ranks(local, context)
        stop_vote = averaged.pop("_stop")
        stopping = stopping or stop_vote > 0
        elapsed = time.perf_counter() - interval_start
        samples_per_s = interval_steps * cfg.batch_size * context.world_size / max(elapsed, 1e-9)
        last_terms = averaged
        sums, counts = {}, {}
        interval_start, interval_steps = time.perf_counter(), 0
        if not math.isfinite(averaged["total"]) and cfg.amp != "fp16":
            raise FloatingPointError(f"loss is {averaged['total']} at step {step}; the last "
                                     f"good checkpoint is {latest_path}")
        if context.is_main:
            for name, value in averaged.items():
                writer.add_scalar(name if "/" in name else f"loss/{name}", value, step)
            for name, value in rates.items():
                writer.add_scalar(f"lr/{name}", value, step)
            writer.add_scalar("speed/samples_per_s", samples_per_s, step)
            writer.add_scalar("progress/epoch", epoch + step_in_epoch / steps_per_epoch, step)
            progress.set_postfix(loss=f"{averaged['total']:.4g}")
            # The log line holds the losses; the other scalars (flow lengths...) are in
            # TensorBoard, except the distillation gate, which says how distillation weighs.
            shown = {name: value for name, value in averaged.items()
                     if "/" not in name or name == "distill/teacher_better_fraction"}
            logger.info(f"epoch {epoch} step {step}/{stop_at}: {format_terms(shown)} | lr "
                        f"{format_terms(rates)} | {samples_per_s:.3g} samples/s")

    while epoch < total_epochs and not stopping:
        groups = stage.param_groups(plain, cfg, epoch)
        _check_groups(groups, trained_ids, stage, epoch)
        if optimizer is None or _group_signature(groups) != signature:
            # A new set of trained parameters (stage 3's second phase) gets a fresh Adam.
            optimizer, signature = make_optimizer(groups, cfg.beta1), _group_signature(groups)
            optimizer_epoch = epoch
            optimizer_builds.append((epoch, tuple(g["name"] for g in groups)))
            if context.is_main:
                logger.info(f"epoch {epoch}: new Adam over groups " + ", ".join(
                    f"{g['name']} ({sum(p.numel() for p in g['params']):,} parameters)"
                    for g in groups))
        rates = _set_learning_rates(optimizer, groups,
                                    lr_factor(epoch, cfg.niter, cfg.niter_decay, cfg.schedule))
        optimised = [p for group in optimizer.param_groups for p in group["params"]]

        sampler.set_epoch(epoch)
        sampler.start_index = step_in_epoch * cfg.batch_size
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                            num_workers=cfg.workers, pin_memory=device.type == "cuda",
                            drop_last=True, worker_init_fn=_seed_worker,
                            generator=torch.Generator().manual_seed(
                                derived_seed(cfg.seed + context.rank, epoch, 1)))
        for name in stage.trained:
            plain[name].train()

        for batch in loader:
            seed_everything(derived_seed(cfg.seed + context.rank, step))
            batch = _to_device(batch, device)
            want_images = (context.is_main and cfg.sample_every > 0
                           and (step + 1) % cfg.sample_every == 0)
            autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
                        else nullcontext())
            with autocast:
                if asks_for_images:
                    result = stage.losses(wrapped, batch, cfg, step, want_images=want_images)
                else:
                    result = stage.losses(wrapped, batch, cfg, step)
            if not isinstance(result, StepResult):
                raise TypeError(f"{type(stage).__name__}.losses must return a StepResult, got "
                                f"{type(result).__name__}")
            for name in stage.trained:
                plain[name].zero_grad(set_to_none=True)
            scaler.scale(result.total).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(optimised, cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            step_in_epoch += 1
            interval_steps += 1
            progress.update(1)

            for name, value in {"total": result.total, **result.terms,
                                **result.scalars}.items():
                value = value.detach().float().reshape(())
                sums[name] = sums[name] + value if name in sums else value
                counts[name] = counts.get(name, 0) + 1
            if want_images and result.images:
                grid = image_grid(result.images, GRID_SAMPLES)
                writer.add_image("samples", grid, step)
                writer.add_text("samples/columns", ", ".join(result.images), step)
                (run_dir / "samples").mkdir(exist_ok=True)
                torchvision.utils.save_image(grid, run_dir / "samples" / f"step_{step:07d}.png")

            if step % cfg.log_every == 0:
                log_interval()  # also agrees across ranks on a stop request
            if not context.distributed and stop.requested:
                stopping = True
            if step >= stop_at:
                stopping = True
            epoch_end = step_in_epoch == steps_per_epoch
            if validator is not None and (
                    (cfg.val_unit == "step" and step % cfg.val_every == 0)
                    or (cfg.val_unit == "epoch" and epoch_end
                        and (epoch + 1) % cfg.val_every == 0)
                    or step >= stop_at):
                if validate() and not (stopping or epoch_end):
                    save(epoch, step_in_epoch)    # best.pth: the model of this very step
            if stopping or epoch_end:
                break
            if cfg.save_every and step % cfg.save_every == 0:
                save(epoch, step_in_epoch)

        if sums:
            log_interval()
        if step_in_epoch == steps_per_epoch:
            epoch, step_in_epoch = epoch + 1, 0
            keep = cfg.save_epoch_freq and epoch % cfg.save_epoch_freq == 0
            save(epoch, 0, [f"epoch_{epoch:03d}.pth"] if keep else [])
        else:
            save(epoch, step_in_epoch)
        if step >= stop_at:
            stopping = True

    finished = step >= stop_at
    if finished and context.is_main:
        final = run_dir / "final.pth"
        if latest_path.is_file():
            _copy_atomic(latest_path, final)
        logger.info(f"finished at epoch {epoch}, step {step}: {final}")
    elif context.is_main:
        logger.info(f"stopped at epoch {epoch}, step {step}; continue with --resume")
    progress.close()
    if writer is not None:
        writer.flush()
    return RunResult(step=step, epoch=epoch,
                     validation=last_validation, best=best.as_dict() if best else None,
                     terms={k: v for k, v in last_terms.items() if "/" not in k},
                     learning_rates=rates, run_dir=run_dir,
                     models={k: unwrap(v) for k, v in plain.items()}, finished=finished,
                     optimizer_builds=optimizer_builds, config=cfg, rank=context.rank,
                     scalars={k: v for k, v in last_terms.items() if "/" in k})
