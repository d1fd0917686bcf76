"""Benchmark PF-AFN: inference, training steps, data loading and peak memory, CPU and CUDA.

    OMP_NUM_THREADS=2 python scripts/benchmark.py --devices cpu --batch_sizes 1,4 --json bench.json

Every figure is measured for the plain path (shift-loop correlation, no folding, NCHW, float32)
and for the fast paths, in the same run, and reported with its ratio to the plain path. The
models have random weights (speed does not depend on them); the VGG of the training losses too.
The training rows time the stages' own step, as ``train_*.py`` runs it (``Trainer.timed_steps``:
the stage's losses on batches of a small synthetic dataset, the finiteness checks, backward,
the gradient scaler and Adam), with ``--cost_volume`` and ``--precision`` as the path says.
Figures are medians over ``--repeats`` timed runs after ``--warmup`` untimed ones; the paths
take turns within each repeat so that load from other processes falls on all of them alike.
The inference section also exports the same models to ONNX (a temporary file, as
``scripts/export.py`` does) and times ONNX Runtime on the same inputs, with its ratio to the
fastest PyTorch path of plain float32 (``*+fold+cl``), and on the CPU its int8 version
(``utils/quantize.py``, calibrated on random inputs); ``--no_onnx`` / ``--no_int8`` skip them.
bf16 autocast is timed on CUDA and on CPUs with native bf16. Every inference row carries the
try-on's GFLOP (``torch.utils.flop_counter``) and, on the CPU, its fraction of this CPU's peak:
a large 3x3 convolution through oneDNN with the same threads, fp32 and bf16 (the 'peak' row).
The 'profile' section splits one try-on (batch 1) of the fp32 fast path and of the fastest
path into encoders, flow heads, cost volumes per level, sampling and generator
(``utils/profiling.py``).

    OMP_NUM_THREADS=2 python scripts/benchmark.py --devices cpu \\
        --sections correlation,inference,profile,training \\
        --archs pfafn,fsvton,dmvton,mobile_student --batch_sizes 1,8 --warmup 1 --repeats 3 \\
        --train_stages pb_warp,pf_gen --json docs/benchmarks/cpu_2core.json
"""

import argparse
import copy
import json
import logging
import math
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

import models.correlation as correlation  # noqa: E402
from common.cli import HelpFormatter, given_on_command_line, unused_flags  # noqa: E402
from common.errors import exit_on_user_error  # noqa: E402
from models import PF_GEN_INPUT, PF_WARP_INPUT, build_model  # noqa: E402
from models.correlation import set_cost_volume  # noqa: E402
from models.fast import CudaGraphRunner, optimize_for_inference  # noqa: E402
from models.graph import example_inputs  # noqa: E402
from models.tryon import parser_free_tryon  # noqa: E402
from utils.inference.precision import unsupported  # noqa: E402
from utils.profiling import PEAK_SHAPE, conv_peak_gflops, count_flops  # noqa: E402


@dataclass(frozen=True)
class RunPath:
    """One way of running the models. ``correlation``: 'loop' | 'band' | 'triton' | 'auto'."""

    name: str
    correlation: str = "loop"
    fold_bn: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    cuda_graph: bool = False
    onnxruntime: bool = False
    int8: bool = False


PLAIN = RunPath("plain")


def inference_paths(device: str, args) -> list[RunPath]:
    fast_corr = "triton" if device == "cuda" and correlation.triton_available() else "band"
    paths = [PLAIN,
             RunPath(f"{fast_corr}", fast_corr),
             RunPath(f"{fast_corr}+fold", fast_corr, fold_bn=True),
             RunPath(f"{fast_corr}+fold+cl", fast_corr, fold_bn=True, channels_last=True)]
    if device == "cuda" or args.cpu_bf16 or unsupported("bf16", torch.device("cpu")) is None:
        paths.append(RunPath(f"{fast_corr}+fold+cl+bf16", fast_corr, True, True, bf16=True))
    if device == "cuda" and not args.no_cuda_graphs:
        paths.append(RunPath(f"{fast_corr}+fold+cl+bf16+graph", fast_corr, True, True, True,
                          cuda_graph=True))
    if args.compile:
        paths.append(RunPath(f"{fast_corr}+fold+cl+compile", fast_corr, True, True,
                          bf16=device == "cuda", compile=True))
    if onnxruntime_note(device, args) is None:
        # The exported graph: BatchNorm folded, the 'rows' cost volume, float32; and its
        # int8 version (utils/quantize.py) on the CPU.
        paths.append(ONNX_PATH)
        if device == "cpu" and not args.no_int8:
            paths.append(ONNX_INT8_PATH)
    return paths


