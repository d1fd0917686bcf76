"""Pieces the four stage scripts share: the architectures the flags describe, the model inputs
of a batch, the perceptual loss and the flow's pictures (no stage script imports another; what
stages 2-4 take from earlier stages is in ``utils.training.earlier_stages``, what only stages
3 and 4 share in ``utils.training.students``)."""

import logging
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from data.inputs import TryOnInputs, pose_radius_for
from models import PB_WARP_INPUT
from models.afwm import WarpOutput
from models.losses import VGG_SLICES, VGGLoss
from models.registry import (
    arch_from_flags,
    architecture,
    build_model,
    find,
    unwrap,
    with_overrides,
)
from utils.flow_viz import flow_magnitude, flow_to_color
from utils.logging_utils import LOGGER_NAME
from utils.weights import MissingWeightsError, read_weights_file, resolve_weights_file

VGG19_FILE = "vgg19-dcbb9e9d.pth"


def warp_arch(cfg, input_nc: int) -> dict:
    """The architecture of the warp module the flags describe (``--warp_arch`` and the flags it
    declares, ``models.registry.arch_from_flags``), its cost volume as ``--cost_volume`` says
    when it has one."""
    arch = arch_from_flags("warp", cfg.warp_arch, input_nc, vars(cfg))
    note_unused_cost_volume(cfg, arch)
    return with_overrides(arch, {"cost_volume": cfg.cost_volume})


def note_unused_cost_volume(cfg, arch: dict) -> None:
    """Say in the log that ``--cost_volume`` is not used when the trained warp ``arch`` has no
    cost volume (FS-VTON's): from a shared config file or a run's config.yaml; given on the
    command line it is refused (``options.config.UNUSED_FLAGS``)."""
    if cfg.cost_volume != "auto" and "cost_volume" not in architecture(arch).defaults:
        logging.getLogger(LOGGER_NAME).info(
            f"cost_volume {cfg.cost_volume} not used: the {arch['type']} warp has no cost "
            f"volume")


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


def batch_inputs(batch, cfg) -> TryOnInputs:
    """The model inputs of a batch, with pose squares scaled to the working height (the
    release's radius 5 at 256)."""
    return TryOnInputs.from_batch(batch, pose_radius=pose_radius_for(cfg.height))


class VGGWeightsMissing(MissingWeightsError):
    """No VGG19 ImageNet weights could be found locally, or the file is not them."""


def build_vgg19_features(weights_path: Optional[str] = None,
                         allow_random: bool = False) -> nn.Sequential:
    """torchvision's VGG19 ``features`` up to relu5_1 with ImageNet weights, frozen.

    The weights come from ``weights_path`` or the torch hub cache (``utils.weights``); with
    neither, this raises ``VGGWeightsMissing`` unless ``allow_random`` is set (then it logs a
    warning)."""
    import torchvision

    try:
        path = resolve_weights_file(weights_path, VGG19_FILE, "--vgg_weights",
                                    "VGG19 perceptual loss", allow_random,
                                    random_opt_in="--allow_random_weights")
    except MissingWeightsError as error:
        raise VGGWeightsMissing(
            f"{error} On a machine with internet, `python -c \"import torchvision; "
            f"torchvision.models.vgg19(weights='IMAGENET1K_V1')\"` caches it.") from None
    with torch.device("meta"):  # no memory, no init: its 120M-parameter classifier took seconds
        vgg = torchvision.models.vgg19(weights=None)
    if path is None:
        logging.getLogger(LOGGER_NAME).warning(
            "VGG19 perceptual loss uses RANDOM weights (--allow_random_weights): for tests and "
            "demos only, results are not comparable to the paper")
        for conv in (m for m in vgg.features.to_empty(device="cpu") if isinstance(m, nn.Conv2d)):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
    else:
        state = read_weights_file(path, VGG19_FILE, check_hash=True, mismatch_is_error=False)
        try:
            vgg.load_state_dict(state, assign=True)
        except RuntimeError as error:
            raise VGGWeightsMissing(f"{path} is not torchvision's VGG19 state dict "
                                    f"({VGG19_FILE}): {str(error).splitlines()[0]}") from None
    features = vgg.features[:VGG_SLICES[-1][1]].float()
    features.eval()
    features.requires_grad_(False)
    return features


def perceptual_loss(cfg, device) -> VGGLoss:
    """The VGG19 loss with ``--vgg_layers`` levels (no network at all when 0)."""
    if cfg.vgg_layers == 0:
        return VGGLoss(None, 0).to(device)
    features = build_vgg19_features(cfg.vgg_weights, cfg.allow_random_weights)
    return VGGLoss(features, cfg.vgg_layers).to(device)


def flow_scalars(warp: WarpOutput, align_corners: bool, prefix: str = "flow") -> dict:
    """Mean displacement in pixels of each level's flow (coarse to fine) and of the final one:
    ``{'flow/level0_px': ..., 'flow/level4_px': ...}``."""
    return {f"{prefix}/level{i}_px": flow_magnitude(level.flow, align_corners)
            for i, level in enumerate(warp.levels or [])}


def flow_picture(warp: WarpOutput, align_corners: bool) -> torch.Tensor:
    """The final flow on the colour wheel, (B, 3, H, W) in [-1, 1] as grid images are."""
    return flow_to_color(warp.flow, align_corners) * 2 - 1
