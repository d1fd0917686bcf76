"""Training options: argparse flags with the paper's defaults, optionally set from YAML files.

Precedence, lowest to highest: the defaults below, a stage's ``defaults`` (its paper values),
the keys of each ``--config FILE.yaml`` in order, with ``--resume`` the run's own
``config.yaml``, then flags given on the command line. A YAML file is a flat mapping from flag
name (without ``--``) to value::

    height: 64
    warp_channels: [16, 32, 32, 32, 32]   # or "16,32,32,32,32"

An unknown key or a value of the wrong type is a ``ConfigError`` naming the key and the file.
The architecture flags are those the registered architectures declare (``models/registry.py``),
for the kinds the stage builds; ``parse_config(argv)`` is called by the training engine.
"""

import argparse
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import yaml

from common.atomic import write_bytes_atomic
from common.cli import (
    REFUSED_PREFIX,
    REMOVED_FLAGS,
    HelpFormatter,
    given_on_command_line,
    refuse_flags,
    shown_default,
    unused_flags,
)
from common.config_file import ConfigError, UnknownKey, coerce, load_yaml
from common.precision import AUTOCAST_DTYPES
from common.run_folder import SET_ASIDE, killed_overwrite
from data.datasets import add_data_arguments
from models import MAX_SIDE, SIZE_MULTIPLE
from models.correlation import IMPLEMENTATIONS
from models.registry import (
    KIND_NAMES,
    KINDS,
    ArchitectureError,
    arch_from_flags,
    architecture,
    architecture_flags,
    find,
    types_of,
)

MIN_TRAIN_SIZE = 64   # the smoothness term's 3x3 filters on the coarsest flow, 1/16 of it

# Flags that change between two invocations of the same run without changing the run itself.
PER_INVOCATION_KEYS = ("config", "resume", "overwrite", "max_steps", "workers", "device")


