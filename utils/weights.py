"""Pretrained weight files: finding them, reading them safely, and saying so when there are none.

The rules, for every network that needs published ImageNet-style weights (the metrics' FID
Inception and LPIPS trunks; later the perceptual loss's VGG19):

- Nothing is ever downloaded. A file comes from the path a flag names, else from the torch hub
  cache (``$TORCH_HOME/hub/checkpoints``), where torchvision and pytorch-fid keep their
  downloads under their published names.
- A missing file raises ``MissingWeightsError`` naming the file, the folder it was looked for
  in and the flag that names it. A path given by a flag that does not exist is always an error.
- A published name carries the start of the file's sha256 (``alexnet-owt-7be5be79.pth``);
  ``read_weights_file`` can check it, so that a different file is not taken for the published one.
- Files are read with ``torch.load(weights_only=True)``: a file from the internet must not run code.
- Random weights only where the caller allows them (``allow_random_weights``); they are
  announced loudly on stderr (``announce_random_weights``), seeded with ``RANDOM_WEIGHTS_SEED``
  and, by the caller, recorded with whatever they produce.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from common.errors import UserError, load_problem

RANDOM_WEIGHTS_SEED = 0
# How a user of the Python functions allows random weights (the CLIs name their own flag).
RANDOM_OPT_IN = "--allow_random_weights / allow_random_weights=True"


class MissingWeightsError(UserError, FileNotFoundError):
    """A pretrained weights file that a network needs is not on this machine."""


class WeightsFileError(UserError, RuntimeError):
    """A weights file exists but is not the expected one (unreadable, wrong keys, wrong hash)."""


def hub_checkpoint_dir() -> Path:
    """Where torchvision and pytorch-fid cache downloaded weights:
    ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights_file(path: Optional[str | os.PathLike], file_name: str, flag: str,
                         purpose: str, allow_random_weights: bool,
                         random_opt_in: str = RANDOM_OPT_IN) -> Optional[Path]:
    """Find a weights file: the named ``path``, else ``file_name`` in the hub cache.

    ``flag`` is the option that names the file and ``purpose`` what the file is for (both appear
    in the errors); ``random_opt_in`` is how the caller's user allows random weights.
    Returns the path, or None when no file exists and ``allow_random_weights`` is set.
    Raises ``MissingWeightsError`` (naming the file, the folder and the flag) otherwise; a named
    path that does not exist is always an error, even with ``allow_random_weights``.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"{purpose}: weights file given with {flag} not found: "
                                      f"{path} (expected a copy of {file_name})")
        return path
    cached = hub_checkpoint_dir() / file_name
    if cached.is_file():
        return cached
    if allow_random_weights:
        return None
    raise MissingWeightsError(
        f"{purpose}: pretrained weights {file_name} not found, and this machine does not "
        f"download them. Copy {file_name} into {cached.parent}/ (the torch hub cache), or pass "
        f"its path with {flag} PATH. "
        f"({random_opt_in} runs with random weights, for tests only: "
        f"such scores are not comparable to published ones.)")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_mismatch(path: Path, file_name: str) -> str | None:
    """What is wrong when the sha256 of the file at ``path`` does not start with the prefix
    its published name carries (``alexnet-owt-7be5be79.pth``); None when it does."""
    expected = file_name.rsplit("-", 1)[-1].split(".")[0]
    actual = file_sha256(path)
    if actual.startswith(expected):
        return None
    return (f"{path}: sha256 {actual[:8]}... does not match {file_name} (expected prefix "
            f"{expected}); this is not the published file")


def warn_unpublished(message: str) -> None:
    """Say on stderr that a weights file is not the published one (``hash_mismatch``)."""
    print(f"WARNING: {message}: scores may differ from published ones", file=sys.stderr)


def read_weights_file(path: Path, file_name: str, check_hash: bool,
                      mismatch_is_error: bool = True) -> dict:
    """Load a state dict safely (``weights_only=True``).

    With ``check_hash``, compare the file's sha256 with the prefix its published name carries
    (``alexnet-owt-7be5be79.pth``), so that scores stay comparable: a mismatch raises
    ``WeightsFileError``, or only warns (on stderr) when ``mismatch_is_error`` is False.
    """
    message = hash_mismatch(path, file_name) if check_hash else None
    if message:
        if mismatch_is_error:
            raise WeightsFileError(message)
        warn_unpublished(message)
    try:
        state = load_tensors(path)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise WeightsFileError(f"weights file {path}: {load_problem(error)}") from None
    if not isinstance(state, dict):
        raise WeightsFileError(f"{path}: expected a state dict, found {type(state).__name__}")
    bad = non_finite_keys({k: v for k, v in state.items() if isinstance(v, torch.Tensor)})
    if bad:
        raise WeightsFileError(f"{path}: weights holding NaN or infinity ({', '.join(bad[:3])}); "
                               f"the file is damaged")
    return state


def load_tensors(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU, without the warnings torch prints
    on the way (a TorchScript archive, old storages, sparse tensors): lines of its internals
    before the caller's one message about the file, or for nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


def non_finite_keys(state: Mapping[str, torch.Tensor]) -> list[str]:
    """The floating-point tensors of ``state`` holding a NaN or an infinity."""
    return [key for key, value in state.items()
            if value.is_floating_point() and not bool(torch.isfinite(value).all())]


def announce_random_weights(what: str) -> None:
    """Say loudly, on stderr, that a network runs on random weights."""
    line = "!" * 78
    print(f"{line}\n!! RANDOM WEIGHTS: {what}.\n!! Scores from it are NOT comparable to published "
          f"numbers (tests and demos only).\n{line}", file=sys.stderr, flush=True)
