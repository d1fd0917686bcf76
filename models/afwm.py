"""AFWM, the appearance-flow warping module: two feature pyramids and a coarse-to-fine flow net.

Module and attribute names follow the released checkpoints (``image_features.encoders.0.0...``,
``cond_FPN.smooth.4``, ``aflow_net.netMain.0.0``), so a released state dict loads without a key map.
Indexing conventions of those keys: ``encoders.k`` counts from the finest level (k = 0, stride 2);
``adaptive.k``, ``smooth.k``, ``netMain.k`` and ``netRefine.k`` from the coarsest (k = 0,
stride 32).
"""

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.cli import int_list
from models.correlation import check_implementation, local_correlation
from models.flow import (
    downsample_to_level,
    offset_to_grid,
    sample,
    second_order_differences,
    upsample_flow,
)
from models.registry import (
    ArchFlag,
    Architecture,
    Family,
    is_bool,
    is_name,
    positive_int,
    register,
    register_family,
    width_list,
)

RELEASE_CHANNELS = (64, 128, 256, 256, 256)
RELEASE_FPN_DIM = 256
# oneDNN's CPU convolutions run on NHWC (channels-last) without reordering their input and
# output at every call, and hand the layout on to the next layer: about 10% of a training step
# at the demo's widths. Values are those of the NCHW layout to float rounding.
CPU_MEMORY_FORMAT = torch.channels_last


def on_cpu_as(x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """``x`` in ``memory_format`` when it lives on the CPU; as it is elsewhere."""
    return x.contiguous(memory_format=memory_format) if x.is_cpu else x


class ResBlock(nn.Module):
    """Pre-activation residual block: BN, ReLU, conv3x3, BN, ReLU, conv3x3, plus identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        )

    def forward(self, x):
        return self.block(x) + x


class DownSample(nn.Module):
    """BN, ReLU, stride-2 conv3x3 (no bias)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        )

    def forward(self, x):
        return self.block(x)


class FeatureEncoder(nn.Module):
    """Five levels of (DownSample, ResBlock, ResBlock); features at strides 2, 4, 8, 16, 32."""

    def __init__(self, in_channels: int, channels: Sequence[int] = RELEASE_CHANNELS):
        super().__init__()
        widths = [in_channels, *channels]
        self.encoders = nn.ModuleList(
            nn.Sequential(DownSample(widths[i], widths[i + 1]),
                          ResBlock(widths[i + 1]), ResBlock(widths[i + 1]))
            for i in range(len(channels)))

    def forward(self, x) -> list[torch.Tensor]:
        features = []
        for encoder in self.encoders:
            x = encoder(x)
            features.append(x)
        return features