def selected(paths: list[RunPath], args) -> list[RunPath]:
    """``paths`` restricted to ``--paths`` (all when it is not given)."""
    if not args.paths:
        return paths
    wanted = {name.strip() for name in args.paths.split(",") if name.strip()}
    return [path for path in paths if path.name in wanted]


ONNX_PATH = RunPath("onnxruntime", "rows", fold_bn=True, onnxruntime=True)
ONNX_INT8_PATH = RunPath("onnxruntime+int8", "rows", fold_bn=True, onnxruntime=True, int8=True)


def onnxruntime_note(device: str, args) -> str | None:
    """Why the ONNX Runtime row is skipped on ``device``, or None when it runs."""
    if args.no_onnx:
        return "skipped (--no_onnx)"
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError as error:
        return f"skipped: {error.name} is not installed"
    if device == "cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "skipped on cuda: this onnxruntime has no CUDA execution provider"
    return None


# ----------------------------------------------------------------------------- measuring


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(calls: dict, device: str, warmup: int, repeats: int) -> dict:
    """Seconds per call of each of ``calls`` (name -> no-argument callable), ``repeats`` times
    after ``warmup`` untimed calls. The calls take turns within each repeat, so a burst of load
    from other processes on a shared machine slows all of them alike instead of one."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    # glibc keeps freed blocks mapped, so without this a call whose tensors fit in memory freed
    # by earlier calls would show no growth of the resident set at all.
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn, device: str) -> float:
    """Peak memory of one call in MiB above what was held before it: CUDA allocator peak on
    CUDA; on CPU the growth of the resident set size (after returning free heap pages to the
    system), sampled every millisecond by a thread (Linux, glibc)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2 ** 20
    if not os.path.exists("/proc/self/statm"):
        return float("nan")
    _release_free_heap()
    before = _rss_bytes()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return (max(peak[0], _rss_bytes()) - before) / 2 ** 20


def random_batch(batch: int, height: int, width: int, device: str, seed: int = 0):
    return tuple(x.to(device) for x in example_inputs(height, width, batch, seed))


def autocast_for(path: RunPath, device: str):
    if path.bf16:
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return nullcontext()


# ----------------------------------------------------------------------------- inference


def models_for(path: RunPath, warp, gen):
    """``warp`` (a copy, with the path's cost volume) and ``gen`` prepared as ``path`` runs
    them: BatchNorm folded, channels-last, compiled, as it says."""
    warp = set_cost_volume(copy.deepcopy(warp), path.correlation)
    if path.fold_bn or path.channels_last or path.compile:
        warp, gen = (optimize_for_inference(m, fold_bn=path.fold_bn,
                                            channels_last=path.channels_last,
                                            compile=path.compile) for m in (warp, gen))
    return warp, gen


def build_inference(path: RunPath, warp, gen, example, device: str, runtimes=None):
    """A no-argument callable running one try-on of ``example`` along ``path``; ``runtimes``
    holds the ONNX Runtime models ('fp32', 'int8') that the onnxruntime paths run."""
    if path.onnxruntime:
        # Inputs go to ONNX Runtime as CPU arrays and the outputs come back as CPU tensors,
        # transfers included, as utils/inference/onnx_runtime.py serves test.py.
        runtime = runtimes["int8" if path.int8 else "fp32"]
        return lambda: runtime(*example).tryon
    warp, gen = models_for(path, warp, gen)

    def tryon(person, garment, edge):
        with torch.inference_mode(), autocast_for(path, device):
            return parser_free_tryon(warp, gen, person, garment, edge).tryon

    if path.cuda_graph:
        runner = CudaGraphRunner(tryon, list(example))
        return lambda: runner(*example)
    return lambda: tryon(*example)


def export_for_onnxruntime(device: str, args, warp, gen, folder: str) -> dict:
    """Export ``warp`` and ``gen`` to ONNX in ``folder`` (as ``scripts/export.py`` does) and
    open it in ONNX Runtime with torch's thread count; on the CPU also its int8 version
    (``utils/quantize.py``), calibrated on random inputs: speed does not depend on the ranges.
    Returns {'fp32': model, 'int8': model, 'files': {...}, 'export_s', 'quantise_s'}."""
    from utils.export import export_tryon
    from utils.inference.onnx_runtime import load_onnx_model
    path = os.path.join(folder, "tryon.onnx")
    info = export_tryon(warp, gen, args.height, args.width, onnx_path=path)
    found = {"fp32": load_onnx_model(path, device, threads=torch.get_num_threads(),
                                     what="benchmark"),
             "files": {"fp32": path}, "export_s": info["seconds"]}
    print(f"  exported the try-on to ONNX in {info['seconds']:.1f} s "
          f"({info['onnx_bytes'] / 2 ** 20:.1f} MiB); ONNX Runtime providers "
          f"{found['fp32'].providers}", flush=True)
    if device == "cpu" and not args.no_int8:
        from utils.quantize import quantize_graph
        int8_path = os.path.join(folder, "tryon_int8.onnx")
        batches = [random_batch(2, args.height, args.width, "cpu", seed) for seed in (1, 2)]
        quantised = quantize_graph(path, int8_path, batches, {"calibration": "random inputs"})
        found["int8"] = load_onnx_model(int8_path, device, threads=torch.get_num_threads(),
                                        what="benchmark")
        found["files"]["int8"] = int8_path
        found["quantise_s"] = quantised["seconds"]
        print(f"  quantised it to int8 in {quantised['seconds']:.1f} s "
              f"({quantised['bytes'] / 2 ** 20:.1f} MiB)", flush=True)
    return found


