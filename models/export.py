"""The parser-free try-on as one portable graph: ONNX (for ONNX Runtime and other engines) and
``torch.export`` programs.

``TryOnGraph`` is the whole test-time path of ``models.tryon.parser_free_tryon`` as one module
of three tensors in and five out, prepared for tracing:

- every BatchNorm that directly follows a convolution is folded into it
  (``models.fast.fold_batchnorms``); the others open a pre-activation block (BN -> ReLU ->
  conv, the BN's input also feeding the residual sum), where no exact fold exists, and become
  one per-channel multiply-add each (``ChannelAffine``), so the graph has no BatchNormalization
  node at all;
- the cost volume uses the 'rows' formulation of ``models.correlation`` (matmuls, pads and
  reshapes only), which every exporter can trace.

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
import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping, Optional

import torch
import torch.nn as nn

import models.correlation as correlation
from models.fast import ChannelsLast, batchnorm_affine, fold_batchnorms
from models.tryon import parser_free_tryon
from common.atomic import write_atomic
from utils.checkpoint import unwrap

# Written into every exported file (``metadata_props`` of the ONNX model, ``metadata.json`` of a
# .pt2 program); a reader refuses a file that names another format.
EXPORT_FORMAT = "pfafn-tryon-graph-v1"
INPUT_NAMES = ("person", "garment", "garment_mask")
OUTPUT_NAMES = ("tryon", "warped_garment", "warped_mask", "composite_mask", "rendered")
# The dynamo exporter writes opset 18 or newer. 18 is the oldest it emits (so the widest
# choice of runtimes) and has GridSample (since opset 16) with align_corners and the 'border'
# and 'zeros' padding modes the warp needs.
DEFAULT_OPSET = 18
EXPORT_CORRELATION = "rows"
PT2_METADATA = "metadata.json"


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


@contextmanager
def correlation_implementation(name: str):
    """Run the enclosed code with ``name`` as the cost volume's default implementation."""
    previous = correlation.set_default_implementation(name)
    try:
        yield
    finally:
        correlation.set_default_implementation(previous)


def _plain_copy(model: nn.Module) -> nn.Module:
    """An eval-mode NCHW copy of ``model`` without its inference wrappers."""
    model = unwrap(model)
    while isinstance(model, ChannelsLast):
        model = unwrap(model.model)
    if model.training:
        raise ValueError(f"TryOnGraph needs eval-mode models; {type(model).__name__} is in "
                         f"training mode (call .eval() first)")
    copied = copy.deepcopy(model).requires_grad_(False)
    return copied.to(memory_format=torch.contiguous_format)


