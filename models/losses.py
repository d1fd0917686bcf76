"""Losses of PF-AFN: VGG perceptual, TV, second-order flow smoothness, the multi-level warp
loss and the try-on losses of the generator stages (the parser-free student's distillation is
in ``models/distillation.py``).

Every function takes explicit tensors and returns scalars; nothing depends on the batch size or
the image size (the release hard-coded both).
"""

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.afwm import WarpLevel
from models.flow import downsample_to_level

# relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of torchvision's vgg19().features
VGG_SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))
VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
SMOOTH_EPSILON = 1e-3


class VGGLoss(nn.Module):
    """Sum over relu1_1..relu5_1 of ``w_k * L1(phi_k(x), phi_k(y).detach())``.

    ``features``: torchvision's VGG19 ``features`` (ImageNet weights for the paper's loss;
    ``utils/training/parts.py`` finds and loads them). Inputs are fed as they are, in [-1, 1],
    as the release does (no ImageNet renormalisation).
    ``num_levels`` < 5 keeps only the first levels (a cheaper loss for small CPU runs); 0 makes
    the loss identically zero and switches it off: the losses below then leave their ``*_vgg``
    terms out rather than logging zeros.
    """

    def __init__(self, features: Optional[nn.Sequential], num_levels: int = len(VGG_SLICES)):
        super().__init__()
        if not 0 <= num_levels <= len(VGG_SLICES):
            raise ValueError(f"VGG levels must be 0..{len(VGG_SLICES)}, got {num_levels}")
        self.slices = nn.ModuleList(features[a:b] for a, b in VGG_SLICES[:num_levels])

    @property
    def enabled(self) -> bool:
        return len(self.slices) > 0

    def train(self, mode: bool = True):
        return super().train(False)  # the frozen network always runs in eval mode

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # One pass over the stacked pair halves the number of kernel launches.
        loss = x.new_zeros(())
        if not len(self.slices):
            return loss
        h = torch.cat([x, y], 0)
        for weight, block in zip(VGG_WEIGHTS, self.slices):
            # Deviation from the release on current PyTorch: a slice whose max-pool would give an
            # empty map (relu5_1 of the 16x12 coarsest level at 256x192) adds nothing instead of
            # raising "Output size is too small".
            if min(h.shape[-2:]) < 2 and any(isinstance(m, nn.MaxPool2d) for m in block):
                break
            h = block(h)
            hx, hy = h.chunk(2, 0)
            loss = loss + weight * F.l1_loss(hx, hy.detach())
        return loss


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """mean |d/dh x| + mean |d/dw x| of a (B, C, H, W) tensor."""
    vertical = (x[:, :, 1:] - x[:, :, :-1]).abs().mean()
    return vertical + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


def second_order_smoothness(diff: torch.Tensor) -> torch.Tensor:
    """Robust penalty ``mean((d^2 + eps^2)^0.45)`` of second-order flow differences."""
    return (diff.pow(2) + SMOOTH_EPSILON ** 2).pow(0.45).mean()


def warp_loss(levels: Sequence[WarpLevel], person_clothes: torch.Tensor,
              person_clothes_edge: torch.Tensor, vgg: VGGLoss) -> dict[str, torch.Tensor]:
    """The multi-level warp loss of PF-AFN (spec §3), split into weighted named terms.

    ``person_clothes`` (B, 3, H, W) in [-1, 1] and ``person_clothes_edge`` (B, 1, H, W) in {0, 1}
    are the full-size targets. Returns {'warp_l1', 'warp_vgg', 'warp_edge', 'warp_smooth',
    'warp_tv'} ('warp_vgg' only where ``vgg`` is enabled); their sum is the loss.
    """
    num_levels = len(levels)
    names = ("warp_l1", "warp_vgg", "warp_edge", "warp_smooth", "warp_tv")
    terms = {name: person_clothes.new_zeros(()) for name in names
             if vgg.enabled or name != "warp_vgg"}
    for i, level in enumerate(levels):
        weight = i + 1
        target = downsample_to_level(person_clothes, i, num_levels)
        target_edge = downsample_to_level(person_clothes_edge, i, num_levels)
        terms["warp_l1"] = terms["warp_l1"] + weight * F.l1_loss(level.warped_garment, target)
        if vgg.enabled:
            terms["warp_vgg"] = terms["warp_vgg"] + weight * 0.2 * vgg(level.warped_garment,
                                                                       target)
        terms["warp_edge"] = terms["warp_edge"] + weight * 2 * F.l1_loss(level.warped_edge,
                                                                         target_edge)
        smooth = second_order_smoothness(level.flow_dx) + second_order_smoothness(level.flow_dy)
        terms["warp_smooth"] = terms["warp_smooth"] + weight * 6 * smooth
        tv = total_variation(level.delta_main) + total_variation(level.delta_refine)
        terms["warp_tv"] = terms["warp_tv"] + 0.01 * tv
    return terms


def tryon_loss(tryon: torch.Tensor, rendered: torch.Tensor, mask: torch.Tensor,
               person: torch.Tensor, vgg: VGGLoss) -> dict[str, torch.Tensor]:
    """Generator loss of the end-to-end stages: ``5 L1(tryon, I) + VGG(tryon, I) +
    5 L1(rendered, I) + VGG(rendered, I) + mean|1 - m|``, as named weighted terms (no
    ``*_vgg`` where ``vgg`` is switched off)."""
    terms = {"gen_l1": 5 * F.l1_loss(tryon, person)}
    if vgg.enabled:
        terms["gen_vgg"] = vgg(tryon, person)
    terms["render_l1"] = 5 * F.l1_loss(rendered, person)
    if vgg.enabled:
        terms["render_vgg"] = vgg(rendered, person)
    terms["mask_l1"] = (1 - mask).abs().mean()
    return terms


def skin_loss(rendered: torch.Tensor, person: torch.Tensor, skin: torch.Tensor, vgg: VGGLoss,
              l1_weight: float, vgg_weight: float) -> dict[str, torch.Tensor]:
    """Stage-4 skin terms on the region the tutor's garment covered but the person's does not:
    ``l1_weight L1(rendered s, I s) + vgg_weight VGG(rendered s, I s)`` (no 'skin_vgg' where
    ``vgg`` is switched off; a zero ``vgg_weight`` of an enabled loss is logged as a zero)."""
    rendered_skin, person_skin = rendered * skin, person * skin
    terms = {"skin_l1": l1_weight * F.l1_loss(rendered_skin, person_skin)}
    if vgg.enabled:
        terms["skin_vgg"] = vgg_weight * vgg(rendered_skin, person_skin)
    return terms
