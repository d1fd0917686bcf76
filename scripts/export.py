"""Export the parser-free try-on (person, garment, garment mask -> try-on) as one graph.

    python scripts/export.py --warp_checkpoint checkpoints/PFAFN/warp_model_final.pth \\
        --gen_checkpoint checkpoints/PFAFN/gen_model_final.pth --out pfafn.onnx
    python test.py --onnx pfafn.onnx --dataroot VITON_test --results_dir results/onnx

The ONNX file (opset 18) takes ``person`` and ``garment`` (B, 3, H, W) in [-1, 1] and
``garment_mask`` (B, 1, H, W) in {0, 1}, with B free and H x W fixed at export (default: the
checkpoint's size, 256x192 for the released weights), and returns ``tryon``,
``warped_garment``, ``warped_mask``, ``composite_mask`` and ``rendered``. BatchNorm is folded,
the cost volume is plain matmuls, and the file carries its size, sampling convention and source
checkpoints in ``metadata_props``. ``--format torch_export`` writes a ``torch.export`` program
(.pt2) instead, ``--format both`` the two from one capture. After writing, the graph is run
beside the PyTorch model on random inputs and the largest difference printed.

``--int8 --calibration DIR`` writes the graph with int8 convolutions instead (``utils/
quantize.py``: ONNX Runtime's static quantisation, activation ranges from the first
``--calibration_samples`` pairs of the test folder DIR; the cost volume, the flows and the
sampling stay float32), and compares it with the float32 model on those pairs in 8-bit levels:

    python scripts/export.py --checkpoint pf_gen/final.pth --out tryon_int8.onnx \\
        --int8 --calibration VITON_test
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common.cli import HelpFormatter, given_on_command_line, unused_flags  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from common.images import quantise, to_uint8  # noqa: E402
from common.results import check_output_file  # noqa: E402
from data.datasets import DataOptions, add_data_arguments  # noqa: E402
from data.fitted_pairs import category_unused, make_fitted_pairs_dataset  # noqa: E402
from models.graph import OUTPUT_NAMES, example_inputs  # noqa: E402
from utils.export import DEFAULT_OPSET, PT2_METADATA  # noqa: E402
from utils.inference.loading import add_model_arguments, check_model_arguments, load_model_from_args  # noqa: E402
from utils.metrics.images import level_differences  # noqa: E402

FORMATS = ("onnx", "torch_export", "both")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    add_model_arguments(p, run=False)
    p.add_argument("--out", required=True,
                   help="file to write (.onnx; .pt2 with --format torch_export; with --format "
                        "both the program goes beside it with the suffix .pt2)")
    p.add_argument("--format", default="onnx", choices=FORMATS,
                   help="onnx, torch_export (a torch.export .pt2 program) or both")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help="ONNX opset (18 or newer: the oldest the exporter writes)")
    p.add_argument("--no_verify", action="store_true",
                   help="skip running the written graph beside the PyTorch model")
    int8 = p.add_argument_group("int8")
    int8.add_argument("--int8", action="store_true",
                      help="write the graph with int8 convolutions (ONNX Runtime static "
                           "quantisation), calibrated on --calibration")
    int8.add_argument("--calibration", default=None,
                      help="test folder whose pairs calibrate the int8 activation ranges (any "
                           "layout of --dataset; garment masks computed when absent)")
    int8.add_argument("--calibration_pairs", default="unpaired",
                      help="unpaired, paired or a pairs file of --calibration")
    int8.add_argument("--calibration_samples", type=int, default=32,
                      help="how many pairs calibrate (the first of the pairs file)")
    add_data_arguments(int8, root="--calibration", parsing=False)
    args = p.parse_args(argv)
    check_model_arguments(p, args)
    if args.int8 and not args.calibration:
        p.error("--int8 needs --calibration DIR: a test folder whose pairs set the activation "
                "ranges")
    unused = unused_flags(given_on_command_line(p, argv), [
        ([action.dest for action in int8._group_actions if action.dest != "int8"],
         not args.int8, "--int8 (the calibration of an int8 graph)"),
        category_unused(args.dataset)])
    if unused:
        p.error(unused)
    if args.format == "torch_export" and args.opset != DEFAULT_OPSET:
        p.error("--opset is for an ONNX graph (--format onnx or both), not torch_export")
    if args.int8 and args.format != "onnx":
        p.error("--int8 writes an ONNX graph (--format onnx)")
    if args.calibration_samples < 1:
        p.error("--calibration_samples must be at least 1")
    for flag in ("height", "width"):
        value = getattr(args, flag)
        if value is not None and (value <= 0 or value % 32):
            p.error(f"--{flag} {value}: the models need a positive multiple of 32")
    import onnx
    newest = onnx.defs.onnx_opset_version()
    if not 18 <= args.opset <= newest:
        p.error(f"--opset {args.opset}: the exporter writes opsets 18 to {newest} (the newest "
                f"this onnx {onnx.__version__} knows)")
    return args


def output_paths(args) -> tuple[Path | None, Path | None]:
    """(ONNX path, .pt2 path) to write, either may be None."""
    out = Path(args.out)
    suffix = ".pt2" if args.format == "torch_export" else ".onnx"
    if out.suffix.lower() != suffix:   # a graph named otherwise is read as something else
        beside = " (the program goes beside it as .pt2)" if args.format == "both" else ""
        raise UserError(f"--out {out}: --format {args.format} writes a {suffix} file{beside}; "
                        f"name --out so")
    if args.format == "onnx":
        return out, None
    if args.format == "torch_export":
        return None, out
    return out, out.with_suffix(".pt2")


def require_onnx_packages() -> None:
    missing = []
    for name in ("onnx", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"exporting ONNX needs {' and '.join(missing)}, not installed; pip "
                        f"install -r requirements.txt (it pins onnx, onnxscript and "
                        f"onnxruntime)")


def _differences(reference, outputs: dict) -> str:
    """Largest absolute difference per output, and the largest 8-bit level difference of the
    try-on images."""
    expected = dict(zip(OUTPUT_NAMES, (reference.tryon, reference.warped, reference.warped_edge,
                                       reference.mask, reference.rendered)))
    parts = [f"{name} {float((outputs[name] - expected[name]).abs().max()):.2e}"
             for name in OUTPUT_NAMES]
    levels = max(int(np.abs(to_uint8(a).astype(int) - to_uint8(b).astype(int)).max())
                 for a, b in zip(outputs["tryon"], expected["tryon"]))
    return f"max |difference|: {', '.join(parts)}; try-on images within {levels} level(s)"


def verify_int8(model, int8_path: Path, batches) -> dict:
    """The int8 graph against the float32 PyTorch model on the calibration pairs."""
    from utils.inference.onnx_runtime import load_onnx_model
    runtime = load_onnx_model(str(int8_path), "cpu", what="--out")
    found = [level_differences(quantise(model(*batch).tryon), quantise(runtime(*batch).tryon))
             for batch in batches]
    count = sum(len(batch[0]) for batch in batches)
    mean = sum(f["mean"] * len(b[0]) for f, b in zip(found, batches)) / count
    worst = max(f["max"] for f in found)
    print(f"int8 graph vs float32 PyTorch on the {count} calibration pairs: try-ons differ by "
          f"{mean:.2f} levels on average, {worst} at most")
    return {"pairs": count, "mean_levels": mean, "max_levels": worst}


def verify(model, onnx_path: Path | None, program=None) -> None:
    """Run the written ONNX file (in ONNX Runtime) and the captured program beside the PyTorch
    model on two random input sets and print the largest differences."""
    inputs = example_inputs(model.height, model.width, batch=2, seed=1)
    reference = model(*inputs)
    if onnx_path is not None:
        from utils.inference.onnx_runtime import OnnxUnavailableError, load_onnx_model
        try:
            out = load_onnx_model(str(onnx_path), "cpu", what="--out")(*inputs)
        except OnnxUnavailableError as error:
            print(f"not checked with ONNX Runtime: {error}")
        else:
            outputs = dict(zip(OUTPUT_NAMES, (out.tryon, out.warped, out.warped_edge, out.mask,
                                              out.rendered)))
            print(f"ONNX Runtime vs PyTorch, 2 random pairs: "
                  f"{_differences(reference, outputs)}")
    if program is not None:
        # The program as captured: reading the .pt2 back costs seconds and tests only
        # torch.export's own serialisation (tests/test_export.py reads the file).
        with torch.no_grad():
            outputs = dict(zip(OUTPUT_NAMES, program.module()(*inputs)))
        print(f"torch.export program vs PyTorch, 2 random pairs: "
              f"{_differences(reference, outputs)}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    with exit_on_user_error():
        return export(args)


def export(args) -> dict:
    onnx_path, pt2_path = output_paths(args)
    inputs = (args.warp_checkpoint, args.gen_checkpoint)
    for path in (onnx_path, pt2_path):
        if path is not None:
            check_output_file(path, "--out", inputs)
    if onnx_path is not None:
        require_onnx_packages()
    from utils.export import export_tryon
    model = load_model_from_args(args, torch.device("cpu"))
    if args.int8:
        return export_int8(args, model, onnx_path)
    sources = {"warp_checkpoint": args.warp_checkpoint, "gen_checkpoint": args.gen_checkpoint}
    info = export_tryon(model.warp, model.gen, model.height, model.width, onnx_path=onnx_path,
                        pt2_path=pt2_path, sources=sources, opset=args.opset,
                        family=model.family, rounding=model.rounding)
    steps = [f"capture {info['capture_seconds']:.1f} s"]
    for kind, path, label in (("onnx", onnx_path, f"ONNX opset {info.get('onnx_opset')}"),
                              ("pt2", pt2_path, "torch.export program")):
        if path is not None:
            steps.append(f"{kind} {info[f'{kind}_seconds']:.1f} s")
            print(f"wrote {path}: {label}, {info[f'{kind}_bytes'] / 2 ** 20:.1f} MiB, inputs "
                  f"(B, C, {model.height}, {model.width}) with B free, align_corners="
                  f"{info['metadata']['align_corners']}"
                  + (f", metadata in {PT2_METADATA}" if kind == "pt2" else ""))
    print(f"exported in {info['seconds']:.1f} s ({', '.join(steps)}); BatchNorms: "
          f"{info['folded']} folded into convolutions, {info['affine']} as multiply-adds")
    if not args.no_verify:
        verify(model, onnx_path, info["program"] if pt2_path is not None else None)
    return info


def export_int8(args, model, int8_path: Path) -> dict:
    """The int8 graph of ``model`` at ``int8_path``, calibrated on ``--calibration``."""
    from utils.quantize import calibration_batches
    from utils.quantize import export_int8 as write_int8
    options = DataOptions.from_config(args)
    dataset = make_fitted_pairs_dataset(options, args.calibration, args.calibration_pairs,
                                        model.height, model.width)
    batches = calibration_batches(dataset, args.calibration_samples)
    sources = {"warp_checkpoint": args.warp_checkpoint, "gen_checkpoint": args.gen_checkpoint}
    quantised = write_int8(model, int8_path, batches, {"calibration": str(args.calibration)},
                           sources=sources, opset=args.opset)
    print(f"wrote {int8_path}: ONNX opset {quantised['opset']} with int8 convolutions "
          f"({quantised['quantised']} of {quantised['convolutions']} quantised; float32: "
          f"{', '.join(quantised['kept_float'])}), {quantised['bytes'] / 2 ** 20:.1f} MiB, "
          f"calibrated on {quantised['calibration_pairs']} pairs of {args.calibration} in "
          f"{quantised['seconds'] + quantised['export_seconds']:.1f} s")
    info = {"int8": quantised}
    if not args.no_verify:
        info["int8"]["verify"] = verify_int8(model, int8_path, batches)
    return info


if __name__ == "__main__":
    main()
