"""DCI-VTON's warp ("Taming the Power of Diffusion Models for High-Quality Virtual Try-On with
Appearance Flow", Gou et al., ACM MM 2023): PF-AFN's AFWM with a 16-channel person condition,
whose warped garments DCI-VTON's diffusion model (and other diffusion try-on trainers) take as
input.

The network is PF-AFN's parser-free class unchanged (same keys; ``cond_features`` takes 16
channels): the 13 one-hot groups of VITON-HD's ``image-parse-agnostic-v3.2`` labels and the 3
channels of its ``image-densepose`` rendering (``data/dcivton.py`` reads them). Its authors ran
it on PyTorch 1.11, where ``grid_sample`` and ``interpolate`` default to
``align_corners=False``, while PF-AFN's ``apply_offset`` still turns pixel offsets into
positions with the align_corners=True normalisation ``x / ((W - 1) / 2) - 1``: so every
sampling here is align_corners=False and every offset-to-position is the True one.

Its released ``warp_viton.pth`` is a plain state dict saved in training (it may carry
``aflow_net.weight``, the training-time flow filters). Since PF-AFN's own architecture fits
those keys too, this registration ``refines`` PF-AFN's: a 16-channel AFWM state dict is
recognised as DCI-VTON's warp.
"""

from typing import Mapping, Optional, Sequence

import torch

from models.afwm import (
    AFWM,
    RELEASE_CHANNELS,
    RELEASE_FPN_DIM,
    RELEASE_HEAD_CHANNELS,
    afwm_fields,
    encoder_pyramid_args,
)
from models.registry import Architecture, register

# 13 label groups + the 3 channels of the DensePose rendering.
CONDITION_CHANNELS = 16


class DciVtonWarp(AFWM):
    """PF-AFN's AFWM as DCI-VTON trained and ran it (module docstring).

    ``forward(cond, garment, ...)`` as ``AFWM``'s: ``cond`` (B, 16, H, W), the one-hot label
    groups in {0, 1} then the DensePose rendering in [-1, 1]; ``garment`` (B, 3, H, W) in
    [-1, 1], not multiplied by its mask (DCI-VTON's loop feeds the product photo as it is).
    ``align_corners``: the convention of every sampling (False, as DCI-VTON's weights need);
    offsets become positions with the True normalisation whatever it is.
    """

    def __init__(self, input_nc: int = CONDITION_CHANNELS,
                 channels: Sequence[int] = RELEASE_CHANNELS, fpn_dim: int = RELEASE_FPN_DIM,
                 align_corners: bool = False, cost_volume: str = "auto",
                 head_channels: Sequence[int] = RELEASE_HEAD_CHANNELS):
        super().__init__(input_nc, channels, fpn_dim, align_corners=align_corners,
                         cost_volume=cost_volume, head_channels=head_channels)
        # PF-AFN's apply_offset, unchanged under PyTorch 1.11's sampling default.
        self.aflow_net.offset_align_corners = True
        self.arch = {"kind": "warp", "type": "dcivton", "input_nc": input_nc,
                     "channels": list(channels), "fpn_dim": fpn_dim,
                     "align_corners": bool(align_corners), "cost_volume": cost_volume,
                     "head_channels": list(head_channels)}


def _dcivton_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    if "aflow_net.netMain.0.0.weight" not in state:
        return None
    args = encoder_pyramid_args(state)
    return args if args["input_nc"] == CONDITION_CHANNELS else None


register(Architecture(
    kind="warp", type="dcivton", build=DciVtonWarp, **afwm_fields(align_corners=False),
    from_state=_dcivton_from_state, refines="pfafn",
    condition="dcivton", condition_channels=CONDITION_CHANNELS, garment_masked=False,
    description="DCI-VTON's warp: PF-AFN's AFWM on parse-agnostic labels and DensePose "
                "(align_corners False)"))