# Configurations benchmarked beside the registered families (``models.registry.families``).
CONFIGS = {"mobile_student": "configs/mobile_student.yaml"}


def architecture_names() -> list[str]:
    """What ``--archs`` takes: the registered families, then ``CONFIGS``."""
    from models.registry import families
    return [*families(), *CONFIGS]


def architecture_models(name: str, device: str):
    """Random parser-free warp and generator of a registered family at its released widths,
    or of a configuration of ``CONFIGS``, eval mode."""
    from models.registry import families
    if name in CONFIGS:
        from options.config import parse_config
        from utils.training.parts import gen_arch, warp_arch
        cfg = parse_config(["--config", os.path.join(ROOT, CONFIGS[name])], default_name=name)
        warp_spec, gen_spec = warp_arch(cfg, PF_WARP_INPUT), gen_arch(cfg, PF_GEN_INPUT)
    else:
        family = families()[name]
        warp_spec = {"kind": "warp", "type": family.warp, "input_nc": PF_WARP_INPUT}
        gen_spec = {"kind": "gen", "type": family.gen, "input_nc": PF_GEN_INPUT}
    torch.manual_seed(0)
    return (build_model(warp_spec).to(device).eval(), build_model(gen_spec).to(device).eval())


def bench_inference(device: str, args, warp, gen, arch: str = "pfafn",
                    runtimes: dict | None = None) -> list[dict]:
    """Inference rows of every path and batch size of one architecture (with the try-on's
    GFLOP/s) and, in the 'profile' section, where the time of fp32 and of the fastest path
    goes. ``runtimes``: ONNX Runtime models of ``warp`` and ``gen`` already exported (as
    ``export_for_onnxruntime`` returns them; default: export them here)."""
    with tempfile.TemporaryDirectory(prefix="pfafn_bench_") as folder:
        note = onnxruntime_note(device, args)
        if note is None and runtimes is None:
            runtimes = export_for_onnxruntime(device, args, warp, gen, folder)
        elif note is not None:
            print(f"  inference {device} onnxruntime: {note}")
        gflop = count_flops(lambda: parser_free_tryon(
            warp, gen, *random_batch(1, args.height, args.width, device))) / 1e9
        rows = []
        for batch in args.batch_sizes:
            rows += _inference_rows(device, args, warp, gen, arch, batch, runtimes, gflop)
        if "profile" in args.sections and device == "cpu":
            rows += bench_profile(args, warp, gen, arch, rows, runtimes)
    return rows


def _inference_rows(device, args, warp, gen, arch, batch, runtimes, gflop) -> list:
    example = random_batch(batch, args.height, args.width, device)
    paths = selected(inference_paths(device, args), args)
    runs = {path.name: build_inference(path, warp, gen, example, device, runtimes)
            for path in paths}
    times = time_interleaved(runs, device, args.warmup, args.repeats)
    rows = []
    for path in paths:
        latency = statistics.median(times[path.name])
        memory = peak_memory(runs[path.name], device)
        rows.append(dict(section="inference", device=device, arch=arch, path=path.name,
                         batch=batch, latency_ms=1000 * latency, images_per_s=batch / latency,
                         min_latency_ms=1000 * min(times[path.name]), peak_mib=memory,
                         gflop_per_image=gflop, gflops=gflop * batch / latency,
                         times_s=times[path.name], config=asdict(path)))
        versus = f", {rows[-1]['gflops']:.0f} GFLOP/s"
        if path.onnxruntime:
            fast = next(r for r in rows if r["path"].endswith("+fold+cl"))
            rows[-1].update(export_s=runtimes["export_s"], fast_path=fast["path"],
                            speedup_vs_fast=fast["latency_ms"] / rows[-1]["latency_ms"])
            versus += f", {rows[-1]['speedup_vs_fast']:.2f}x {fast['path']}"
        print(f"  inference {device} {arch} b={batch} {path.name}: {1000 * latency:.0f} ms "
              f"({batch / latency:.2f} img/s{versus}), peak {memory:.0f} MiB", flush=True)
    return rows