class TryOnGraph(nn.Module):
    """Warp module and generator of the parser-free student as one traceable module.

    ``warp``, ``gen``: the loaded models in eval mode (the wrappers of ``torch.compile``, DDP
    and ``models.fast.ChannelsLast`` are looked through). They are copied; the copies are
    contiguous (NCHW), have their BatchNorms folded or turned into ``ChannelAffine`` and need
    no gradients. ``forward`` returns the tuple of the module docstring, in ``OUTPUT_NAMES``
    order.
    """

    def __init__(self, warp: nn.Module, gen: nn.Module):
        super().__init__()
        self.warp, self.gen = (_plain_copy(model) for model in (warp, gen))
        self.folded = fold_batchnorms(self.warp) + fold_batchnorms(self.gen)
        self.affine = batchnorms_to_affine(self.warp) + batchnorms_to_affine(self.gen)

    @property
    def align_corners(self) -> bool:
        return self.warp.align_corners

    def forward(self, person: torch.Tensor, garment: torch.Tensor,
                garment_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with correlation_implementation(EXPORT_CORRELATION):
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


def capture(graph: TryOnGraph, height: int, width: int) -> torch.export.ExportedProgram:
    """``torch.export`` the graph for (B, C, ``height``, ``width``) inputs with B dynamic."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        return torch.export.export(graph, example_inputs(height, width),
                                   dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_metadata(graph: TryOnGraph, height: int, width: int,
                   sources: Optional[Mapping[str, str]] = None) -> dict:
    """The key-value strings stored with an export: the format tag, the input size, the
    sampling convention, the architecture's sizes and the source checkpoints (path and
    SHA-256 of each file in ``sources``, e.g. {'warp_checkpoint': PATH})."""
    warp = graph.warp
    encoder_widths = [level[0].block[-1].out_channels for level in warp.image_features.encoders]
    meta = {
        "format": EXPORT_FORMAT,
        "height": str(height),
        "width": str(width),
        "align_corners": "true" if graph.align_corners else "false",
        "inputs": ",".join(INPUT_NAMES),
        "outputs": ",".join(OUTPUT_NAMES),
        "warp_channels": json.dumps(encoder_widths),
        "fpn_dim": str(warp.image_FPN.smooth[0].out_channels),
        "ngf": str(graph.gen.model.model[0].out_channels),
        "correlation": EXPORT_CORRELATION,
        "torch_version": torch.__version__,
    }
    digests = {}   # one stage-4 file is often both sources: hash it once
    for key, path in (sources or {}).items():
        meta[key] = str(path)
        if path not in digests:
            digests[path] = file_sha256(path)
        meta[f"{key}_sha256"] = digests[path]
    return meta


def _write_atomic(path: Path, write) -> None:
    # A failed or interrupted export leaves no half-written file under the final name; the
    # temporary name keeps the suffix, as torch.export.save expects a .pt2 name.
    write_atomic(path, write)


def save_onnx(program: torch.export.ExportedProgram, path: str | os.PathLike,
              metadata: Mapping[str, str], opset: int = DEFAULT_OPSET) -> None:
    """Convert a captured program to ONNX, add ``metadata`` as ``metadata_props``, check it
    with ``onnx.checker`` and write it as one self-contained file."""
    import onnx
    # The dynamo (torch.export-based) exporter: the batch stays a symbolic dimension checked by
    # torch.export, the graph comes out constant-folded, and the same capture serves .pt2.
    # The TorchScript exporter (dynamo=False) is deprecated and leaves Shape/Identity chains.
    onnx_program = torch.onnx.export(program, dynamo=True, opset_version=opset,
                                     input_names=list(INPUT_NAMES),
                                     output_names=list(OUTPUT_NAMES), external_data=False,
                                     optimize=True, verbose=False)
    proto = onnx_program.model_proto
    onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    proto.doc_string = (__doc__ or "").strip()
    onnx.checker.check_model(proto)
    _write_atomic(Path(path), lambda tmp: onnx.save_model(proto, tmp))


def save_torch_export(program: torch.export.ExportedProgram, path: str | os.PathLike,
                      metadata: Mapping[str, str]) -> None:
    """Write the captured program as a ``torch.export`` archive (.pt2) with ``metadata`` in
    its extra file ``metadata.json``; ``torch.export.load(path).module()`` runs it."""
    extra = {PT2_METADATA: json.dumps(dict(metadata), indent=2)}
    _write_atomic(Path(path), lambda tmp: torch.export.save(program, tmp, extra_files=extra))


def export_tryon(warp: nn.Module, gen: nn.Module, height: int, width: int,
                 onnx_path: Optional[str | os.PathLike] = None,
                 pt2_path: Optional[str | os.PathLike] = None,
                 sources: Optional[Mapping[str, str]] = None, opset: int = DEFAULT_OPSET) -> dict:
    """Export the try-on of ``warp`` and ``gen`` at ``height`` x ``width``: an ONNX file to
    ``onnx_path`` and/or a torch.export archive to ``pt2_path``, both from one capture.

    Returns {'seconds' (in all), 'capture_seconds', 'program' (the captured
    ``ExportedProgram``), 'metadata', 'folded', 'affine' (how many BatchNorms were folded into
    convolutions and turned into multiply-adds)} and, per file written,
    'onnx_seconds'/'onnx_bytes' and 'pt2_seconds'/'pt2_bytes'."""
    if onnx_path is None and pt2_path is None:
        raise ValueError("export_tryon needs onnx_path, pt2_path or both")
    start = time.perf_counter()
    graph = TryOnGraph(warp, gen)
    metadata = graph_metadata(graph, height, width, sources)
    program = capture(graph, height, width)
    info = {"capture_seconds": time.perf_counter() - start, "program": program,
            "metadata": metadata, "folded": graph.folded, "affine": graph.affine}
    for kind, path in (("pt2", pt2_path), ("onnx", onnx_path)):
        if path is None:
            continue
        begin = time.perf_counter()
        if kind == "onnx":
            save_onnx(program, path, {**metadata, "opset": str(opset)}, opset)
        else:
            save_torch_export(program, path, metadata)
        info[f"{kind}_seconds"] = time.perf_counter() - begin
        info[f"{kind}_bytes"] = os.path.getsize(path)
    info["seconds"] = time.perf_counter() - start
    return info
