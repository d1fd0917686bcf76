"""What a training stage is, as the engine sees it: ``Stage`` (subclassed by each
``train_*.py``), the ``StepContext`` it receives with every batch, the ``StepResult`` it
returns, and the ``RunResult`` a whole run returns. A stage script says what its stage is
and nothing else: ``train_pb_warp.py`` is the shortest.
"""

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from options.config import ConfigError


@dataclass(frozen=True)
class StepContext:
    """Everything a stage's ``losses`` may depend on besides the models and the batch:
    ``cfg`` (the resolved options), ``epoch`` (0-based), ``step`` (optimiser steps done before
    this one) and ``want_images`` (fill ``StepResult.images`` this time)."""

    cfg: argparse.Namespace
    epoch: int
    step: int
    want_images: bool = False


@dataclass
class StepResult:
    """What a stage returns for one batch.

    ``total``: the scalar loss to minimise (graph attached).
    ``terms``: named scalar tensors for logging, detached (e.g. ``{'warp_l1': ..., 'gen_vgg':
    ...}``); the engine averages them over the logging interval and over ranks, and stops the
    run when one is not finite.
    ``images``: named (B, C, H, W) tensors for the image grid, in column order: images in
    [-1, 1] (C = 3) or masks in [0, 1] (C = 1); filled only when ``context.want_images``. The
    grid's header names each column after its key.
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


@dataclass
class RunResult:
    """What a training run returns (``utils.training.engine.run``). ``terms``/``scalars``: the
    last logged loss terms (with 'total') and other scalars, averaged over ranks;
    ``validation``: the last validation's step and scores; ``best``: the best score, its metric
    and step; ``learning_rates``: by group, last epoch; ``models``: all models, unwrapped;
    ``finished``: the run reached its last epoch or ``--max_steps``; ``optimizer_builds``:
    ``(epoch, group names)`` of every Adam created; ``skipped_steps``: fp16 steps the gradient
    scaler skipped; ``stopped_by``: the signal that stopped this process's run, after saving."""
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
    stopped_by: Optional[int] = None


class Stage:
    """One training stage. Subclass it, set the class attributes, implement ``build_models``
    and ``losses``, and call ``main(stage)`` from a script (``run(stage, argv)`` from code).

    Class attributes:
        name: 'pb_warp' | 'pb_gen' | 'pf_warp' | 'pf_gen'; stored in checkpoints, the default
            run name, and checked on ``--resume``.
        trained: names (keys of ``build_models``' dict) of the models this stage trains and
            saves, e.g. ``('warp',)`` or ``('warp', 'gen')``. Only these are wrapped in DDP,
            put in train mode and written to checkpoints (with their architectures).
        defaults: this stage's paper values overriding the common defaults (any flag, common or
            added by ``add_arguments``), e.g. ``{'lr': 5e-5, 'niter': 50, 'niter_decay': 50}``.
        description: the ``--help`` text of the script.
        find_unused_parameters: passed to DDP; set True only if a trained model has parameters
            that some steps do not use.
        validation_kind: what ``--val_root`` scores (``utils/training/validation.py``): 'warp'
            (the warped garment against the worn one) or 'tryon' (the try-on against the
            photo); None: the stage cannot be validated.
        validation_needs_parser: validation pairs must have parsing and keypoints.
        builds: the kinds of module ('warp', 'gen') this stage builds from its flags: the
            script takes the architecture flags of these (``options/config.py``) and no other.
        continues: {kind: flag} of a module the stage takes from an earlier stage's checkpoint
            named by that flag, with the architecture the file records; that kind's
            architecture flags are refused, naming the flag.
        start_flags: flags that only choose where a new run's weights start (``gen_init``):
            a ``--resume`` restores the weights, so it refuses another value of them.
    """
    name: str = "stage"
    trained: tuple[str, ...] = ()
    builds: tuple[str, ...] = ("warp", "gen")
    continues: dict[str, str] = {}
    start_flags: tuple[str, ...] = ()
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
        from data.datasets import DataOptions, make_train_dataset
        options = DataOptions.from_config(cfg)
        return make_train_dataset(options, cfg.dataroot, cfg.height, cfg.width, cfg.seed,
                                  cfg.max_dataset_size)

    def describe_dataset(self, dataset: Dataset, cfg: argparse.Namespace) -> list[str]:
        """Lines for the log about the dataset ``make_dataset`` returned."""
        formats = getattr(dataset, "formats", None)
        if formats is None:
            return [f"training data: {len(dataset)} samples"]
        from data.datasets import DataOptions, unused_iuv_channel
        options = DataOptions.from_config(cfg)
        first = (" (the first: --max_dataset_size)" if len(dataset) == cfg.max_dataset_size else
                 f" (all: --max_dataset_size {cfg.max_dataset_size} is more)"
                 if cfg.max_dataset_size else "")
        lines = [f"training data: {len(dataset)} samples{first} of {cfg.dataroot} "
                 f"({options.dataset} layout, {', '.join(options.categories)}; labels "
                 f"{formats.label_scheme}, keypoints {formats.pose_format})"]
        unused = unused_iuv_channel(options, dataset.samples)
        if unused:
            lines.append(unused)
        others = [s for s in dataset.samples if s.person.id != s.garment.id]
        if others:
            lines.append(
                f"{len(others)} of {len(dataset.samples)} training pairs list a garment of "
                f"another id than the person's (the first: "
                f"{Path(others[0].person.image).name} "
                f"{Path(others[0].garment.image).name}): each listed garment is "
                f"taken for the one its person wears, the target of the warp; a list that "
                f"dresses persons in other garments trains nothing useful")
        if not dataset.has_densepose:
            lines.append("no DensePose part indices for some or all samples: the parser-based "
                         "inputs use the replacement of data/inputs.py (DensePose channels "
                         "empty, hands near the wrist keypoints, skin from the parsing)")
        return lines

    def build_models(self, cfg: argparse.Namespace, device: torch.device) -> dict[str, nn.Module]:
        """All modules of the stage by name, on ``device``: the trained ones, frozen teachers
        (with the weights of earlier stages already loaded; a missing file is an error) and
        loss networks (the perceptual loss's VGG). Frozen modules must be in ``eval()`` with
        ``requires_grad_(False)``. Called after seeding torch with ``--seed`` (the same on
        every rank); ``--resume`` then overwrites the trained ones."""
        raise NotImplementedError

    def trained_models(self, models: Mapping[str, nn.Module]) -> tuple[str, ...]:
        """The names of the models this run trains and saves, given those ``build_models``
        built: ``trained`` by default (stages 3 and 4 add a distillation adapter when the
        student's features are narrower than the teacher's)."""
        return self.trained

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
               context: StepContext) -> StepResult:
        """Forward one batch and return its losses. ``models``: the trained models wrapped in
        DDP when distributed (call them, so gradients are synchronised), the others as built.
        ``batch``: the collated dataset items, tensors on the device. Runs under autocast with
        ``--precision bf16|fp16``."""
        raise NotImplementedError