def bench_peak(args, when: str) -> dict:
    """This CPU's peak: a large 3x3 convolution through oneDNN (``utils.profiling``) with the
    benchmark's thread count, fp32, and bf16 where the CPU has native bf16 (or --cpu_bf16)."""
    peaks = {"fp32": conv_peak_gflops(torch.float32)}
    if args.cpu_bf16 or unsupported("bf16", torch.device("cpu")) is None:
        peaks["bf16"] = conv_peak_gflops(torch.bfloat16)
    print(f"  peak {when} (3x3 convolution, oneDNN, {torch.get_num_threads()} threads): "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()), flush=True)
    return peaks


def bench_profile(args, warp, gen, arch, rows, runtimes) -> list[dict]:
    """Where one try-on's time goes (batch 1), for the fp32 fast path (``*+fold+cl``) and for
    the fastest path of ``rows``."""
    from models.graph import INPUT_NAMES
    from utils.profiling import module_profile, onnx_profile
    first = [r for r in rows if r["batch"] == rows[0]["batch"]]
    fp32 = next(r for r in first if r["path"].endswith("+fold+cl"))
    fastest = min(first, key=lambda r: r["latency_ms"])
    example = random_batch(first[0]["batch"], args.height, args.width, "cpu")
    profiled = []
    for row in [fp32] + ([fastest] if fastest is not fp32 else []):
        path = RunPath(**row["config"])
        if path.onnxruntime:
            kind = "int8" if path.int8 else "fp32"
            feeds = {name: x.numpy() for name, x in zip(INPUT_NAMES, example)}
            profile = onnx_profile(runtimes["files"][kind], feeds, torch.get_num_threads(),
                                   repeats=args.repeats)
            # FLOPs per category are the model's, whatever runs it.
            for name, found in profile["categories"].items():
                found["gflop"] = profiled[0]["categories"].get(name, {}).get("gflop")
        else:
            fast_warp, fast_gen = models_for(path, warp, gen)
            profile = module_profile(fast_warp, fast_gen, example,
                                     torch.bfloat16 if path.bf16 else None, args.repeats)
        profile.update(section="profile", device="cpu", arch=arch, path=row["path"],
                       batch=row["batch"], latency_ms=row["latency_ms"], config=row["config"])
        profiled.append(profile)
        print(f"  profile {arch} {row['path']} (per try-on, ms / GFLOP):", flush=True)
        for name, found in sorted(profile["categories"].items(), key=lambda kv: -kv[1]["ms"]):
            gflop = found.get("gflop")
            print(f"    {name:<30}{found['ms']:>8.1f}"
                  + (f"{gflop:>8.2f}" if gflop is not None else ""), flush=True)
    return profiled


def add_fractions_of_peak(rows: list[dict], peaks: dict) -> None:
    """Each CPU inference row's and profile part's GFLOP/s as a fraction of ``peaks`` (bf16
    rows against the bf16 peak; fp32 and int8 rows against the fp32 one: no int8 peak is
    measured)."""
    from utils.profiling import fractions_of_peak
    for row in rows:
        if row.get("device") != "cpu" or row["section"] not in ("inference", "profile"):
            continue
        kind = "bf16" if row["config"]["bf16"] else "fp32"
        row["peak_dtype"] = kind
        if row["section"] == "inference":
            row["fraction_of_peak"] = row["gflops"] / peaks[kind]
        else:
            fractions_of_peak(row, peaks[kind])


def bench_correlation(device: str, args) -> list[dict]:
    """The cost volume alone at (B, C, H, W) = ``--corr_shape``: forward, and forward+backward."""
    batch, channels, height, width = args.corr_shape
    generator = torch.Generator(device="cpu").manual_seed(0)
    first = torch.randn(batch, channels, height, width, generator=generator).to(device)
    second = torch.randn(batch, channels, height, width, generator=generator).to(device)
    names = ["loop", "band"] + (["triton"] if device == "cuda" and correlation.triton_available()
                                else [])
    rows = []
    for mode in ("forward", "forward+backward"):
        def make(name, mode):
            def forward():
                with torch.no_grad():
                    correlation.local_correlation(first, second, implementation=name)

            def forward_backward():
                a = first.detach().requires_grad_()
                b = second.detach().requires_grad_()
                correlation.local_correlation(a, b, implementation=name).sum().backward()
            return forward if mode == "forward" else forward_backward
        calls = {name: make(name, mode) for name in names}
        times = time_interleaved(calls, device, args.warmup, max(args.repeats, 3))
        for name in names:
            seconds = statistics.median(times[name])
            path = PLAIN.name if name == "loop" else name
            rows.append(dict(section="correlation", device=device, stage=mode, path=path,
                             batch=batch, latency_ms=1000 * seconds, images_per_s=batch / seconds,
                             peak_mib=float("nan"), times_s=times[name],
                             config=dict(shape=list(args.corr_shape), implementation=name)))
            print(f"  correlation {device} {mode} {tuple(args.corr_shape)} {name}: "
                  f"{1000 * seconds:.1f} ms", flush=True)
    return rows


