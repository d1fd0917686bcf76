"""Training options: argparse flags with the paper's defaults, optionally set from a YAML file.

Precedence, lowest to highest: the defaults below, a stage's ``defaults`` (its paper values:
learning rate, epochs), the keys of ``--config FILE.yaml``, then flags given on the command line.

A YAML file is a flat mapping from flag name (without ``--``) to value::

    height: 64
    width: 48
    warp_channels: [16, 32, 32, 32, 32]   # or "16,32,32,32,32"
    amp: none

An unknown key or a value of the wrong type is a ``ConfigError`` naming the key and the file.
Nothing here is parsed at import time; ``parse_config(argv)`` is called by the training engine.
"""

import argparse
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import yaml

from common.errors import UserError
from data.datasets import add_data_arguments
from models.correlation import IMPLEMENTATIONS
from models.registry import types_of

WARP_ARCHS = types_of("warp")
GEN_ARCHS = types_of("gen")

# Five levels, each halving the resolution: the working size must divide by 2**5.
SIZE_MULTIPLE = 32
NUM_LEVELS = 5
MIN_TRAIN_SIZE = 64

# Epoch counting of the learning-rate schedule and the phase switches
# (utils/training/schedule.py).
SCHEDULES = ("release", "zero_based")

# Flags that change between two invocations of the same run without changing the run itself.
PER_INVOCATION_KEYS = ("config", "resume", "overwrite", "max_steps", "workers", "device")


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used: unknown key, wrong type, impossible value."""


def int_list(text: str) -> list[int]:
    """'64,128,256' -> [64, 128, 256]; argparse ``type`` for comma-separated integer lists."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return values


