"""FS-VTON's warp module ("Style-Based Global Appearance Flow", He et al., CVPR 2022): PF-AFN's
feature encoders, refine pyramids and netRefine, with the cost volume and netMain replaced by
StyleGAN2-like modulated convolutions driven by one global style vector.

Module and attribute names follow FS-VTON's released checkpoints (``aflow_net.netStyle.0.conv0
.mlp_class_std.linear.weight_orig``...), so its state dicts load without a key map.

Per level, coarse to fine: the garment feature pre-warped by the coarser flow goes through
``netStyle`` (fpn_dim -> 49 -> 49, each modulated conv followed by LeakyReLU(0.2) x sqrt 2) and
``netF`` (49 -> 128, LeakyReLU x sqrt 2, -> 2, no activation): that is the level's main offset;
then PF-AFN's ``netRefine``. The style vector (B, 256) is computed once per forward from the
coarsest condition and (unwarped) garment features: ``cond_style`` and ``image_style`` are each
a Conv2d(fpn_dim, 128, kernel 8 x 6) without padding and a LeakyReLU(0.1), flattened.

Any size. In FS-VTON's code that kernel covers exactly the 8 x 6 coarsest level of a 256 x 192
input, so no other size runs. Here the coarsest features are first averaged onto an 8 x 6 grid
(``adaptive_avg_pool2d``; the identity at 256 x 192, so the released weights give FS-VTON's
own images there): at 512 x 384 each style cell averages a 2 x 2 block of the 16 x 12 level,
and the style vector stays the global description the modulation was trained on.

Modulated convolution (FS-VTON's ``ModulatedConv2d``): the weight is stored unscaled and
multiplied by sqrt(2 / (fin k k)) at every call (equalised learning rate); the style is
projected to ``fin`` scales by a linear layer whose weight is likewise scaled by
sqrt(2 / latent_dim) (its bias is not); ``w' = s w``, demodulated by
``rsqrt(sum_{fin,kh,kw} w'^2 + 1e-5)``; a convolution with zero padding k // 2 (FS-VTON
groups it by sample; here the scales move onto the input, the same values), then a bias of
shape (1, fout, 1, 1).
"""

import math
from typing import Mapping, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.afwm import (
    ALIGN_CORNERS_FLAG,
    FPN_DIM_FLAG,
    HEAD_CHANNELS_FLAG,
    NUM_LEVELS,
    RELEASE_CHANNELS,
    RELEASE_EXTRA_KEYS,
    RELEASE_FPN_DIM,
    RELEASE_HEAD_CHANNELS,
    WARP_CHANNELS_FLAG,
    CoarseToFineFlow,
    FeatureEncoder,
    RefinePyramid,
    WarpModule,
    encoder_pyramid_args,
    flow_head,
)
from models.registry import (
    Architecture,
    Family,
    is_bool,
    positive_int,
    register,
    register_family,
    width_list,
)

STYLE_DIM = 256            # cond_style (128) + image_style (128)
STYLE_GRID = (8, 6)        # the coarsest level of a 256 x 192 input
CORRELATION_LIKE = 49      # netStyle's width: the cost volume's channel count it replaces
STYLE_FLOW_HIDDEN = 128
LEAKY_GAIN = math.sqrt(2.0)


