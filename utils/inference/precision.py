"""The number formats a try-on runs in, and which of them is fastest here.

    fp32   float32 throughout (the reference)
    bf16   autocast to bfloat16 (CPU or GPU): convolutions and matrix products in bf16
    fp16   autocast to float16 (GPUs)
    int8   an ONNX graph quantised by ``scripts/export.py --int8``: convolutions in int8
           (ONNX Runtime's QDQ format, calibrated activation ranges, per-channel weights)

In every format the cost volume, the flow arithmetic (pixel offsets to sampling positions,
composing and upsampling flows), every grid sampling and the composition of the try-on stay in
float32 (``models/correlation.py``, ``models/flow.py``, ``models/tryon.py``); only the
convolutions (and the generator's transposed convolutions under autocast) lose bits.

Which formats ``--precision auto`` chooses among (``DEFAULT_CANDIDATES``) follows the measured
quality on trained weights (``scripts/precision_quality.py``, its report in
``docs/benchmarks/precision_quality_cpu.json``; a test holds the two equal): a format whose
try-ons lose more than ``MAX_SSIM_LOSS`` SSIM against fp32 is not offered. ``choose_fastest``
times the offered formats this machine runs natively and keeps the fastest (the benchmark).

The default of test.py and the web page (``--precision auto``) is ``default_precision``: no
timing, so the same command on the same machine always runs the same format. A format other than
fp32 becomes the default only on a device that runs it natively, and only where the committed
quality report, measured on that kind of device, shows every image of every model kept within
``MAX_SSIM_LOSS`` of fp32 (the worst image, not the mean: a default must not visibly change any
try-on).
"""

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from common.precision import AUTOCAST_DTYPES

PRECISIONS = ("fp32", "bf16", "fp16", "int8")
# A format whose try-ons lose more SSIM than this against fp32 is never chosen by itself.
MAX_SSIM_LOSS = 0.01
# The formats that met that bar on every trained student measured (SSIM vs fp32, docs/
# benchmarks/precision_quality_cpu.json): 'auto' chooses among these. int8 lost about 0.1 SSIM
# there; fp16 (GPUs only) has not been measured.
DEFAULT_CANDIDATES = ("fp32", "bf16")
QUALITY_REPORTS = {"cpu": Path(__file__).resolve().parents[2] / "docs" / "benchmarks"
                   / "precision_quality_cpu.json"}


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a PyTorch precision ('fp32': None); int8 is not one."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision {precision!r} is not run by PyTorch autocast; expected one "
                         f"of {', '.join(AUTOCAST_DTYPES)} (int8 runs an ONNX graph)")
    return AUTOCAST_DTYPES[precision]


def unsupported(precision: str, device: torch.device) -> Optional[str]:
    """Why ``precision`` should not run on ``device`` with PyTorch (it would be emulated, many
    times slower, or not run at all), or None when the hardware does it natively."""
    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "int8":
        return "int8 runs an ONNX graph (scripts/export.py --int8), not checkpoints"
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            return f"{torch.cuda.get_device_name(device)} has no bf16"
        return None
    if precision == "fp16":
        return "fp16 autocast is for GPUs (CPUs have no fast float16 convolutions)"
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return (f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16 "
                f"(AVX-512 BF16 or AMX): oneDNN would emulate it, an order of magnitude slower")
    return None


@dataclass
class Choice:
    """What ``choose_fastest`` measured: the chosen ``precision``, the median ms per try-on of
    each format timed, and why the others were not timed."""

    precision: str
    milliseconds: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)

    def describe(self) -> str:
        timed = ", ".join(f"{name} {ms:.0f} ms" for name, ms in self.milliseconds.items())
        text = f"{self.precision} (fastest of {timed} per try-on, measured at start-up)"
        if len(self.milliseconds) == 1:
            text = f"{self.precision} ({timed} per try-on; the only format offered here)"
        return text + "".join(f"; {name}: {why}" for name, why in self.skipped.items())


def time_tryon(model, inputs, warmup: int = 1, repeats: int = 3) -> float:
    """Median seconds of ``model(*inputs)``, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        model(*inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = model(*inputs)
        if out.tryon.is_cuda:
            torch.cuda.synchronize(out.tryon.device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def choose_fastest(model, candidates=DEFAULT_CANDIDATES, repeats: int = 3) -> Choice:
    """Set ``model.precision`` (a ``TryOnModel``) to the fastest of ``candidates`` that its
    device runs natively, timed on one try-on of random images each; returns the ``Choice``.
    A model of one fixed format (an ONNX graph) is timed as it is."""
    from models.graph import example_inputs
    inputs = example_inputs(model.height, model.width, batch=1)
    if getattr(model, "backend", "pytorch") != "pytorch":
        seconds = time_tryon(model, inputs, repeats=repeats)
        return Choice(model.precision, {model.precision: 1000 * seconds})
    choice = Choice("fp32")
    for precision in candidates:
        why = unsupported(precision, model.device)
        if why is not None:
            choice.skipped[precision] = why
            continue
        model.precision = precision
        choice.milliseconds[precision] = 1000 * time_tryon(model, inputs, repeats=repeats)
    choice.precision = min(choice.milliseconds, key=choice.milliseconds.get)
    model.precision = choice.precision
    return choice


def worst_image_loss(report: dict, precision: str) -> Optional[tuple]:
    """(largest SSIM loss of one image against fp32, the run it was in) of ``precision`` over
    every run of a quality report; None when the report did not measure it everywhere."""
    worst = (0.0, "")
    for run in report["runs"]:
        found = run["precisions"].get(precision)
        if found is None or "skipped" in found:
            return None
        loss = max(1 - found["ssim_vs_fp32_worst"],
                   run["precisions"]["fp32"]["paired_ssim"] - found["paired_ssim"])
        worst = max(worst, (loss, run["model"]))
    return worst


def default_precision(device, reports: Optional[dict] = None) -> tuple:
    """(the default format on ``device``, why in one sentence): the first of bf16 and fp16
    that ``device`` runs natively and whose every image in the committed quality report of
    this kind of device (``QUALITY_REPORTS``) stayed within ``MAX_SSIM_LOSS`` of fp32; else
    fp32. Deterministic: nothing is timed."""
    device = torch.device(device)
    path = (QUALITY_REPORTS if reports is None else reports).get(device.type)
    if path is None or not Path(path).is_file():
        return "fp32", f"no quality report of other formats on {device.type} devices"
    report = json.loads(Path(path).read_text())
    reasons = []
    for precision in ("bf16", "fp16"):
        why = unsupported(precision, device)
        if why is not None:
            reasons.append(f"{precision}: {why}")
            continue
        worst = worst_image_loss(report, precision)
        if worst is None:
            reasons.append(f"{precision}: not measured in {Path(path).name}")
        elif worst[0] > MAX_SSIM_LOSS:
            reasons.append(f"{precision} runs natively here, but one image of {worst[1]} in "
                           f"{Path(path).name} lost {worst[0]:.3f} SSIM against fp32 (at most "
                           f"{MAX_SSIM_LOSS:g} for a default; --precision {precision} runs it)")
        else:
            return precision, (f"native here, and every image in {Path(path).name} within "
                               f"{MAX_SSIM_LOSS:g} SSIM of fp32")
    return "fp32", "; ".join(reasons)