class RefinePyramid(nn.Module):
    """Top-down FPN: 1x1 lateral conv plus the nearest-x2 coarser result, then a 3x3 smoothing
    conv."""

    def __init__(self, channels: Sequence[int] = RELEASE_CHANNELS, fpn_dim: int = RELEASE_FPN_DIM):
        super().__init__()
        self.adaptive = nn.ModuleList(nn.Conv2d(c, fpn_dim, 1) for c in reversed(channels))
        self.smooth = nn.ModuleList(nn.Conv2d(fpn_dim, fpn_dim, 3, padding=1) for _ in channels)

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Encoder features fine-to-coarse -> pyramid features, also fine-to-coarse."""
        pyramid = []
        coarser = None
        for lateral, smooth, feature in zip(self.adaptive, self.smooth, reversed(features)):
            feature = lateral(feature)
            if coarser is not None:
                feature = feature + F.interpolate(coarser, scale_factor=2, mode="nearest")
            coarser = smooth(feature)
            pyramid.append(coarser)
        return pyramid[::-1]


RELEASE_HEAD_CHANNELS = (128, 64, 32)


def flow_head(in_channels: int, channels: Sequence[int] = RELEASE_HEAD_CHANNELS) -> nn.Sequential:
    """conv3x3 -> LeakyReLU(0.1) through ``channels``, then conv3x3 to 2 (a pixel offset); all
    with bias. The release: 128, 64, 32."""
    layers, width = [], in_channels
    for out in channels:
        layers += [nn.Conv2d(width, out, 3, padding=1), nn.LeakyReLU(0.1)]
        width = out
    layers.append(nn.Conv2d(width, 2, 3, padding=1))
    return nn.Sequential(*layers)


@dataclass
class WarpLevel:
    """What one pyramid level (coarse to fine) contributes to the training losses.

    ``flow`` is the level's flow after the x2 upsampling, (B, 2, h, w) with h = H / 2**(4-i);
    ``warped_garment``/``warped_edge`` are the garment and its edge downsampled to (h, w) and
    warped by it; ``cond_feature`` is the condition pyramid feature the level used,
    (B, F, h/2, w/2);
    ``delta_main``/``delta_refine`` the two predicted pixel offsets; ``flow_dx``/``flow_dy`` the
    second-order differences of each flow component, (B, 4, h-2, w-2); ``garment_feature`` the
    garment pyramid feature of the level, unwarped.
    """

    flow: torch.Tensor
    cond_feature: torch.Tensor
    delta_main: torch.Tensor
    delta_refine: torch.Tensor
    flow_dx: torch.Tensor
    flow_dy: torch.Tensor
    warped_garment: Optional[torch.Tensor] = None
    warped_edge: Optional[torch.Tensor] = None
    garment_feature: Optional[torch.Tensor] = None


@dataclass
class WarpOutput:
    """``warped``: garment warped at full size (B, 3, H, W); ``flow``: (B, 2, H, W) normalised
    sampling grid in the ``align_corners`` convention of the module that made it (what every
    further sampling by it must use); ``levels``: per-level details coarse to fine, when asked
    for."""

    warped: torch.Tensor
    flow: torch.Tensor
    levels: Optional[list[WarpLevel]] = None
    align_corners: bool = True


class CoarseToFineFlow(nn.Module):
    """The coarse-to-fine loop shared by the flow networks of the family: at each level a
    "main" pixel offset (``main_offset``: PF-AFN's cost volume and netMain, FS-VTON's style
    convolutions) updates the flow, then ``netRefine`` refines it from the warped garment and
    the condition features, and the flow is upsampled x2.

    ``align_corners``: the convention of every sampling; ``offset_align_corners``: that of
    turning pixel offsets into sampling positions (None: the same; DM-VTON always uses the
    align_corners=True one, whatever its sampling flag says).
    """

    cpu_memory_format = CPU_MEMORY_FORMAT     # the layout of the flow heads' CPU inputs

    def __init__(self, align_corners: bool = True, offset_align_corners: Optional[bool] = None):
        super().__init__()
        self.align_corners = align_corners
        self.offset_align_corners = (align_corners if offset_align_corners is None
                                     else offset_align_corners)

    def prepare(self, garment_pyramid, cond_pyramid):
        """Whatever every level's ``main_offset`` shares (FS-VTON: its style vector)."""
        return None

    def main_offset(self, level: int, prewarped: torch.Tensor, cond_feature: torch.Tensor,
                    prepared) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, garment, garment_pyramid, cond_pyramid, garment_edge=None,
                return_levels: bool = False) -> WarpOutput:
        ac, offsets_ac = self.align_corners, self.offset_align_corners
        num_levels = len(garment_pyramid)
        prepared = self.prepare(garment_pyramid, cond_pyramid)
        flow = None
        levels = []
        for i in range(num_levels):
            garment_feature = garment_pyramid[num_levels - 1 - i]
            cond_feature = cond_pyramid[num_levels - 1 - i]

            # The main offset sees the garment already warped by the coarser flow; that flow is
            # detached, so this comparison does not train it.
            prewarped = garment_feature if flow is None else sample(garment_feature, flow.detach(),
                                                                    align_corners=ac)
            delta_main = self.main_offset(i, prewarped, cond_feature, prepared)
            step = offset_to_grid(delta_main, offsets_ac)
            # F(t) = F(t-1) o (id + delta): compose by sampling the coarser flow at the new grid.
            flow = step if flow is None else sample(flow, step, align_corners=ac)

            warped_feature = sample(garment_feature, flow, align_corners=ac)
            refine_input = on_cpu_as(torch.cat([warped_feature, cond_feature], 1),
                                     self.cpu_memory_format)
            delta_refine = self.netRefine[i](refine_input)
            flow = sample(flow, offset_to_grid(delta_refine, offsets_ac), align_corners=ac)
            flow = upsample_flow(flow)

            if return_levels:
                levels.append(self._level(i, num_levels, flow, garment, garment_edge,
                                          cond_feature, garment_feature, delta_main,
                                          delta_refine))

        warped = sample(garment, flow, align_corners=ac)
        return WarpOutput(warped=warped, flow=flow, levels=levels if return_levels else None,
                          align_corners=ac)

    def _level(self, i, num_levels, flow, garment, garment_edge, cond_feature, garment_feature,
               delta_main, delta_refine) -> WarpLevel:
        ac = self.align_corners

        flow_dx, flow_dy = second_order_differences(flow)
        level = WarpLevel(flow=flow, cond_feature=cond_feature, delta_main=delta_main,
                          delta_refine=delta_refine, flow_dx=flow_dx, flow_dy=flow_dy,
                          garment_feature=garment_feature)
        level.warped_garment = sample(downsample_to_level(garment, i, num_levels), flow,
                                      "border", ac)
        if garment_edge is not None:
            level.warped_edge = sample(downsample_to_level(garment_edge, i, num_levels), flow,
                                       "zeros", ac)
        return level


