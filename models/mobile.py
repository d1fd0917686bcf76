"""DM-VTON's mobile networks ("Distilled Mobile Real-time Virtual Try-On", Nguyen-Ngoc et al.,
2023): a warp module whose feature pyramids come from MobileNetV2 "dynamic FPN" extractors, on
PF-AFN's flow network, and a MobileNetV2 U-Net generator.

Module and attribute names follow DM-VTON's released checkpoints (``image_mobile.
inverted_residual_blocks.3.0.conv.4.weight``, ``backbone.features.5.conv.0.weight``...), so its
state dicts load without a key map.

Extractor (``MobileFPN``), for a 256 x 192 input: a 3x3 convolution at full resolution
(stride 1) to 32 channels, then seven inverted residual blocks (expansion t, width c, stride
s) = (1, 16, 1), (6, 24, 2), (6, 32, 2), (6, 64, 2), (6, 96, 2), (6, 160, 2), (6, 320, 1), every
one with its 1x1 expansion convolution (even for t = 1) and none with a residual connection
(no block keeps both its size and width). The outputs of the five stride-2 blocks (128 x 96 ...
8 x 6) get 1x1 lateral convolutions to ``fpn_dim``; the last block is averaged to 1 x 1 and a 1x1
convolution gives the top of the pyramid, which is added to each finer lateral after a bilinear
upsampling (align_corners False) coarse to fine; one 3x3 smoothing convolution, shared by all
five levels (the release's state dict holds it five times, as aliases), ends each level. The
pyramid has PF-AFN's five resolutions, fine to coarse, at ``fpn_dim`` channels.

``width_mult`` scales every block's width (int(c x width_mult)), ``fpn_dim`` the pyramid, and
``head_channels`` the flow heads: DM-VTON's own network is 1.0, 256 and (128, 64, 32); a
narrower student of this project shrinks all three.

Sampling. DM-VTON's ``align_corners`` flag governs every grid_sample, but its pixel offsets are
always turned into sampling positions with the align_corners=True convention; its test script
passes the flag (True).
"""

from typing import Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.afwm import (
    ALIGN_CORNERS_FLAG,
    FPN_DIM_FLAG,
    HEAD_CHANNELS_FLAG,
    RELEASE_EXTRA_KEYS,
    RELEASE_HEAD_CHANNELS,
    AFlowNet,
    WarpModule,
    flow_head_widths,
)
from models.registry import (
    ArchFlag,
    Architecture,
    Family,
    at_most,
    is_bool,
    is_name,
    positive_int,
    register,
    register_family,
    width_list,
)

# (expansion, width, stride) of the extractor's blocks.
FPN_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 32, 2), (6, 64, 2), (6, 96, 2), (6, 160, 2),
              (6, 320, 1))
FPN_FIRST_WIDTH = 32
DMVTON_FPN_DIM = 256


