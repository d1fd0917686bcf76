"""Where a try-on's time goes, and what this CPU can do at most.

``module_profile`` times one try-on part by part: the feature encoders and pyramids, each flow
head, each cost volume (by level), every grid sampling, the generator, and the rest (flow
arithmetic, composition); each part's own time, its children's excluded, so that the parts
add up to the whole. ``count_flops`` counts the try-on's floating-point operations
(``torch.utils.flop_counter``: convolutions and matrix products) and ``conv_peak_gflops``
measures a large 3x3 convolution through oneDNN with the current thread count, the figure
the fractions of peak are taken against.
"""

import re
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Callable, Optional

import torch
import torch.nn.functional as F

import models.correlation as correlation_module
import models.flow as flow_module
from models.registry import unwrap

# Shape of the peak convolution: 256 -> 256 channels, 3x3, on 64x48 (4.8 GFLOP per call, a
# 256x192 image's second pyramid level at the release's widths), NHWC as oneDNN prefers.
PEAK_SHAPE = (1, 256, 64, 48)


def conv_peak_gflops(dtype: torch.dtype = torch.float32, repeats: int = 7,
                     shape=PEAK_SHAPE) -> float:
    """GFLOP/s of a 3x3 convolution (``shape`` -> same channels) in ``dtype`` on the CPU,
    median of ``repeats`` after two untimed runs (multiply-add = 2 FLOP)."""
    batch, channels, height, width = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(dtype).contiguous(
        memory_format=torch.channels_last)
    weight = torch.randn(channels, channels, 3, 3, generator=generator).to(dtype).contiguous(
        memory_format=torch.channels_last)
    flop = 2 * batch * channels * channels * 9 * height * width
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            F.conv2d(x, weight, padding=1)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return flop / statistics.median(times) / 1e9


