"""Check this machine's GPU (or CPU) runs the project's CUDA code, and write one JSON report.

    python scripts/gpu_check.py                     # docs/benchmarks/gpu_check_<device>.json
    python scripts/gpu_check.py --size paper        # also the paper's widths at 256x192

The code that first runs on a user's GPU: the Triton cost volume, CUDA autocast with the
gradient scaler, NCCL and SyncBatchNorm (``torchrun``), CUDA graphs. Each check passes, fails
(with what differed) or is skipped (with why: e.g. no CUDA, no Triton); the report holds the
GPU, driver and versions, every check's status and its figures. It needs the packages of
requirements.txt, and pytest for the CUDA-only tests; it takes a few minutes on one GPU.

Checks, in order:

1. ``cuda_tests``: the CUDA-only tests of the suite (Triton against the loop, CUDA graphs...).
2. ``triton_vs_band``: the Triton kernels against the band formulation, forward and both
   gradients, at the sizes of the warp's levels, and their speed.
3. ``amp_tryon``: a try-on in bf16 and fp16 autocast against float32 (8-bit levels).
4. ``cuda_graph``: a try-on replayed from a CUDA graph against eager.
5. ``stages``: the four stages chained under ``torchrun --nproc_per_node 1`` (NCCL and
   SyncBatchNorm on CUDA, gloo on CPU), each a few steps in bf16 and in fp16: finite losses,
   checkpoints written, samples/s and peak memory.
6. ``inference``: try-ons per second at batch 1 and 8 (and 64 on CUDA), float32 and bf16.

Exit status: 0 when nothing failed, 1 otherwise.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from common.cli import HelpFormatter  # noqa: E402

STAGES = (("pb_warp", "train_pb_warp.py"), ("pb_gen", "train_pb_gen.py"),
          ("pf_warp", "train_pf_warp.py"), ("pf_gen", "train_pf_gen.py"))
TRITON_SHAPES = ((2, 256, 8, 6), (2, 256, 32, 24), (2, 256, 128, 96), (1, 64, 17, 13))
TRITON_TOLERANCE = 1e-4
# Reduced precision against float32 (tests/test_fast_paths.py's bounds for bf16): the flow in
# normalised coordinates, the generator's logits.
AMP_FLOW_TOLERANCE = dict(max=0.05, mean=0.01)
AMP_GENERATOR_TOLERANCE = dict(max=0.03, mean=0.003)


class Skip(Exception):
    """A check that does not apply on this machine; the message says why."""


def environment(device: torch.device) -> dict:
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "device": str(device)}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                    compute_capability=f"{props.major}.{props.minor}")
        smi = shutil.which("nvidia-smi")
        if smi:
            done = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True)
            info["driver"] = done.stdout.strip().splitlines()[0] if done.returncode == 0 else None
    return info


def need_cuda(device):
    if device.type != "cuda":
        raise Skip("needs CUDA: this machine has none")


# --------------------------------------------------------------------------------------- checks


def check_cuda_tests(device, args) -> dict:
    need_cuda(device)
    try:
        import pytest  # noqa: F401
    except ImportError:
        raise Skip("pytest is not installed (pip install pytest)") from None
    tests = ["tests/test_fast_paths.py", "tests/test_correlation.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", *tests, "-k",
                           "cuda or triton or graph"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    if done.returncode != 0:
        raise AssertionError(f"pytest: {tail}\n{done.stdout[-3000:]}")
    return {"details": tail}


def check_triton_vs_band(device, args) -> dict:
    need_cuda(device)
    from models.correlation import BandCorrelation, triton_available
    if not triton_available():
        raise Skip("Triton is not installed")
    from models.correlation_triton import triton_correlation
    figures, worst = [], 0.0
    for shape in TRITON_SHAPES:
        generator = torch.Generator().manual_seed(0)
        first, second = (torch.randn(shape, generator=generator).to(device) for _ in range(2))
        grad = torch.randn(shape[0], 49, *shape[2:], generator=generator).to(device)
        outputs, times = [], {}
        for name, compute in (("triton", triton_correlation),
                              ("band", lambda a, b, d: BandCorrelation.apply(a, b, d))):
            a, b = first.clone().requires_grad_(), second.clone().requires_grad_()
            volume = compute(a, b, 3)
            volume.backward(grad)
            outputs.append((volume.detach(), a.grad, b.grad))

            def forward_backward(compute=compute, first=first, second=second, grad=grad):
                compute(first.clone().requires_grad_(),
                        second.clone().requires_grad_(), 3).backward(grad)
            times[f"{name}_forward_backward_ms"] = 1000 * _time(forward_backward, device)
        difference = max(float((x - y).abs().max()) for x, y in zip(*outputs))
        worst = max(worst, difference)
        figures.append({"shape": list(shape), "max_abs_difference": difference, **times})
    if worst > TRITON_TOLERANCE:
        raise AssertionError(f"Triton and band differ by up to {worst:.3g} (tolerance "
                             f"{TRITON_TOLERANCE})", figures)
    return {"figures": figures, "details": f"max |difference| {worst:.3g}"}


def _models(device, widths="paper"):
    """Random parser-free models: the paper's widths, or tests/test_fast_paths.py's narrow ones
    with BatchNorm statistics far from the identity."""
    from models import PF_GEN_INPUT, PF_WARP_INPUT, build_model
    torch.manual_seed(0 if widths == "paper" else 3)
    small = widths == "tiny"
    warp = build_model({"kind": "warp", "type": "pfafn", "input_nc": PF_WARP_INPUT,
                        **({"channels": [8, 8, 8, 8, 8], "fpn_dim": 8} if small else {})})
    gen = build_model({"kind": "gen", "type": "resunet", "input_nc": PF_GEN_INPUT,
                       **({"ngf": 4} if small else {})})
    if small:
        generator = torch.Generator().manual_seed(3)
        for module in (*warp.modules(), *gen.modules()):
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
    return warp.to(device).eval(), gen.to(device).eval()


def _inputs(batch, height, width, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    person = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    garment = torch.rand(batch, 3, height, width, generator=generator) * 2 - 1
    edge = (torch.rand(batch, 1, height, width, generator=generator) > 0.3).float()
    return person.to(device), garment.to(device), edge.to(device)


def check_amp_tryon(device, args) -> dict:
    """bf16 and fp16 autocast against float32, on narrow random networks (random networks of
    the paper's widths are chaotic: their float32 and bf16 images part by design, not by a
    fault), with the bounds of tests/test_fast_paths.py: the flow and the generator's output."""
    warp, gen = _models(device, "tiny")
    person, garment, edge = _inputs(2, 64, 64, device, seed=3)
    with torch.inference_mode():
        plain_warp = warp(person, garment)
        gen_input = torch.cat([person, plain_warp.warped, edge], 1)
        plain_gen = gen(gen_input)
    figures, problems = {}, []
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        if device.type == "cpu" and name == "fp16":
            continue     # float16 autocast on CPU is emulated: slow and not what users run
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype):
            reduced_warp = warp(person, garment)
            reduced_gen = gen(gen_input)
        flow = (reduced_warp.flow.float() - plain_warp.flow).abs()
        logits = (reduced_gen.float() - plain_gen).abs()
        figures[name] = {"flow_max": float(flow.max()), "flow_mean": float(flow.mean()),
                         "generator_max": float(logits.max()),
                         "generator_mean": float(logits.mean()),
                         "generator_dtype": str(reduced_gen.dtype)}
        for what, error, bound in (("flow", flow, AMP_FLOW_TOLERANCE),
                                   ("generator", logits, AMP_GENERATOR_TOLERANCE)):
            if error.max() >= bound["max"] or error.mean() >= bound["mean"]:
                problems.append(f"{name} {what}: max {float(error.max()):.3g}, mean "
                                f"{float(error.mean()):.3g} (bounds {bound})")
    if problems:
        raise AssertionError("; ".join(problems), figures)
    skipped = " (fp16 skipped on CPU)" if device.type == "cpu" else ""
    return {"figures": figures, "details": "within the bounds" + skipped}


