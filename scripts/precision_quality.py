"""What each number format does to the try-on images of trained weights.

    python scripts/precision_quality.py --model student=runs/pf_gen/final.pth \\
        --model mobile=runs/pf_gen_mobile/final.pth --dataroot VITON_test \\
        --calibration OTHER_test --out docs/benchmarks/precision_quality_cpu.json

For every ``--model`` (a stage-4 checkpoint, or ``--model NAME=WARP,GEN`` for two files), every
``--dataroot`` and every format of ``--precisions``, the paired test pairs are dressed and
compared, image by image as they are saved (8 bits), with the fp32 try-ons: SSIM against fp32,
mean / 99.9th percentile / largest difference in levels, and the paired SSIM against the
photos beside fp32's. bf16 and fp16 are PyTorch autocast of the checkpoints; int8 is the ONNX
graph that ``scripts/export.py --int8`` writes, calibrated on the first
``--calibration_samples`` pairs of ``--calibration`` (a set other than those scored).

A format is ``offered`` (may be a default, ``utils/inference/precision.py``) when, on every
model, its try-ons keep a mean SSIM against fp32 of at least 1 - ``MAX_SSIM_LOSS`` and their
paired SSIM against the photos drops by at most ``MAX_SSIM_LOSS``.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from common.atomic import write_bytes_atomic  # noqa: E402
from common.cli import HelpFormatter  # noqa: E402
from common.devices import pick_device  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from common.images import quantise  # noqa: E402
from common.results import check_output_file  # noqa: E402
from data.datasets import DataOptions, add_data_arguments  # noqa: E402
from data.pairs import make_pairs_dataset  # noqa: E402
from utils.inference.model import load_tryon_model  # noqa: E402
from utils.inference.precision import MAX_SSIM_LOSS, PRECISIONS, unsupported  # noqa: E402
from utils.metrics.images import level_differences  # noqa: E402
from utils.metrics.ssim import ssim  # noqa: E402
from utils.quantize import calibration_batches  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT",
                   help="a trained student: NAME=stage-4 checkpoint, or NAME=WARP,GEN "
                        "(repeat for several)")
    p.add_argument("--dataroot", action="append", required=True,
                   help="test folder whose paired pairs are scored (repeat for several: "
                        "every model is scored on each)")
    p.add_argument("--pairs", default="paired",
                   help="paired, or a pairs file of --dataroot whose persons wear their own "
                        "garment")
    p.add_argument("--calibration", default=None,
                   help="test folder calibrating int8 (needed for int8; not --dataroot's pairs)")
    p.add_argument("--calibration_samples", type=int, default=32,
                   help="pairs of --calibration that calibrate int8")
    p.add_argument("--precisions", default="fp32,bf16,int8",
                   help="comma-separated formats compared with fp32 (fp32 always runs)")
    p.add_argument("--samples", type=int, default=None, help="score only the first N pairs")
    p.add_argument("--batch_size", type=int, default=4, help="pairs per forward pass")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--force", action="store_true",
                   help="run a format even where this machine would emulate it (slow)")
    p.add_argument("--out", required=True, help="JSON report to write")
    add_data_arguments(p, parsing=False)
    args = p.parse_args(argv)
    args.precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    unknown = [x for x in args.precisions if x not in PRECISIONS]
    if unknown:
        p.error(f"--precisions: unknown {', '.join(unknown)} (expected {', '.join(PRECISIONS)})")
    if "fp32" not in args.precisions:
        args.precisions.insert(0, "fp32")
    if "int8" in args.precisions and not args.calibration:
        p.error("--precisions int8 needs --calibration DIR (a set other than --dataroot)")
    models = {}
    for spec in args.model:
        name, _, files = spec.partition("=")
        if not name or not files:
            p.error(f"--model {spec!r}: expected NAME=CHECKPOINT or NAME=WARP,GEN")
        warp, _, gen = files.partition(",")
        models[name] = (warp, gen or warp)
    args.models = models
    return args


def int8_model(model, calibration_dataset, samples: int, folder: str):
    """The model's ONNX graph with int8 convolutions (``scripts/export.py --int8``'s path)."""
    from utils.inference.onnx_runtime import load_onnx_model
    from utils.quantize import export_int8
    path = os.path.join(folder, "int8.onnx")
    export_int8(model, path, calibration_batches(calibration_dataset, samples), {})
    return load_onnx_model(path, "cpu", what="int8 graph")


def dress(model, dataset, batch_size: int, limit: int):
    """(try-ons, photos): uint8 tensors (N, 3, H, W) of the first ``limit`` pairs."""
    tryons, photos = [], []
    for person, garment, edge in calibration_batches(dataset, limit, batch_size):
        tryons.append(quantise(model(person, garment, edge).tryon.float(), model.rounding))
        photos.append(quantise(person, model.rounding))
    return torch.cat(tryons), torch.cat(photos)


def compare(tryons: torch.Tensor, reference: torch.Tensor, photos: torch.Tensor) -> dict:
    levels = level_differences(tryons, reference)
    vs_fp32 = ssim(tryons, reference)
    return {"ssim_vs_fp32": float(vs_fp32.mean()), "ssim_vs_fp32_worst": float(vs_fp32.min()),
            **{f"levels_{name}": value for name, value in levels.items()},
            "paired_ssim": float(ssim(tryons, photos).mean())}


def measure(args) -> dict:
    device = pick_device(args.device)
    options = DataOptions.from_config(args)
    report = {"command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
                          "threads": torch.get_num_threads()},
              "versions": {"torch": torch.__version__, "python": platform.python_version()},
              "calibration": args.calibration, "max_ssim_loss": MAX_SSIM_LOSS, "runs": []}
    try:
        import onnxruntime
        report["versions"]["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="pfafn_quality_") as folder:
        for name, (warp_file, gen_file) in args.models.items():
            model = load_tryon_model(warp_file, gen_file, device)
            runners = {"int8": None}        # the int8 graph, made once per model
            for dataroot in args.dataroot:
                report["runs"].append(score_model(args, options, name, model, dataroot,
                                                  runners, os.path.join(folder, name)))
    report["offered"] = offered_formats(report)
    return report


def score_model(args, options, name, model, dataroot, runners, folder) -> dict:
    """Every format of ``args.precisions`` on the paired pairs of ``dataroot``."""
    dataset = make_pairs_dataset(options, dataroot, args.pairs, model.height, model.width)
    limit = min(args.samples or len(dataset), len(dataset))
    unpaired = sum(dataset.pairs[i].person.id != dataset.pairs[i].garment.id
                   for i in range(limit))
    if unpaired:
        raise UserError(f"--pairs {args.pairs} of {dataroot}: {unpaired} of {limit} persons "
                        f"wear another garment; the paired SSIM needs their own")
    warp_file, gen_file = args.models[name]
    entry = {"model": name, "warp_checkpoint": warp_file, "gen_checkpoint": gen_file,
             "dataroot": dataroot,
             "pairs": limit, "size": [model.height, model.width], "precisions": {}}
    reference = photos = None
    for precision in args.precisions:
        why = None if args.force else unsupported(precision, model.device)
        if precision == "int8":
            why = None if model.device.type == "cpu" else "int8 graphs run on the CPU here"
        if why is not None:
            entry["precisions"][precision] = {"skipped": why}
            print(f"{name} {precision}: skipped ({why})")
            continue
        start = time.perf_counter()
        if precision == "int8":
            if runners["int8"] is None:
                calibration = make_pairs_dataset(options, args.calibration, "unpaired",
                                                 model.height, model.width)
                os.makedirs(folder, exist_ok=True)
                runners["int8"] = int8_model(model, calibration, args.calibration_samples,
                                             folder)
            tryons, _ = dress(runners["int8"], dataset, args.batch_size, limit)
        else:
            model.precision = precision
            tryons, got_photos = dress(model, dataset, args.batch_size, limit)
            model.precision = "fp32"
            if precision == "fp32":
                reference, photos = tryons, got_photos
        found = compare(tryons, reference, photos)
        found["seconds"] = time.perf_counter() - start
        entry["precisions"][precision] = found
        print(f"{name} on {dataroot} {precision}: SSIM vs fp32 {found['ssim_vs_fp32']:.5f} "
              f"(worst {found['ssim_vs_fp32_worst']:.5f}), levels mean "
              f"{found['levels_mean']:.3f} p99.9 {found['levels_p99.9']:.1f} max "
              f"{found['levels_max']}, paired SSIM {found['paired_ssim']:.4f}", flush=True)
    return entry


def offered_formats(report: dict) -> dict:
    """Per format measured on every model: whether it stays within ``MAX_SSIM_LOSS``."""
    verdicts = {}
    for entry in report["runs"]:
        fp32 = entry["precisions"]["fp32"]
        for precision, found in entry["precisions"].items():
            if "skipped" in found:
                continue
            ok = (1 - found["ssim_vs_fp32"] <= MAX_SSIM_LOSS
                  and fp32["paired_ssim"] - found["paired_ssim"] <= MAX_SSIM_LOSS)
            verdicts[precision] = verdicts.get(precision, True) and ok
    return verdicts


def main(argv=None) -> dict:
    args = parse_args(argv)
    with exit_on_user_error():
        out = check_output_file(args.out, "--out")
        report = measure(args)
        write_bytes_atomic(out, (json.dumps(report, indent=2) + "\n").encode())
    print(f"offered: {', '.join(k for k, v in report['offered'].items() if v)}; "
          f"not offered: {', '.join(k for k, v in report['offered'].items() if not v) or '-'}")
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    main()
