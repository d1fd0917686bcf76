"""Try-on composition, parser-free inference and the tutor image of the teacher.

Composition: the generator outputs 3 rendered-person logits and 1 mask logit;
``m = sigmoid(mask) * warped_edge [* gate]`` and ``tryon = warped * m + tanh(rendered) * (1 - m)``.
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from models.afwm import WarpOutput
from models.flow import sample


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.promote_types(x.dtype, torch.float32))


@dataclass
class Composite:
    """``tryon`` and ``rendered`` (B, 3, H, W) in [-1, 1]; ``mask`` (B, 1, H, W) in [0, 1], the
    weight of the warped garment."""

    tryon: torch.Tensor
    rendered: torch.Tensor
    mask: torch.Tensor


def compose(gen_output: torch.Tensor, warped: torch.Tensor, warped_edge: torch.Tensor,
            gate: Optional[torch.Tensor] = None) -> Composite:
    """Blend the warped garment and the rendered person by the predicted mask.

    ``gen_output`` (B, 4, H, W) raw generator output; ``warped`` (B, 3, H, W);
    ``warped_edge`` (B, 1, H, W); ``gate`` an optional extra (B, 1, H, W) factor on the mask
    (the person's garment region, used by the training stages).
    """
    rendered = torch.tanh(gen_output[:, :3])
    mask = torch.sigmoid(gen_output[:, 3:4]) * warped_edge
    if gate is not None:
        mask = mask * gate
    tryon = warped * mask + rendered * (1 - mask)
    return Composite(tryon=tryon, rendered=rendered, mask=mask)


def warp_edge(edge: torch.Tensor, warp: WarpOutput) -> torch.Tensor:
    """The garment mask (B, 1, H, W) warped by the final flow, zero outside the garment image."""
    return sample(edge, warp.flow, padding_mode="zeros", align_corners=warp.align_corners)


@dataclass
class TryOnResult:
    tryon: torch.Tensor
    warped: torch.Tensor
    warped_edge: torch.Tensor
    rendered: torch.Tensor
    mask: torch.Tensor


def parser_free_tryon(warp_model: nn.Module, gen_model: nn.Module, person: torch.Tensor,
                      garment: torch.Tensor, garment_edge: torch.Tensor) -> TryOnResult:
    """Dress ``person`` (B, 3, H, W) in [-1, 1] in ``garment`` (B, 3, H, W) in [-1, 1], given the
    garment's mask ``garment_edge`` (B, 1, H, W) in {0, 1}: the test-time path of PF-AFN."""
    garment = garment * garment_edge
    warp = warp_model(person, garment)
    warped_edge = warp_edge(garment_edge, warp)
    gen_output = gen_model(torch.cat([person, warp.warped, warped_edge], 1))
    # The mask logit and the composite are computed in float32 (or float64) under autocast.
    out = compose(*(_at_least_float32(x) for x in (gen_output, warp.warped, warped_edge)))
    return TryOnResult(tryon=out.tryon, warped=warp.warped, warped_edge=warped_edge,
                       rendered=out.rendered, mask=out.mask)


@dataclass
class TutorOutput:
    """The teacher's try-on of the unpaired garment: ``image`` (B, 3, H, W), detached, is what
    the parser-free student sees; ``warped_edge`` (B, 1, H, W) marks where that garment lies."""

    image: torch.Tensor
    warped_edge: torch.Tensor
    warp: WarpOutput
    composite: Composite


@torch.no_grad()
def tutor_image(pb_warp: nn.Module, pb_gen: nn.Module, pb_condition: torch.Tensor,
                preserve_region: torch.Tensor, dense_preserve_mask: torch.Tensor,
                unpaired_garment: torch.Tensor, unpaired_edge: torch.Tensor) -> TutorOutput:
    """The frozen parser-based teacher dresses the person in another garment ``c'``.

    Inputs (B, C, H, W): the 45-channel condition, the preserved person pixels, the DensePose
    arm mask, the unpaired garment (already masked, [-1, 1]) and its mask.
    """
    warp = pb_warp(pb_condition, unpaired_garment)
    warped_edge = warp_edge(unpaired_edge, warp)
    gen_input = torch.cat([preserve_region, warp.warped, warped_edge,
                           dense_preserve_mask * (1 - warped_edge)], 1)
    composite = compose(*(_at_least_float32(x) for x in (pb_gen(gen_input), warp.warped,
                                                          warped_edge)))
    return TutorOutput(image=composite.tryon.detach(), warped_edge=warped_edge, warp=warp,
                       composite=composite)