def check_cuda_graph(device, args) -> dict:
    need_cuda(device)
    from models.fast import CudaGraphRunner
    from models.tryon import parser_free_tryon
    warp, gen = _models(device)
    example = _inputs(8, 256, 192, device)

    def tryon(person, garment, edge):
        return parser_free_tryon(warp, gen, person, garment, edge).tryon

    runner = CudaGraphRunner(tryon, list(example))
    other = _inputs(8, 256, 192, device, seed=1)
    with torch.inference_mode():
        eager = tryon(*other)
    replayed = runner(*other)
    difference = float((replayed - eager).abs().max())
    figures = {"max_abs_difference": difference,
               "graph_ms_batch8": 1000 * _time(lambda: runner(*other), device),
               "eager_ms_batch8": 1000 * _time(lambda: tryon(*other), device, inference=True)}
    if difference > 1e-4:
        raise AssertionError(f"replay differs from eager by {difference:.3g}", figures)
    return {"figures": figures}


def check_stages(device, args) -> dict:
    """The four stages chained, each under ``torchrun --nproc_per_node 1``, per precision."""
    from data.synthetic import make_dataset
    figures = {}
    with tempfile.TemporaryDirectory(prefix="pfafn_gpu_check_") as folder:
        size = (256, 192) if args.size == "paper" else (64, 64)
        roots = make_dataset(os.path.join(folder, "data"), num_train=max(8, args.batch_size),
                             num_test=0, seed=0, height=size[0], width=size[1])
        for amp in _training_precisions(device, args):
            figures[amp] = _chain(roots["train"], os.path.join(folder, amp), amp, size, device,
                                  args)
    # On a CPU fp16 is emulated (and bf16 too without AVX-512 BF16 or AMX): minutes per step.
    skipped = [amp for amp in ("bf16", "fp16") if amp not in figures]
    details = f"stages ran in {', '.join(figures)}"
    if skipped:
        details += f"; {', '.join(skipped)} skipped on {device.type} (not native here)"
    return {"figures": figures, "details": details}