def build_parser(add_stage_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
                 stage_defaults: Optional[Mapping[str, Any]] = None,
                 description: Optional[str] = None, builds: Sequence[str] = KINDS,
                 continues: Optional[Mapping[str, str]] = None) -> argparse.ArgumentParser:
    """The common training flags, the flags of the architectures the stage ``builds`` ('warp',
    'gen'), then the stage's own (``add_stage_arguments(parser)``), with ``stage_defaults``
    replacing the common defaults. ``continues`` maps a kind the stage does not build to the
    flag of the earlier-stage checkpoint whose architecture it continues: that kind's
    architecture flags are refused with a message naming that flag. A key of
    ``stage_defaults`` that is not a flag is a ``ConfigError``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    _add_run_flags(parser.add_argument_group("run"))
    _add_data_flags(parser.add_argument_group("data"))
    _add_optimisation_flags(parser.add_argument_group("optimisation"))
    _add_model_flags(parser, builds, continues or {})
    _add_logging_flags(parser.add_argument_group("checkpoints and logging"))
    _add_validation_flags(parser.add_argument_group("validation"))
    if add_stage_arguments is not None:
        add_stage_arguments(parser.add_argument_group("stage"))
    refuse_flags(parser, REMOVED_FLAGS)
    if stage_defaults:
        unknown = sorted(set(stage_defaults) - flag_names(parser))
        if unknown:
            raise ConfigError(f"stage defaults name unknown flags: {', '.join(unknown)}")
        parser.set_defaults(**stage_defaults)
    return parser


def _add_run_flags(run) -> None:
    run.add_argument("--config", type=str, action="append", metavar="FILE",
                     help="YAML file setting any of these flags by name; several apply in "
                          "order, each over the last; flags given on the command line win")
    run.add_argument("--name", type=str, default=None,
                     help="run name: outputs go to CHECKPOINTS_DIR/NAME; when not given, the "
                          "stage's name")
    run.add_argument("--checkpoints_dir", type=str, default="checkpoints",
                     help="folder holding one sub-folder per run")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in CHECKPOINTS_DIR/NAME from its latest.pth (same "
                          "weights, optimiser, schedule and data order, and its config.yaml: "
                          "only flags given on the command line change it, but --device, "
                          "--workers and --max_steps are each invocation's own, their defaults "
                          "unless given); an error if none")
    run.add_argument("--overwrite", action="store_true",
                     help="start a new run even though CHECKPOINTS_DIR/NAME already holds one "
                          "(its checkpoints, config.yaml, train.log, samples and TensorBoard "
                          "events go first; other files are kept)")
    run.add_argument("--device", type=str, default="auto", choices=["auto", "cpu", "cuda"],
                     help="auto = CUDA when available, else CPU; under torchrun each process "
                          "uses cuda:LOCAL_RANK")
    run.add_argument("--precision", type=str, default="fp32", choices=list(AUTOCAST_DTYPES),
                     help="number format: fp32 throughout, or autocast to bf16, or to fp16 "
                          "with a gradient scaler (the cost volume, flows and sampling stay "
                          "float32)")
    run.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=False,
                     help="let CUDA convolutions and matrix products use TF32 on Ampere and "
                          "newer GPUs (faster, ~1e-3 relative error); off, as the release "
                          "trained in full FP32 (PyTorch by itself uses TF32 for convolutions)")
    run.add_argument("--seed", type=int, default=0,
                     help="base random seed; process RANK uses SEED + RANK")
    run.add_argument("--max_steps", type=int, default=0,
                     help="stop (saving a checkpoint) after this many optimiser steps in total, "
                          "counted from the start of the run; 0 = no limit")
    run.add_argument("--allow_random_weights", action="store_true",
                     help="when pretrained weights are missing (VGG19 for the perceptual loss, "
                          "LPIPS and FID networks for validation), use randomly initialised "
                          "networks instead of stopping: for tests and demos only, their "
                          "losses and scores are not the paper's")


def _add_data_flags(data) -> None:
    data.add_argument("--dataroot", type=str, default=None,
                      help="the training data: a VITON_traindata folder (holding train_img/, "
                           "...), or the top folder of VITON-HD or DressCode (--dataset)")
    add_data_arguments(data)
    data.add_argument("--height", type=int, default=256,
                      help=f"working image height; a multiple of {SIZE_MULTIPLE}")
    data.add_argument("--width", type=int, default=192,
                      help=f"working image width; a multiple of {SIZE_MULTIPLE}")
    data.add_argument("--batch_size", type=int, default=4,
                      help="batch size per process (the paper: 8 GPUs x 4 = 32)")
    data.add_argument("--workers", type=int, default=4,
                      help="data-loading worker processes per training process")
    data.add_argument("--max_dataset_size", type=int, default=0,
                      help="train on the first N samples (pairs-file order, else by name); 0: all")


def _add_optimisation_flags(optim) -> None:
    optim.add_argument("--lr", type=float, default=5e-5,
                       help="Adam learning rate (stages may define per-model rates)")
    optim.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (beta2 is 0.999)")
    optim.add_argument("--niter", type=int, default=50,
                       help="epochs at the full learning rate, counted as the release counts "
                            "them (1-based): the rate stays full for niter + 1 epochs, and "
                            "'the first niter epochs' of stages 3 and 4 last niter - 1 epochs")
    optim.add_argument("--niter_decay", type=int, default=50,
                       help="epochs after those over which the learning rate falls by lr / "
                            "niter_decay per epoch (the last epoch trains at lr / niter_decay)")
    optim.add_argument("--grad_clip", type=float, default=0.0,
                       help="clip the global gradient norm of the trained models to this; 0 = off "
                            "(the paper does not clip)")
    optim.add_argument("--bn_recalibration", type=int, default=0,
                       help="before each validation and the last save, recompute the trained "
                            "models' BatchNorm running statistics as a plain average over this "
                            "many training batches with the current weights; 0 = off (the "
                            "release's momentum average over weights that keep changing)")
    optim.add_argument("--max_skipped_steps", type=int, default=50,
                       help="with --precision fp16, stop the run when the gradient scaler skips "
                            "more than this many steps in a row (non-finite loss or gradients at "
                            "every scale: the run diverged); 0 = never stop")


def _add_model_flags(parser, builds: Sequence[str], continues: Mapping[str, str]) -> None:
    """``--warp_arch``/``--gen_arch`` and the flags the registered architectures declare, one
    group per kind the stage builds (the other kinds' flags are refused, saying why); the cost
    volume and the perceptual loss."""
    for kind in KINDS:
        if kind in builds:
            add_architecture_arguments(parser.add_argument_group(f"{kind} architecture"), kind)
            continue
        what = KIND_NAMES[kind]
        why = (f"this stage continues the {what} of --{continues[kind]}, with the "
               f"architecture that file records" if kind in continues
               else f"this stage builds no {what}")
        refuse_flags(parser, {f"--{name}": why for name in
                              [f"{kind}_arch"] + [f.flag for f, _ in architecture_flags(kind)]})
    model = parser.add_argument_group("model")
    model.add_argument("--cost_volume", default="auto", choices=IMPLEMENTATIONS,
                       help="implementation of the trained warp's cost volume, all computing "
                            "the same values: auto (Triton kernels on CUDA, the band formulation "
                            "elsewhere), loop (the plain 49-shift reference), band, triton, rows; "
                            "a warp without one (FS-VTON's) takes only auto")
    model.add_argument("--vgg_weights", type=str, default=None,
                       help="torchvision VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) for the "
                            "perceptual loss; when not given, the torch hub cache")
    model.add_argument("--vgg_layers", type=int, default=5, choices=range(0, 6),
                       help="VGG19 feature levels in the perceptual loss, relu1_1 up to "
                            "relu5_1 (the paper: 5); fewer is cheaper for small CPU runs, "
                            "0 drops the perceptual loss")


def add_architecture_arguments(group, kind: str) -> None:
    """``--KIND_arch`` and every flag a registered architecture of ``kind`` declares. A flag's
    default is None (not given): the chosen architecture's own default, listed in the help."""
    types = types_of(kind)
    described = [f"{name} ({architecture({'kind': kind, 'type': name}).description})"
                 for name in types]
    group.add_argument(f"--{kind}_arch", default=types[0], choices=types,
                       help=f"the {KIND_NAMES[kind]} to build: " + "; ".join(described))
    for flag, defaults in architecture_flags(kind):
        shown = "; ".join(f"{name}: {shown_default(value)}" for name, value in defaults.items())
        kwargs = {"type": flag.type}
        if flag.type is bool:
            kwargs = {"action": argparse.BooleanOptionalAction}
        group.add_argument(f"--{flag.flag}", default=None, choices=flag.choices,
                           help=f"{flag.help}; taken by {shown} (when not given: the "
                                f"architecture's value)", **kwargs)


def _add_logging_flags(logs) -> None:
    logs.add_argument("--save_every", type=int, default=1000,
                      help="optimiser steps between saves of latest.pth (also saved at each "
                           "epoch end); 0 = only at epoch ends")
    logs.add_argument("--keep_epoch_every", type=int, default=20,
                      help="keep a copy epoch_NNN.pth after every this many epochs; 0 = never")
    logs.add_argument("--log_every", type=int, default=100,
                      help="optimiser steps between loss lines (log file, TensorBoard)")
    logs.add_argument("--sample_every", type=int, default=1000,
                      help="optimiser steps between image grids (and one at the end of the "
                           "run); 0 = never")


def _add_validation_flags(val) -> None:
    val.add_argument("--val_root", type=str, default=None,
                     help="held-out pairs to score while training, in the --dataset layout (a "
                          "test root as test.py reads it: VITON_test, or the VITON-HD / "
                          "DressCode top folder; a VITON training folder works too); when not "
                          "given, no validation")
    val.add_argument("--val_every", type=int, default=1,
                     help="validate every this many --val_unit (and at the end of the run)")
    val.add_argument("--val_unit", type=str, default="epoch", choices=["epoch", "step"],
                     help="what --val_every counts")
    val.add_argument("--val_pairs", type=str, default="auto",
                     choices=["auto", "paired", "unpaired", "both"],
                     help="paired pairs give SSIM and LPIPS, unpaired FID; auto: paired for the "
                          "warp stages (the warped garment against the worn one), both for the "
                          "generator stages (the try-on)")
    val.add_argument("--val_max_pairs", type=int, default=500,
                     help="score at most this many pairs of each kind, spread evenly over the "
                          "pairs list; 0 = all")
    val.add_argument("--val_batch_size", type=int, default=0,
                     help="pairs per forward pass in validation; 0 = --batch_size")
    val.add_argument("--best_metric", type=str, default="auto",
                     choices=["auto", "ssim", "lpips", "fid"],
                     help="the score best.pth keeps the best of (higher SSIM, lower LPIPS and "
                          "FID are better); auto: fid when validated, else ssim")
    val.add_argument("--fid_weights", type=str, default=None,
                     help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth); when "
                          "not given, the torch hub cache")
    val.add_argument("--lpips_backbone_weights", type=str, default=None,
                     help="LPIPS AlexNet weights (alexnet-owt-7be5be79.pth); when not given, "
                          "the torch hub cache")


