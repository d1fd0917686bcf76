"""Tensor <-> image conversions and image files written atomically, shared by every layer."""

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.atomic import write_atomic


def quantise(images: torch.Tensor, rounding: bool = False) -> torch.Tensor:
    """Images in [-1, 1] (any shape) -> uint8 CPU tensor: ``(x + 1) / 2 * 255`` truncated, as
    PF-AFN's release saves, or with ``rounding`` rounded (+ 0.5), as torchvision's
    ``save_image`` does for FS-VTON and DM-VTON."""
    values = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * 255
    if rounding:
        values = (values + 0.5).clamp(0, 255)
    return values.to(torch.uint8)


def to_uint8(image: torch.Tensor, rounding: bool = False) -> np.ndarray:
    """(3, H, W) or (1, H, W) tensor in [-1, 1] -> (H, W, 3) or (H, W) uint8 (``quantise``:
    truncated by default, so images match PF-AFN's to the level)."""
    array = quantise(image, rounding).permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def on_white(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """An image in [-1, 1] with everything outside ``mask`` (0..1, broadcastable) white, as
    product photos are shown."""
    return image * mask + (1 - mask)


def write_image(path: str | os.PathLike, array: np.ndarray, jpeg_quality: int = 95) -> None:
    """Write a uint8 (h, w, 3) RGB or (h, w) grey image, in the format of ``path``'s suffix
    (PNG, JPEG at ``jpeg_quality``...), atomically: a failure leaves no partial file."""
    path = Path(path)
    options = {"quality": jpeg_quality} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    write_atomic(path, lambda temporary: Image.fromarray(array).save(temporary, **options))
