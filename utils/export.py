"""Writing the parser-free try-on as portable files: ONNX (for ONNX Runtime and other engines)
and ``torch.export`` programs (.pt2), from one capture of ``models.graph.TryOnGraph``.

Every file carries metadata: the format tag, the input size, the sampling convention, the
architectures of the two models and the source checkpoints (path and SHA-256), so that a reader
(``utils/inference/onnx_runtime.py``) can refuse a file made for another size or convention.
"""

import json
import os
import time
from pathlib import Path
from typing import Mapping, Optional

import torch
import torch.nn as nn

from common.atomic import write_atomic
from models.graph import (
    EXPORT_CORRELATION,
    EXPORT_FORMAT,
    INPUT_NAMES,
    OUTPUT_NAMES,
    TryOnGraph,
    example_inputs,
)
from models.registry import family_of, saved_arch
from utils.weights import file_sha256

# The dynamo exporter writes opset 18 or newer. 18 is the oldest it emits (so the widest
# choice of runtimes) and has GridSample (since opset 16) with align_corners and the 'border'
# and 'zeros' padding modes the warp needs.
DEFAULT_OPSET = 18
PT2_METADATA = "metadata.json"


def capture(graph: TryOnGraph, height: int, width: int) -> torch.export.ExportedProgram:
    """``torch.export`` the graph for (B, C, ``height``, ``width``) inputs with B dynamic."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        return torch.export.export(graph, example_inputs(height, width),
                                   dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))


def graph_metadata(graph: TryOnGraph, height: int, width: int,
                   sources: Optional[Mapping[str, str]] = None,
                   family: Optional[str] = None, rounding: bool = False) -> dict:
    """The key-value strings stored with an export: the format tag, the input size, the
    sampling convention, the two models' architectures (JSON), the family whose conventions
    the try-on follows (default: the registered family of the two architectures, 'mixed' when
    none) and whether its images are rounded to 8 bits (``quantise``), and the
    source checkpoints (path and SHA-256 of each file in ``sources``, e.g.
    {'warp_checkpoint': PATH})."""
    warp_arch, gen_arch = (saved_arch(model) for model in (graph.warp, graph.gen))
    if family is None:
        found = family_of(warp_arch["type"], gen_arch["type"])
        family = found.name if found else "mixed"
    meta = {
        "format": EXPORT_FORMAT,
        "height": str(height),
        "width": str(width),
        "align_corners": "true" if graph.align_corners else "false",
        "inputs": ",".join(INPUT_NAMES),
        "outputs": ",".join(OUTPUT_NAMES),
        "warp_arch": json.dumps(warp_arch),
        "gen_arch": json.dumps(gen_arch),
        "correlation": EXPORT_CORRELATION,
        "family": family,
        "rounding": "true" if rounding else "false",
        "torch_version": torch.__version__,
    }
    digests = {}   # one stage-4 file is often both sources: hash it once
    for key, path in (sources or {}).items():
        meta[key] = str(path)
        if path not in digests:
            digests[path] = file_sha256(path)
        meta[f"{key}_sha256"] = digests[path]
    return meta


def declared_opset(proto) -> int:
    """The default-domain opset an ONNX model declares."""
    return next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))


def save_onnx(program: torch.export.ExportedProgram, path: str | os.PathLike,
              metadata: Mapping[str, str], opset: int = DEFAULT_OPSET) -> int:
    """Convert a captured program to ONNX, add ``metadata`` as ``metadata_props`` (with the
    'opset' the graph declares), check it with ``onnx.checker`` and write it as one
    self-contained file. Returns that opset: the exporter may write another than ``opset``."""
    import onnx
    # The dynamo (torch.export-based) exporter: the batch stays a symbolic dimension checked by
    # torch.export, the graph comes out constant-folded, and the same capture serves .pt2.
    # The TorchScript exporter (dynamo=False) is deprecated and leaves Shape/Identity chains.
    onnx_program = torch.onnx.export(program, dynamo=True, opset_version=opset,
                                     input_names=list(INPUT_NAMES),
                                     output_names=list(OUTPUT_NAMES), external_data=False,
                                     optimize=True, verbose=False)
    proto = onnx_program.model_proto
    written = declared_opset(proto)
    onnx.helper.set_model_props(proto, {**{str(k): str(v) for k, v in metadata.items()},
                                        "opset": str(written)})
    proto.doc_string = (__doc__ or "").strip()
    onnx.checker.check_model(proto)
    # A failed or interrupted export leaves no half-written file under the final name.
    write_atomic(Path(path), lambda tmp: onnx.save_model(proto, tmp))
    return written


def save_torch_export(program: torch.export.ExportedProgram, path: str | os.PathLike,
                      metadata: Mapping[str, str]) -> None:
    """Write the captured program as a ``torch.export`` archive (.pt2) with ``metadata`` in
    its extra file ``metadata.json``; ``torch.export.load(path).module()`` runs it."""
    extra = {PT2_METADATA: json.dumps(dict(metadata), indent=2)}

    def write(temporary: str) -> None:
        # Through a Python file: given a name that is not valid UTF-8, torch.export.save
        # aborts the process.
        with open(temporary, "wb") as handle:
            torch.export.save(program, handle, extra_files=extra)
    write_atomic(Path(path), write)


def export_tryon(warp: nn.Module, gen: nn.Module, height: int, width: int,
                 onnx_path: Optional[str | os.PathLike] = None,
                 pt2_path: Optional[str | os.PathLike] = None,
                 sources: Optional[Mapping[str, str]] = None, opset: int = DEFAULT_OPSET,
                 family: Optional[str] = None, rounding: bool = False) -> dict:
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
    metadata = graph_metadata(graph, height, width, sources, family, rounding)
    program = capture(graph, height, width)
    info = {"capture_seconds": time.perf_counter() - start, "program": program,
            "metadata": metadata, "folded": graph.folded, "affine": graph.affine}
    for kind, path in (("pt2", pt2_path), ("onnx", onnx_path)):
        if path is None:
            continue
        begin = time.perf_counter()
        if kind == "onnx":
            info["onnx_opset"] = save_onnx(program, path, metadata, opset)
        else:
            save_torch_export(program, path, metadata)
        info[f"{kind}_seconds"] = time.perf_counter() - begin
        info[f"{kind}_bytes"] = os.path.getsize(path)
    info["seconds"] = time.perf_counter() - start
    return info
