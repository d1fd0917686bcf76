"""Reading and writing checkpoints: this project's own and the released ``.pth`` files.

A project checkpoint is a dict::

    {'format': CHECKPOINT_FORMAT, 'stage': 'pb_warp' | 'pb_gen' | 'pf_warp' | 'pf_gen',
     'model': {'warp': state_dict, 'gen': state_dict, ...},   # unwrapped modules
     'arch': {'warp': {...}, 'gen': {...}},                   # models.registry architectures
     'checksums': {'warp': sha256, ...},                      # of each state dict's tensors
     'optimizer', 'scaler', 'epoch', 'step', 'config': {...}, ...}

Older checkpoints of this project carry no ``arch``: it is derived from their ``config`` and
stage. A released checkpoint is a plain state dict of one module (``warp_model_final.pth``,
``gen_model_final.pth``), whose architecture is recognised from its keys and shapes
(``models.registry.recognise``).

``load_checkpoint_model`` is the one way from a file to a module: read, recognise (or read the
recorded ``arch``), build, load strictly. ``load_weights`` loads into a module the caller built
(a student from its teacher, with an explicit list of what is skipped).

Everything is strict: a missing file, an unknown architecture, a missing or unexpected key, a
shape mismatch, non-finite weights or a checksum that does not match raise ``CheckpointError``
naming the file and what is wrong. Files are read with ``torch.load(weights_only=True)``, so a
checkpoint cannot run code.
"""

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch
import torch.nn as nn

from common.atomic import write_atomic
from common.errors import UserError, load_problem, missing
from models.registry import (
    OPTIONAL_KEY,
    aliases,
    arch_from_flags,
    build_model,
    complete_arch,
    find,
    ignored_keys,
    recognise,
    saved_arch,
    types_of,
    unwrap,
    with_overrides,
)
from utils.logging_utils import LOGGER_NAME
from utils.weights import load_tensors, non_finite_keys

CHECKPOINT_FORMAT = "pfafn-checkpoint-v1"

# What a weight may be (BatchNorm's step count aside, an integer), and a generator's outputs:
# the try-on's RGB and the composition mask.
WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
GEN_OUTPUTS = 4

# Input channels of each model of each stage, for checkpoints saved before ``arch`` was.
LEGACY_INPUTS = {"pb_warp": {"warp": 45}, "pb_gen": {"warp": 45, "gen": 8},
                 "pf_warp": {"warp": 3}, "pf_gen": {"warp": 3, "gen": 7}}


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be used: missing, unreadable, of the wrong stage or shape."""


class StateMismatch(CheckpointError):
    """A state dict whose keys or shapes do not fit the model (``load_state``)."""


# ---------------------------------------------------------------------------------------------
# Files


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """Load a checkpoint file onto the CPU, safely. ``what`` names it in errors (e.g. a flag)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{what}: {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{what}: file not found: {path}" if not path.is_symlink() else
                              f"{what}: {path}: {missing(path, 'file')}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what}: {path} is an empty file")
    try:
        with torch.serialization.safe_globals(_released_globals()):
            data = load_tensors(path)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{what}: cannot read {path}: {load_problem(error)}") from None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{what}: {path} holds a {type(data).__name__}, not a state dict "
                              f"or checkpoint dict")
    if is_project_checkpoint(data):
        _check_fields(data, path, what)
    return dict(data)


# The fields of a project checkpoint that the loaders read: (type, type of each value or None).
_FIELDS = {"stage": (str, None), "model": (Mapping, Mapping), "config": (Mapping, None),
           "arch": (Mapping, (Mapping, type(None))), "checksums": (Mapping, str),
           "step": (int, None)}


def _check_fields(data: Mapping, path, what: str) -> None:
    """One CheckpointError naming the field of a project checkpoint that is not of its type
    (an edited or foreign file), before anything reads it."""
    for field, (kind, values) in _FIELDS.items():
        value = data.get(field)
        if value is None and field in ("arch", "checksums"):   # older checkpoints
            continue
        wrong = (field in data or field in ("stage", "model")) and (
            not isinstance(value, kind) or isinstance(value, bool)
            or values is not None and not all(isinstance(v, values) for v in value.values()))
        if wrong:
            raise CheckpointError(f"{what}: {path}: its '{field}' is not what this project "
                                  f"writes there ({_short(value, 60)}); the file is refused")