class AFlowNet(CoarseToFineFlow):
    """PF-AFN's flow network: per level, the local cost volume between the (pre-warped) garment
    and the condition features through ``netMain`` gives the main offset."""

    def __init__(self, num_levels: int = 5, fpn_dim: int = RELEASE_FPN_DIM,
                 align_corners: bool = True, cost_volume: str = "auto",
                 head_channels: Sequence[int] = RELEASE_HEAD_CHANNELS,
                 offset_align_corners: Optional[bool] = None):
        super().__init__(align_corners, offset_align_corners)
        self.cost_volume = check_implementation(cost_volume)
        correlation_channels = (2 * 3 + 1) ** 2
        self.netMain = nn.ModuleList(flow_head(correlation_channels, head_channels)
                                     for _ in range(num_levels))
        self.netRefine = nn.ModuleList(flow_head(2 * fpn_dim, head_channels)
                                       for _ in range(num_levels))

    def main_offset(self, level, prewarped, cond_feature, prepared):
        cost = local_correlation(prewarped, cond_feature, implementation=self.cost_volume)
        cost = on_cpu_as(cost, self.cpu_memory_format)
        return self.netMain[level](F.leaky_relu(cost, 0.1))


class WarpModule(nn.Module):
    """What every warp module of the family shares: a garment pyramid and a condition
    pyramid (``pyramids``), then the coarse-to-fine flow network ``aflow_net``.

    ``forward(cond, garment, garment_edge=None, return_levels=False)`` warps ``garment``
    (B, 3, H, W) in [-1, 1] to the person described by ``cond`` (B, input_nc, H, W); H and W
    must be multiples of 32. ``garment_edge`` (B, 1, H, W) in [0, 1] is only needed for the
    per-level warped edges of the training losses.
    """

    stride = 32
    cpu_memory_format = CPU_MEMORY_FORMAT     # the layout of the pyramids' CPU inputs

    @property
    def align_corners(self) -> bool:
        return self.aflow_net.align_corners

    def pyramids(self, cond: torch.Tensor, garment: torch.Tensor):
        """(condition pyramid, garment pyramid), each fine to coarse."""
        raise NotImplementedError

    def forward(self, cond: torch.Tensor, garment: torch.Tensor,
                garment_edge: Optional[torch.Tensor] = None,
                return_levels: bool = False) -> WarpOutput:
        height, width = garment.shape[-2:]
        name = type(self).__name__
        if height % self.stride or width % self.stride:
            raise ValueError(f"{name} needs height and width divisible by {self.stride}, "
                             f"got {height}x{width}")
        if cond.shape[1] != self.input_nc:
            raise ValueError(f"{name} was built for {self.input_nc} condition channels, "
                             f"got {cond.shape[1]}")
        cond, garment = (on_cpu_as(x, self.cpu_memory_format) for x in (cond, garment))
        cond_pyramid, garment_pyramid = self.pyramids(cond, garment)
        return self.aflow_net(garment, garment_pyramid, cond_pyramid, garment_edge, return_levels)


class AFWM(WarpModule):
    """PF-AFN's appearance-flow warping module: two feature encoders and refine pyramids, and
    AFlowNet.

    Args:
        input_nc: channels of the condition input (45 parser-based, 3 parser-free).
        channels: encoder widths per level, fine to coarse (release: 64, 128, 256, 256, 256).
        fpn_dim: width of the refine pyramids (release: 256).
        align_corners: sampling convention (True reproduces the released weights).
        cost_volume: implementation of the cost volume (``models.correlation``; all compute
            the same values).
        head_channels: hidden widths of the flow heads netMain and netRefine (128, 64, 32).
    """

    def __init__(self, input_nc: int, channels: Sequence[int] = RELEASE_CHANNELS,
                 fpn_dim: int = RELEASE_FPN_DIM, align_corners: bool = True,
                 cost_volume: str = "auto",
                 head_channels: Sequence[int] = RELEASE_HEAD_CHANNELS):
        super().__init__()
        self.input_nc = input_nc
        # The constructor's arguments as ``models.registry`` describes an architecture; a
        # checkpoint stores them so that the file rebuilds this module.
        self.arch = {"kind": "warp", "type": "pfafn", "input_nc": input_nc,
                     "channels": list(channels), "fpn_dim": fpn_dim,
                     "align_corners": bool(align_corners), "cost_volume": cost_volume,
                     "head_channels": list(head_channels)}
        self.image_features = FeatureEncoder(3, channels)
        self.cond_features = FeatureEncoder(input_nc, channels)
        self.image_FPN = RefinePyramid(channels, fpn_dim)
        self.cond_FPN = RefinePyramid(channels, fpn_dim)
        self.aflow_net = AFlowNet(len(channels), fpn_dim, align_corners, cost_volume,
                                  head_channels)
        self.stride = 2 ** len(channels)

    def pyramids(self, cond, garment):
        return (self.cond_FPN(self.cond_features(cond)),
                self.image_FPN(self.image_features(garment)))


