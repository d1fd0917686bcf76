"""Reading and writing checkpoints: this project's own and the released PF-AFN ``.pth`` files.

A project checkpoint is a dict::

    {'format': CHECKPOINT_FORMAT, 'stage': 'pb_warp' | 'pb_gen' | 'pf_warp' | 'pf_gen',
     'model': {'warp': state_dict, 'gen': state_dict, ...},   # unwrapped modules
     'optimizer', 'scaler', 'epoch', 'step', 'config': {...}}

A released checkpoint is a plain state dict of one module (``warp_model_final.pth``,
``gen_model_final.pth``). ``load_weights`` takes either, strictly: a missing file, a missing or
unexpected key, or a shape mismatch raises ``CheckpointError`` naming the file and the keys.
Files are read with ``torch.load(weights_only=True)``, so a checkpoint cannot run code.
"""

import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch
import torch.nn as nn

from common.errors import UserError
from common.atomic import write_atomic

CHECKPOINT_FORMAT = "pfafn-checkpoint-v1"

# Saved by accident in the release's training checkpoints: the four fixed second-order filters.
RELEASE_EXTRA_KEYS = ("aflow_net.weight",)


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be used: missing, unreadable, of the wrong stage or shape."""


def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> dict:
    """Load a checkpoint file onto the CPU, safely. ``what`` names it in errors (e.g. a flag)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{what}: cannot read {path}: {error}") from error
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{what}: {path} holds a {type(data).__name__}, not a state dict "
                              f"or checkpoint dict")
    return dict(data)


def is_project_checkpoint(data: Mapping) -> bool:
    return data.get("format") == CHECKPOINT_FORMAT


def state_dict_from(data: Mapping, key: str, path: str | os.PathLike,
                    what: str = "checkpoint", stages: Optional[Iterable[str]] = None) -> dict:
    """The state dict of model ``key`` ('warp', 'gen') in a project checkpoint, or the whole
    dict when ``data`` is a released plain state dict. ``stages``, if given, lists the stages a
    project checkpoint may come from."""
    if not is_project_checkpoint(data):
        if not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise CheckpointError(f"{what}: {path} is neither a checkpoint of this project nor a "
                                  f"plain state dict")
        return dict(data)
    stage = data.get("stage")
    if stages is not None and stage not in set(stages):
        raise CheckpointError(f"{what}: {path} is a '{stage}' checkpoint; expected one of "
                              f"{sorted(set(stages))}")
    models = data.get("model", {})
    if key not in models:
        raise CheckpointError(f"{what}: {path} (stage '{stage}') has no '{key}' model; it has "
                              f"{sorted(models)}")
    return dict(models[key])


def _strip_wrappers(state: Mapping[str, torch.Tensor]) -> dict:
    # DataParallel/DDP save 'module.' and torch.compile '_orig_mod.' prefixes.
    out = {}
    for name, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        out[name] = value
    return out


def _list(keys: Iterable[str], limit: int = 8) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str,
               skip_prefixes: Iterable[str] = ()) -> None:
    """Strictly copy ``state`` into ``model``; keys starting with one of ``skip_prefixes`` are
    left as the model has them (on both sides). ``source`` names the file in errors."""
    skip = tuple(skip_prefixes)
    state = {k: v for k, v in _strip_wrappers(state).items()
             if k not in RELEASE_EXTRA_KEYS and not k.startswith(skip)}
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    missing = own.keys() - state.keys()
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
        raise CheckpointError(f"{source} does not fit {type(model).__name__}: "
                              + "; ".join(problems))
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


def unwrap(model: nn.Module) -> nn.Module:
    """The module under DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def save_atomic(payload: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``: a
    crash mid-write leaves the previous file intact."""
    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
    write_atomic(path, write)