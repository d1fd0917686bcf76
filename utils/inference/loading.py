"""The command-line flags that name a parser-free try-on model (test.py, the web page, the
export) and the model they name: checkpoints (``utils/inference/model.py``) or an exported ONNX
graph run by ONNX Runtime (``utils/inference/onnx_runtime.py``)."""

import sys
from typing import Optional

import torch

from common.devices import pick_device
from models.registry import families
from utils.checkpoint import CheckpointError
from utils.inference.model import load_tryon_model
from utils.inference.precision import PRECISIONS, default_precision, unsupported


def add_model_arguments(group, run: bool = True) -> None:
    """The flags naming a parser-free try-on model (test.py, the web page, the export):
    checkpoints and the size; with ``run``, also ``--onnx`` and how to run the model, with one
    default format for test.py and the page (no ``--precision``, or ``auto``:
    ``utils.inference.precision.default_precision``)."""
    group.add_argument("--checkpoint", default=None,
                       help="a stage-4 checkpoint of this project: its warp and generator, "
                            "unless --warp_checkpoint or --gen_checkpoint gives that part "
                            "from another file")
    group.add_argument("--warp_checkpoint", default=None,
                       help="parser-free warp weights: a released file (PF-AFN's "
                            "warp_model_final.pth, FS-VTON's PFAFN_warp_epoch_101.pth, "
                            "DM-VTON's dmvton_pf_warp.pt; the architecture is recognised from "
                            "its keys) or a stage-3/4 checkpoint")
    group.add_argument("--gen_checkpoint", default=None,
                       help="generator weights: a released file (gen_model_final.pth, "
                            "PFAFN_gen_epoch_101.pth, dmvton_pf_gen.pt) or a stage-4 "
                            "checkpoint")
    known = families()
    group.add_argument("--arch", default="auto", choices=["auto", *known],
                       help="the family the files must be (auto: recognised from their keys): "
                            + "; ".join(f"{name}, {family.description}"
                                        for name, family in known.items())
                            + ". A released family's files run as its authors' code ran them, "
                              "rounding or truncating their images as it did")
    group.add_argument("--height", type=int, default=None,
                       help="model input height; when not given, the checkpoint's, or 256 for "
                            "released files")
    group.add_argument("--width", type=int, default=None,
                       help="model input width; when not given, the checkpoint's, or 192 for "
                            "released files")
    group.add_argument("--align_corners", choices=["true", "false"], default=None,
                       help="sampling convention; when not given, the checkpoint's (released "
                            "weights need true)")
    if not run:
        return
    group.add_argument("--onnx", default=None,
                       help="run a graph exported by scripts/export.py in ONNX Runtime instead "
                            "of checkpoints (no checkpoint flags, --fast or --compile; the "
                            "graph's own precision, fp32 or int8; --device cuda uses ONNX "
                            "Runtime's CUDA provider when installed)")
    group.add_argument("--device", default="auto",
                       help="auto (cuda when available), cpu, cuda or cuda:N")
    group.add_argument("--precision", default=None, choices=("auto",) + PRECISIONS,
                       help="number format: fp32; bf16 (autocast, CPU or GPU) or fp16 (GPU) "
                            "for checkpoints; int8 is an --onnx graph exported with --int8. "
                            "When not given (or auto), the same for test.py and the web page: "
                            "an --onnx graph's own, else bf16 or fp16 where the device runs it "
                            "natively and the committed quality report (docs/benchmarks/) kept "
                            "every image within 0.01 SSIM of fp32, else fp32; nothing is timed. "
                            "The cost volume, flows and sampling stay float32 in all of them")
    group.add_argument("--fast", action="store_true",
                       help="fold BatchNorm into convolutions and run channels_last (same "
                            "outputs to ~1e-5; on a 2-core CPU 1.06x PF-AFN and 1.33x the "
                            "mobile student at batch 1: docs/benchmarks/cpu_2core.json)")
    group.add_argument("--compile", action="store_true", help="also torch.compile the models")