# ----------------------------------------------------------------------------- training


TRAIN_STAGES = ("pb_warp", "pb_gen", "pf_warp", "pf_gen")


def training_paths(device: str, args) -> list[RunPath]:
    """The cost volume and precision of ``train_*.py``'s ``--cost_volume``/``--precision``."""
    fast_corr = "triton" if device == "cuda" and correlation.triton_available() else "band"
    paths = [PLAIN, RunPath(fast_corr, fast_corr)]
    if device == "cuda" or args.cpu_bf16 or unsupported("bf16", torch.device("cpu")) is None:
        paths.append(RunPath(f"{fast_corr}+bf16", fast_corr, bf16=True))
    return paths


def stage_of(name: str):
    """The ``Stage`` of a training script (``train_pb_warp.py`` ...)."""
    import importlib
    module = importlib.import_module(f"train_{name}")
    return next(value() for value in vars(module).values()
                if isinstance(value, type) and getattr(value, "name", None) == name
                and value.__module__ == module.__name__)


class TrainingBench:
    """Synthetic data and random earlier-stage checkpoints in a temporary folder, for
    ``Trainer`` runs of every stage at the benchmark's size (the release's widths)."""

    def __init__(self, folder: str, args):
        from data.synthetic import make_dataset
        self.folder, self.args = folder, args
        count = max(2 * args.train_batch_size, 2)
        roots = make_dataset(os.path.join(folder, "data"), num_train=count, num_test=0, seed=0,
                             height=args.height, width=args.width)
        self.dataroot = roots["train"]
        self.checkpoints = self._earlier_stages()

    def _earlier_stages(self) -> dict:
        """Stage-1, 2 and 3 checkpoints of random weights, in this project's format, with the
        architectures the flags (``--train_config``) describe."""
        from models import PB_GEN_INPUT, PB_WARP_INPUT
        from options.config import parse_config
        from utils.checkpoint import checkpoint_payload, save_atomic
        from utils.training.parts import gen_arch, warp_arch
        cfg = parse_config(self._config_argv(), default_name="earlier_stages")
        models = {"pb_warp": {"warp": warp_arch(cfg, PB_WARP_INPUT)},
                  "pb_gen": {"warp": warp_arch(cfg, PB_WARP_INPUT),
                             "gen": gen_arch(cfg, PB_GEN_INPUT)},
                  "pf_warp": {"warp": warp_arch(cfg, PF_WARP_INPUT)}}
        paths = {}
        for stage, parts in models.items():
            torch.manual_seed(0)
            built = {key: build_model(arch) for key, arch in parts.items()}
            payload, _ = checkpoint_payload(stage, built, {"height": self.args.height,
                                                           "width": self.args.width})
            paths[stage] = os.path.join(self.folder, f"{stage}.pth")
            save_atomic(payload, paths[stage])
        return paths

    def _config_argv(self) -> list[str]:
        # Random VGG19 / LPIPS weights where the configuration builds them (no downloads); as a
        # file's key, which a configuration without those networks leaves unused.
        random = os.path.join(self.folder, "random_weights.yaml")
        if not os.path.isfile(random):
            with open(random, "w") as file:
                file.write("allow_random_weights: true\n")
        return (["--config", self.args.train_config] if self.args.train_config else []) + [
            "--config", random]

    def argv(self, name: str, path: RunPath, device: str) -> list[str]:
        args = self.args
        argv = self._config_argv() + [
                "--dataroot", self.dataroot, "--checkpoints_dir", os.path.join(self.folder, "runs"),
                "--name", f"{name}_{path.name}_{device}", "--overwrite", "--device", device,
                "--height", str(args.height), "--width", str(args.width),
                "--batch_size", str(args.train_batch_size), "--workers", "0",
                "--sample_every", "0", "--save_every", "0",
                "--log_every", "1000000", "--cost_volume", path.correlation,
                "--precision", "bf16" if path.bf16 else "fp32"]
        if name == "pb_gen":
            argv += ["--pb_warp_checkpoint", self.checkpoints["pb_warp"]]
        if name in ("pf_warp", "pf_gen"):
            argv += ["--pb_checkpoint", self.checkpoints["pb_gen"], "--kd_group_size", "0"]
        if name == "pf_gen":
            argv += ["--pf_warp_checkpoint", self.checkpoints["pf_warp"]]
        return argv

    def timed_steps(self, name: str, path: RunPath, device: str):
        """The endless training steps of a ``Trainer`` of stage ``name`` along ``path``."""
        from options.config import parse_config
        from utils.training.distributed import DistributedContext
        from utils.training.engine import Trainer

        stage = stage_of(name)
        cfg = parse_config(self.argv(name, path, device), stage.add_arguments, stage.defaults,
                           default_name=name)
        context = DistributedContext(rank=0, world_size=1, local_rank=0,
                                     device=torch.device(device))
        logger = logging.getLogger("pfafn.benchmark")
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
        run_dir = pathlib.Path(cfg.checkpoints_dir) / cfg.name
        trainer = Trainer(stage, cfg, context, run_dir, logger, show_progress=False)
        return trainer.timed_steps()


