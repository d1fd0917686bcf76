"""Samples per second of the four training stages as ``train_*.py`` runs them, and where their
time goes.

Each figure is one ``run(stage, argv)`` of the engine in a fresh process, on synthetic
VITON-format data at the configuration of ``--config`` (the demo's by default), data loading
included: a step is the time from one call of the stage's ``losses`` to the next (data, forward,
backward, the optimiser step), the median over the timed steps. The earlier stages' checkpoints
each stage starts from are made by one step of the stage before it.

``--tree DIR`` (repeatable) times other source trees too, e.g. a ``git worktree`` of an older
commit; the trees take turns within every repeat, so load from other processes on a shared
machine hits all of them alike. ``--profile`` prints a ``torch.profiler`` table per stage
instead (this tree only).

    python scripts/bench_training.py --tree /tmp/before \\
        --json docs/benchmarks/training_demo_cpu.json
    python scripts/bench_training.py --profile --stages pf_gen
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("pb_warp", "pb_gen", "pf_warp", "pf_gen")
# What each stage starts from: flag -> the stage whose one-step checkpoint it reads.
EARLIER = {"pb_warp": {},
           "pb_gen": {"--pb_warp_checkpoint": "pb_warp"},
           "pf_warp": {"--pb_checkpoint": "pb_gen"},
           "pf_gen": {"--pb_checkpoint": "pb_gen", "--pf_warp_checkpoint": "pf_warp"}}


def stage_object(name: str):
    """The ``Stage`` instance of ``train_<name>.py`` (imported from the current ``sys.path``)."""
    import importlib
    module = importlib.import_module(f"train_{name}")
    return next(value() for value in vars(module).values()
                if isinstance(value, type) and getattr(value, "name", None) == name
                and value.__module__ == module.__name__)


def known_flags() -> set:
    """The flags of this tree's training parser (stage flags included)."""
    from options.config import build_parser, flag_names
    return {f"--{dest}" for name in STAGES
            for dest in flag_names(build_parser(stage_object(name).add_arguments))}


def precision_flags(precision: str, known: set) -> list[str]:
    """The flag of this tree's parser that selects ``precision`` ('fp32' or 'bf16'):
    ``--precision`` where it exists, the older ``--amp`` otherwise."""
    if "--precision" in known:
        return ["--precision", precision]
    return ["--amp", "none" if precision == "fp32" else precision]


# Quiet runs: no logging, image grids, intermediate saves or BatchNorm recalibration (its
# forward passes come before validations and the last save, not with each step, and would
# be timed as steps). Each entry lists a flag's names across versions of the command line;
# the first this tree knows is used.
QUIET = ((("--log_every",), "1000000"), (("--sample_every",), "0"),
         (("--save_every",), "0"), (("--keep_epoch_every", "--save_epoch_freq"), "0"),
         (("--bn_recalibration",), "0"))


def stage_argv(args, name: str, folder: str, checkpoints: dict, run_name: str) -> list[str]:
    known = known_flags()
    argv = ["--config", args.config, "--dataroot", os.path.join(folder, "data", "VITON_traindata"),
            "--checkpoints_dir", os.path.join(folder, "runs"), "--name", run_name, "--overwrite",
            "--max_steps", str(args.warmup + args.steps + 1),   # a step ends at the next's start
            *precision_flags(args.precision, known)]
    for names, value in QUIET:
        argv += next(([flag, value] for flag in names if flag in known), [])
    for flag, earlier in EARLIER[name].items():
        argv += [flag, checkpoints[earlier]]
    return argv


# ------------------------------------------------------------------------------ one run