def _training_precisions(device, args) -> tuple:
    if device.type == "cuda":
        return ("bf16", "fp16")
    from utils.inference.precision import unsupported
    return ("bf16",) if args.cpu_bf16 or unsupported("bf16", device) is None else ("fp32",)


def _chain(dataroot, runs, amp, size, device, args) -> dict:
    results = {}
    previous = {}
    for name, script in STAGES:
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "1", str(ROOT / script), "--dataroot", dataroot,
                "--checkpoints_dir", runs, "--device", device.type, "--precision", amp,
                "--height", str(size[0]), "--width", str(size[1]), "--max_steps",
                str(args.steps), "--log_every", "1", "--save_every", "0", "--sample_every", "0",
                "--workers", "0", "--batch_size", str(args.batch_size), "--allow_random_weights",
                "--niter", "1", "--niter_decay", "0"]
        if args.size != "paper":
            argv += ["--config", str(ROOT / "configs" / "tiny.yaml")]
        if name == "pb_gen":
            argv += ["--pb_warp_checkpoint", previous["pb_warp"]]
        if name in ("pf_warp", "pf_gen"):
            argv += ["--pb_checkpoint", previous["pb_gen"]]
        if name == "pf_gen":
            argv += ["--pf_warp_checkpoint", previous["pf_warp"]]
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise AssertionError(f"{name} ({amp}) exited {done.returncode}: "
                                 f"{done.stderr.strip().splitlines()[-1:]}", results)
        final = Path(runs) / name / "final.pth"
        if not final.is_file():
            raise AssertionError(f"{name} ({amp}) wrote no final.pth", results)
        checkpoint = torch.load(final, map_location="cpu", weights_only=True)
        logged = [line.split("|")[-2:] for line in done.stderr.splitlines()
                  if "samples/s" in line and "| peak" in line]
        results[name] = {"seconds": round(seconds, 1), "step": checkpoint["step"],
                         "samples_per_s_last": float(logged[-1][0].split()[0]) if logged else None,
                         "peak_memory_mib": float(logged[-1][1].split()[1]) if logged else None,
                         "finite": all(bool(torch.isfinite(value).all())
                                       for model in checkpoint["model"].values()
                                       for value in model.values() if value.is_floating_point())}
        if not results[name]["finite"]:
            raise AssertionError(f"{name} ({amp}): non-finite weights in final.pth", results)
        previous[name] = str(final)
    return results


