"""The parser-free try-on as one traceable module, the graph that ``utils/export.py`` writes as
ONNX (for ONNX Runtime and other engines) and ``torch.export`` programs.

``TryOnGraph`` is the whole test-time path of ``models.tryon.parser_free_tryon`` as one module
of three tensors in and five out, prepared for tracing:

- every BatchNorm that directly follows a convolution is folded into it
  (``models.fast.fold_batchnorms``); the others open a pre-activation block (BN -> ReLU ->
  conv, the BN's input also feeding the residual sum), where no exact fold exists, and become
  one per-channel multiply-add each (``ChannelAffine``), so the graph has no BatchNormalization
  node at all;
- the cost volumes of the copies use the 'rows' formulation of ``models.correlation``
  (matmuls, pads and reshapes only), which every exporter can trace.

Inputs and outputs, B free (dynamic), H x W fixed at export:

    person          (B, 3, H, W) float32 in [-1, 1]
    garment         (B, 3, H, W) float32 in [-1, 1], need not be masked (the graph masks it)
    garment_mask    (B, 1, H, W) float32 in {0, 1}
    ->
    tryon           (B, 3, H, W) in [-1, 1]
    warped_garment  (B, 3, H, W) in [-1, 1]
    warped_mask     (B, 1, H, W) in [0, 1], the garment mask warped by the same flow
    composite_mask  (B, 1, H, W) in [0, 1], the weight of the warped garment in the try-on
    rendered        (B, 3, H, W) in [-1, 1], the generator's person (shown where the mask is 0)
"""

import copy

import torch
import torch.nn as nn

from models.correlation import set_cost_volume
from models.fast import batchnorm_affine, fold_batchnorms
from models.registry import unwrap
from models.tryon import parser_free_tryon

# Written into every exported file (``metadata_props`` of the ONNX model, ``metadata.json`` of a
# .pt2 program); a reader refuses a file that names another format.
EXPORT_FORMAT = "pfafn-tryon-graph-v1"
INPUT_NAMES = ("person", "garment", "garment_mask")
OUTPUT_NAMES = ("tryon", "warped_garment", "warped_mask", "composite_mask", "rendered")
EXPORT_CORRELATION = "rows"


class ChannelAffine(nn.Module):
    """An eval-mode BatchNorm2d as ``x * scale + shift`` per channel, with
    ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale``."""

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        scale, shift = batchnorm_affine(bn)
        dtype = bn.running_mean.dtype
        self.register_buffer("scale", scale.to(dtype).view(1, -1, 1, 1))
        self.register_buffer("shift", shift.to(dtype).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def batchnorms_to_affine(model: nn.Module) -> int:
    """Replace, in place, every BatchNorm2d of an eval-mode ``model`` by its ``ChannelAffine``.
    Returns how many were replaced."""
    if model.training:
        raise ValueError("batchnorms_to_affine needs an eval-mode model (call .eval() first)")
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.BatchNorm2d:
                setattr(parent, name, ChannelAffine(child))
                replaced += 1
    return replaced


def _plain_copy(model: nn.Module) -> nn.Module:
    """An eval-mode NCHW copy of ``model`` without its wrappers."""
    model = unwrap(model)
    if model.training:
        raise ValueError(f"TryOnGraph needs eval-mode models; {type(model).__name__} is in "
                         f"training mode (call .eval() first)")
    copied = copy.deepcopy(model).requires_grad_(False)
    return copied.to(memory_format=torch.contiguous_format)


class TryOnGraph(nn.Module):
    """Warp module and generator of the parser-free student as one traceable module.

    ``warp``, ``gen``: the loaded models in eval mode (the wrappers of ``torch.compile``, DDP
    and ``models.fast.ChannelsLast`` are looked through). They are copied; the copies are
    contiguous (NCHW), have their BatchNorms folded or turned into ``ChannelAffine``, compute
    their cost volumes as 'rows' and need no gradients. ``forward`` returns the tuple of the
    module docstring, in ``OUTPUT_NAMES``
    order.
    """

    def __init__(self, warp: nn.Module, gen: nn.Module):
        super().__init__()
        self.warp, self.gen = (set_cost_volume(_plain_copy(model), EXPORT_CORRELATION)
                               for model in (warp, gen))
        self.folded = fold_batchnorms(self.warp) + fold_batchnorms(self.gen)
        self.affine = batchnorms_to_affine(self.warp) + batchnorms_to_affine(self.gen)

    @property
    def align_corners(self) -> bool:
        return self.warp.align_corners

    def forward(self, person: torch.Tensor, garment: torch.Tensor,
                garment_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = parser_free_tryon(self.warp, self.gen, person, garment, garment_mask)
        return out.tryon, out.warped, out.warped_edge, out.mask, out.rendered


def example_inputs(height: int, width: int, batch: int = 2, seed: int = 0):
    """Random inputs of the graph's kind: images in [-1, 1] and a 0/1 mask. torch.export
    specialises a dimension seen as 0 or 1, so the batch of the example must be at least 2
    for the exported batch to stay free."""
    generator = torch.Generator().manual_seed(seed)
    person = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    garment = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    mask = (torch.rand(batch, 1, height, width, generator=generator) > 0.5).float()
    return person, garment, mask