def worker(args) -> dict:
    """Train ``args.stage`` for warmup + steps steps; step times, FLOP of one step, and the
    time of the forward (``losses``) alone."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from utils.training.engine import run

    stage = stage_object(args.stage)
    checkpoints = json.loads(args.checkpoints)
    calls, cpu_calls, forward = [], [], []
    counter = FlopCounterMode(display=False)
    losses = stage.losses

    def timed_losses(models, batch, context):
        calls.append(time.perf_counter())
        cpu_calls.append(time.process_time())
        # The first step's FLOP: counting runs from its forward to the next step's forward.
        if len(calls) == 1:
            counter.__enter__()
        elif len(calls) == 2:
            counter.__exit__(None, None, None)
        result = losses(models, batch, context)
        forward.append(time.perf_counter() - calls[-1])
        return result

    stage.losses = timed_losses
    torch.set_num_threads(args.threads)
    run(stage, stage_argv(args, args.stage, args.folder, checkpoints, args.run_name))
    timed = slice(args.warmup, args.warmup + args.steps)
    steps = [b - a for a, b in zip(calls, calls[1:])][timed]
    cpu_steps = [b - a for a, b in zip(cpu_calls, cpu_calls[1:])][timed]
    return {"step_s": steps, "cpu_step_s": cpu_steps, "forward_s": forward[timed],
            "flop_per_step": int(counter.get_total_flops())}


def profile(args) -> None:
    """A ``torch.profiler`` table of ``args.steps`` steps of each stage after the warmup."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from utils.training.engine import run

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_training_") as folder:
        checkpoints = prepare(args, folder, [ROOT])[ROOT]
        for name in args.stages:
            stage = stage_object(name)
            losses, seen = stage.losses, []
            profiler = torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False)

            def profiled_losses(models, batch, context, losses=losses, seen=seen,
                                profiler=profiler):
                seen.append(1)
                if len(seen) == args.warmup + 1:
                    profiler.__enter__()
                return losses(models, batch, context)

            stage.losses = profiled_losses
            start = time.perf_counter()
            run(stage, stage_argv(args, name, folder, checkpoints, f"profile_{name}"))
            profiler.__exit__(None, None, None)
            print(f"== {name}: {time.perf_counter() - start:.1f} s for "
                  f"{args.warmup + args.steps} steps")
            print(profiler.key_averages().table(sort_by="self_cpu_time_total",
                                                row_limit=args.rows))


# ------------------------------------------------------------------------------ orchestration


def in_tree(tree: str, argv: list[str], threads: int) -> dict:
    """This script's ``worker`` run by ``tree``'s Python files; its JSON answer."""
    env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS=str(threads))
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], cwd=tree, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{tree}: {' '.join(argv[:4])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(args, folder: str, trees: list[str]) -> dict:
    """Synthetic data, and per tree the one-step checkpoints of stages 1-3 that its later
    stages start from, made by that tree at its own ``--config`` (trees of different commits
    may configure different networks)."""
    from data.synthetic import make_dataset
    make_dataset(os.path.join(folder, "data"),
                 num_train=args.batch * (args.warmup + args.steps + 1), num_test=0, seed=0,
                 height=args.height, width=args.width)
    one_step = argparse.Namespace(**dict(vars(args), warmup=0, steps=0))
    checkpoints = {}
    for index, tree in enumerate(trees):
        checkpoints[tree] = {}
        for name in STAGES[:3]:
            run_name = f"earlier_{index}_{name}"
            argv = worker_argv(one_step, name, folder, checkpoints[tree], "fp32", run_name)
            in_tree(tree, argv, args.threads)
            checkpoints[tree][name] = os.path.join(folder, "runs", run_name, "final.pth")
    return checkpoints


def worker_argv(args, name, folder, checkpoints, precision, run_name) -> list[str]:
    return ["--worker", "--stage", name, "--folder", folder, "--checkpoints",
            json.dumps(checkpoints), "--precision", precision, "--run_name", run_name,
            "--config", args.config, "--warmup", str(args.warmup), "--steps", str(args.steps),
            "--threads", str(args.threads)]


def cpu_name() -> str:
    """The CPU's model name, and the native bf16 it has (AMX, AVX-512 BF16) if any."""
    from scripts.benchmark import cpu_description
    cpu = cpu_description()
    native = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"))
              if flag in cpu["flags"]]
    return (cpu["model"] or "unknown") + (f" with {' and '.join(native)}" if native else "")


