"""The parser-free try-on as one callable, loaded from checkpoints: what test.py, the web page
and the benchmarks run.

    model = load_tryon_model("warp_model_final.pth", "gen_model_final.pth", device="cpu")
    out = model(person, garment, garment_edge)      # (B, 3, H, W), (B, 3, H, W), (B, 1, H, W)
    out.tryon                                       # (B, 3, H, W) in [-1, 1]

``model.height``/``model.width`` are the size the weights were trained at (from a project
checkpoint's config; 256x192 for released plain state dicts). Inputs of another size are an
error: fitting a photo to that size is the caller's job (``data.photo_fit``).
"""

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from data.files import EDGE_THRESHOLD, DatasetError, photo_tensor

from models import ARCH_KEYS, PF_GEN_INPUT, PF_WARP_INPUT, RELEASE_ARCH, build_generator, build_warp
from models.tryon import TryOnResult, parser_free_tryon
from utils.checkpoint import (is_project_checkpoint, load_state, read_checkpoint,
                              state_dict_from)

WARP_STAGES = ("pf_warp", "pf_gen")
GEN_STAGES = ("pf_gen",)
RELEASE_SIZE = (256, 192)
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when available) | 'cpu' | 'cuda' | 'cuda:N' -> a device; an unavailable
    CUDA is a ``SystemExit`` with the reason."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device is available")
    return torch.device(name)


@dataclass
class TryOnModel:
    """Warp module and generator of the parser-free student, ready for inference.

    ``height``, ``width``: the input size; ``device``: where inputs are moved; ``amp``:
    'none' | 'bf16' | 'fp16' autocast (the cost volume and the sampling stay float32)."""

    warp: nn.Module
    gen: nn.Module
    height: int
    width: int
    device: torch.device
    amp: str = "none"
    backend: str = "pytorch"

    @torch.inference_mode()
    def __call__(self, person: torch.Tensor, garment: torch.Tensor,
                 garment_edge: torch.Tensor) -> TryOnResult:
        """``person``, ``garment`` (B, 3, H, W) in [-1, 1] (the garment need not be masked);
        ``garment_edge`` (B, 1, H, W) in {0, 1}. Returns tensors on ``self.device``."""
        check_inputs(person, garment, garment_edge, self.height, self.width)
        person, garment, garment_edge = (x.to(self.device, non_blocking=True)
                                         for x in (person, garment, garment_edge))
        dtype = AMP_DTYPES[self.amp]
        with torch.autocast(self.device.type, dtype=dtype or torch.float32,
                            enabled=dtype is not None):
            return parser_free_tryon(self.warp, self.gen, person, garment, garment_edge)


def check_inputs(person: torch.Tensor, garment: torch.Tensor, garment_edge: torch.Tensor,
                 height: int, width: int) -> None:
    """Raise ``ValueError`` unless the three inputs are (B, 3|3|1, height, width) with one B."""
    expected = {"person": 3, "garment": 3, "garment_edge": 1}
    batch = person.shape[0] if person.dim() == 4 else None
    for name, tensor in zip(expected, (person, garment, garment_edge)):
        shape = tuple(tensor.shape)
        if (tensor.dim() != 4 or shape[0] != batch or shape[1] != expected[name]
                or shape[2:] != (height, width)):
            raise ValueError(f"{name} has shape {shape}; the model takes "
                             f"(B, {expected[name]}, {height}, {width}) with one B for all inputs")


def add_model_arguments(group, run: bool = True) -> None:
    """The flags naming a parser-free try-on model (test.py, the web page, the export):
    checkpoints and the size; with ``run``, also ``--onnx`` and how to run the model."""
    group.add_argument("--checkpoint", default=None,
                       help="a stage-4 checkpoint of this project: sets both --warp_checkpoint "
                            "and --gen_checkpoint")
    group.add_argument("--warp_checkpoint", default=None,
                       help="parser-free warp weights: released warp_model_final.pth or a "
                            "stage-3/4 checkpoint")
    group.add_argument("--gen_checkpoint", default=None,
                       help="generator weights: released gen_model_final.pth or a stage-4 "
                            "checkpoint")
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
        from utils.onnx_tryon import load_onnx_model
        return load_onnx_model(args.onnx, args.device, height=args.height, width=args.width,
                               align_corners=align_corners)
    if device is None:
        device = pick_device(getattr(args, "device", "cpu"))
    return load_tryon_model(args.warp_checkpoint, args.gen_checkpoint, device,
                            height=args.height, width=args.width, align_corners=align_corners,
                            fast=getattr(args, "fast", False),
                            compile=getattr(args, "compile", False),
                            amp=getattr(args, "amp", "none"))


