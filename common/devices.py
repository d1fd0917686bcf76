"""The device a command runs on, from its ``--device`` flag: one function for training,
test.py, the web page and the tools."""

import torch

from common.errors import UserError


class DeviceError(UserError):
    """A device that this machine does not have."""


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' (CUDA when available) | 'cpu' | 'cuda' | 'cuda:N' -> a device; an unknown or
    unavailable one is a ``DeviceError`` saying why. Under torchrun ``local_rank`` picks the
    process's GPU for 'auto' and 'cuda'."""
    if name in ("auto", "cuda") and (name == "cuda" or torch.cuda.is_available()):
        name = f"cuda:{local_rank}"
    elif name == "auto":
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):   # mps, xpu...: CPUs and CUDA only
        raise DeviceError(f"--device {name}: not a device (auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: no CUDA device is available")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise DeviceError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)")
    return device
