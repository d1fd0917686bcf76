"""The parser-free try-on as one callable, loaded from checkpoints: what test.py, the web page
and the benchmarks run.

    model = load_tryon_model("warp_model_final.pth", "gen_model_final.pth", device="cpu")
    out = model(person, garment, garment_edge)      # (B, 3, H, W), (B, 3, H, W), (B, 1, H, W)
    out.tryon                                       # (B, 3, H, W) in [-1, 1]

``model.height``/``model.width`` are the size the weights were trained at (from a project
checkpoint's config; 256x192 for released plain state dicts); the two models are built with
the architectures their checkpoints record or imply (``utils.checkpoint.load_checkpoint_model``).
Inputs of another size are an error: fitting a photo to that size is the caller's job
(``data.photo_fit``).
"""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn as nn

from common.errors import UserError
from common.precision import AUTOCAST_DTYPES
from models import MAX_SIDE, PF_GEN_INPUT, PF_WARP_INPUT, SIZE_MULTIPLE
from models.registry import families, family_of
from models.tryon import TryOnResult, parser_free_tryon
from utils.checkpoint import (
    CheckpointError,
    is_project_checkpoint,
    load_checkpoint_model,
    note_trial,
    read_checkpoint,
)
from utils.inference.precision import autocast_dtype

WARP_STAGES = ("pf_warp", "pf_gen")
GEN_STAGES = ("pf_gen",)
RELEASE_SIZE = (256, 192)


class OutOfMemory(UserError):
    """A try-on that does not fit in the memory of its device."""


