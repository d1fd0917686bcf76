"""What the parser-free stages (3 and 4) share: the frozen parser-based teacher and its
flags, the tutor image and the teacher's and student's warps of each step, distillation."""

import logging
from dataclasses import dataclass
from typing import Iterable, Optional

import torch
import torch.nn as nn

from models import PB_GEN_INPUT, PB_WARP_INPUT
from models.afwm import WarpOutput
from models.distillation import FeatureAdapter, distillation_gate, distillation_loss
from models.losses import VGGLoss, warp_loss
from models.registry import unwrap
from models.tryon import TutorOutput, tutor_image
from options.config import ConfigError
from utils.checkpoint import load_checkpoint_model, load_weights, note_trial, read_checkpoint
from utils.logging_utils import LOGGER_NAME
from utils.training.earlier_stages import require_flag, teacher_source

# Samples per GPU in the release (8 GPUs x 4): its distillation counted gated samples per 4.
RELEASE_KD_GROUP = 4


def load_from_flag(model: nn.Module, cfg, flag: str, key: str, stages: Iterable[str],
                   skip_prefixes: Iterable[str] = ()) -> nn.Module:
    """Load model ``key`` from the checkpoint named by ``--flag``; the file must come from one
    of ``stages`` (or be a released plain state dict). Errors name the flag and the file."""
    load_weights(model, require_flag(cfg, flag), key=key, what=f"--{flag}", stages=stages,
                 skip_prefixes=skip_prefixes)
    return model


def same_architecture(first: nn.Module, second: nn.Module) -> bool:
    """Whether two warp modules differ only in their condition input and cost volume: then
    the student can start from the teacher's weights (all but its condition branch)."""
    def core(model):
        return {k: v for k, v in unwrap(model).arch.items() if k not in ("input_nc",
                                                                          "cost_volume")}
    return core(first) == core(second)


def distillation_adapter(teacher: nn.Module, student: nn.Module) -> Optional[FeatureAdapter]:
    """1x1 adapters from the student's pyramid width to the teacher's, or None when they are
    equally wide (PF-AFN, FS-VTON and DM-VTON all have 256)."""
    teacher_dim, student_dim = unwrap(teacher).arch["fpn_dim"], unwrap(student).arch["fpn_dim"]
    return None if teacher_dim == student_dim else FeatureAdapter(student_dim, teacher_dim)


BN_STATISTICS = ("photos", "tutor")


def add_bn_statistics_argument(parser) -> None:
    parser.add_argument("--bn_statistics", default="photos", choices=BN_STATISTICS,
                        help="what the student generator's BatchNorm running statistics follow: "
                             "photos (default; an extra no-grad pass on the real photo, what "
                             "test.py feeds it) or tutor (the release: the tutor images it "
                             "trains on, which a weak teacher makes unlike photos)")


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
    parser.add_argument("--kd_group_size", type=int, default=RELEASE_KD_GROUP,
                        help="distillation counts the samples where the teacher is better per "
                             "group of this many samples and averages the groups, so any GPU "
                             "layout trains as the release's 8 x 4 (0 = one count over the "
                             "whole per-process batch)")


def check_kd_group(cfg) -> None:
    """Warn once when the per-process batch does not split into whole distillation groups."""
    if cfg.kd_group_size < 0:
        raise ConfigError(f"--kd_group_size must be >= 0, got {cfg.kd_group_size}")
    if cfg.kd_group_size and cfg.batch_size < cfg.kd_group_size:
        logging.getLogger(LOGGER_NAME).warning(
            f"--batch_size {cfg.batch_size} is smaller than --kd_group_size "
            f"{cfg.kd_group_size}: groups never span processes, so each process's batch is one "
            f"group and the release's count per {cfg.kd_group_size} samples is not reproduced")
    elif cfg.kd_group_size and cfg.batch_size % cfg.kd_group_size:
        logging.getLogger(LOGGER_NAME).warning(
            f"--batch_size {cfg.batch_size} is not a multiple of --kd_group_size "
            f"{cfg.kd_group_size}: the last distillation group of each batch is smaller than "
            f"the others (the release counted per 4 samples)")


def parser_based_teacher(cfg, device) -> dict[str, nn.Module]:
    """The frozen stage-2 teacher, warp and generator, each built with the architecture its
    checkpoint records (a released plain state dict: recognised from its keys)."""
    teacher, files, sources = {}, {}, set()
    for part, name in (("warp", "pb_warp"), ("gen", "pb_gen")):
        flag, path = teacher_source(cfg, part)
        sources.add(flag)
        if path not in files:           # --pb_checkpoint holds both parts: read once
            files[path] = read_checkpoint(path, f"--{flag}")
            note_trial(files[path], path, f"--{flag}")
        model = load_checkpoint_model(
            path, part, f"--{flag}", stages=("pb_gen",),
            input_nc=PB_WARP_INPUT if part == "warp" else PB_GEN_INPUT,
            role=f"the parser-based teacher's {part}", hint="is it a parser-free model?",
            data=files[path], size=(cfg.height, cfg.width))
        teacher[name] = freeze(model.to(device))
    if getattr(cfg, "pb_checkpoint", None) and "pb_checkpoint" not in sources:
        logging.getLogger(LOGGER_NAME).info(
            f"--pb_checkpoint {cfg.pb_checkpoint} is not read: --pb_warp_checkpoint and "
            f"--pb_gen_checkpoint give both parts of the teacher")
    return teacher


def named_parameters_matching(model: nn.Module, prefixes: Iterable[str]) -> list[torch.Tensor]:
    prefixes = tuple(prefixes)
    return [p for name, p in model.named_parameters()
            if any(part in name for part in prefixes)]


@dataclass
class StudentPass:
    """Stages 3 and 4: the tutor image, the teacher's warp of the real garment, the student's
    warp, the student's warp loss with distillation (named terms) and the gate (B,)."""

    tutor: TutorOutput
    teacher: WarpOutput
    student: WarpOutput
    terms: dict[str, torch.Tensor]
    gate: torch.Tensor


def teacher_and_student_warps(models, inputs, vgg: VGGLoss, kd_group_size: int) -> StudentPass:
    """The frozen teacher dresses the person in the unpaired garment (the tutor image) and warps
    the real garment; the student warps the real garment from the tutor image alone."""
    tutor = tutor_image(models["pb_warp"], models["pb_gen"], inputs.pb_condition,
                        inputs.preserve_region, inputs.dense_preserve_mask,
                        inputs.unpaired_garment, inputs.unpaired_garment_edge)
    with torch.no_grad():
        teacher = models["pb_warp"](inputs.pb_condition, inputs.garment, inputs.garment_edge,
                                    return_levels=True)
    student = models["warp"](tutor.image, inputs.garment, inputs.garment_edge,
                             return_levels=True)
    terms = warp_loss(student.levels, inputs.person_clothes, inputs.person_clothes_edge, vgg)
    gate = distillation_gate(teacher.warped, student.warped, inputs.person_clothes)
    terms.update(distillation_loss(teacher.levels, student.levels, gate,
                                   group_size=kd_group_size, adapter=models.get("adapter")))
    return StudentPass(tutor=tutor, teacher=teacher, student=student, terms=terms, gate=gate)


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses its running statistics) and no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model