def bench_training(device: str, args) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="pfafn_bench_train_") as folder:
        bench = TrainingBench(folder, args)
        for name in args.train_stages:
            paths = selected(training_paths(device, args), args)
            steps = {}
            for path in paths:
                steps[path.name] = partial(next, bench.timed_steps(name, path, device))
            times = time_interleaved(steps, device, args.train_warmup, args.train_repeats)
            for path in paths:
                seconds = statistics.median(times[path.name])
                memory = peak_memory(steps[path.name], device)
                rows.append(dict(section="training", device=device, stage=name, path=path.name,
                                 batch=args.train_batch_size, step_ms=1000 * seconds,
                                 samples_per_s=args.train_batch_size / seconds,
                                 min_step_ms=1000 * min(times[path.name]), peak_mib=memory,
                                 times_s=times[path.name], config=asdict(path)))
                print(f"  training {device} {name} b={args.train_batch_size} {path.name}: "
                      f"{1000 * seconds:.0f} ms/step ({args.train_batch_size / seconds:.2f} "
                      f"samples/s), peak {memory:.0f} MiB", flush=True)
            del steps
    return rows


# ----------------------------------------------------------------------------- data loading


def bench_data(args) -> list[dict]:
    if not args.data_root:
        note = ("skipped: pass --data_root DIR/VITON_traindata (python "
                "scripts/make_synthetic_data.py --out DIR makes one)")
        print(f"  data: {note}")
        return [dict(section="data", note=note)]
    try:
        from scripts.bench_data import main as bench_data_main
    except ImportError as error:
        note = f"skipped: scripts/bench_data.py or data/viton.py not importable ({error})"
        print(f"  data: {note}")
        return [dict(section="data", note=note)]
    result = bench_data_main(["--root", args.data_root, "--num_samples", str(args.data_samples),
                              "--height", str(args.height), "--width", str(args.width)])
    torch.set_num_threads(args.threads)   # bench_data sets its own thread count
    return [dict(section="data", **result)]


# ----------------------------------------------------------------------------- report


def add_ratios(rows: list[dict]) -> None:
    """Each row's speed and memory as a ratio to the plain path's row of the same setting."""
    def key(row):
        return (row["section"], row.get("device"), row.get("arch"), row.get("stage"),
                row.get("batch"))
    plain = {key(r): r for r in rows if r.get("path") == PLAIN.name}
    for row in rows:
        base = plain.get(key(row))
        if base is None:
            continue
        speed = "samples_per_s" if row["section"] == "training" else "images_per_s"
        row["speedup_vs_plain"] = row[speed] / base[speed]
        if base["peak_mib"] > 0 and not math.isnan(base["peak_mib"]):
            row["memory_vs_plain"] = row["peak_mib"] / base["peak_mib"]


def print_table(rows: list[dict]) -> None:
    header = (f"{'section':<12}{'device':<7}{'stage':<18}{'batch':>6}  {'path':<32}"
              f"{'ms':>10}{'per s':>9}{'x plain':>9}{'peak MiB':>10}{'x mem':>7}{'% peak':>8}")
    print(header)
    print("-" * len(header))
    for row in rows:
        if row["section"] == "profile":
            continue                    # printed as measured, and in the JSON
        if row["section"] == "peak":
            print(f"{'peak':<12}{row['device']:<7}{'3x3 conv oneDNN':<18}{'':>6}  "
                  + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in row["gflops"].items()))
            continue
        if "path" not in row:
            if row["section"] == "data" and "note" not in row:
                print(f"{'data':<12}{'cpu':<7}{'loader':<18}{row['batch_size']:>6}  "
                      f"{'(loader alone / + inputs)':<32}{'':>10}"
                      f"{row['loader_samples_per_s']:>9.1f}   / "
                      f"{row['loader_and_inputs_samples_per_s']:.1f}")
            else:
                print(f"{row['section']:<12}{row.get('note', '')}")
            continue
        ms = row.get("latency_ms", row.get("step_ms"))
        rate = row.get("images_per_s", row.get("samples_per_s"))
        print(f"{row['section']:<12}{row['device']:<7}{row.get('stage', row.get('arch', '')):<18}"
              f"{row['batch']:>6}  {row['path']:<32}{ms:>10.1f}{rate:>9.2f}"
              f"{row.get('speedup_vs_plain', float('nan')):>9.2f}{row['peak_mib']:>10.0f}"
              f"{row.get('memory_vs_plain', float('nan')):>7.2f}"
              f"{100 * row.get('fraction_of_peak', float('nan')):>8.1f}")