# ---------------------------------------------------------------------------------------------
# Registration: PF-AFN's warp, its flags (shared with the warps built on its parts) and family

WARP_CHANNELS_FLAG = ArchFlag("warp_channels", "channels", int_list,
                              "feature-encoder widths of the warp module, one per level, fine "
                              "to coarse (5 comma-separated integers)")
FPN_DIM_FLAG = ArchFlag("fpn_dim", "fpn_dim", int, "width of the warp module's feature pyramids")
HEAD_CHANNELS_FLAG = ArchFlag("head_channels", "head_channels", int_list,
                              "hidden widths of the warp's flow heads (netMain, netRefine)")
ALIGN_CORNERS_FLAG = ArchFlag("align_corners", "align_corners", bool,
                              "grid_sample/interpolate convention of the flows (released "
                              "weights need true)")
# Keys the released training checkpoints carry by accident (the four fixed second-order
# filters of the warp loss, once an attribute of AFlowNet); loaders drop them.
RELEASE_EXTRA_KEYS = ("aflow_net.weight",)
NUM_LEVELS = len(RELEASE_CHANNELS)


def flow_head_widths(state: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    """The hidden widths of a flow head (``flow_head``) stored under ``prefix``."""
    widths, index = [], 0
    while f"{prefix}.{index + 2}.weight" in state:
        widths.append(int(state[f"{prefix}.{index}.weight"].shape[0]))
        index += 2
    return widths


def encoder_pyramid_args(state: Mapping[str, torch.Tensor]) -> dict:
    """input_nc, channels, fpn_dim and head_channels of a warp module built on PF-AFN's
    feature encoders and refine pyramids."""
    levels = sum(1 for k in state if k.startswith("image_features.encoders.")
                 and k.endswith(".0.block.2.weight"))
    return {"input_nc": int(state["cond_features.encoders.0.0.block.2.weight"].shape[1]),
            "channels": [int(state[f"image_features.encoders.{i}.0.block.2.weight"].shape[0])
                         for i in range(levels)],
            "fpn_dim": int(state["image_FPN.smooth.0.weight"].shape[0]),
            "head_channels": flow_head_widths(state, "aflow_net.netRefine.0")}


def _afwm_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    if "aflow_net.netMain.0.0.weight" not in state:
        return None
    return encoder_pyramid_args(state)


def afwm_fields(align_corners: bool) -> dict:
    """The registration fields of an AFWM-built warp (defaults with the release's widths and
    ``align_corners``, checks, flags), shared by every architecture that is this network."""
    return {"defaults": {"channels": list(RELEASE_CHANNELS), "fpn_dim": RELEASE_FPN_DIM,
                         "align_corners": align_corners, "cost_volume": "auto",
                         "head_channels": list(RELEASE_HEAD_CHANNELS)},
            "checks": {"channels": width_list(NUM_LEVELS), "fpn_dim": positive_int,
                       "align_corners": is_bool, "cost_volume": is_name,
                       "head_channels": width_list()},
            "flags": (WARP_CHANNELS_FLAG, FPN_DIM_FLAG, HEAD_CHANNELS_FLAG, ALIGN_CORNERS_FLAG),
            "ignored_keys": RELEASE_EXTRA_KEYS}


register(Architecture(
    kind="warp", type="pfafn", build=AFWM, **afwm_fields(align_corners=True),
    from_state=_afwm_from_state,
    description="PF-AFN's AFWM: feature pyramids, local cost volume, AFlowNet"))

register_family(Family(name="pfafn", warp="pfafn", gen="resunet", rounding=False,
                       description="PF-AFN (CVPR 2021): AFWM and the Res-UNet; its test script "
                                   "truncates images to 8 bits"))
