"""Pieces the four stage scripts share: the architectures the flags describe, earlier-stage
checkpoints, frozen teachers, the perceptual loss, the learning rate of the warp, and the
teacher/student passes of stages 3 and 4 (no stage script imports another)."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import torch
import torch.nn as nn

from data.inputs import TryOnInputs, pose_radius_for
from models import PB_GEN_INPUT, PB_WARP_INPUT
from models.afwm import WarpOutput
from models.losses import (
    VGG_SLICES,
    FeatureAdapter,
    VGGLoss,
    distillation_gate,
    distillation_loss,
    warp_loss,
)
from models.registry import arch_from_flags, architecture, build_model, find, unwrap, with_overrides
from models.tryon import TutorOutput, tutor_image
from options.config import ConfigError
from utils.checkpoint import CheckpointError, load_checkpoint_model, load_weights
from utils.flow_viz import flow_magnitude, flow_to_color
from utils.logging_utils import LOGGER_NAME
from utils.weights import MissingWeightsError, read_weights_file, resolve_weights_file

# The release trains the warp of the end-to-end stages (2 and 4) at 0.2 x the generator's rate.
WARP_LR_RATIO = 0.2
# Samples per GPU in the release (8 GPUs x 4): its distillation counted gated samples per 4.
RELEASE_KD_GROUP = 4


VGG19_FILE = "vgg19-dcbb9e9d.pth"


def warp_arch(cfg, input_nc: int) -> dict:
    """The architecture of the warp module the flags describe (``--warp_arch`` and the flags it
    declares, ``models.registry.arch_from_flags``), its cost volume as ``--cost_volume`` says
    when it has one."""
    arch = arch_from_flags("warp", cfg.warp_arch, input_nc, vars(cfg))
    return with_overrides(arch, {"cost_volume": cfg.cost_volume})


def gen_arch(cfg, input_nc: int) -> dict:
    """The architecture of the generator the flags describe (``--gen_arch`` and its flags)."""
    return arch_from_flags("gen", cfg.gen_arch, input_nc, vars(cfg))


def build_warp(cfg, input_nc: int) -> nn.Module:
    return build_model(warp_arch(cfg, input_nc))


def pb_warp_input_nc(cfg) -> int:
    """Condition channels of the stage-1 warp ``--warp_arch`` names: the teacher's 45, or
    those of the condition its architecture declares (DCI-VTON's warp: 16)."""
    return find("warp", cfg.warp_arch).condition_channels or PB_WARP_INPUT


@dataclass
class ParserBasedWarpInputs:
    """What a parser-based warp takes and is trained towards: ``cond`` (its declared
    condition), ``garment`` (masked or the product photo, as it declares), ``garment_edge``,
    ``target`` (``TryOnInputs.warp_target``) and ``target_edge``."""

    cond: torch.Tensor
    garment: torch.Tensor
    garment_edge: torch.Tensor
    target: torch.Tensor
    target_edge: torch.Tensor


def parser_based_warp_inputs(warp: nn.Module, inputs: TryOnInputs) -> ParserBasedWarpInputs:
    """The inputs of ``warp`` (possibly wrapped) as its architecture declares them."""
    spec = architecture(unwrap(warp).arch)
    garment = inputs.garment if spec.garment_masked else inputs.product_garment
    return ParserBasedWarpInputs(cond=inputs.warp_condition(spec.condition), garment=garment,
                                 garment_edge=inputs.garment_edge,
                                 target=inputs.warp_target(spec.garment_masked),
                                 target_edge=inputs.person_clothes_edge)


def build_generator(cfg, input_nc: int) -> nn.Module:
    return build_model(gen_arch(cfg, input_nc))


def batch_inputs(batch, cfg) -> TryOnInputs:
    """The model inputs of a batch, with pose squares scaled to the working height (the
    release's radius 5 at 256)."""
    return TryOnInputs.from_batch(batch, pose_radius=pose_radius_for(cfg.height))


def require_flag(cfg, flag: str) -> str:
    path = getattr(cfg, flag, None)
    if not path:
        raise CheckpointError(f"--{flag} is required: the checkpoint of the earlier stage this "
                              f"stage starts from")
    return path


def check_earlier_stages(cfg, *flags: str) -> None:
    """Each earlier-stage checkpoint a stage needs (``--pb_checkpoint``... or, for 'teacher',
    the teacher's warp and generator files) is named and exists: checked before anything is
    built, so a typo costs no time."""
    sources = []
    for flag in flags:
        if flag == "teacher":
            sources += [teacher_source(cfg, part) for part in ("warp", "gen")]
        else:
            sources.append((flag, require_flag(cfg, flag)))
    for flag, path in sources:
        if not Path(path).is_file():
            raise CheckpointError(f"--{flag}: file not found: {path}")


def load_from_flag(model: nn.Module, cfg, flag: str, key: str, stages: Iterable[str],
                   skip_prefixes: Iterable[str] = ()) -> nn.Module:
    """Load model ``key`` from the checkpoint named by ``--flag``; the file must come from one
    of ``stages`` (or be a released plain state dict). Errors name the flag and the file."""
    load_weights(model, require_flag(cfg, flag), key=key, what=f"--{flag}", stages=stages,
                 skip_prefixes=skip_prefixes)
    return model


def continue_from_flag(cfg, flag: str, key: str, stages: Iterable[str]) -> nn.Module:
    """Model ``key`` of the earlier-stage checkpoint named by ``--flag``, built with the
    architecture the file records (not the flags: stages 2 and 4 go on training the warp of
    stages 1 and 3) and its weights; the cost volume as ``--cost_volume`` says."""
    return load_checkpoint_model(require_flag(cfg, flag), key, f"--{flag}", stages=stages,
                                 overrides={"cost_volume": cfg.cost_volume})


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


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode (BatchNorm uses its running statistics) and no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model


class VGGWeightsMissing(MissingWeightsError):
    """No VGG19 ImageNet weights could be found locally, or the file is not them."""


def build_vgg19_features(weights_path: Optional[str] = None,
                         allow_random: bool = False) -> nn.Sequential:
    """torchvision's VGG19 ``features`` up to relu5_1 with ImageNet weights, frozen.

    The weights come from ``weights_path`` or the torch hub cache (``utils.weights``); with
    neither, this raises ``VGGWeightsMissing`` unless ``allow_random`` is set (then it logs a
    warning)."""
    import torchvision

    vgg = torchvision.models.vgg19(weights=None)
    try:
        path = resolve_weights_file(weights_path, VGG19_FILE, "--vgg_weights",
                                    "VGG19 perceptual loss", allow_random,
                                    random_opt_in="--allow_random_weights")
    except MissingWeightsError as error:
        raise VGGWeightsMissing(
            f"{error} On a machine with internet, `python -c \"import torchvision; "
            f"torchvision.models.vgg19(weights='IMAGENET1K_V1')\"` caches it.") from None
    if path is None:
        logging.getLogger(LOGGER_NAME).warning(
            "VGG19 perceptual loss uses RANDOM weights (--allow_random_weights): for tests and "
            "demos only, results are not comparable to the paper")
    else:
        state = read_weights_file(path, VGG19_FILE, check_hash=True, mismatch_is_error=False)
        try:
            vgg.load_state_dict(state)
        except RuntimeError as error:
            raise VGGWeightsMissing(f"{path} is not torchvision's VGG19 state dict "
                                    f"({VGG19_FILE}): {str(error).splitlines()[0]}") from None
    features = vgg.features[:VGG_SLICES[-1][1]]
    features.eval()
    features.requires_grad_(False)
    return features


def perceptual_loss(cfg, device) -> VGGLoss:
    """The VGG19 loss with ``--vgg_layers`` levels (no network at all when 0)."""
    if cfg.vgg_layers == 0:
        return VGGLoss(None, 0).to(device)
    features = build_vgg19_features(cfg.vgg_weights, cfg.allow_random_weights)
    return VGGLoss(features, cfg.vgg_layers).to(device)


def add_warp_lr_argument(parser) -> None:
    parser.add_argument("--lr_warp", type=float, default=None,
                        help=f"learning rate of the warp module; default {WARP_LR_RATIO} x --lr, "
                             f"as the release ties them")


def warp_learning_rate(cfg) -> float:
    """``--lr_warp``, or ``WARP_LR_RATIO x --lr`` when it is not set."""
    return cfg.lr_warp if cfg.lr_warp is not None else WARP_LR_RATIO * cfg.lr


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


def teacher_source(cfg, part: str) -> tuple[str, str]:
    """(flag, path) that provides the teacher's ``part`` ('warp' or 'gen')."""
    flag = f"pb_{part}_checkpoint"
    if getattr(cfg, flag, None):
        return flag, getattr(cfg, flag)
    return "pb_checkpoint", require_flag(cfg, "pb_checkpoint")


def parser_based_teacher(cfg, device) -> dict[str, nn.Module]:
    """The frozen stage-2 teacher, warp and generator, each built with the architecture its
    checkpoint records (a released plain state dict: recognised from its keys)."""
    teacher = {}
    for part, name in (("warp", "pb_warp"), ("gen", "pb_gen")):
        flag, path = teacher_source(cfg, part)
        model = load_checkpoint_model(
            path, part, f"--{flag}", stages=("pb_gen",),
            input_nc=PB_WARP_INPUT if part == "warp" else PB_GEN_INPUT,
            role=f"the parser-based teacher's {part}", hint="is it a parser-free model?")
        teacher[name] = freeze(model.to(device))
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


def flow_scalars(warp: WarpOutput, align_corners: bool, prefix: str = "flow") -> dict:
    """Mean displacement in pixels of each level's flow (coarse to fine) and of the final one:
    ``{'flow/level0_px': ..., 'flow/level4_px': ...}``."""
    return {f"{prefix}/level{i}_px": flow_magnitude(level.flow, align_corners)
            for i, level in enumerate(warp.levels or [])}


def flow_picture(warp: WarpOutput, align_corners: bool) -> torch.Tensor:
    """The final flow on the colour wheel, (B, 3, H, W) in [-1, 1] as grid images are."""
    return flow_to_color(warp.flow, align_corners) * 2 - 1