def build_parser(add_stage_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
                 stage_defaults: Optional[Mapping[str, Any]] = None,
                 description: Optional[str] = None) -> argparse.ArgumentParser:
    """The common training flags, then the stage's own (``add_stage_arguments(parser)``), with
    ``stage_defaults`` replacing the common defaults. A key of ``stage_defaults`` that is not a
    flag is a ``ConfigError``."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)

    run = parser.add_argument_group("run")
    run.add_argument("--config", type=str, default=None,
                     help="YAML file setting any of these flags by name; flags given on the "
                          "command line override it")
    run.add_argument("--name", type=str, default=None,
                     help="run name: outputs go to CHECKPOINTS_DIR/NAME (default: the stage name)")
    run.add_argument("--checkpoints_dir", type=str, default="checkpoints",
                     help="folder holding one sub-folder per run")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in CHECKPOINTS_DIR/NAME from its latest.pth (same "
                          "weights, optimiser, schedule and data order); an error if there is none")
    run.add_argument("--overwrite", action="store_true",
                     help="start a new run even though CHECKPOINTS_DIR/NAME already holds one "
                          "(its checkpoints are replaced as the new run saves)")
    run.add_argument("--device", type=str, default="auto", choices=["auto", "cpu", "cuda"],
                     help="auto = CUDA when available, else CPU; under torchrun each process "
                          "uses cuda:LOCAL_RANK")
    run.add_argument("--amp", type=str, default="none", choices=["none", "bf16", "fp16"],
                     help="mixed precision: autocast to bfloat16, or float16 with a gradient "
                          "scaler; none = float32 throughout")
    run.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=False,
                     help="let CUDA convolutions and matrix products use TF32 on Ampere and "
                          "newer GPUs (faster, ~1e-3 relative error); off by default, since the "
                          "release trained in full FP32 (PyTorch's own default is TF32 for "
                          "convolutions)")
    run.add_argument("--seed", type=int, default=0,
                     help="base random seed; process RANK uses SEED + RANK")
    run.add_argument("--max_steps", type=int, default=0,
                     help="stop (saving a checkpoint) after this many optimiser steps in total, "
                          "counted from the start of the run; 0 = no limit")

    data = parser.add_argument_group("data")
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

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--lr", type=float, default=5e-5,
                       help="Adam learning rate (stages may define per-model rates)")
    optim.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (beta2 is 0.999)")
    optim.add_argument("--niter", type=int, default=50,
                       help="epochs at the initial learning rate")
    optim.add_argument("--niter_decay", type=int, default=50,
                       help="epochs over which the learning rate decays linearly towards 0")
    optim.add_argument("--schedule", type=str, default="release", choices=SCHEDULES,
                       help="epoch counting of the schedule. release: as the released code "
                            "(1-based epochs): full rate for niter + 1 epochs, then lr / "
                            "niter_decay less per epoch, and 'the first niter epochs' (stage 3's "
                            "partial training, stage 4's early skin weights) last niter - 1 "
                            "epochs; zero_based: this project's earlier schedule, full rate "
                            "and first phase for exactly niter epochs, decay steps of "
                            "1 / (niter_decay + 1)")
    optim.add_argument("--grad_clip", type=float, default=0.0,
                       help="clip the global gradient norm of the trained models to this; 0 = off "
                            "(the paper does not clip)")
    optim.add_argument("--max_skipped_steps", type=int, default=50,
                       help="with --amp fp16, stop the run when the gradient scaler skips more "
                            "than this many steps in a row (non-finite loss or gradients at "
                            "every scale: the run diverged); 0 = never stop")

    model = parser.add_argument_group("model")
    model.add_argument("--warp_arch", default="pfafn", choices=WARP_ARCHS,
                       help="the warp module stages 1 and 3 build: pfafn (PF-AFN's AFWM), fsvton "
                            "(FS-VTON's style-based flow), mobile (DM-VTON's MobileNetV2 "
                            "pyramids); stages 2 and 4 continue the one of their earlier-stage "
                            "checkpoint, and the teacher is always the one its file records")
    model.add_argument("--gen_arch", default="resunet", choices=GEN_ARCHS,
                       help="the generator stages 2 and 4 build: resunet (PF-AFN's and "
                            "FS-VTON's Res-UNet) or mobile (DM-VTON's MobileNetV2 U-Net)")
    model.add_argument("--mobile_width", type=float, default=1.0,
                       help="width multiplier of the mobile warp's MobileNetV2 blocks "
                            "(DM-VTON: 1.0)")
    model.add_argument("--head_channels", type=int_list, default=[128, 64, 32],
                       help="hidden widths of the warp's flow heads (netMain, netRefine); the "
                            "release: 128,64,32")
    model.add_argument("--warp_channels", type=int_list, default=[64, 128, 256, 256, 256],
                       help=f"feature-encoder widths of the warping module, {NUM_LEVELS} "
                            f"comma-separated integers")
    model.add_argument("--fpn_dim", type=int, default=256,
                       help="width of the warping module's feature pyramid")
    model.add_argument("--ngf", type=int, default=64,
                       help="width of the generator's first layer")
    model.add_argument("--align_corners", action=argparse.BooleanOptionalAction, default=True,
                       help="grid_sample/interpolate convention for flows (the release: true)")
    model.add_argument("--cost_volume", default="auto", choices=IMPLEMENTATIONS,
                       help="implementation of the warp's cost volume, all computing the same "
                            "values: auto (Triton kernels on CUDA, the band formulation "
                            "elsewhere), loop (the plain 49-shift reference), band, triton, rows")
    model.add_argument("--vgg_weights", type=str, default=None,
                       help="torchvision VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) for the "
                            "perceptual loss; default: the torch hub cache")
    model.add_argument("--vgg_layers", type=int, default=5, choices=range(0, 6),
                       help="VGG19 feature levels in the perceptual loss, relu1_1 up to "
                            "relu5_1 (the paper: 5); fewer is cheaper for small CPU runs, "
                            "0 drops the perceptual loss")
    model.add_argument("--allow_random_vgg", action="store_true",
                       help="let the perceptual loss use a randomly initialised VGG19 when no "
                            "weights are found: for tests and demos only")

    logs = parser.add_argument_group("checkpoints and logging")
    logs.add_argument("--save_every", type=int, default=1000,
                      help="optimiser steps between saves of latest.pth (also saved at each "
                           "epoch end); 0 = only at epoch ends")
    logs.add_argument("--save_epoch_freq", type=int, default=20,
                      help="keep epoch_NNN.pth after every this many epochs; 0 = never")
    logs.add_argument("--log_every", type=int, default=100,
                      help="optimiser steps between loss lines (log file, TensorBoard)")
    logs.add_argument("--sample_every", type=int, default=1000,
                      help="optimiser steps between image grids; 0 = never")

    val = parser.add_argument_group("validation")
    val.add_argument("--val_root", type=str, default=None,
                     help="held-out pairs to score while training, in the --dataset layout (a "
                          "test root as test.py reads it: VITON_test, or the VITON-HD / "
                          "DressCode top folder; a VITON training folder works too); none: no "
                          "validation")
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
                     help="score at most this many pairs of each kind (the first ones of the "
                          "pairs list); 0 = all")
    val.add_argument("--val_batch_size", type=int, default=0,
                     help="pairs per forward pass in validation (0 = --batch_size)")
    val.add_argument("--best_metric", type=str, default="auto",
                     choices=["auto", "ssim", "lpips", "fid"],
                     help="the score best.pth keeps the best of (higher SSIM, lower LPIPS and "
                          "FID are better); auto: fid when validated, else ssim")
    val.add_argument("--fid_weights", type=str, default=None,
                     help="FID Inception weights (pt_inception-2015-12-05-6726825d.pth); "
                          "default: the torch hub cache")
    val.add_argument("--lpips_backbone_weights", type=str, default=None,
                     help="LPIPS AlexNet weights (alexnet-owt-7be5be79.pth); default: the torch "
                          "hub cache")
    val.add_argument("--allow_random_metric_weights", action="store_true",
                     help="validate with random LPIPS/FID networks when their weights are "
                          "missing: tests and demos only, the scores are not comparable")

    if add_stage_arguments is not None:
        stage_group = parser.add_argument_group("stage")
        add_stage_arguments(stage_group)
    if stage_defaults:
        known = flag_names(parser)
        unknown = sorted(set(stage_defaults) - known)
        if unknown:
            raise ConfigError(f"stage defaults name unknown flags: {', '.join(unknown)}")
        parser.set_defaults(**stage_defaults)
    return parser


def flag_names(parser: argparse.ArgumentParser) -> set[str]:
    """The destinations of every optional flag of ``parser`` ('help' excluded)."""
    return {action.dest for action in parser._actions
            if action.option_strings and action.dest != "help"}


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions
            if action.option_strings and action.dest != "help"}


def _coerce(action: argparse.Action, value: Any, where: str) -> Any:
    """Check a YAML value against its flag and convert it to what argparse would produce."""
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{where}: expected {expected}, got {value!r} "
                           f"({type(value).__name__})")

    is_switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                    argparse.BooleanOptionalAction))
    if is_switch:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if value is None:
        if action.default is None:
            return None
        raise wrong(f"a value (the flag has default {action.default!r})")
    if action.type is int_list:
        if isinstance(value, str):
            try:
                value = int_list(value)
            except argparse.ArgumentTypeError as error:
                raise ConfigError(f"{where}: {error}") from None
        elif not (isinstance(value, list) and value
                  and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise wrong("a list of integers")
        return list(value)
    if action.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
    elif action.type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        value = float(value)
    elif action.type in (None, str):
        if not isinstance(value, str):
            raise wrong("a string")
    elif action.type is not None:
        try:
            value = action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as error:
            raise ConfigError(f"{where}: {error}") from None
    if action.choices is not None and value not in action.choices:
        raise ConfigError(f"{where}: {value!r} is not one of {list(action.choices)}")
    return value


def read_yaml_config(path: str, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The flag values set by the YAML file at ``path``, checked against ``parser``."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config: file not found: {file}")
    try:
        content = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"--config: {file} is not valid YAML: {error}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"--config: {file} must hold a mapping of flag names to values, "
                          f"not a {type(content).__name__}")
    actions = _actions_by_dest(parser)
    values = {}
    for key, value in content.items():
        if key == "config":
            raise ConfigError(f"--config: {file}: key 'config' cannot be set inside a config file")
        if key not in actions:
            raise ConfigError(f"--config: {file}: unknown key '{key}' (not a flag of this "
                              f"script; see --help)")
        values[key] = _coerce(actions[key], value, f"--config: {file}: key '{key}'")
    return values


def validate_config(cfg: argparse.Namespace) -> None:
    """Raise ``ConfigError`` for values that cannot train (checked before anything is built)."""
    problems = []
    for key in ("height", "width"):
        value = getattr(cfg, key)
        if value <= 0 or value % SIZE_MULTIPLE:
            problems.append(f"--{key} {value} must be a positive multiple of {SIZE_MULTIPLE} "
                            f"(the warping module halves the size {NUM_LEVELS} times)")
        elif value < MIN_TRAIN_SIZE:
            problems.append(f"--{key} {value} must be at least {MIN_TRAIN_SIZE} for training: "
                            f"the smoothness term applies 3x3 filters to the coarsest flow, "
                            f"1/16 of the size")
    for key in ("batch_size", "niter_decay", "niter", "workers", "save_every", "save_epoch_freq",
                "log_every", "sample_every", "max_steps", "val_max_pairs", "val_batch_size",
                "max_skipped_steps"):
        if getattr(cfg, key) < 0:
            problems.append(f"--{key} must not be negative, got {getattr(cfg, key)}")
    if cfg.seed < 0:
        problems.append(f"--seed must not be negative, got {cfg.seed}")
    if cfg.batch_size < 1:
        problems.append(f"--batch_size must be at least 1, got {cfg.batch_size}")
    if cfg.log_every < 1:
        problems.append(f"--log_every must be at least 1, got {cfg.log_every}")
    if cfg.niter + cfg.niter_decay < 1:
        problems.append("--niter + --niter_decay must be at least one epoch")
    for key in [k for k in vars(cfg) if k == "lr" or k.startswith("lr_")]:
        value = getattr(cfg, key)
        if value is not None and not (math.isfinite(value) and value > 0):
            problems.append(f"--{key} must be a positive number, got {value}")
    if not 0 <= cfg.beta1 < 1:
        problems.append(f"--beta1 must be in [0, 1), got {cfg.beta1}")
    if not (math.isfinite(cfg.grad_clip) and cfg.grad_clip >= 0):
        problems.append(f"--grad_clip must be >= 0, got {cfg.grad_clip}")
    if len(cfg.warp_channels) != NUM_LEVELS or min(cfg.warp_channels) < 1:
        problems.append(f"--warp_channels needs {NUM_LEVELS} positive widths, got "
                        f"{cfg.warp_channels}")
    if not cfg.head_channels or min(cfg.head_channels) < 1:
        problems.append(f"--head_channels needs positive widths, got {cfg.head_channels}")
    if not 0 < cfg.mobile_width <= 4:
        problems.append(f"--mobile_width must be in (0, 4], got {cfg.mobile_width}")
    if cfg.fpn_dim < 1 or cfg.ngf < 1:
        problems.append(f"--fpn_dim and --ngf must be positive, got {cfg.fpn_dim}, {cfg.ngf}")
    if not cfg.name or "/" in cfg.name or "\\" in cfg.name or cfg.name in (".", ".."):
        problems.append(f"--name must be a plain folder name, got {cfg.name!r}")
    if not (math.isfinite(cfg.max_megapixels) and cfg.max_megapixels > 0):
        problems.append(f"--max_megapixels must be a positive number, got {cfg.max_megapixels}")
    if cfg.val_every < 1:
        problems.append(f"--val_every must be at least 1, got {cfg.val_every}")
    if cfg.val_root and not Path(cfg.val_root).is_dir():
        problems.append(f"--val_root: not a folder: {cfg.val_root}")
    if cfg.resume and cfg.overwrite:
        problems.append("--resume and --overwrite contradict each other")
    if problems:
        source = f" (config file {cfg.config})" if cfg.config else ""
        raise ConfigError("bad configuration" + source + ":\n  " + "\n  ".join(problems))


def parse_config(argv: Optional[Sequence[str]] = None,
                 add_stage_arguments: Optional[Callable[[argparse.ArgumentParser], None]] = None,
                 stage_defaults: Optional[Mapping[str, Any]] = None,
                 default_name: Optional[str] = None,
                 description: Optional[str] = None) -> argparse.Namespace:
    """Parse ``argv`` (``None``: ``sys.argv[1:]``) into the resolved, validated configuration.

    ``default_name`` fills ``--name`` when neither the file nor the command line sets it."""
    parser = build_parser(add_stage_arguments, stage_defaults, description)
    # First pass: only to find --config; everything else is parsed once its values are known.
    config_path = parser.parse_known_args(argv)[0].config
    if config_path:
        parser.set_defaults(**read_yaml_config(config_path, parser))
    cfg = parser.parse_args(argv)
    if cfg.name is None:
        cfg.name = default_name
    validate_config(cfg)
    return cfg


def config_to_dict(cfg: argparse.Namespace) -> dict[str, Any]:
    """Plain ``{flag: value}`` (lists, not tuples) for YAML files and checkpoints."""
    return {key: list(value) if isinstance(value, tuple) else value
            for key, value in sorted(vars(cfg).items())}


def write_config(cfg: argparse.Namespace, path: str | Path) -> None:
    """Write the resolved configuration as YAML; loadable again with ``--config`` once the
    per-invocation keys (``config``, ``resume``...) are dropped, which this does."""
    values = {k: v for k, v in config_to_dict(cfg).items() if k not in ("config", "resume",
                                                                          "overwrite")}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=True))


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any],
                       ignore: Iterable[str] = PER_INVOCATION_KEYS) -> dict[str, tuple]:
    """``{key: (old, new)}`` for the keys whose values differ, ignoring ``ignore``."""
    skip = set(ignore)
    keys = (set(old) | set(new)) - skip
    return {k: (old.get(k), new.get(k)) for k in sorted(keys) if old.get(k) != new.get(k)}