def check_inference(device, args) -> dict:
    from models.tryon import parser_free_tryon
    warp, gen = _models(device)
    batches = (1, 8, 64) if device.type == "cuda" else (1, 8)
    figures = []
    for batch in batches:
        example = _inputs(batch, 256, 192, device)
        for amp in ((None, torch.bfloat16) if "bf16" in _training_precisions(device, args)
                    else (None,)):
            def run(amp=amp, example=example):
                with torch.inference_mode(), torch.autocast(device.type, dtype=amp or
                                                            torch.float32,
                                                            enabled=amp is not None):
                    return parser_free_tryon(warp, gen, *example).tryon
            seconds = _time(run, device, repeats=3 if device.type == "cuda" else 1)
            figures.append({"batch": batch, "precision": "bf16" if amp else "fp32",
                            "ms": round(1000 * seconds, 2),
                            "tryons_per_s": round(batch / seconds, 2)})
    return {"figures": figures}


def _time(fn, device, repeats=3, inference=False) -> float:
    """Median seconds of ``fn()`` after one untimed call."""
    context = torch.inference_mode if inference else torch.enable_grad
    with context():
        fn()
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


CHECKS = (("cuda_tests", check_cuda_tests), ("triton_vs_band", check_triton_vs_band),
          ("amp_tryon", check_amp_tryon), ("cuda_graph", check_cuda_graph),
          ("stages", check_stages), ("inference", check_inference))


def run_check(name, check, device, args) -> dict:
    start = time.perf_counter()
    try:
        result = {"status": "pass", **check(device, args)}
    except Skip as reason:
        result = {"status": "skipped", "details": str(reason)}
    except AssertionError as failure:
        message = failure.args[0] if failure.args else "failed"
        result = {"status": "fail", "details": str(message)}
        if len(failure.args) > 1:
            result["figures"] = failure.args[1]
    except Exception as error:      # a crash is a failure of the check, reported, not raised
        result = {"status": "fail", "details": f"{type(error).__name__}: {error}",
                  "traceback": traceback.format_exc(limit=8)}
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(f"{name:>15}: {result['status']:<7} ({result['seconds']} s) "
          f"{result.get('details', '')}", flush=True)
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"],
                   help="auto: CUDA when available")
    p.add_argument("--size", default="tiny", choices=["tiny", "paper"],
                   help="stages at 64x64 with narrow networks (tiny), or at 256x192 with the "
                        "paper's widths (paper)")
    p.add_argument("--steps", type=int, default=4, help="training steps per stage")
    p.add_argument("--batch_size", type=int, default=2, help="training batch size")
    p.add_argument("--checks", default=",".join(name for name, _ in CHECKS),
                   help="comma-separated subset of " + ", ".join(name for name, _ in CHECKS))
    p.add_argument("--cpu_bf16", action="store_true", help="also time bf16 inference on CPU")
    p.add_argument("--out", default=None,
                   help="the JSON report; when not given, docs/benchmarks/gpu_check_<device>.json")
    args = p.parse_args(argv)
    unknown = set(args.checks.split(",")) - {name for name, _ in CHECKS}
    if unknown:
        p.error(f"--checks: unknown {', '.join(sorted(unknown))}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device("cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu")
    info = environment(device)
    print(f"checking {info.get('gpu', 'the CPU')} (torch {info['torch']}, CUDA "
          f"{info['cuda_runtime']}, Triton {info['triton']})", flush=True)
    wanted = args.checks.split(",")
    start = time.perf_counter()
    results = {name: run_check(name, check, device, args) for name, check in CHECKS
               if name in wanted}
    name = (info.get("gpu") or "cpu").lower().replace(" ", "_").replace("/", "_")
    out = Path(args.out or ROOT / "docs" / "benchmarks" / f"gpu_check_{name}.json")
    report = {"command": " ".join(["python", "scripts/gpu_check.py", *(argv or sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "environment": info,
              "arguments": vars(args), "seconds": round(time.perf_counter() - start, 1),
              "checks": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    failed = [name for name, result in results.items() if result["status"] == "fail"]
    print(f"report: {out}; {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
