"""The parser-free try-on as one callable, loaded from checkpoints: what test.py, the web page
and the benchmarks run.

    model = load_tryon_model("warp_model_final.pth", "gen_model_final.pth", device="cpu")
    out = model(person, garment, garment_edge)      # (B, 3, H, W), (B, 3, H, W), (B, 1, H, W)
    out.tryon                                       # (B, 3, H, W) in [-1, 1]

``model.height``/``model.width`` are the size the weights were trained at (from a project
checkpoint's config; 256x192 for released plain state dicts); the two models are built with
the architectures their checkpoints record or imply (``utils.checkpoint.checkpoint_arch``).
Inputs of another size are an error: fitting a photo to that size is the caller's job
(``data.photo_fit``).
"""

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn

from common.errors import UserError
from models import PF_GEN_INPUT, PF_WARP_INPUT
from models.tryon import TryOnResult, parser_free_tryon
from utils.checkpoint import CheckpointError, is_project_checkpoint, load_model, read_checkpoint
from utils.inference.precision import AUTOCAST_DTYPES, autocast_dtype

WARP_STAGES = ("pf_warp", "pf_gen")
GEN_STAGES = ("pf_gen",)
RELEASE_SIZE = (256, 192)
# The warp module halves the size five times; above this side a try-on needs tens of GB.
SIZE_MULTIPLE = 32
MAX_SIDE = 4096
# The released families: (warp architecture, generator architecture, rounds its images).
FAMILIES = {"pfafn": ("pfafn", "resunet", False), "fsvton": ("fsvton", "resunet", True),
            "dmvton": ("mobile", "mobile", True)}


def family_of(warp_type: str, gen_type: str) -> Optional[str]:
    return next((name for name, (warp, gen, _) in FAMILIES.items()
                 if (warp, gen) == (warp_type, gen_type)), None)