@contextmanager
def memory_named(what: str, remedy: str = "give a smaller frame (--height/--width) or another "
                                         "--device"):
    """Run the enclosed code; running out of memory (CPU or GPU) becomes an ``OutOfMemory``
    naming ``what`` ran (the frame, the batch) and the ``remedy``, instead of an allocator's
    traceback."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        text = str(error)
        if not (isinstance(error, (MemoryError, torch.OutOfMemoryError))
                or "can't allocate memory" in text or "out of memory" in text):
            raise
        said = text.splitlines()[0][:120] if text else type(error).__name__
        raise OutOfMemory(f"out of memory running {what} ({said}): {remedy}") from None


@dataclass
class TryOnModel:
    """Warp module and generator of the parser-free student, ready for inference.

    ``height``, ``width``: the input size; ``device``: where inputs are moved; ``precision``:
    'fp32' | 'bf16' | 'fp16' autocast (``utils.inference.precision``: the cost volume, the flow
    arithmetic and the sampling stay float32);
    ``family``: whose conventions the try-on follows (a registered family's name, or 'mixed');
    ``rounding``: how its
    images are quantised to 8 bits (``common.images.quantise``): PF-AFN's release truncates,
    FS-VTON's and DM-VTON's test scripts round."""

    warp: nn.Module
    gen: nn.Module
    height: int
    width: int
    device: torch.device
    precision: str = "fp32"
    backend: str = "pytorch"
    family: str = "mixed"
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
    checkpoints record (or imply) and load them strictly (``load_checkpoint_model``).

    Checkpoints: released plain state dicts (the architecture recognised from their keys) or
    this project's stage-3/4 files (the warp) and stage-4 files (the generator); one stage-4
    file may be passed as both. ``height`` and ``width`` override the size stored in a project
    checkpoint (released files: 256x192); ``align_corners`` overrides the sampling convention.
    ``fast``: fold BatchNorm and run channels_last; ``compile``: ``torch.compile``;
    ``precision``: 'fp32', 'bf16' or 'fp16' (autocast). ``family``: 'auto', or the name of a
    registered family (``models.registry.families``) that the files must be (see
    ``resolve_family``). Errors (``CheckpointError``) name the flag and the file."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {', '.join(AUTOCAST_DTYPES)} for "
                         f"checkpoints, got {precision!r}")
    warp_data = read_checkpoint(warp_checkpoint, warp_flag)
    if gen_checkpoint == warp_checkpoint and not is_project_checkpoint(warp_data):
        raise CheckpointError(f"{warp_flag} {warp_checkpoint}: a released file holds one model, "
                              f"not both: pass the warp's with --warp_checkpoint and the "
                              f"generator's with --gen_checkpoint")
    gen_data = warp_data if gen_checkpoint == warp_checkpoint else read_checkpoint(gen_checkpoint,
                                                                                    gen_flag)
    note_trial(warp_data, warp_checkpoint, warp_flag)
    if gen_data is not warp_data:
        note_trial(gen_data, gen_checkpoint, gen_flag)
    role, hint = "the parser-free try-on's", "is it a parser-based teacher?"
    warp = load_checkpoint_model(
        warp_checkpoint, "warp", warp_flag, stages=WARP_STAGES, data=warp_data,
        overrides={} if align_corners is None else {"align_corners": bool(align_corners)},
        input_nc=PF_WARP_INPUT, role=role, hint=hint)
    gen = load_checkpoint_model(gen_checkpoint, "gen", gen_flag, stages=GEN_STAGES, data=gen_data,
                                input_nc=PF_GEN_INPUT, role=role, hint=hint)
    sources = f"{warp_flag} {warp_checkpoint} and {gen_flag} {gen_checkpoint}"
    name, rounding = resolve_family(family, warp.arch["type"], gen.arch["type"],
                                    not is_project_checkpoint(warp_data), sources)
    size = model_size((warp_data, gen_data), height, width,
                      f"{warp_flag} {warp_checkpoint}" if gen_data is warp_data else sources)
    warp, gen = warp.to(device).eval(), gen.to(device).eval()
    if fast or compile:
        from models.fast import optimize_for_inference
        warp, gen = (optimize_for_inference(m, fold_bn=fast, channels_last=fast, compile=compile)
                     for m in (warp, gen))
    return TryOnModel(warp=warp, gen=gen, height=size[0], width=size[1],
                      device=torch.device(device), precision=precision, family=name,
                      rounding=rounding)


def resolve_family(family: str, warp_type: str, gen_type: str, released: bool,
                   sources: str) -> tuple[str, bool]:
    """(family name, rounding) of a warp and a generator. ``family`` 'auto': the registered
    family they form ('mixed' when none), rounding as its authors' test script did for released
    files only (this project's checkpoints keep PF-AFN's truncation); a family name: the files
    must be that family's (else a ``CheckpointError`` naming ``sources``), rounding as it did."""
    known = families()
    if family == "auto":
        found = family_of(warp_type, gen_type)
        return (found.name if found else "mixed"), bool(released and found and found.rounding)
    if family not in known:
        raise CheckpointError(f"--arch {family}: expected auto or one of {', '.join(known)}")
    wanted = known[family]
    if (warp_type, gen_type) != (wanted.warp, wanted.gen):
        raise CheckpointError(f"--arch {family}: {sources} hold a {warp_type} warp and a "
                              f"{gen_type} generator; {family} is a {wanted.warp} warp and a "
                              f"{wanted.gen} generator")
    return family, wanted.rounding


def model_size(checkpoints, height: Optional[int], width: Optional[int],
               source: str) -> tuple[int, int]:
    """(height, width) of the model frame: the flags when given, else the size the project
    checkpoints' configs store (two files of different sizes: a CheckpointError, as either
    could be meant), else the released 256x192; checked."""
    size = dict(zip(("height", "width"), RELEASE_SIZE))
    recorded, released = set(), False
    for data in checkpoints:
        if is_project_checkpoint(data):
            config = data.get("config", {})
            size.update({k: config[k] for k in size if k in config})
            if all(k in config for k in size):
                recorded.add(tuple(config[k] for k in size))
        else:                                    # a released file: trained at the paper's size
            recorded.add(RELEASE_SIZE)
            released = True
    if len(recorded) > 1 and (height is None or width is None):
        frames = " and ".join(f"{h}x{w}" + (" (a released file's, which records none)"
                                             if (h, w) == RELEASE_SIZE and released else "")
                              for h, w in sorted(recorded, key=str))
        raise CheckpointError(f"{source}: trained at different sizes ({frames}); give "
                              f"--height and --width to choose the frame")
    for key, flag_value in (("height", height), ("width", width)):
        if flag_value is not None:
            size[key] = flag_value
            check_side(key, flag_value, f"--{key}")
        else:
            check_side(key, size[key], f"the {key} stored in {source}")
    return int(size["height"]), int(size["width"])


def check_side(name: str, value, source: str) -> None:
    """A model frame's height or width must be a positive multiple of 32, at most 4096;
    otherwise a ``CheckpointError`` naming ``source`` (a flag or a file)."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 < value <= MAX_SIDE and value % SIZE_MULTIPLE == 0):
        raise CheckpointError(f"{source}: {name} {value!r} is not a model size: the models need "
                              f"a positive multiple of {SIZE_MULTIPLE}, at most {MAX_SIDE}")