def _released_globals() -> list:
    """What the released files of the family pickle besides tensors, allowed to
    ``torch.load(weights_only=True)``: DM-VTON's training scripts store ``best_fid``, a NumPy
    float64, which pickles as ``numpy.core.multiarray.scalar`` (NumPy 1.x's name) with its
    dtype. These only rebuild numbers; nothing that runs code is allowed."""
    import numpy as np
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    return [(scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
            np.dtype, type(np.dtype(np.float64))]


def save_atomic(payload: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``: a
    crash mid-write leaves the previous file intact. A failed write (disk full, permissions)
    is a CheckpointError naming the file; the temporary file is removed."""
    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
    try:
        write_atomic(path, write)
    except OSError as error:
        raise CheckpointError(f"cannot write {path} ({error.strerror or error}); the previous "
                              f"file, if any, is left as it was") from None
    except RuntimeError as error:     # torch.save reports a failed write as a RuntimeError
        text = str(error)
        if not any(word in text for word in ("write", "file", "unexpected pos")):
            raise
        # "unexpected pos": its zip writer found less on disk than it wrote (a full disk).
        reason = ("the file system took less than was written: is the disk full?"
                  if "unexpected pos" in text else text.splitlines()[0][:160])
        raise CheckpointError(f"cannot write {path} ({reason}); the previous file, if any, is "
                              f"left as it was") from None


def is_project_checkpoint(data: Mapping) -> bool:
    return data.get("format") == CHECKPOINT_FORMAT


def trained_size(data: Mapping) -> Optional[tuple[int, int]]:
    """The (height, width) a checkpoint of this project records it was trained at; None for a
    released file, or a config without both as integers."""
    config = data.get("config") if is_project_checkpoint(data) else None
    size = tuple(config.get(key) for key in ("height", "width")) if isinstance(config, Mapping) \
        else ()
    return size if size and all(type(side) is int for side in size) else None


# ---------------------------------------------------------------------------------------------
# What a checkpoint holds


def state_checksum(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict: every key, dtype, shape and the tensor's bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_payload(stage: str, models: Mapping[str, nn.Module], config: Mapping,
                       **fields) -> tuple[dict, list[str]]:
    """(payload, non-finite) for ``models`` (unwrapped modules by name) of ``stage``: the
    project checkpoint of their state dicts, architectures (None for a module that records
    none) and checksums, the resolved ``config`` and the ``fields`` (optimizer, step, ...);
    and the names of the models whose weights are not finite (which must not be saved)."""
    states = {name: model.state_dict() for name, model in models.items()}
    payload = {
        "format": CHECKPOINT_FORMAT, "stage": stage, "model": states,
        "arch": {name: saved_arch(model) if hasattr(unwrap(model), "arch") else None
                 for name, model in models.items()},
        "checksums": {name: state_checksum(state) for name, state in states.items()},
        "config": dict(config), **fields,
    }
    bad = [name for name, state in states.items() if non_finite_keys(state)]
    return payload, bad


def state_dict_from(data: Mapping, key: str, path: str | os.PathLike,
                    what: str = "checkpoint", stages: Optional[Iterable[str]] = None) -> dict:
    """The state dict of model ``key`` ('warp', 'gen') in a project checkpoint (its checksum
    verified), or the whole dict when ``data`` is a released plain state dict. ``stages``, if
    given, lists the stages a project checkpoint may come from."""
    if not is_project_checkpoint(data):
        for wrapper in ("model", "state_dict"):   # DM-VTON: {'epoch', 'best_fid', 'model', ...}
            if isinstance(data.get(wrapper), Mapping) and "format" not in data:
                data = data[wrapper]
        if not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise CheckpointError(f"{what}: {path} is neither a checkpoint of this project nor a "
                                  f"plain state dict (or one under 'model' or 'state_dict')")
        check_storage(data, key, path, what)
        return _strip_wrappers(data, f"{what}: {path}")
    stage = data.get("stage")
    if stages is not None and stage not in set(stages):
        raise CheckpointError(f"{what}: {path} is a '{stage}' checkpoint; expected one of "
                              f"{sorted(set(stages))}")
    models = data.get("model", {})
    if key not in models:
        raise CheckpointError(f"{what}: {path} (stage '{stage}') has no '{key}' model; it has "
                              f"{sorted(models)}")
    state = dict(models[key])
    check_storage(state, key, path, what)
    stored = (data.get("checksums") or {}).get(key)
    if stored is not None and state_checksum(state) != stored:
        raise CheckpointError(f"{what}: {path} is corrupted: the weights of its '{key}' model do "
                              f"not match the checksum stored with them")
    return state


def check_storage(state: Mapping[str, Any], key: str, path: str | os.PathLike,
                  what: str = "checkpoint") -> None:
    """Refuse, before anything is computed from them, tensors that claim more elements than
    their storage holds: an ``expand``ed (zero-stride) or overlapping tensor of a few bytes can
    claim a shape of gigabytes, which a checksum, a copy or a strict load would then allocate.
    One CheckpointError naming the file and the first such key."""
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{what}: {path}: '{key}' weight {_short(name)} is a "
                                  f"{type(tensor).__name__}, not a tensor")
        counter = str(name).endswith(OPTIONAL_KEY) and not tensor.is_floating_point()
        if tensor.layout != torch.strided or tensor.is_quantized or tensor.device.type != "cpu" \
                or not (tensor.dtype in WEIGHT_DTYPES or counter and not tensor.is_complex()):
            raise CheckpointError(f"{what}: {path}: '{key}' weight {_short(name)} is a "
                                  f"{'quantized ' * tensor.is_quantized}{tensor.dtype} tensor "
                                  f"({tensor.layout}, {tensor.device.type}); weights are dense "
                                  f"floating-point tensors (16, 32 or 64 bits)")
        held = tensor.untyped_storage().nbytes() - tensor.storage_offset() * tensor.element_size()
        claimed = tensor.numel() * tensor.element_size()
        if claimed > held or 0 in tensor.stride()[:tensor.dim()] and tensor.numel() > 1:
            raise CheckpointError(f"{what}: {path}: '{key}' weight {_short(name)} claims "
                                  f"{tuple(tensor.shape)} ({claimed} bytes) but its storage "
                                  f"holds {max(held, 0)} bytes (an expanded or overlapping "
                                  f"tensor); the file is refused")


def _short(text: Any, limit: int = 80) -> str:
    """``text`` quoted, cut to ``limit`` characters: names from a file may be of any length."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check_declared_shapes(state: Mapping[str, torch.Tensor], arch: Mapping[str, Any],
                          key: str, path: str | os.PathLike, what: str = "checkpoint") -> None:
    """Compare ``state``'s shapes with those of ``arch`` built on the meta device (no memory),
    before the real model is built: an architecture whose declared widths do not match the
    weights (``ngf`` edited to 512) is one line naming the file and a key, not gigabytes
    allocated first."""
    try:
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build_model(arch).state_dict().items()}
    except (ValueError, TypeError, RuntimeError, OverflowError, MemoryError) as error:
        raise CheckpointError(f"{what}: {path}: its '{key}' architecture cannot be built: "
                              f"{str(error).splitlines()[0][:200] if str(error) else error}") \
            from None
    shapes = {k: tuple(v.shape) for k, v in _strip_wrappers(state, f"{what}: {path}").items()}
    for name in sorted(expected.keys() & shapes.keys()):
        if shapes[name] != expected[name]:
            raise CheckpointError(f"{what}: {path}: '{key}' weight {_short(name)} is "
                                  f"{shapes[name]} but the architecture the file declares "
                                  f"({_arch_summary(arch)}) needs {expected[name]}")