class DeviceError(UserError):
    """A device that this machine does not have."""


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when available) | 'cpu' | 'cuda' | 'cuda:N' -> a device; an unknown or
    unavailable one is a ``DeviceError`` saying why."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"--device {name}: not a device (auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: no CUDA device is available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


@dataclass
class TryOnModel:
    """Warp module and generator of the parser-free student, ready for inference.

    ``height``, ``width``: the input size; ``device``: where inputs are moved; ``precision``:
    'fp32' | 'bf16' | 'fp16' autocast (``utils.inference.precision``: the cost volume, the flow
    arithmetic and the sampling stay float32);
    ``family``: whose conventions the try-on follows (``FAMILIES``); ``rounding``: how its
    images are quantised to 8 bits (``common.images.quantise``): PF-AFN's release truncates,
    FS-VTON's and DM-VTON's test scripts round."""

    warp: nn.Module
    gen: nn.Module
    height: int
    width: int
    device: torch.device
    precision: str = "fp32"
    backend: str = "pytorch"
    family: str = "pfafn"
    rounding: bool = False
    # How --precision auto chose (``utils.inference.precision.Choice``), when it did.
    choice: Optional[Any] = None

    @torch.inference_mode()
    def __call__(self, person: torch.Tensor, garment: torch.Tensor,
                 garment_edge: torch.Tensor) -> TryOnResult:
        """``person``, ``garment`` (B, 3, H, W) in [-1, 1] (the garment need not be masked);
        ``garment_edge`` (B, 1, H, W) in {0, 1}. Returns tensors on ``self.device``."""
        check_inputs(person, garment, garment_edge, self.height, self.width)
        person, garment, garment_edge = (x.to(self.device, non_blocking=True)
                                         for x in (person, garment, garment_edge))
        dtype = autocast_dtype(self.precision)
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


def load_tryon_model(warp_checkpoint: str, gen_checkpoint: str, device: torch.device | str = "cpu",
                     height: Optional[int] = None, width: Optional[int] = None,
                     align_corners: Optional[bool] = None, fast: bool = False,
                     compile: bool = False, precision: str = "fp32",
                     warp_flag: str = "--warp_checkpoint",
                     gen_flag: str = "--gen_checkpoint", family: str = "auto") -> TryOnModel:
    """Build the warp module and the generator with the architectures and the size their
    checkpoints record (or imply) and load them strictly.

    Checkpoints: released plain state dicts (the architecture recognised from their keys) or
    this project's stage-3/4 files (the warp) and stage-4 files (the generator); one stage-4
    file may be passed as both. ``height`` and ``width`` override the size stored in a project
    checkpoint (released files: 256x192); ``align_corners`` overrides the sampling convention.
    ``fast``: fold BatchNorm and run channels_last; ``compile``: ``torch.compile``;
    ``precision``: 'fp32', 'bf16' or 'fp16' (autocast).
    ``family``: 'auto', or a name of ``FAMILIES`` that the files must be: a released file of
    FS-VTON or DM-VTON then runs as its authors' code ran it (its images rounded, not
    truncated); this project's checkpoints keep PF-AFN's truncation unless ``family`` says
    otherwise. Errors (``CheckpointError``) name the flag and the file."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {', '.join(AUTOCAST_DTYPES)} for "
                         f"checkpoints, got {precision!r}")
    device = torch.device(device)
    warp_data = read_checkpoint(warp_checkpoint, warp_flag)
    gen_data = warp_data if gen_checkpoint == warp_checkpoint else read_checkpoint(gen_checkpoint,
                                                                                    gen_flag)
    overrides = {} if align_corners is None else {"align_corners": bool(align_corners)}
    warp = load_model(warp_data, "warp", warp_checkpoint, warp_flag, WARP_STAGES,
                      overrides=overrides)
    gen = load_model(gen_data, "gen", gen_checkpoint, gen_flag, GEN_STAGES)
    for model, flag, path, wanted in ((warp, warp_flag, warp_checkpoint, PF_WARP_INPUT),
                                      (gen, gen_flag, gen_checkpoint, PF_GEN_INPUT)):
        if model.arch["input_nc"] != wanted:
            raise CheckpointError(f"{flag}: {path} holds a model of {model.arch['input_nc']} "
                                  f"input channels; the parser-free try-on's takes {wanted} (is "
                                  f"it a parser-based teacher?)")
    found = family_of(warp.arch["type"], gen.arch["type"])
    if family != "auto":
        if family not in FAMILIES:
            raise CheckpointError(f"--arch {family}: expected auto or one of "
                                  f"{', '.join(FAMILIES)}")
        expected = FAMILIES[family][:2]
        if (warp.arch["type"], gen.arch["type"]) != expected:
            raise CheckpointError(
                f"--arch {family}: {warp_flag} {warp_checkpoint} and {gen_flag} "
                f"{gen_checkpoint} hold a {warp.arch['type']} warp and a {gen.arch['type']} "
                f"generator; {family} is a {expected[0]} warp and a {expected[1]} generator")
        rounding = FAMILIES[family][2]
    else:
        released = not is_project_checkpoint(warp_data)
        rounding = bool(released and found and FAMILIES[found][2])
        family = found or "mixed"
    size = dict(zip(("height", "width"), RELEASE_SIZE))
    for data in (warp_data, gen_data):
        if is_project_checkpoint(data):
            config = data.get("config", {})
            size.update({k: config[k] for k in size if k in config})
    for key, flag_value in (("height", height), ("width", width)):
        if flag_value is not None:
            size[key] = flag_value
            check_side(key, flag_value, f"--{key}")
        else:
            check_side(key, size[key], f"the {key} stored in {warp_flag}/{gen_flag}")
    warp, gen = warp.to(device).eval(), gen.to(device).eval()
    if fast or compile:
        from models.fast import optimize_for_inference
        warp, gen = (optimize_for_inference(m, fold_bn=fast, channels_last=fast, compile=compile)
                     for m in (warp, gen))
    return TryOnModel(warp=warp, gen=gen, height=int(size["height"]), width=int(size["width"]),
                      device=device, precision=precision, family=family, rounding=rounding)


def check_side(name: str, value, source: str) -> None:
    """A model frame's height or width must be a positive multiple of 32, at most 4096;
    otherwise a ``CheckpointError`` naming ``source`` (a flag or a file)."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 < value <= MAX_SIDE and value % SIZE_MULTIPLE == 0):
        raise CheckpointError(f"{source}: {name} {value!r} is not a model size: the models need "
                              f"a positive multiple of {SIZE_MULTIPLE}, at most {MAX_SIDE}")