def print_profiles(rows: list[dict]) -> None:
    """Where one try-on's time goes, per profiled path: ms and % of peak per part."""
    for row in (r for r in rows if r["section"] == "profile"):
        print(f"\nprofile {row['arch']} {row['path']} b={row['batch']} (timed "
              f"{row['latency_ms']:.1f} ms; the parts {row['total_ms']:.1f} ms)")
        for name, found in sorted(row["categories"].items(), key=lambda kv: -kv[1]["ms"]):
            share = found.get("fraction_of_peak")
            print(f"  {name:<30}{found['ms']:>8.1f} ms"
                  + (f"{found['gflop']:>8.2f} GFLOP{100 * share:>6.1f}% of peak"
                     if share is not None else ""))


def cpu_description() -> dict:
    """The CPU's model name and the instruction sets the models' speed depends on (Linux)."""
    found = {"model": platform.processor() or None, "flags": []}
    try:
        with open("/proc/cpuinfo") as handle:
            text = handle.read()
    except OSError:
        return found
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            found["model"] = value.strip()
        elif key.strip() == "flags":
            wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16",
                      "amx_int8", "fma")
            found["flags"] = [flag for flag in value.split() if flag in wanted]
            break
    found["logical_cpus"] = os.cpu_count()
    return found


def environment(args, load) -> dict:
    info = dict(command="python " + " ".join(sys.argv), cpu=cpu_description(),
                torch=torch.__version__, python=platform.python_version(),
                machine=platform.machine(), cpu_capability=torch.backends.cpu.get_cpu_capability(),
                torch_threads=torch.get_num_threads(), omp_num_threads=os.environ.get(
                    "OMP_NUM_THREADS"), load_average_at_start=load, size=[args.height, args.width],
                cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    for package in ("triton", "onnxruntime", "onnx"):
        try:
            info[package] = __import__(package).__version__
        except ImportError:
            info[package] = None
    return info


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--devices", default="auto",
                        help="comma-separated cpu,cuda; 'auto' = cpu plus cuda when available")
    parser.add_argument("--corr_shape", default="2,256,128,96",
                        type=lambda text: [int(v) for v in text.split(",")],
                        help="B,C,H,W of the correlation section (the finest 256x192 level)")
    parser.add_argument("--sections", default="correlation,inference,training,data",
                        help="comma-separated subset of correlation,inference,profile,"
                             "training,data (profile: where the time of batch 1 goes, with "
                             "inference, on the CPU)")
    parser.add_argument("--batch_sizes", default="1,4", help="inference batch sizes")
    parser.add_argument("--height", type=int, default=256, help="image height")
    parser.add_argument("--width", type=int, default=192, help="image width")
    parser.add_argument("--warmup", type=int, default=1, help="untimed inference runs per figure")
    parser.add_argument("--repeats", type=int, default=3, help="timed inference runs per figure")
    parser.add_argument("--train_batch_size", type=int, default=2, help="training batch size")
    parser.add_argument("--archs", default="pfafn",
                        help="comma-separated architectures of the inference rows: "
                             + ", ".join(architecture_names()) + " (random weights, parser-free)")
    parser.add_argument("--train_config", default=None,
                        help="YAML file of training flags (widths, VGG levels) for the training "
                             "rows, e.g. configs/tiny.yaml; when not given, the paper's")
    parser.add_argument("--train_stages", default="pb_warp,pf_gen",
                        help="comma-separated stages whose training step is timed: "
                             + ", ".join(TRAIN_STAGES))
    parser.add_argument("--train_warmup", type=int, default=1, help="untimed training steps")
    parser.add_argument("--train_repeats", type=int, default=3, help="timed training steps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; when not given, OMP_NUM_THREADS or torch's "
                             "choice")
    parser.add_argument("--cpu_bf16", action="store_true",
                        help="also time bf16 autocast on a CPU without native bf16 (AVX-512 "
                             "BF16 or AMX; timed by itself where the CPU has it): emulated, slow")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--no_cuda_graphs", action="store_true", help="skip the CUDA-graph path")
    parser.add_argument("--no_int8", action="store_true",
                        help="skip the int8 ONNX Runtime row (it quantises the exported graph)")
    parser.add_argument("--no_onnx", action="store_true",
                        help="skip the ONNX Runtime row (it exports the models first: about "
                             "half a minute on CPU)")
    parser.add_argument("--paths", default=None,
                        help="comma-separated names of the inference and training paths to "
                             "time (e.g. plain,band+fold+cl), all when not given; the ratios "
                             "need 'plain'")
    parser.add_argument("--data_root", default=None, help="VITON_traindata folder for the data "
                        "loading figure (skipped without it)")
    parser.add_argument("--data_samples", type=int, default=200, help="samples timed for data")
    parser.add_argument("--json", default="results/benchmark.json",
                        help="where the results are written (folders are created)")
    args = parser.parse_args(argv)
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    args.sections = args.sections.split(",")
    args.train_stages = [name.strip() for name in args.train_stages.split(",") if name.strip()]
    args.archs = [name.strip() for name in args.archs.split(",") if name.strip()]
    if set(args.archs) - set(architecture_names()):
        parser.error(f"--archs: expected a subset of {', '.join(architecture_names())}")
    if set(args.train_stages) - set(TRAIN_STAGES):
        parser.error(f"--train_stages: expected a subset of {', '.join(TRAIN_STAGES)}")
    unknown = set(args.sections) - {"correlation", "inference", "profile", "training", "data"}
    if unknown:
        parser.error(f"unknown sections: {sorted(unknown)}")
    if args.devices == "auto":
        args.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        args.devices = args.devices.split(",")
        if "cuda" in args.devices and not torch.cuda.is_available():
            parser.error("--devices cuda: CUDA is not available")
    if args.height % 32 or args.width % 32:
        parser.error("--height and --width must be multiples of 32")
    check_section_flags(parser, args, argv)
    return args