def flag_names(parser: argparse.ArgumentParser) -> set[str]:
    """The destinations of every optional flag of ``parser`` ('help' excluded)."""
    return set(_actions_by_dest(parser))


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The optional flags of ``parser`` by destination, without help and refused flags."""
    return {action.dest: action for action in parser._actions
            if action.option_strings and action.dest != "help"
            and not action.dest.startswith(REFUSED_PREFIX)}


def read_yaml_config(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The flag values set by the YAML file at ``path``, checked against ``parser``. A file may
    hold the architecture flags of every stage (one file for a whole run of four stages): a
    key of a kind this stage neither builds nor takes is left out here."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config: file not found: {file}")
    content = load_yaml(file)
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"--config: {file} must hold a mapping of flag names to values, "
                          f"not a {type(content).__name__}")
    actions, architecture_names = _actions_by_dest(parser), architecture_flag_names()
    other_stages = architecture_names - set(actions)
    values = {}
    for key, value in content.items():
        if key in ("config", "resume", "overwrite"):   # a choice of each command, not a setting
            raise ConfigError(f"--config: {file}: key '{key}' cannot be set inside a config file")
        if key in other_stages:
            continue
        if f"--{key}" in REMOVED_FLAGS:
            raise ConfigError(f"--config: {file}: key '{key}' was {REMOVED_FLAGS[f'--{key}']}")
        if key not in actions:
            raise UnknownKey(f"--config: {file}: unknown key '{key}' (not a flag of this "
                             f"script; see --help)")
        if value is None and key in architecture_names:
            continue   # a flag the run's architecture does not take: config.yaml writes it so
        values[key] = coerce(actions[key], value, f"--config: {file}: key '{key}'")
    return values


def architecture_flag_names() -> set[str]:
    """Every architecture flag of every kind, '--' left off ('warp_arch', 'ngf'...)."""
    return {name for kind in KINDS
            for name in [f"{kind}_arch"] + [flag.flag for flag, _ in architecture_flags(kind)]}


def validate_config(cfg: argparse.Namespace) -> None:
    """Raise ``ConfigError`` for values that cannot train (checked before anything is built)."""
    problems = _size_problems(cfg) + _count_problems(cfg) + _architecture_problems(cfg)
    for key in [k for k in vars(cfg) if k == "lr" or k.startswith("lr_")]:
        value = getattr(cfg, key)
        if value is not None and not (math.isfinite(value) and value > 0):
            problems.append(f"--{key} must be a positive number, got {value}")
    if not 0 <= cfg.beta1 < 1:
        problems.append(f"--beta1 must be in [0, 1), got {cfg.beta1}")
    if not (math.isfinite(cfg.grad_clip) and cfg.grad_clip >= 0):
        problems.append(f"--grad_clip must be >= 0, got {cfg.grad_clip}")
    if not cfg.name.strip(" .") or not cfg.name.isprintable() or {"/", "\\"} & set(cfg.name):
        problems.append(f"--name must be a plain folder name, got {cfg.name!r}")
    if not (math.isfinite(cfg.max_megapixels) and cfg.max_megapixels > 0):
        problems.append(f"--max_megapixels must be a positive number, got {cfg.max_megapixels}")
    if cfg.val_root and not Path(cfg.val_root).is_dir():
        problems.append(f"--val_root: not a folder: {cfg.val_root}")
    if cfg.resume and cfg.overwrite:
        problems.append("--resume and --overwrite contradict each other")
    if problems:
        source = f" (command line and {', '.join(cfg.config)})" if cfg.config else ""
        raise ConfigError("bad configuration" + source + ":\n  " + "\n  ".join(problems))


def _size_problems(cfg: argparse.Namespace) -> list[str]:
    problems = []
    for key in ("height", "width"):
        value = getattr(cfg, key)
        if value > MAX_SIDE:
            problems.append(f"--{key} {value} is larger than {MAX_SIDE}")
        elif value <= 0 or value % SIZE_MULTIPLE:
            problems.append(f"--{key} {value} must be a positive multiple of {SIZE_MULTIPLE} "
                            f"(the warping module halves the size five times)")
        elif value < MIN_TRAIN_SIZE:
            problems.append(f"--{key} {value} must be at least {MIN_TRAIN_SIZE} for training: "
                            f"the smoothness term applies 3x3 filters to the coarsest flow, "
                            f"1/16 of the size")
    return problems


def _count_problems(cfg: argparse.Namespace) -> list[str]:
    problems = [f"--{key} must not be negative, got {getattr(cfg, key)}"
                for key in ("batch_size", "niter_decay", "niter", "workers", "save_every",
                            "keep_epoch_every", "log_every", "sample_every", "max_steps",
                            "val_max_pairs", "val_batch_size", "max_skipped_steps", "seed",
                            "bn_recalibration", "max_dataset_size")
                if getattr(cfg, key) < 0]
    for key in ("batch_size", "log_every", "val_every"):
        if getattr(cfg, key) < 1:
            problems.append(f"--{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.niter + cfg.niter_decay < 1:
        problems.append("--niter + --niter_decay must be at least one epoch")
    if cfg.seed >= 2 ** 31:   # SEED + RANK seeds NumPy, which takes 32 bits: larger ones alias
        problems.append(f"--seed must be below 2**31, got {cfg.seed}")
    return problems


def architecture_values(cfg: argparse.Namespace, kind: str) -> dict[str, Any]:
    """The architecture flags of ``kind`` in ``cfg``, by flag name (None: not given)."""
    return {flag.flag: getattr(cfg, flag.flag, None) for flag, _ in architecture_flags(kind)}


def _architecture_problems(cfg: argparse.Namespace) -> list[str]:
    """What is wrong with the architecture flags of each kind the stage builds."""
    problems = []
    for kind in KINDS:
        choice = getattr(cfg, f"{kind}_arch", None)
        if choice is None:
            continue
        try:
            arch_from_flags(kind, choice, 1, architecture_values(cfg, kind))
        except ArchitectureError as error:
            problems.append(str(error))
    return problems


def parse_config(argv: Optional[Sequence[str]] = None,
                 add_stage_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
                 stage_defaults: Optional[Mapping[str, Any]] = None,
                 default_name: Optional[str] = None,
                 description: Optional[str] = None, builds: Sequence[str] = KINDS,
                 continues: Optional[Mapping[str, str]] = None) -> argparse.Namespace:
    """Parse ``argv`` (``None``: ``sys.argv[1:]``) into the resolved, validated configuration.

    ``default_name`` fills ``--name`` when neither the file nor the command line sets it;
    ``builds`` and ``continues`` are the stage's (``build_parser``)."""
    parser = build_parser(add_stage_arguments, stage_defaults, description, builds, continues)
    command_line = given_on_command_line(parser, argv)
    # --config first: everything else is parsed once its values are known.
    files = [read_yaml_config(path, parser) for path in parser.parse_known_args(argv)[0].config
             or ()]
    for values in files:
        parser.set_defaults(**values)
    cfg = parser.parse_args(argv)
    run_dir = Path(cfg.checkpoints_dir, cfg.name or default_name or "")
    # A killed --overwrite's run folder: its run is in .replaced/ until the lock is taken.
    saved = (run_dir / SET_ASIDE if killed_overwrite(run_dir) else run_dir) / "config.yaml"
    if cfg.resume and saved.is_file():   # the run as configured, changed by --config and flags
        try:
            values = read_yaml_config(str(saved), parser)
        except UnknownKey as error:
            raise ConfigError(f"--resume: {saved.parent} is not a run this script continues "
                              f"(another stage's?): {error}") from None
        parser.set_defaults(**{key: value for key, value in values.items()
                               if key not in PER_INVOCATION_KEYS})
        for values in files:
            parser.set_defaults(**values)
        cfg = parser.parse_args(argv)
    if cfg.name is None:
        cfg.name = default_name
    _drop_flags_of_other_architectures(cfg, command_line)
    validate_config(cfg)
    unused = unused_flags(command_line, ((flags, does_nothing(cfg), what)
                                         for flags, does_nothing, what in UNUSED_FLAGS))
    if unused:
        raise ConfigError(unused)
    return cfg