def _arch_summary(arch: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in arch.items() if k not in ("kind", "cost_volume"))
    return shown if len(shown) <= 200 else shown[:200] + "..."


def checkpoint_arch(data: Mapping, key: str, path: str | os.PathLike,
                    what: str = "checkpoint", kind: Optional[str] = None) -> dict:
    """The architecture of model ``key`` of a checkpoint: recorded (``arch``), derived from
    an older project checkpoint's config and stage, or recognised from a plain state dict's
    keys (``kind``: 'warp' or 'gen', default ``key``)."""
    kind = kind or key
    if is_project_checkpoint(data):
        recorded = (data.get("arch") or {}).get(key)
        if recorded is not None:
            try:
                return complete_arch(recorded)
            except ValueError as error:
                raise CheckpointError(f"{what}: {path}: {error}") from None
        return _legacy_arch(data, key, path, what)
    found = recognise(state_dict_from(data, key, path, what), kind)
    if found.arch is not None:
        return found.arch
    problems = [f"{label}: {_list(keys)}" for label, keys in (
        ("missing keys", found.missing), ("unexpected keys", found.unexpected),
        ("shape mismatch", found.mismatched)) if keys]
    raise CheckpointError(f"{what}: {path} is not a known {kind} architecture; the closest is "
                          f"'{found.closest}' ({found.matching} keys fit), but " +
                          "; ".join(problems))