def inverted_residual(inp: int, oup: int, stride: int, expansion: int,
                      always_expand: bool) -> nn.Sequential:
    """MobileNetV2's block as a ``conv`` sequence: 1x1 expansion to inp x expansion (omitted
    for expansion 1 unless ``always_expand``), BN, ReLU6, depthwise 3x3 (``stride``), BN,
    ReLU6, 1x1 projection to ``oup``, BN. None of the blocks used here has a residual."""
    hidden = inp * expansion
    layers = []
    if expansion != 1 or always_expand:
        layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(inplace=True)]
    layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
               nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
               nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """``inverted_residual`` under the attribute name ``conv`` (the released keys')."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int, always_expand: bool):
        super().__init__()
        self.conv = inverted_residual(inp, oup, stride, expansion, always_expand)

    def forward(self, x):
        return self.conv(x)


class MobileFPN(nn.Module):
    """DM-VTON's MobileNetV2 "dynamic FPN" (module docstring): (B, input_nc, H, W) -> five
    (B, fpn_dim, H / 2**k, W / 2**k) maps, k = 1 .. 5, fine to coarse."""

    def __init__(self, input_nc: int, fpn_dim: int = DMVTON_FPN_DIM, width_mult: float = 1.0):
        super().__init__()
        width = int(FPN_FIRST_WIDTH * width_mult)
        self.first_layer = nn.Sequential(nn.Conv2d(input_nc, width, 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(width), nn.ReLU6(inplace=True))
        blocks, lateral_widths = [], []
        for expansion, channels, stride in FPN_BLOCKS:
            out = int(channels * width_mult)
            blocks.append(nn.Sequential(InvertedResidual(width, out, stride, expansion, True)))
            if stride > 1:
                lateral_widths.append(out)
            width = out
        self.inverted_residual_blocks = nn.ModuleList(blocks)
        self.average_pool = nn.AdaptiveAvgPool2d(1)
        self.top_layer = nn.Conv2d(width, fpn_dim, 1)
        self.lateral_layers = nn.ModuleList(nn.Conv2d(c, fpn_dim, 1) for c in lateral_widths)
        # One convolution smooths every level; the list names it once per level, as the
        # released state dict does.
        smooth = nn.Conv2d(fpn_dim, fpn_dim, 3, 1, 1)
        self.smooth_layers = nn.ModuleList([smooth] * len(lateral_widths))
        self._strides = [stride for _, _, stride in FPN_BLOCKS]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.first_layer(x)
        laterals = []
        for block, stride in zip(self.inverted_residual_blocks, self._strides):
            x = block(x)
            if stride > 1 and len(laterals) < len(self.lateral_layers):
                laterals.append(self.lateral_layers[len(laterals)](x))
        merged = self.top_layer(self.average_pool(x))
        levels = []
        for lateral in reversed(laterals):
            merged = F.interpolate(merged, size=lateral.shape[-2:], mode="bilinear",
                                   align_corners=False) + lateral
            levels.append(merged)
        smoothed = [smooth(level) for smooth, level in zip(self.smooth_layers, levels)]
        return smoothed[::-1]


class MobileAFWM(WarpModule):
    """DM-VTON's warp module: two ``MobileFPN`` extractors and PF-AFN's ``AFlowNet``.

    Args:
        input_nc: channels of the condition input (45 parser-based, 3 parser-free).
        fpn_dim, width_mult, head_channels: the widths (module docstring); DM-VTON's: 256,
            1.0, (128, 64, 32).
        align_corners: the sampling convention (DM-VTON's test script: True).
        cost_volume: implementation of the cost volume (``models.correlation``).
    """

    def __init__(self, input_nc: int, fpn_dim: int = DMVTON_FPN_DIM, width_mult: float = 1.0,
                 align_corners: bool = True, cost_volume: str = "auto",
                 head_channels: Sequence[int] = RELEASE_HEAD_CHANNELS):
        super().__init__()
        self.input_nc = input_nc
        self.arch = {"kind": "warp", "type": "mobile", "input_nc": input_nc,
                     "fpn_dim": fpn_dim, "width_mult": float(width_mult),
                     "align_corners": bool(align_corners), "cost_volume": cost_volume,
                     "head_channels": list(head_channels)}
        self.image_mobile = MobileFPN(3, fpn_dim, width_mult)
        self.cond_mobile = MobileFPN(input_nc, fpn_dim, width_mult)
        self.aflow_net = AFlowNet(len(self.image_mobile.lateral_layers), fpn_dim, align_corners,
                                  cost_volume, head_channels, offset_align_corners=True)

    def pyramids(self, cond, garment):
        return self.cond_mobile(cond), self.image_mobile(garment)


# ---------------------------------------------------------------------------------------------
# Generator

# (expansion, width, stride) of the backbone's blocks, torchvision's MobileNetV2 widths.
UNET_BLOCKS = ((1, 16, 1), (6, 24, 2), (6, 32, 2), (6, 64, 2), (6, 96, 1), (6, 160, 2),
               (6, 320, 1))
UNET_FIRST_WIDTH = 32
UNET_LAST_WIDTH = 512


class MobileBackbone(nn.Module):
    """``features``: conv3x3 stride 2 to 32 (BN, ReLU6), the seven blocks of ``UNET_BLOCKS``
    (the expansion convolution omitted for t = 1), conv1x1 to 512 (BN, ReLU6)."""

    def __init__(self, input_nc: int):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(input_nc, UNET_FIRST_WIDTH, 3, 2, 1, bias=False),
                                nn.BatchNorm2d(UNET_FIRST_WIDTH), nn.ReLU6(inplace=True))]
        width = UNET_FIRST_WIDTH
        for expansion, channels, stride in UNET_BLOCKS:
            layers.append(InvertedResidual(width, channels, stride, expansion, False))
            width = channels
        layers.append(nn.Sequential(nn.Conv2d(width, UNET_LAST_WIDTH, 1, bias=False),
                                    nn.BatchNorm2d(UNET_LAST_WIDTH), nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)


class MobileUNet(nn.Module):
    """DM-VTON's MobileNetV2 U-Net generator: ``input_nc`` channels in, ``output_nc`` out (3
    rendered-person logits + 1 mask logit). Four up steps, each a 4x4 stride-2 transposed
    convolution, the skip features of the backbone at that size concatenated before it, and an
    inverted residual block (t = 6); a nearest x2 upsampling and a 3x3 convolution without bias
    give the output at the input size. H and W must be multiples of 32."""

    stride = 32

    def __init__(self, input_nc: int, output_nc: int = 4):
        super().__init__()
        self.input_nc = input_nc
        self.arch = {"kind": "gen", "type": "mobile", "input_nc": input_nc,
                     "output_nc": output_nc}
        self.backbone = MobileBackbone(input_nc)
        ups = ((UNET_LAST_WIDTH, 96), (96, 32), (32, 24), (24, 16))
        for index, (inp, out) in enumerate(ups, start=1):
            setattr(self, f"dconv{index}", nn.ConvTranspose2d(inp, out, 4, stride=2, padding=1))
            setattr(self, f"invres{index}", InvertedResidual(2 * out, out, 1, 6, False))
        self.conv_last = nn.Conv2d(16, output_nc, 3, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.stride or width % self.stride:
            raise ValueError(f"MobileUNet needs height and width divisible by {self.stride}, "
                             f"got {height}x{width}")
        if x.shape[1] != self.input_nc:
            raise ValueError(f"generator was built for {self.input_nc} input channels, "
                             f"got {x.shape[1]}")
        features = self.backbone.features
        skips = []
        # Skips after features 1 (stride 2), 2 (4), 3 (8) and 5 (16); features 6-8 reach 32.
        for index, layer in enumerate(features):
            x = layer(x)
            if index in (1, 2, 3, 5):
                skips.append(x)
        for index, skip in enumerate(reversed(skips), start=1):
            up = getattr(self, f"dconv{index}")(x)
            x = getattr(self, f"invres{index}")(torch.cat([skip, up], 1))
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv_last(x)


# ---------------------------------------------------------------------------------------------
# Registration: DM-VTON's warp and generator, and its family


def _mobile_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    first = state.get("image_mobile.first_layer.0.weight")
    if first is None:
        return None
    return {"input_nc": int(state["cond_mobile.first_layer.0.weight"].shape[1]),
            "fpn_dim": int(state["image_mobile.top_layer.weight"].shape[0]),
            "width_mult": int(first.shape[0]) / FPN_FIRST_WIDTH,
            "head_channels": flow_head_widths(state, "aflow_net.netRefine.0")}


def _mobile_unet_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    first = state.get("backbone.features.0.0.weight")
    if first is None or "conv_last.weight" not in state:
        return None
    return {"input_nc": int(first.shape[1]), "output_nc": int(state["conv_last.weight"].shape[0])}


# Wider than 4x, a MobileNetV2 block outgrows the PF-AFN pyramids it replaces many times over.
MAX_WIDTH_MULT = 4.0

register(Architecture(
    kind="warp", type="mobile", build=MobileAFWM,
    defaults={"fpn_dim": DMVTON_FPN_DIM, "width_mult": 1.0, "align_corners": True,
              "cost_volume": "auto", "head_channels": list(RELEASE_HEAD_CHANNELS)},
    checks={"fpn_dim": positive_int, "width_mult": at_most(MAX_WIDTH_MULT),
            "align_corners": is_bool, "cost_volume": is_name, "head_channels": width_list()},
    flags=(FPN_DIM_FLAG,
           ArchFlag("mobile_width", "width_mult", float,
                    "width multiplier of the mobile warp's MobileNetV2 blocks, at most 4"),
           HEAD_CHANNELS_FLAG, ALIGN_CORNERS_FLAG),
    from_state=_mobile_from_state, ignored_keys=RELEASE_EXTRA_KEYS,
    description="DM-VTON's MobileNetV2 feature pyramids on PF-AFN's AFlowNet"))

register(Architecture(
    kind="gen", type="mobile", build=MobileUNet, defaults={"output_nc": 4},
    checks={"output_nc": positive_int}, from_state=_mobile_unet_from_state,
    description="DM-VTON's MobileNetV2 U-Net generator"))

register_family(Family(name="dmvton", warp="mobile", gen="mobile", rounding=True,
                       description="DM-VTON (2023): MobileNetV2 pyramids and U-Net; its test "
                                   "script rounds images to 8 bits"))