def check_model_arguments(parser, args) -> None:
    """``--checkpoint`` sets both parts; both are required unless ``--onnx`` (where present)
    names a graph, which takes no checkpoint or speed flags. Errors through ``parser``."""
    if getattr(args, "onnx", None):
        # The graph holds the weights, BatchNorm folded, in its own format: nothing to tune.
        clashing = [f"--{flag}" for flag in ("checkpoint", "warp_checkpoint", "gen_checkpoint",
                                             "fast", "compile") if getattr(args, flag, None)]
        if getattr(args, "precision", None) in ("bf16", "fp16"):
            clashing.append(f"--precision {args.precision} (autocast runs checkpoints)")
        if getattr(args, "arch", "auto") != "auto":
            clashing.append(f"--arch {args.arch} (a graph runs as its own family)")
        if clashing:
            parser.error(f"--onnx runs an exported graph; it cannot be combined with "
                         f"{', '.join(clashing)}")
        return
    if getattr(args, "precision", None) == "int8":
        parser.error("--precision int8 runs an ONNX graph quantised by scripts/export.py --int8 "
                     "--calibration DIR: pass it with --onnx")
    if args.checkpoint and args.warp_checkpoint and args.gen_checkpoint:
        parser.error("--checkpoint sets both --warp_checkpoint and --gen_checkpoint, which are "
                     "given too: pass --checkpoint, or the two parts")
    if (args.height is None) != (args.width is None):
        parser.error("--height and --width go together (the model's frame, height x width, "
                     "e.g. --height 512 --width 384)")
    if args.checkpoint:
        args.warp_checkpoint = args.warp_checkpoint or args.checkpoint
        args.gen_checkpoint = args.gen_checkpoint or args.checkpoint
    alternative = " (or --checkpoint, or --onnx)" if hasattr(args, "onnx") else " (or --checkpoint)"
    for flag in ("warp_checkpoint", "gen_checkpoint"):
        if not getattr(args, flag):
            parser.error(f"--{flag}{alternative} is required")


def load_model_from_args(args, device: Optional[torch.device] = None):
    """The model the flags of ``add_model_arguments`` name: a ``TryOnModel`` on ``device``
    (default: ``--device``), or with ``--onnx`` the ONNX Runtime model (whose provider follows
    the ``--device`` flag itself: 'auto' means CUDA when ONNX Runtime has it, whatever torch
    has)."""
    align_corners = None if args.align_corners is None else args.align_corners == "true"
    precision = getattr(args, "precision", None) or "auto"
    if getattr(args, "onnx", None):
        from utils.inference.onnx_runtime import load_onnx_model
        model = load_onnx_model(args.onnx, args.device, height=args.height, width=args.width,
                                align_corners=align_corners)
        if precision not in (None, "auto", model.precision):
            how = ("export an int8 graph with scripts/export.py --int8" if precision == "int8"
                   else "leave --precision out: a graph runs in its own format")
            raise CheckpointError(f"--onnx {args.onnx} is an {model.precision} graph, but "
                                  f"--precision {precision} was asked ({how})")
        model.precision_reason = "the graph's own format"
    else:
        if device is None:
            device = pick_device(getattr(args, "device", "cpu"))
        why = "asked for (--precision)"
        if precision == "auto":
            precision, why = default_precision(device)
        elif unsupported(precision, device):   # it runs, emulated: said, not refused
            print(f"note: --precision {precision} on {device}: {unsupported(precision, device)}",
                  file=sys.stderr)
        def flag(name):   # errors name the flag the user gave
            return "--checkpoint" if getattr(args, name) == args.checkpoint else f"--{name}"
        model = load_tryon_model(args.warp_checkpoint, args.gen_checkpoint, device,
                                 warp_flag=flag("warp_checkpoint"),
                                 gen_flag=flag("gen_checkpoint"),
                                 height=args.height, width=args.width,
                                 align_corners=align_corners, fast=getattr(args, "fast", False),
                                 compile=getattr(args, "compile", False),
                                 precision=precision, family=getattr(args, "arch", "auto"))
        model.precision_reason = why
    return model