UNUSED_FLAGS = (
    (("val_every", "val_unit", "val_pairs", "val_max_pairs", "val_batch_size", "best_metric",
      "fid_weights", "lpips_backbone_weights"), lambda cfg: not cfg.val_root,
     "validation, which --val_root asks"),
    (("vgg_weights",), lambda cfg: cfg.vgg_layers == 0, "the perceptual loss (--vgg_layers 0)"),
    (("allow_random_weights",), lambda cfg: cfg.vgg_layers == 0 and not cfg.val_root,
     "the networks of the perceptual loss (--vgg_layers 0 here) and of validation (no "
     "--val_root here)"),
    (("max_skipped_steps",), lambda cfg: cfg.precision != "fp16", "--precision fp16"),
    (("cost_volume",), lambda cfg: getattr(cfg, "warp_arch", None) is not None
     and "cost_volume" not in find("warp", cfg.warp_arch).defaults,
     "a warp's cost volume, which the --warp_arch trained here has not (FS-VTON's)"))


def _drop_flags_of_other_architectures(cfg: argparse.Namespace, command_line: set[str]) -> None:
    """A config file's architecture flag that the chosen architecture does not take is left
    unset (the file serves every architecture of the run); on the command line it stays, and
    ``validate_config`` refuses it."""
    for kind in KINDS:
        choice = getattr(cfg, f"{kind}_arch", None)
        if choice is None:
            continue
        taken = {flag.flag for flag, defaults in architecture_flags(kind) if choice in defaults}
        for flag, _ in architecture_flags(kind):
            if flag.flag not in taken and flag.flag not in command_line:
                setattr(cfg, flag.flag, None)


def config_to_dict(cfg: argparse.Namespace) -> dict[str, Any]:
    """Plain ``{flag: value}`` (lists, not tuples) for YAML files and checkpoints."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in sorted(vars(cfg).items())}


def write_config(cfg: argparse.Namespace, path: str | Path) -> None:
    """Write the resolved configuration as YAML; loadable again with ``--config`` once the
    per-invocation keys (``config``, ``resume``...) are dropped, which this does."""
    values = {k: v for k, v in config_to_dict(cfg).items() if k not in ("config", "resume",
                                                                          "overwrite")}
    try:
        write_bytes_atomic(path, yaml.safe_dump(values, sort_keys=True).encode())
    except OSError as error:
        raise ConfigError(f"cannot write {path} ({error.strerror or error})") from None


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any],
                       ignore: Iterable[str] = PER_INVOCATION_KEYS) -> dict[str, tuple]:
    """``{key: (old, new)}`` for the keys whose values differ, ignoring ``ignore``."""
    skip = set(ignore)
    keys = (set(old) | set(new)) - skip
    return {k: (old.get(k), new.get(k)) for k in sorted(keys) if old.get(k) != new.get(k)}
