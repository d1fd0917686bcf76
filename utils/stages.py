"""Pieces the four stage scripts share: earlier-stage checkpoints, frozen teachers, the
perceptual loss, the parser-based teacher's forward passes."""

from typing import Iterable

import torch
import torch.nn as nn

from models import PB_GEN_INPUT, PB_WARP_INPUT, build_generator, build_warp
from models.losses import VGGLoss, build_vgg19_features
from utils.checkpoint import CheckpointError, load_weights


def require_flag(cfg, flag: str) -> str:
    path = getattr(cfg, flag, None)
    if not path:
        raise CheckpointError(f"--{flag} is required: the checkpoint of the earlier stage this "
                              f"stage starts from")
    return path


def load_from_flag(model: nn.Module, cfg, flag: str, key: str, stages: Iterable[str],
                   skip_prefixes: Iterable[str] = ()) -> nn.Module:
    """Load model ``key`` from the checkpoint named by ``--flag``; the file must come from one
    of ``stages`` (or be a released plain state dict). Errors name the flag and the file."""
    load_weights(model, require_flag(cfg, flag), key=key, what=f"--{flag}", stages=stages,
                 skip_prefixes=skip_prefixes)
    return model


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses its running statistics) and no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model


def perceptual_loss(cfg, device) -> VGGLoss:
    """The VGG19 loss with ``--vgg_layers`` levels (no network at all when 0)."""
    if cfg.vgg_layers == 0:
        return VGGLoss(None, 0).to(device)
    features = build_vgg19_features(cfg.vgg_weights, cfg.allow_random_vgg)
    return VGGLoss(features, cfg.vgg_layers).to(device)


def add_teacher_arguments(parser) -> None:
    parser.add_argument("--pb_checkpoint", default=None,
                        help="stage-2 (train_pb_gen.py) checkpoint: the frozen parser-based "
                             "teacher, warp and generator")
    parser.add_argument("--pb_warp_checkpoint", default=None,
                        help="teacher warp weights from another file (e.g. a released plain "
                             "state dict); overrides --pb_checkpoint for the warp")
    parser.add_argument("--pb_gen_checkpoint", default=None,
                        help="teacher generator weights from another file; overrides "
                             "--pb_checkpoint for the generator")


def teacher_source(cfg, part: str) -> tuple[str, str]:
    """(flag, path) that provides the teacher's ``part`` ('warp' or 'gen')."""
    flag = f"pb_{part}_checkpoint"
    if getattr(cfg, flag, None):
        return flag, getattr(cfg, flag)
    return "pb_checkpoint", require_flag(cfg, "pb_checkpoint")


def parser_based_teacher(cfg, device) -> dict[str, nn.Module]:
    """The frozen stage-2 teacher: AFWM(45) and ResUnet(8)."""
    teacher = {}
    for part, name, model in (("warp", "pb_warp", build_warp(cfg, PB_WARP_INPUT)),
                              ("gen", "pb_gen", build_generator(cfg, PB_GEN_INPUT))):
        flag, _ = teacher_source(cfg, part)
        teacher[name] = freeze(load_from_flag(model, cfg, flag, part, ("pb_gen",)).to(device))
    return teacher


def named_parameters_matching(model: nn.Module, prefixes: Iterable[str]) -> list[torch.Tensor]:
    prefixes = tuple(prefixes)
    return [p for name, p in model.named_parameters()
            if any(part in name for part in prefixes)]
