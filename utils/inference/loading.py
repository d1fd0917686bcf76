"""The command-line flags that name a parser-free try-on model (test.py, the web page, the
export) and the model they name: checkpoints (``utils/inference/model.py``) or an exported ONNX
graph run by ONNX Runtime (``utils/inference/onnx_runtime.py``)."""

from typing import Optional

import torch

from utils.inference.model import AMP_DTYPES, FAMILIES, load_tryon_model, pick_device


def add_model_arguments(group, run: bool = True) -> None:
    """The flags naming a parser-free try-on model (test.py, the web page, the export):
    checkpoints and the size; with ``run``, also ``--onnx`` and how to run the model."""
    group.add_argument("--checkpoint", default=None,
                       help="a stage-4 checkpoint of this project: sets both --warp_checkpoint "
                            "and --gen_checkpoint")
    group.add_argument("--warp_checkpoint", default=None,
                       help="parser-free warp weights: a released file (PF-AFN's "
                            "warp_model_final.pth, FS-VTON's PFAFN_warp_epoch_101.pth, "
                            "DM-VTON's dmvton_pf_warp.pt; the architecture is recognised from "
                            "its keys) or a stage-3/4 checkpoint")
    group.add_argument("--gen_checkpoint", default=None,
                       help="generator weights: a released file (gen_model_final.pth, "
                            "PFAFN_gen_epoch_101.pth, dmvton_pf_gen.pt) or a stage-4 "
                            "checkpoint")
    group.add_argument("--arch", default="auto", choices=["auto", *FAMILIES],
                       help="the family the files must be (auto: recognised from their keys); "
                            "released FS-VTON and DM-VTON files run as their authors' code "
                            "ran them, rounding their images as it did")
    group.add_argument("--height", type=int, default=None,
                       help="model input height (default: from the checkpoint's config, else 256)")
    group.add_argument("--width", type=int, default=None,
                       help="model input width (default: from the checkpoint's config, else 192)")
    group.add_argument("--align_corners", choices=["true", "false"], default=None,
                       help="sampling convention (default: from the checkpoint's config; "
                            "released weights need true)")
    if not run:
        return
    group.add_argument("--onnx", default=None,
                       help="run a graph exported by scripts/export.py in ONNX Runtime instead "
                            "of checkpoints (no checkpoint flags, --fast, --compile or --amp; "
                            "--device cuda uses ONNX Runtime's CUDA provider when installed)")
    group.add_argument("--device", default="auto",
                       help="auto (cuda when available), cpu, cuda or cuda:N")
    group.add_argument("--amp", default="none", choices=sorted(AMP_DTYPES),
                       help="autocast precision on GPUs (the cost volume and sampling stay "
                            "float32)")
    group.add_argument("--fast", action="store_true",
                       help="fold BatchNorm into convolutions and run channels_last (same "
                            "outputs to ~1e-5; ~1.6x on CPU with the default cost volume)")
    group.add_argument("--compile", action="store_true", help="also torch.compile the models")


def check_model_arguments(parser, args) -> None:
    """``--checkpoint`` sets both parts; both are required unless ``--onnx`` (where present)
    names a graph, which takes no checkpoint or speed flags. Errors through ``parser``."""
    if getattr(args, "onnx", None):
        # The graph holds the weights, BatchNorm folded, in float32: nothing to load or tune.
        clashing = [f"--{flag}" for flag in ("checkpoint", "warp_checkpoint", "gen_checkpoint",
                                             "fast", "compile") if getattr(args, flag, None)]
        clashing += ["--amp"] if getattr(args, "amp", "none") != "none" else []
        if clashing:
            parser.error(f"--onnx runs an exported graph; it cannot be combined with "
                         f"{', '.join(clashing)}")
        return
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
    if getattr(args, "onnx", None):
        from utils.inference.onnx_runtime import load_onnx_model
        return load_onnx_model(args.onnx, args.device, height=args.height, width=args.width,
                               align_corners=align_corners)
    if device is None:
        device = pick_device(getattr(args, "device", "cpu"))
    return load_tryon_model(args.warp_checkpoint, args.gen_checkpoint, device,
                            height=args.height, width=args.width, align_corners=align_corners,
                            fast=getattr(args, "fast", False),
                            compile=getattr(args, "compile", False),
                            amp=getattr(args, "amp", "none"),
                            family=getattr(args, "arch", "auto"))
