"""The exported try-on graph (``scripts/export.py``) run by ONNX Runtime, with the interface of
``utils.inference.model.TryOnModel``:

    model = load_onnx_model("pfafn.onnx", device="cpu")
    out = model(person, garment, garment_edge)      # (B, 3, H, W), (B, 3, H, W), (B, 1, H, W)
    out.tryon, out.warped, out.warped_edge, out.mask  # CPU torch tensors

``model.height``/``model.width`` are the size the graph was exported for (its metadata); any
batch size runs. Problems with the file (missing, not ONNX, not a try-on graph of this project,
exported for another size or sampling convention) raise ``CheckpointError`` naming the file.
"""

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from models.graph import EXPORT_FORMAT, INPUT_NAMES, OUTPUT_NAMES
from models.registry import family_of
from models.tryon import TryOnResult
from utils.checkpoint import CheckpointError
from utils.inference.model import check_inputs

INPUT_CHANNELS = {"person": 3, "garment": 3, "garment_mask": 1}
INSTALL_HINT = "pip install -r requirements.txt (it pins onnx and onnxruntime)"


class OnnxUnavailableError(CheckpointError):
    """ONNX Runtime (or onnx) is not installed, so an exported graph cannot be used here."""


def import_onnxruntime():
    """The ``onnxruntime`` module, or ``OnnxUnavailableError`` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise OnnxUnavailableError(f"running an ONNX graph needs onnxruntime, which is not "
                                   f"installed ({error}); {INSTALL_HINT}") from None
    return onnxruntime


def select_providers(device: torch.device | str, available: list[str]) -> list:
    """ONNX Runtime execution providers for ``device``: 'cpu'; 'cuda' or 'cuda:N' (the CUDA
    provider on GPU N when this onnxruntime has it, else the CPU with a warning); 'auto'
    (CUDA when available)."""
    name = str(device)
    if name == "auto":
        name = "cuda" if "CUDAExecutionProvider" in available else "cpu"
    if name.startswith("cuda"):
        if "CUDAExecutionProvider" in available:
            index = int(name.split(":")[1]) if ":" in name else 0
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        warnings.warn(f"device {name!r} asked, but this onnxruntime has no CUDA execution "
                      f"provider (it has {', '.join(available)}; install onnxruntime-gpu for "
                      f"CUDA): running on the CPU", stacklevel=3)
    elif name != "cpu":
        raise ValueError(f"unknown device {name!r} for ONNX Runtime; use cpu, cuda, cuda:N "
                         f"or auto")
    return ["CPUExecutionProvider"]


@dataclass
class OnnxTryOnModel:
    """An ONNX Runtime session of the exported try-on graph.

    ``height``, ``width``: the input size; ``device``: where results are returned (the CPU;
    ``providers`` says where the graph runs); ``precision``: 'fp32', or 'int8' for a graph
    quantised by ``scripts/export.py --int8`` (its metadata says which);
    ``metadata``: the file's ``metadata_props``."""

    session: Any
    path: str
    height: int
    width: int
    align_corners: Optional[bool]
    metadata: dict = field(default_factory=dict)
    providers: list = field(default_factory=list)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    precision: str = "fp32"
    backend: str = "onnxruntime"
    family: str = "mixed"
    rounding: bool = False
    # How --precision auto chose (``utils.inference.precision.Choice``), when it did.
    choice: Optional[Any] = None
    # The batch of a graph whose inputs fix it (None: any): others run in pieces of it.
    batch: Optional[int] = None

    def __call__(self, person: torch.Tensor, garment: torch.Tensor,
                 garment_edge: torch.Tensor) -> TryOnResult:
        """``person``, ``garment`` (B, 3, H, W) in [-1, 1] (the garment need not be masked);
        ``garment_edge`` (B, 1, H, W) in {0, 1}; any device and float dtype. Returns float32
        CPU tensors (``rendered`` is the generator's person before composition)."""
        check_inputs(person, garment, garment_edge, self.height, self.width)
        arrays = [np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
                  for x in (person, garment, garment_edge)]
        count = len(arrays[0])
        step, pieces = self.batch or count or 1, []
        for start in range(0, count or 1, step):   # an empty batch: one empty piece, as before
            piece = [array[start:start + step] for array in arrays]
            kept = len(piece[0])     # a last piece short of a fixed batch: its last one repeated
            piece = [np.concatenate([part] + [part[-1:]] * (step - kept)) for part in piece]
            pieces.append([output[:kept] for output in self.session.run(
                list(OUTPUT_NAMES), dict(zip(INPUT_NAMES, piece)))])
        outputs = dict(zip(OUTPUT_NAMES, (torch.from_numpy(np.concatenate(parts))
                                          for parts in zip(*pieces))))
        return TryOnResult(tryon=outputs["tryon"], warped=outputs["warped_garment"],
                           warped_edge=outputs["warped_mask"], rendered=outputs["rendered"],
                           mask=outputs["composite_mask"])