def _legacy_arch(data: Mapping, key: str, path, what: str) -> dict:
    """A checkpoint saved before ``arch`` was: its model is of the first registered type of
    its kind (PF-AFN's, the only ones then), with the architecture flags its config holds."""
    config, stage = data.get("config", {}), data.get("stage")
    inputs = LEGACY_INPUTS.get(stage, {})
    if key not in inputs:
        raise CheckpointError(f"{what}: {path} (stage '{stage}') records no architecture for "
                              f"its '{key}' model")
    first = types_of(key)[0]
    flags = {flag.flag: config.get(flag.flag) for flag in find(key, first).flags}
    try:
        return arch_from_flags(key, first, inputs[key], flags)
    except ValueError as error:
        raise CheckpointError(f"{what}: {path}: {error}, stored in its config") from None


# ---------------------------------------------------------------------------------------------
# Loading


def _list(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def _strip_wrappers(state: Mapping[str, torch.Tensor], source: str = "the file") -> dict:
    # DataParallel/DDP save 'module.' and torch.compile '_orig_mod.' prefixes, in any order.
    out = {}
    for name, value in state.items():
        stripped = name
        while stripped.startswith(("module.", "_orig_mod.")):
            stripped = stripped.split(".", 1)[1]
        if stripped in out:
            raise CheckpointError(f"{source}: two weights are {_short(stripped)} once their "
                                  f"'module.' / '_orig_mod.' prefixes are removed")
        out[stripped] = value
    return out


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
               skip_prefixes: Iterable[str] = ()) -> None:
    """Strictly copy ``state`` into ``model``; keys starting with one of ``skip_prefixes`` are
    left as the model has them (on both sides). ``source`` names the file in errors. Weights
    holding NaN or infinity are refused."""
    skip, ignored = tuple(skip_prefixes), ignored_keys(model)
    state = {k: v for k, v in _strip_wrappers(state, source).items()
             if k not in ignored and not k.startswith(skip)}
    state.update({key: state[same] for key, same in aliases(model).items()   # saved once
                  if same in state and key not in state and not key.startswith(skip)})
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    missing = {k for k in own.keys() - state.keys() if not k.endswith(OPTIONAL_KEY)}
    unexpected = state.keys() - own.keys()
    problems = []
    if missing:
        problems.append(f"missing keys: {_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_list(unexpected)}")
    mismatched = [f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
                  for k in sorted(own.keys() & state.keys()) if state[k].shape != own[k].shape]
    if mismatched:
        problems.append(f"shape mismatch: {_list(mismatched, 4)}")
    if problems:
        raise StateMismatch(f"{source} does not fit {type(model).__name__}: "
                            + "; ".join(problems))
    bad = non_finite_keys(state)
    if bad:
        raise CheckpointError(f"{source}: {len(bad)} weight tensor(s) hold NaN or infinity, e.g. "
                              f"{_list(bad, 3)}; the file is damaged or the run diverged")
    negative = [k for k, v in state.items() if k.endswith("running_var") and bool((v < 0).any())]
    if negative:   # the square root of one is NaN: every try-on would be black
        raise CheckpointError(f"{source}: BatchNorm variances below 0 in {_list(negative, 3)}; "
                              f"the file is damaged")
    model.load_state_dict(state, strict=not skip)


def load_weights(model: nn.Module, path: str | os.PathLike, key: str, what: str = "checkpoint",
                 stages: Optional[Iterable[str]] = None,
                 skip_prefixes: Iterable[str] = ()) -> dict:
    """Load model ``key`` of the checkpoint at ``path`` (project or released format) into
    ``model``. Returns the file's contents for the caller to read ``config`` and the like."""
    data = read_checkpoint(path, what)
    state = state_dict_from(data, key, path, what, stages)
    load_state(model, state, f"{what}: {path}", skip_prefixes)
    return data