def count_flops(run: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``run`` (convolutions, matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        run()
    return int(counter.get_total_flops())


class _Timer:
    """Exclusive amount of ``clock`` (wall seconds by default, or e.g. a running FLOP count)
    per label of nested regions: a label's children are not its."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.seconds = defaultdict(float)
        self.clock = clock
        self._stack = []

    def enter(self, label: str) -> None:
        self._stack.append([label, self.clock(), 0.0])

    def exit(self) -> None:
        label, start, children = self._stack.pop()
        elapsed = self.clock() - start
        self.seconds[label] += elapsed - children
        if self._stack:
            self._stack[-1][2] += elapsed


def part_of(name: str) -> Optional[str]:
    """The profile part of a warp module's submodule ``name``, or None to leave it in its
    parent: encoders and pyramids whole, each flow head of the AFlowNet by level."""
    pieces = name.split(".")
    if len(pieces) == 1:
        return None if pieces[0] == "aflow_net" else pieces[0]
    if pieces[0] == "aflow_net" and len(pieces) == 3 and pieces[2].isdigit():
        return f"{pieces[1]}[{pieces[2]}]"
    return None


CATEGORIES = (("encoders", ("image_features", "cond_features", "image_mobile", "cond_mobile",
                            "image_FPN", "cond_FPN", "image_style", "cond_style")),
              ("flow heads", ("netMain", "netRefine", "netStyle", "netF")),
              ("cost volumes", ("cost volume",)),
              ("sampling", ("sampling",)),
              ("generator", ("generator",)))


def category_of(label: str) -> str:
    for category, prefixes in CATEGORIES:
        if label.startswith(prefixes):
            return category
    return "flow arithmetic and the rest"


@contextmanager
def _timed_functions(timer: _Timer):
    """Route ``local_correlation`` and ``sample`` of every ``models`` module through
    ``timer`` (the cost volume labelled by its level's size)."""
    originals = {"local_correlation": correlation_module.local_correlation,
                 "sample": flow_module.sample}

    def timed_correlation(first, *args, **kwargs):
        timer.enter(f"cost volume {first.shape[-2]}x{first.shape[-1]}")
        try:
            return originals["local_correlation"](first, *args, **kwargs)
        finally:
            timer.exit()

    def timed_sample(*args, **kwargs):
        timer.enter("sampling")
        try:
            return originals["sample"](*args, **kwargs)
        finally:
            timer.exit()

    replacements = {"local_correlation": timed_correlation, "sample": timed_sample}
    patched = []
    for module in [m for name, m in sys.modules.items() if name.startswith("models")]:
        for attr, original in originals.items():
            if getattr(module, attr, None) is original:
                setattr(module, attr, replacements[attr])
                patched.append((module, attr, original))
    try:
        yield
    finally:
        for module, attr, original in patched:
            setattr(module, attr, original)


def module_profile(warp, gen, inputs, autocast_dtype: Optional[torch.dtype] = None,
                   repeats: int = 3) -> dict:
    """Median exclusive milliseconds and GFLOP per part of one try-on of ``inputs`` by
    ``warp`` and ``gen`` (as ``models.tryon.parser_free_tryon`` runs them, on the CPU), after
    one untimed run: {'parts': {label: {'ms', 'gflop'}}, 'categories': {category: {'ms',
    'gflop'}}, 'total_ms', 'total_gflop'}."""
    from torch.utils.flop_counter import FlopCounterMode

    from models.tryon import parser_free_tryon
    timer = _Timer()

    def run_all(count: int) -> list[dict]:
        runs = []
        for _ in range(count):
            timer.seconds.clear()
            timer.enter("flow arithmetic and the rest")
            parser_free_tryon(warp, gen, *inputs)
            timer.exit()
            runs.append(dict(timer.seconds))
        return runs

    hooks = []
    for name, module in list(unwrap(warp).named_modules()) + [("generator", gen)]:
        label = "generator" if module is gen else (part_of(name) if name else None)
        if label is not None:
            hooks.append(module.register_forward_pre_hook(
                lambda *_, label=label: timer.enter(label)))
            hooks.append(module.register_forward_hook(lambda *_: timer.exit()))
    cast = (torch.autocast("cpu", dtype=autocast_dtype) if autocast_dtype is not None
            else nullcontext())
    try:
        with _timed_functions(timer), torch.inference_mode(), cast:
            runs = run_all(repeats + 1)[1:]
            counter = FlopCounterMode(display=False)
            timer.clock = counter.get_total_flops
            with counter:
                flops = run_all(1)[0]
    finally:
        timer.clock = time.perf_counter
        for hook in hooks:
            hook.remove()
    parts = {label: {"ms": 1000 * statistics.median(run.get(label, 0.0) for run in runs),
                     "gflop": flops.get(label, 0) / 1e9} for label in runs[0]}
    return summarise(parts)


def summarise(parts: dict) -> dict:
    """``parts`` with their sums per category and in all."""
    categories = defaultdict(lambda: {"ms": 0.0, "gflop": 0.0})
    for label, found in parts.items():
        for key in ("ms", "gflop"):
            categories[category_of(label)][key] += found.get(key, 0.0)
    return {"parts": parts, "categories": dict(categories),
            "total_ms": sum(p["ms"] for p in parts.values()),
            "total_gflop": sum(p.get("gflop", 0.0) for p in parts.values())}


def fractions_of_peak(profile: dict, peak_gflops: float) -> None:
    """Add to each part and category of ``profile`` the fraction of ``peak_gflops`` that its
    GFLOP in its milliseconds reach."""
    for entry in list(profile["parts"].values()) + list(profile["categories"].values()):
        gflop, ms = entry.get("gflop"), entry["ms"]
        if gflop is not None and ms > 0:
            entry["fraction_of_peak"] = gflop / (ms / 1000) / peak_gflops


def onnx_profile(path: str, feeds: dict, threads: int, repeats: int = 3) -> dict:
    """Milliseconds per part of an ONNX try-on graph in ONNX Runtime's own profiler, each
    node's time given to the part of the PyTorch module it was exported from (the node's
    ``pkg.torch.onnx.name_scopes`` metadata) or of its operator (GridSample: sampling; the
    cost volume's MatMuls: cost volumes). Mean of ``repeats`` runs after an untimed one."""
    import json
    import os
    import tempfile

    import onnx
    import onnxruntime
    graph = onnx.load(path, load_external_data=False).graph
    # ONNX Runtime names a node it fused after the value it writes (+ '_nchwc' when it moved
    # it to its blocked layout) or after its first node (+ '_token_<n>'): each leads back to
    # the exported node.
    node_parts = {}
    for node in graph.node:
        node_parts[node.name] = _onnx_part(node)
        for output in node.output:
            node_parts.setdefault(output, node_parts[node.name])
    with tempfile.TemporaryDirectory(prefix="pfafn_profile_") as folder:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for _ in range(repeats + 1):
            session.run(None, feeds)
        with open(session.end_profiling()) as handle:
            events = json.load(handle)
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    warmed = runs[0][1] if runs else 0     # node events of the first (warm-up) run left out
    per_run = defaultdict(float)
    for event in events:
        if (event.get("cat") != "Node" or not event["name"].endswith("_kernel_time")
                or event["ts"] < warmed):
            continue
        node = event["name"][: -len("_kernel_time")]
        # Fused int8 convolutions are named '<the Conv node>_token_<n>'.
        base = re.sub(r"_token_\d+$", "", node.removesuffix("_nchwc"))
        part = node_parts.get(node, node_parts.get(base))
        per_run[part or "flow arithmetic and the rest"] += event["dur"] / 1000
    return summarise({label: {"ms": ms / repeats} for label, ms in per_run.items()})


# The exported cost volume ('rows', models/correlation.py): padding, slices of the padded
# features, one matrix product per vertical displacement, their concatenation. Other nodes
# directly in the AFlowNet (no flow head around them) are flow arithmetic.
COST_VOLUME_OPS = ("MatMul", "Pad", "Slice", "Concat")


def _onnx_part(node) -> str:
    """The profile part of one node of an exported try-on graph. Its ``name_scopes`` list the
    modules it sits in, outermost first, ending with the operation: ['', 'warp',
    'warp.aflow_net', 'warp.aflow_net.netMain.0', ..., 'conv2d_3']."""
    if node.op_type == "GridSample":
        return "sampling"
    scopes = next((p.value for p in node.metadata_props
                   if p.key == "pkg.torch.onnx.name_scopes"), "")
    modules = [name for name in _scope_names(scopes)[:-1] if name]
    if not modules:
        return "flow arithmetic and the rest"
    if modules[0] == "gen":
        return "generator"
    path = modules[-1].split(".")[1:]
    if node.op_type in COST_VOLUME_OPS and path == ["aflow_net"]:
        return "cost volume"
    for depth in range(len(path), 0, -1):
        label = part_of(".".join(path[:depth]))
        if label is not None:
            return label
    return "flow arithmetic and the rest"


def _scope_names(text: str) -> list[str]:
    """The module names of a ``name_scopes`` value (a list written as text)."""
    import ast
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []
