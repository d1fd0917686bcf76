"""What stages 2-4 take from the stages before them: the flags naming earlier-stage
checkpoints, checked before anything is built, the warp a stage goes on training, the teacher's
files, the new generator, and the warp's learning rate in the end-to-end stages (2 and 4)."""

import os
from pathlib import Path
from typing import Iterable, Optional

import torch.nn as nn

from models import PF_WARP_INPUT
from models.registry import build_model, find
from options.config import ConfigError
from utils.checkpoint import CheckpointError, load_checkpoint_model, read_checkpoint
from utils.training.parts import gen_arch, note_unused_cost_volume

# The release trains the warp of the end-to-end stages (2 and 4) at 0.2 x the generator's rate.
WARP_LR_RATIO = 0.2


def build_generator(cfg, input_nc: int) -> nn.Module:
    return build_model(gen_arch(cfg, input_nc))


def require_flag(cfg, flag: str) -> str:
    path = getattr(cfg, flag, None)
    if not path:
        raise CheckpointError(f"--{flag} is required: the checkpoint of the earlier stage this "
                              f"stage starts from")
    return path


def resumed_checkpoint(cfg) -> Optional[Path]:
    """The run's own ``latest.pth`` when ``--resume`` continues from it, else None."""
    latest = Path(cfg.checkpoints_dir) / cfg.name / "latest.pth"
    return latest if cfg.resume and latest.is_file() else None


def check_earlier_stages(cfg, *flags: str) -> None:
    """Each earlier-stage checkpoint a stage needs ('teacher': the teacher's warp and generator
    files; a flag: the file of a module the stage continues, which ``--resume`` takes from the
    run's own checkpoint instead) is named and exists: checked before anything is built, so a
    typo costs no time."""
    sources = []
    for flag in flags:
        if flag == "teacher":
            sources += [teacher_source(cfg, part) for part in ("warp", "gen")]
        elif resumed_checkpoint(cfg) is None:
            sources.append((flag, require_flag(cfg, flag)))
    for flag, path in sources:
        if not Path(path).is_file():
            what = "a folder, not a file" if Path(path).is_dir() else "file not found"
            raise CheckpointError(f"--{flag}: {what}: {path}")


def continue_from_flag(cfg, flag: str, key: str, stages: Iterable[str],
                       input_nc: int) -> nn.Module:
    """Model ``key`` of the earlier-stage checkpoint named by ``--flag``, built with the
    architecture the file records (not the flags: stages 2 and 4 go on training the warp of
    stages 1 and 3) and its weights; the cost volume as ``--cost_volume`` says. On ``--resume``
    the run's own checkpoint records it (and its weights replace these), so the earlier file
    may be gone. The warp must take ``input_nc`` condition channels."""
    latest = resumed_checkpoint(cfg)
    data = read_checkpoint(latest, "--resume") if latest else None
    started, given = ((data or {}).get("config") or {}).get(flag), getattr(cfg, flag, None)
    # Another file would be recorded as the run's start; one file named two ways is that file.
    if started and (not given or os.path.realpath(given) != os.path.realpath(started)):
        raise ConfigError(f"--{flag} {given}: --resume continues the {key} of {latest}, which "
                          f"started from {started}; leave the flag out, or name that file")
    source, path = ("--resume", latest) if latest else (f"--{flag}", require_flag(cfg, flag))
    model = load_checkpoint_model(path, key, source, stages=None if latest else stages,
                                  data=data, overrides={"cost_volume": cfg.cost_volume},
                                  size=(cfg.height, cfg.width))
    arch = model.arch     # a plain state dict of the other kind of warp failed at the first step
    note_unused_cost_volume(cfg, arch)
    if arch["input_nc"] != input_nc:
        free = input_nc == PF_WARP_INPUT
        hint = (f"a {arch['type']} warp takes its own condition: it is for scripts/prewarp.py"
                if find("warp", arch["type"]).condition else
                f"is it the {'parser-free' if free else 'parser-based'} warp of stage "
                f"{3 if free else 1}?")
        raise CheckpointError(f"{source}: {path} holds a warp of {arch['input_nc']} input "
                              f"channels; this stage continues one of {input_nc} ({hint})")
    return model


def add_warp_lr_argument(parser) -> None:
    parser.add_argument("--lr_warp", type=float, default=None,
                        help=f"learning rate of the warp module; default {WARP_LR_RATIO} x --lr, "
                             f"as the release ties them")


def warp_learning_rate(cfg) -> float:
    """``--lr_warp``, or ``WARP_LR_RATIO x --lr`` when it is not set."""
    return cfg.lr_warp if cfg.lr_warp is not None else WARP_LR_RATIO * cfg.lr


def teacher_source(cfg, part: str) -> tuple[str, str]:
    """(flag, path) that provides the teacher's ``part`` ('warp' or 'gen')."""
    flag = f"pb_{part}_checkpoint"
    if getattr(cfg, flag, None):
        return flag, getattr(cfg, flag)
    return "pb_checkpoint", require_flag(cfg, "pb_checkpoint")