class EqualLinear(nn.Module):
    """A linear layer whose weight (``weight_orig``) is scaled by sqrt(2 / in_features) at
    every call; the bias is not scaled."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.weight_orig = nn.Parameter(torch.randn(out_features, in_features))
        self.scale = math.sqrt(2.0 / in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_orig * self.scale, self.bias)


class StyleProjection(nn.Module):
    """The style vector -> one scale per input channel of a modulated convolution."""

    def __init__(self, latent_dim: int, channels: int):
        super().__init__()
        self.linear = EqualLinear(latent_dim, channels)

    def forward(self, style: torch.Tensor) -> torch.Tensor:
        return self.linear(style)


class ModulatedConv2d(nn.Module):
    """A k x k convolution whose weight is modulated by the style and demodulated (module
    docstring). (B, fin, H, W) and (B, latent_dim) -> (B, fout, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 latent_dim: int = STYLE_DIM):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, \
            kernel_size
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.mlp_class_std = StyleProjection(latent_dim, in_channels)
        self.weight_scale = math.sqrt(2.0 / (in_channels * kernel_size * kernel_size))

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # conv(x, s w) = conv(s x, w) per sample, and the demodulation of s w is
        # rsqrt(sum_fin s^2 sum_k w^2 + eps) per (sample, output channel): one convolution
        # shared by the batch instead of FS-VTON's grouped one (the same values; it also
        # exports with a free batch size).
        scales = self.mlp_class_std(style)                                   # (B, fin)
        weight = self.weight * self.weight_scale                             # (fout, fin, k, k)
        demodulation = torch.rsqrt(scales.pow(2) @ weight.pow(2).sum(dim=(2, 3)).t() + 1e-5)
        out = F.conv2d(x * scales[:, :, None, None], weight, padding=self.kernel_size // 2)
        return out * demodulation[:, :, None, None] + self.bias


class StyledConvBlock(nn.Module):
    """netStyle: two modulated 3x3 convolutions, each followed by LeakyReLU(0.2) x sqrt 2."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int = STYLE_DIM):
        super().__init__()
        self.conv0 = ModulatedConv2d(in_channels, out_channels, 3, latent_dim)
        self.conv1 = ModulatedConv2d(out_channels, out_channels, 3, latent_dim)

    def forward(self, x, style):
        x = F.leaky_relu(self.conv0(x, style), 0.2) * LEAKY_GAIN
        return F.leaky_relu(self.conv1(x, style), 0.2) * LEAKY_GAIN


class StyledFlowHead(nn.Module):
    """netF: a modulated conv to ``hidden`` channels with LeakyReLU(0.2) x sqrt 2, then one to
    the 2-channel pixel offset, without activation."""

    def __init__(self, in_channels: int, hidden: int = STYLE_FLOW_HIDDEN,
                 latent_dim: int = STYLE_DIM):
        super().__init__()
        self.conv0 = ModulatedConv2d(in_channels, hidden, 3, latent_dim)
        self.conv1 = ModulatedConv2d(hidden, 2, 3, latent_dim)

    def forward(self, x, style):
        return self.conv1(F.leaky_relu(self.conv0(x, style), 0.2) * LEAKY_GAIN, style)


class StyleFlowNet(CoarseToFineFlow):
    """FS-VTON's flow network (module docstring)."""

    def __init__(self, num_levels: int = 5, fpn_dim: int = RELEASE_FPN_DIM,
                 align_corners: bool = True,
                 head_channels: Sequence[int] = RELEASE_HEAD_CHANNELS,
                 style_grid: Sequence[int] = STYLE_GRID):
        super().__init__(align_corners)
        self.style_grid = tuple(style_grid)
        self.netRefine = nn.ModuleList(flow_head(2 * fpn_dim, head_channels)
                                       for _ in range(num_levels))
        self.netStyle = nn.ModuleList(StyledConvBlock(fpn_dim, CORRELATION_LIKE)
                                      for _ in range(num_levels))
        self.netF = nn.ModuleList(StyledFlowHead(CORRELATION_LIKE) for _ in range(num_levels))
        half = STYLE_DIM // 2
        self.cond_style = nn.Sequential(nn.Conv2d(fpn_dim, half, self.style_grid),
                                        nn.LeakyReLU(0.1))
        self.image_style = nn.Sequential(nn.Conv2d(fpn_dim, half, self.style_grid),
                                         nn.LeakyReLU(0.1))

    def _on_style_grid(self, feature: torch.Tensor) -> torch.Tensor:
        size = tuple(feature.shape[-2:])
        if size == self.style_grid:
            return feature
        if all(side % cell == 0 for side, cell in zip(size, self.style_grid)):
            # An exact block average (what exporters take) where the level tiles the grid.
            return F.avg_pool2d(feature, [side // cell for side, cell in
                                          zip(size, self.style_grid)])
        return F.adaptive_avg_pool2d(feature, self.style_grid)

    def prepare(self, garment_pyramid, cond_pyramid) -> torch.Tensor:
        """The style vector (B, 256) from the coarsest condition and garment features."""
        batch = cond_pyramid[-1].shape[0]
        cond = self.cond_style(self._on_style_grid(cond_pyramid[-1])).view(batch, -1)
        garment = self.image_style(self._on_style_grid(garment_pyramid[-1])).view(batch, -1)
        return torch.cat([cond, garment], 1)

    def main_offset(self, level, prewarped, cond_feature, style):
        return self.netF[level](self.netStyle[level](prewarped, style), style)


class StyleAFWM(WarpModule):
    """FS-VTON's warp module: PF-AFN's encoders and refine pyramids with ``StyleFlowNet``.

    Args:
        input_nc: channels of the condition input (45 parser-based, 3 parser-free).
        channels, fpn_dim, head_channels: as PF-AFN's ``AFWM`` (the release's by default).
        align_corners: sampling convention; FS-VTON ran on PyTorch 1.1, whose grid_sample
            behaved as True, which its released weights need.
    """

    def __init__(self, input_nc: int, channels: Sequence[int] = RELEASE_CHANNELS,
                 fpn_dim: int = RELEASE_FPN_DIM, align_corners: bool = True,
                 head_channels: Sequence[int] = RELEASE_HEAD_CHANNELS,
                 style_grid: Optional[Sequence[int]] = STYLE_GRID):
        super().__init__()
        self.input_nc = input_nc
        self.arch = {"kind": "warp", "type": "fsvton", "input_nc": input_nc,
                     "channels": list(channels), "fpn_dim": fpn_dim,
                     "align_corners": bool(align_corners), "head_channels": list(head_channels),
                     "style_grid": list(style_grid)}
        self.image_features = FeatureEncoder(3, channels)
        self.cond_features = FeatureEncoder(input_nc, channels)
        self.image_FPN = RefinePyramid(channels, fpn_dim)
        self.cond_FPN = RefinePyramid(channels, fpn_dim)
        self.aflow_net = StyleFlowNet(len(channels), fpn_dim, align_corners, head_channels,
                                      style_grid)
        self.stride = 2 ** len(channels)

    def pyramids(self, cond, garment):
        return (self.cond_FPN(self.cond_features(cond)),
                self.image_FPN(self.image_features(garment)))


# ---------------------------------------------------------------------------------------------
# Registration: FS-VTON's warp and its family


def _fsvton_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    if "aflow_net.netStyle.0.conv0.weight" not in state:
        return None
    args = encoder_pyramid_args(state)
    args["style_grid"] = list(state["aflow_net.cond_style.0.weight"].shape[-2:])
    return args


register(Architecture(
    kind="warp", type="fsvton", build=StyleAFWM,
    defaults={"channels": list(RELEASE_CHANNELS), "fpn_dim": RELEASE_FPN_DIM,
              "align_corners": True, "head_channels": list(RELEASE_HEAD_CHANNELS),
              "style_grid": list(STYLE_GRID)},
    checks={"channels": width_list(NUM_LEVELS), "fpn_dim": positive_int,
            "align_corners": is_bool, "head_channels": width_list(),
            "style_grid": width_list(2)},
    flags=(WARP_CHANNELS_FLAG, FPN_DIM_FLAG, HEAD_CHANNELS_FLAG, ALIGN_CORNERS_FLAG),
    from_state=_fsvton_from_state, ignored_keys=RELEASE_EXTRA_KEYS,
    description="FS-VTON's style-based flow: PF-AFN's pyramids, modulated-conv flow heads"))

register_family(Family(name="fsvton", warp="fsvton", gen="resunet", rounding=True,
                       description="FS-VTON (CVPR 2022): the style-based flow and PF-AFN's "
                                   "Res-UNet; its test script rounds images to 8 bits"))