def load_checkpoint_model(path: str | os.PathLike, kind: str, flag: str = "checkpoint",
                          key: Optional[str] = None, stages: Optional[Iterable[str]] = None,
                          overrides: Optional[Mapping[str, Any]] = None,
                          input_nc: Optional[int] = None, role: str = "this use",
                          hint: str = "", data: Optional[Mapping] = None,
                          size: Optional[tuple[int, int]] = None) -> nn.Module:
    """The model ``key`` (default: ``kind``, 'warp' or 'gen') of the checkpoint at ``path``:
    read safely (or ``data``, the file already read by ``read_checkpoint``), its architecture
    as the file records or implies it (``checkpoint_arch``) with ``overrides`` applied (e.g.
    ``{'align_corners': False}``), built, and its weights loaded strictly.

    The cost volume's implementation is a choice of the machine that runs the model, not of
    the one that saved it: 'auto' unless ``overrides`` names one. ``stages``: the stages a
    project checkpoint may come from; ``input_nc``: the input channels the model must take
    (``role`` says whose, e.g. "the parser-based teacher's warp"; ``hint`` what a file of
    other channels may be). ``size``: the (H, W) the model will work at, where a file of this
    project trained at another is noted in the log. Every error is one ``CheckpointError`` line
    naming ``flag`` and ``path``."""
    if data is None:
        data = read_checkpoint(path, flag)
        note_trial(data, path, flag)
    trained = trained_size(data)
    if size is not None and trained is not None and trained != tuple(size):
        logging.getLogger(LOGGER_NAME).warning(
            f"{flag}: {path} was trained at {trained[0]}x{trained[1]}; this run works at "
            f"{size[0]}x{size[1]}, where its features have another scale")
    key = key or kind
    state = state_dict_from(data, key, path, flag, stages)
    arch = checkpoint_arch(data, key, path, flag, kind)
    try:
        arch = with_overrides(arch, {"cost_volume": "auto", **(overrides or {})})
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{flag}: {path}: its '{key}' architecture cannot be built: "
                              f"{str(error).splitlines()[0] if str(error) else error}") from None
    check_declared_shapes(state, arch, key, path, flag)
    try:
        model = build_model(arch)
    except (ValueError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{flag}: {path}: its '{key}' architecture cannot be built: "
                              f"{str(error).splitlines()[0] if str(error) else error}") from None
    if kind == "gen" and arch.get("output_nc", GEN_OUTPUTS) != GEN_OUTPUTS:
        raise CheckpointError(f"{flag}: {path} holds a generator of {arch['output_nc']} output "
                              f"channels; a try-on generator has {GEN_OUTPUTS} (RGB and the "
                              f"composition mask)")
    if input_nc is not None and arch["input_nc"] != input_nc:
        if kind == "warp" and find("warp", arch["type"]).condition:
            hint = f"a {arch['type']} warp takes its own condition: it is for scripts/prewarp.py"
        raise CheckpointError(f"{flag}: {path} holds a {kind} of {arch['input_nc']} input "
                              f"channels; {role} takes {input_nc}" + (hint and f" ({hint})"))
    load_state(model, state, f"{flag}: {path}")
    return model


def stopped_early(data: Mapping) -> Optional[str]:
    """'step S of its schedule's T' for a project checkpoint where a --max_steps run stopped
    before the end of its schedule (its final.pth); None for any other file."""
    config, per_epoch = data.get("config") or {}, data.get("steps_per_epoch")
    numbers = (per_epoch, config.get("niter"), config.get("niter_decay", 0),
               config.get("max_steps"), data.get("step"))
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers) or not (
            per_epoch and config["max_steps"]):
        return None
    total = per_epoch * (config["niter"] + config.get("niter_decay", 0))
    trial = config["max_steps"] <= data["step"] < total
    return f"step {data['step']} of its schedule's {total}" if trial else None


def note_trial(data: Mapping, path, flag: str) -> None:
    """Log a warning when the checkpoint ``data`` read from ``path`` is a --max_steps trial's
    (once: every process of a run reads the file, and only the first says so)."""
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    if early := stopped_early(data):
        logging.getLogger(LOGGER_NAME).warning(f"{flag}: {path} stopped at {early} (--max_steps): "
                                               f"a trial run's model")