def _graph_size(session, path: Path, what: str) -> tuple[int, int, Optional[int]]:
    """(H, W, B) of the graph's inputs, checking their names and channels; B is None where
    the batch is not fixed (as scripts/export.py writes it)."""
    inputs = {node.name: node.shape for node in session.get_inputs()}
    outputs = {node.name for node in session.get_outputs()}
    if set(inputs) != set(INPUT_NAMES) or not set(OUTPUT_NAMES) <= outputs:
        raise CheckpointError(f"{what}: {path} is not a try-on graph of this project: it has "
                              f"inputs {sorted(inputs)} and outputs {sorted(outputs)}; expected "
                              f"inputs {list(INPUT_NAMES)} and outputs {list(OUTPUT_NAMES)} "
                              f"(export one with scripts/export.py)")
    sizes = set()
    for name, shape in inputs.items():
        if (len(shape) != 4 or shape[1] != INPUT_CHANNELS[name]
                or not all(isinstance(d, int) for d in shape[2:])):
            raise CheckpointError(f"{what}: {path} input '{name}' has shape {shape}; expected "
                                  f"(B, {INPUT_CHANNELS[name]}, H, W) with a fixed H and W")
        sizes.add((*shape[2:], shape[0] if isinstance(shape[0], int) else None))
    if len(sizes) != 1 or next(iter(sizes))[2] == 0:
        raise CheckpointError(f"{what}: {path} has inputs of different sizes or batches "
                              f"{[shape for shape in inputs.values()]}")
    return sizes.pop()


def _runtime_source(path: Path) -> str | bytes:
    """``path`` as ONNX Runtime opens it; the file's bytes where the name is not valid UTF-8,
    which it cannot open."""
    try:
        str(path).encode()
    except UnicodeEncodeError:
        return path.read_bytes()
    return str(path)


def load_onnx_model(path: str, device: torch.device | str = "cpu",
                    height: Optional[int] = None, width: Optional[int] = None,
                    align_corners: Optional[bool] = None, threads: Optional[int] = None,
                    what: str = "--onnx") -> OnnxTryOnModel:
    """Open an ONNX graph written by ``scripts/export.py`` in ONNX Runtime.

    ``device``: 'cpu', 'cuda', 'cuda:N' or 'auto' (see ``select_providers``). ``height``,
    ``width``, ``align_corners``: when given, they must equal what the graph was exported
    with (a graph has one size; export another for another size). ``threads``: ONNX Runtime's
    intra-op threads (default: torch's thread count, which follows OMP_NUM_THREADS).
    ``what`` names the file in errors (e.g. the flag it came from)."""
    path = Path(path)
    if not path.is_file():
        found = "a folder, not a file" if path.is_dir() else "file not found"
        raise CheckpointError(f"{what}: {found}: {path}")
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3   # errors only: no notices about graph rewrites
    providers = select_providers(device, ort.get_available_providers())
    try:
        session = ort.InferenceSession(_runtime_source(path), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
        raise CheckpointError(f"{what}: {path} is not an ONNX model ONNX Runtime can load: "
                              f"{str(error).strip().splitlines()[0]}") from None
    graph_height, graph_width, batch = _graph_size(session, path, what)
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    tag = metadata.get("format")
    if tag is not None and tag != EXPORT_FORMAT:
        raise CheckpointError(f"{what}: {path} has format '{tag}'; this code reads "
                              f"'{EXPORT_FORMAT}' (export it again with scripts/export.py)")
    if tag is not None and (metadata.get("height"), metadata.get("width")) != (
            str(graph_height), str(graph_width)):
        raise CheckpointError(f"{what}: {path} says {metadata.get('height')}x"
                              f"{metadata.get('width')} in its metadata but its inputs are "
                              f"{graph_height}x{graph_width}")
    asked = (height or graph_height, width or graph_width)
    if asked != (graph_height, graph_width):
        raise CheckpointError(f"{what}: {path} was exported for {graph_height}x{graph_width} "
                              f"inputs, but {asked[0]}x{asked[1]} was asked (--height/--width); "
                              f"export the checkpoints again with --height {asked[0]} "
                              f"--width {asked[1]}")
    if metadata.get("precision", "fp32") not in ("fp32", "int8"):
        raise CheckpointError(f"{what}: {path} says precision '{metadata['precision']}' in its "
                              f"metadata; this code runs fp32 and int8 graphs")
    stored = {"true": True, "false": False}.get(metadata.get("align_corners", ""))
    if align_corners is not None and stored is not None and align_corners != stored:
        raise CheckpointError(f"{what}: {path} was exported with align_corners="
                              f"{str(stored).lower()}, but align_corners="
                              f"{str(align_corners).lower()} was asked; the convention is part "
                              f"of the graph")
    return OnnxTryOnModel(session=session, path=str(path), height=graph_height,
                          width=graph_width, align_corners=stored, metadata=metadata,
                          providers=session.get_providers(),
                          family=metadata.get("family") or _family_of_graph(metadata),
                          precision=metadata.get("precision", "fp32"),
                          rounding=metadata.get("rounding") == "true", batch=batch)


def _family_of_graph(metadata: dict) -> str:
    """The registered family of the architectures an export records ('mixed' when none), for
    graphs written before the family was."""
    try:
        warp, gen = (json.loads(metadata[key])["type"] for key in ("warp_arch", "gen_arch"))
    except (KeyError, TypeError, ValueError):
        return "mixed"
    found = family_of(warp, gen)
    return found.name if found else "mixed"