def load_tryon_model(warp_checkpoint: str, gen_checkpoint: str, device: torch.device | str = "cpu",
                     height: Optional[int] = None, width: Optional[int] = None,
                     align_corners: Optional[bool] = None, fast: bool = False,
                     compile: bool = False, amp: str = "none",
                     warp_flag: str = "--warp_checkpoint",
                     gen_flag: str = "--gen_checkpoint") -> TryOnModel:
    """Build the warp module and the generator with the sizes their checkpoints were trained
    at and load them strictly.

    Checkpoints: released PF-AFN plain state dicts or this project's stage-3/4 files (the warp)
    and stage-4 files (the generator); one stage-4 file may be passed as both. ``height`` and
    ``width`` override the size stored in a project checkpoint (released files: 256x192).
    ``fast``: fold BatchNorm and run channels_last; ``compile``: ``torch.compile``. Errors
    (``CheckpointError``) name the flag and the file."""
    device = torch.device(device)
    warp_data = read_checkpoint(warp_checkpoint, warp_flag)
    gen_data = warp_data if gen_checkpoint == warp_checkpoint else read_checkpoint(gen_checkpoint,
                                                                                    gen_flag)
    arch = dict(RELEASE_ARCH)
    size = dict(zip(("height", "width"), RELEASE_SIZE))
    for data in (warp_data, gen_data):
        if is_project_checkpoint(data):
            config = data.get("config", {})
            arch.update({k: config[k] for k in ARCH_KEYS if k in config})
            size.update({k: config[k] for k in size if k in config})
    if align_corners is not None:
        arch["align_corners"] = bool(align_corners)
    warp = build_warp(arch, PF_WARP_INPUT)
    gen = build_generator(arch, PF_GEN_INPUT)
    load_state(warp, state_dict_from(warp_data, "warp", warp_checkpoint, warp_flag, WARP_STAGES),
               f"{warp_flag}: {warp_checkpoint}")
    load_state(gen, state_dict_from(gen_data, "gen", gen_checkpoint, gen_flag, GEN_STAGES),
               f"{gen_flag}: {gen_checkpoint}")
    warp, gen = warp.to(device).eval(), gen.to(device).eval()
    if fast or compile:
        from models.fast import optimize_for_inference
        warp, gen = (optimize_for_inference(m, fold_bn=fast, channels_last=fast, compile=compile)
                     for m in (warp, gen))
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be one of {sorted(AMP_DTYPES)}, got {amp!r}")
    return TryOnModel(warp=warp, gen=gen, height=int(height or size["height"]),
                      width=int(width or size["width"]), device=device, amp=amp)


# ---------------------------------------------------------------------------------------------
# One pair of photos of any size (test.py --person/--garment, the web page)


def garment_mask_for(garment: np.ndarray, mask: Optional[np.ndarray] = None,
                     grabcut: bool = False, garment_name: str = "garment photo",
                     mask_name: str = "garment mask") -> tuple[np.ndarray, list[str]]:
    """The garment's mask, uint8 (h, w) in {0, 1} of the (h, w, 3) photo's size, and notes.

    ``mask``: a grey (h, w) uint8 image from the user (white = garment), checked; None: the
    mask is computed from the product photo (``data.garment_mask``), with notes saying so and
    what may make it poor. Raises ``DatasetError`` naming ``garment_name`` / ``mask_name``."""
    if mask is not None:
        if mask.shape != garment.shape[:2]:
            raise DatasetError(f"{mask_name} is {mask.shape[1]}x{mask.shape[0]} but the "
                               f"{garment_name} is {garment.shape[1]}x{garment.shape[0]}; the "
                               f"mask must have the photo's size")
        binary = (mask > EDGE_THRESHOLD).astype(np.uint8)
        if not binary.any():
            raise DatasetError(f"{mask_name} is empty (no pixel above {EDGE_THRESHOLD}); white "
                               f"marks the garment")
        return binary, []
    from data.garment_mask import GarmentMaskError, compute_garment_mask
    try:
        result = compute_garment_mask(garment, grabcut=grabcut, source=garment_name)
    except GarmentMaskError as error:
        raise DatasetError(str(error)) from None
    binary = (result.mask > EDGE_THRESHOLD).astype(np.uint8)
    notes = [f"garment mask computed from the {garment_name} ({binary.mean() * 100:.0f}% of "
             f"the photo{', refined with GrabCut' if grabcut else ''})"] + list(result.notes)
    return binary, notes


@dataclass
class PhotoTryOn:
    """The try-on of one pair of photos.

    ``tryon``: uint8 (h, w, 3), the person photo's size (``data.photo_fit.paste_back``);
    ``frame``: the model-frame pictures, uint8 (H, W, 3): 'person', 'garment' and
    'warped_garment' (garments on white) and 'tryon'; ``composition_mask``: uint8 (H, W), the
    weight of the warped garment in the try-on (0..255); ``seconds``: fitting, the model and
    mapping back."""

    tryon: np.ndarray
    frame: dict
    composition_mask: np.ndarray
    seconds: float


def tryon_photos(model, person: np.ndarray, garment: np.ndarray, garment_mask: np.ndarray,
                 fit: str = "pad") -> PhotoTryOn:
    """Dress the person of a uint8 (h, w, 3) photo in the garment of a product photo (any
    size) with its (h', w') {0, 1} mask. The person photo is fitted to the model's frame by
    ``fit`` ('pad' or 'crop', ``data.photo_fit``); the garment is always padded (its whole
    outline matters to the warp), its mask alike with zeros."""
    from data.photo_fit import apply_placement, fit_to_frame, paste_back
    from common.images import on_white, to_uint8

    start = time.perf_counter()
    frame_size = (model.height, model.width)
    person_frame, placement = fit_to_frame(person, frame_size, fit)
    garment_frame, garment_placement = fit_to_frame(garment, frame_size, "pad")
    edge = apply_placement(garment_mask, garment_placement, interpolation="nearest", fill=0)
    person_t, garment_t = photo_tensor(person_frame)[None], photo_tensor(garment_frame)[None]
    edge_t = torch.from_numpy(np.ascontiguousarray(edge)).to(torch.float32)[None, None]
    out = model(person_t, garment_t, edge_t)
    tryon = out.tryon[0].float().cpu()
    pictures = {
        "person": person_frame,
        "garment": to_uint8(on_white(garment_t[0], edge_t[0])),
        "warped_garment": to_uint8(on_white(out.warped[0].float().cpu(),
                                             out.warped_edge[0].float().cpu())),
        "tryon": to_uint8(tryon),
    }
    mask = (out.mask[0, 0].float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    result = paste_back(person, pictures["tryon"], placement)
    return PhotoTryOn(tryon=result, frame=pictures, composition_mask=mask,
                      seconds=time.perf_counter() - start)
