"""Tensor <-> image file conversions shared by test.py, the training image grids and tools."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def quantise(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (any shape) -> uint8 CPU tensor, truncated as the release does."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, H, W) tensor in [-1, 1] -> (H, W, 3) or (H, W) uint8.

    Quantised as the release does, ``((x + 1) / 2 * 255)`` truncated, so images match its
    output to the level rather than differing by the rounding of every pixel.
    """
    array = quantise(image).permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def on_white(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """An image in [-1, 1] with everything outside ``mask`` (0..1, broadcastable) white, as
    product photos are shown."""
    return image * mask + (1 - mask)


def mask_to_signed(mask: torch.Tensor) -> torch.Tensor:
    """A [0, 1] mask (B, 1, H, W) as a 3-channel [-1, 1] image for grids."""
    return (mask * 2 - 1).expand(-1, 3, -1, -1)


def save_png(image: torch.Tensor, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