# The flags of one section: given without it, they did nothing.
SECTION_FLAGS = {
    "correlation": ("corr_shape",),
    "inference": ("batch_sizes", "archs", "compile", "no_cuda_graphs", "no_int8", "no_onnx"),
    "training": ("train_batch_size", "train_config", "train_stages", "train_warmup",
                 "train_repeats"),
    "data": ("data_root", "data_samples"),
}


def check_section_flags(parser, args, argv) -> None:
    """Refuse flags of sections not run, 'profile' without 'inference' (it profiles the
    inference rows) and --paths names that no timed path has."""
    unused = unused_flags(given_on_command_line(parser, argv), [
        *((flags, section not in args.sections, f"the {section} section (--sections)")
          for section, flags in SECTION_FLAGS.items()),
        (("warmup", "repeats"), not {"inference", "correlation"} & set(args.sections),
         "the inference and correlation sections (--sections)")])
    if unused:
        parser.error(unused)
    if "profile" in args.sections and "inference" not in args.sections:
        parser.error("--sections profile: it profiles the inference rows; add inference")
    if args.paths:
        known = {path.name for device in args.devices for path in
                 inference_paths(device, args) + training_paths(device, args)}
        unknown = sorted({name.strip() for name in args.paths.split(",")} - known - {""})
        if unknown:
            parser.error(f"--paths: no path named {', '.join(unknown)} here; the paths: "
                         f"{', '.join(sorted(known))}")


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        return benchmark(args)


def benchmark(args) -> dict:
    load_at_start = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    rows = []
    for device in args.devices:
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
        if "correlation" in args.sections:
            rows += bench_correlation(device, args)
        if "inference" in args.sections:
            peaks = bench_peak(args, "at start") if device == "cpu" else None
            for arch in args.archs:
                warp, gen = architecture_models(arch, device)
                rows += bench_inference(device, args, warp, gen, arch=arch)
            if peaks:
                # Measured before and after; the higher of the two (load from other processes
                # only lowers it) is the peak the rows are fractions of.
                late = bench_peak(args, "at end")
                peaks = {k: max(v, late[k]) for k, v in peaks.items()}
                rows.append(dict(section="peak", device=device, gflops=peaks,
                                 threads=torch.get_num_threads(), shape=list(PEAK_SHAPE),
                                 note="3x3 convolution, oneDNN, best of the start and end"))
                add_fractions_of_peak(rows, peaks)
        if "training" in args.sections:
            rows += bench_training(device, args)
    if "data" in args.sections:
        rows += bench_data(args)
    add_ratios(rows)
    report = dict(environment=environment(args, load_at_start), args=dict(vars(args)),
                  load_average_at_end=os.getloadavg(), results=rows)
    print()
    print_table(rows)
    print_profiles(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"\nwritten {args.json}; load average at end {os.getloadavg()}")
    return report


if __name__ == "__main__":
    main()