def measure(args) -> dict:
    import torch

    from utils.profiling import conv_peak_gflops

    torch.set_num_threads(args.threads)
    trees = [ROOT, *(os.path.abspath(tree) for tree in args.tree)]
    peaks = {"fp32": [conv_peak_gflops(torch.float32)], "bf16": [conv_peak_gflops(torch.bfloat16)]}
    results = {(tree, name, precision): [] for tree in trees for name in args.stages
               for precision in args.precisions}
    with tempfile.TemporaryDirectory(prefix="bench_training_") as folder:
        checkpoints = prepare(args, folder, trees)
        for repeat in range(args.repeats):
            for name in args.stages:
                for precision in args.precisions:
                    for tree in trees if repeat % 2 == 0 else trees[::-1]:
                        answer = in_tree(tree, worker_argv(args, name, folder, checkpoints[tree],
                                                           precision, f"{name}_{precision}"),
                                         args.threads)
                        results[tree, name, precision].append(answer)
                        step = statistics.median(answer["step_s"])
                        print(f"  repeat {repeat} {name} {precision} {tree}: "
                              f"{1000 * step:.0f} ms/step, {args.batch / step:.2f} samples/s",
                              flush=True)
            for dtype, values in peaks.items():
                values.append(conv_peak_gflops(getattr(torch, {"fp32": "float32",
                                                               "bf16": "bfloat16"}[dtype])))
    peak = {dtype: statistics.median(values) for dtype, values in peaks.items()}
    rows = []
    for (tree, name, precision), answers in results.items():
        steps = [statistics.median(answer["step_s"]) for answer in answers]
        forwards = [statistics.median(answer["forward_s"]) for answer in answers]
        cpu_step = statistics.median(statistics.median(answer["cpu_step_s"])
                                     for answer in answers)
        step = statistics.median(steps)
        flop = answers[0]["flop_per_step"]
        rows.append({"tree": tree, "stage": name, "precision": precision,
                     "samples_per_s": args.batch / step, "step_ms": 1000 * step,
                     "forward_ms": 1000 * statistics.median(forwards),
                     # CPU seconds of the process per step: with one thread, what a step costs
                     # whatever else the machine runs
                     "cpu_step_ms": 1000 * cpu_step,
                     "samples_per_cpu_s": args.batch / cpu_step,
                     "step_ms_per_repeat": [round(1000 * s, 1) for s in steps],
                     "gflop_per_step": flop / 1e9,
                     "share_of_fp32_peak": flop / step / 1e9 / peak["fp32"]})
    for row in rows:
        base = next(other for other in rows if other["tree"] == trees[-1]
                    and other["stage"] == row["stage"] and other["precision"] == row["precision"])
        row["speedup_over_last_tree"] = row["samples_per_s"] / base["samples_per_s"]
        row["cpu_speedup_over_last_tree"] = base["cpu_step_ms"] / row["cpu_step_ms"]
    return {"command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
            "cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__,
            "config": args.config, "batch": args.batch, "height": args.height,
            "width": args.width, "steps": args.steps, "warmup": args.warmup,
            "repeats": args.repeats, "peak_gflops": peak,
            "peak_gflops_samples": peaks, "trees": trees, "rows": rows}


def _help_formatter():
    """The project's help formatter, read from this tree's file without importing its
    packages: a worker imports the packages of the tree it times."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("_bench_cli", os.path.join(ROOT, "common",
                                                                          "cli.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.HelpFormatter


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=_help_formatter())
    parser.add_argument("--config", default="configs/demo.yaml",
                        help="YAML file of training flags (sizes, widths, batch), relative to "
                             "each tree's top folder")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="comma-separated stages: " + ", ".join(STAGES))
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="comma-separated fp32, bf16 (autocast)")
    parser.add_argument("--tree", action="append", default=[],
                        help="another source tree to time beside this one (repeatable)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per stage, precision and tree; the median is reported")
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())),
                        help="torch CPU threads (OMP_NUM_THREADS when set, else all cores)")
    parser.add_argument("--profile", action="store_true",
                        help="print a torch.profiler table per stage instead of timing")
    parser.add_argument("--rows", type=int, default=30, help="rows of each profiler table")
    parser.add_argument("--json", default=None, help="write the results here")
    # The internal interface of one timed run in a fresh process.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--run_name", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, least in (("steps", 1), ("warmup", 0), ("repeats", 1), ("threads", 1)):
        if getattr(args, name) < least and not args.worker:   # a worker may make one step
            parser.error(f"--{name} must be at least {least}, got {getattr(args, name)}")
    args.stages = [s for s in args.stages.split(",") if s]
    args.precisions = [p for p in args.precisions.split(",") if p]
    unknown = set(args.stages) - set(STAGES) | set(args.precisions) - {"fp32", "bf16"}
    if unknown:
        parser.error(f"unknown stage or precision: {', '.join(sorted(unknown))}")
    if not args.worker:      # a worker imports the tree it was started in (PYTHONPATH)
        sys.path.insert(0, ROOT)
    from options.config import parse_config
    cfg = parse_config(["--config", args.config if args.worker
                        else os.path.join(ROOT, args.config)], default_name="bench")
    args.batch, args.height, args.width = cfg.batch_size, cfg.height, cfg.width
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.profile:
        profile(args)
        return
    result = measure(args)
    text = json.dumps(result, indent=1)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            handle.write(text + "\n")
    for row in result["rows"]:
        print(f"{row['stage']:8s} {row['precision']:5s} {row['tree']}: "
              f"{row['samples_per_s']:.2f} samples/s ({row['step_ms']:.0f} ms/step, forward "
              f"{row['forward_ms']:.0f} ms, {100 * row['share_of_fp32_peak']:.1f}% of the fp32 "
              f"conv peak {result['peak_gflops']['fp32']:.0f} GFLOP/s), "
              f"x{row['speedup_over_last_tree']:.2f}; {row['samples_per_cpu_s']:.2f} samples "
              f"per CPU second, x{row['cpu_speedup_over_last_tree']:.2f}")


if __name__ == "__main__":
    main()
