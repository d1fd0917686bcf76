"""int8 try-on graphs: ONNX Runtime's static quantisation of an exported float32 graph.

    python scripts/export.py --checkpoint pf_gen/final.pth --out tryon_int8.onnx \\
        --int8 --calibration VITON_test

What becomes int8: every convolution's weights (per output channel, symmetric) and inputs
(per tensor, ranges from running the float32 graph on calibration pairs), in the QDQ format
(QuantizeLinear/DequantizeLinear pairs that ONNX Runtime fuses into int8 convolutions). What
stays float32: the cost volume (MatMul), every GridSample, the flow arithmetic (the Add/Mul/
Div of offsets and positions, the flow upsampling), the composition, and the convolutions that
predict pixel offsets (2 output channels: the last layer of each flow head), whose outputs
move the garment directly.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from common.atomic import write_atomic
from models.graph import INPUT_NAMES

QUANTISED_OPS = ("Conv",)
KEPT_FLOAT = ("cost volume (MatMul)", "GridSample", "flow arithmetic", "composition",
              "pixel-offset convolutions")


def offset_convolutions(model) -> list[str]:
    """Names of the Conv nodes of ``model`` (an ``onnx.ModelProto``) with 2 output channels:
    the layers that predict pixel offsets."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "Conv" and len(node.input) > 1
            and shapes.get(node.input[1], (None,))[0] == 2]


class _Feeds:
    """ONNX Runtime's ``CalibrationDataReader`` over batches of (person, garment, mask)."""

    def __init__(self, batches: Sequence[Sequence[torch.Tensor]]):
        self._items = iter([{name: np.ascontiguousarray(x.detach().float().cpu().numpy())
                             for name, x in zip(INPUT_NAMES, batch)} for batch in batches])

    def get_next(self):
        return next(self._items, None)


def quantize_graph(fp32_path: str | os.PathLike, int8_path: str | os.PathLike,
                   batches: Iterable[Sequence[torch.Tensor]], metadata: dict) -> dict:
    """Write the int8 version of the float32 try-on graph ``fp32_path`` to ``int8_path``,
    its activation ranges calibrated on ``batches`` (each (person, garment, garment_mask) at
    the graph's size). ``metadata`` (strings) is added to the graph's own (``precision``:
    'int8' among them). Returns {'seconds', 'bytes', 'quantised', 'kept_float', 'opset'}
    ('opset': the one the int8 graph declares)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from utils.export import declared_opset

    class Reader(_Feeds, CalibrationDataReader):
        pass

    start = time.perf_counter()
    batches = list(batches)
    if not batches:
        raise ValueError("int8 calibration needs at least one batch of pairs")
    source = onnx.load(str(fp32_path))
    own = {prop.key: prop.value for prop in source.metadata_props}
    excluded = offset_convolutions(source)
    with tempfile.TemporaryDirectory(prefix="pfafn_int8_") as folder:
        prepared = os.path.join(folder, "prepared.onnx")
        quantised = os.path.join(folder, "int8.onnx")
        # Shape inference and constant folding first, as ONNX Runtime's quantiser asks.
        quant_pre_process(str(fp32_path), prepared, skip_symbolic_shape=True)
        quantize_static(prepared, quantised, Reader(batches), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTISED_OPS), nodes_to_exclude=excluded,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        model = onnx.load(quantised)
    convs = sum(1 for node in source.graph.node if node.op_type == "Conv")
    onnx.helper.set_model_props(model, {**own, **{k: str(v) for k, v in metadata.items()},
                                        "precision": "int8",
                                        "int8_quantised": f"{convs - len(excluded)} of {convs} "
                                                          f"Conv",
                                        "int8_kept_float32": ", ".join(KEPT_FLOAT)})
    onnx.checker.check_model(model)
    write_atomic(Path(int8_path), lambda tmp: onnx.save_model(model, tmp))
    return {"seconds": time.perf_counter() - start, "bytes": os.path.getsize(int8_path),
            "quantised": convs - len(excluded), "convolutions": convs,
            "kept_float": list(KEPT_FLOAT), "opset": declared_opset(model)}


def export_int8(model, int8_path: str | os.PathLike, batches: Sequence[Sequence[torch.Tensor]],
                metadata: dict, **export_options) -> dict:
    """Export the try-on of ``model`` (a ``TryOnModel``) in float32 to a temporary file, then
    write its int8 version to ``int8_path`` (``quantize_graph``, calibrated on ``batches``).
    ``export_options`` go to ``utils.export.export_tryon`` (opset, sources). Returns
    ``quantize_graph``'s figures with 'export_seconds'."""
    from utils.export import export_tryon
    with tempfile.TemporaryDirectory(prefix="pfafn_export_") as folder:
        fp32_path = os.path.join(folder, "fp32.onnx")
        info = export_tryon(model.warp, model.gen, model.height, model.width,
                            onnx_path=fp32_path, family=model.family, rounding=model.rounding,
                            **export_options)
        pairs = sum(len(batch[0]) for batch in batches)
        found = quantize_graph(fp32_path, int8_path, batches,
                               {**metadata, "calibration_pairs": str(pairs)})
    return {**found, "export_seconds": info["seconds"], "calibration_pairs": pairs}


def calibration_batches(dataset, samples: int, batch_size: int = 4) -> list[tuple]:
    """The first ``samples`` pairs of ``dataset`` (a ``TryOnPairsDataset``), in order, as
    (person, garment, garment_mask) batches of ``batch_size`` (the calibration's, and the
    pairs ``scripts/precision_quality.py`` dresses)."""
    count = min(samples, len(dataset))
    batches = []
    for start in range(0, count, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, count))]
        batches.append(tuple(torch.stack([item[key] for item in items])
                             for key in ("image", "garment", "garment_edge")))
    return batches
