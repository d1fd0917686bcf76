"""The metrics' image conventions: the range conversion every metric starts from, reading image
files, and ``MetricsError`` for inputs the metrics cannot use.

Images reach the metrics as ``uint8`` in [0, 255] (files, test.py's PNGs) or as floating point
in [-1, 1] (the project's tensors); each metric converts with ``to_unit_range`` to [0, 1] and
from there to the range its network wants.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from common.errors import UserError
from data.alpha import over_white, read_alpha, shown_size
from data.files import DatasetError, decode_rgb, read_image_bytes


def level_differences(first: torch.Tensor, second: torch.Tensor) -> dict:
    """Mean, 99.9th percentile and largest absolute difference of two uint8 image batches of
    one shape, in 8-bit levels."""
    levels = (first.to(torch.int16) - second.to(torch.int16)).abs().numpy()
    return {"mean": float(levels.mean()), "p99.9": float(np.percentile(levels, 99.9)),
            "max": int(levels.max())}


class MetricsError(UserError, RuntimeError):
    """Inputs the metrics cannot use: a missing or unreadable image, mismatched sizes, bad pairs."""


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1].

    Args:
        images: (N, 3, H, W) or (3, H, W); ``uint8`` in [0, 255], or floating point in [-1, 1]
            (the project's image convention).
    Returns:
        (N, 3, H, W) float32 in [0, 1].
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or floating-point images, got {images.dtype}")
    low, high = float(images.min()), float(images.max())
    # A little slack for the generator's tanh and float round-off; anything beyond is another
    # convention (e.g. [0, 255] floats) and would give meaningless scores.
    if low < -1.0 - 1e-3 or high > 1.0 + 1e-3:
        raise ValueError(f"floating-point images must lie in [-1, 1]; got values in "
                         f"[{low:.4g}, {high:.4g}]")
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def _checked_bytes(path: Path, max_pixels: Optional[int] = None) -> bytes:
    """The bytes of the image file at ``path``, passed by the project's one image reader's
    checks (a listed format by its signature, a header giving a size within the pixel limit,
    bounded JPEG scans); MetricsError naming the file otherwise."""
    if not path.is_file():
        raise MetricsError(f"image not found: {path}")
    try:
        return read_image_bytes(str(path), max_pixels)
    except DatasetError as error:
        raise MetricsError(f"cannot read image {error}") from None


def image_size(path: str | os.PathLike, max_pixels: Optional[int] = None) -> tuple[int, int]:
    """(H, W) of an image file as shown, from its header, after the reader's checks."""
    return shown_size(_checked_bytes(Path(path), max_pixels))


def load_image(path: str | os.PathLike, size: Optional[tuple[int, int]] = None,
               max_pixels: Optional[int] = None) -> torch.Tensor:
    """Read an image file as a (3, H, W) uint8 RGB tensor, turned as its EXIF orientation says.

    ``size`` = (H, W): when given and different from the file's size, the image is resized
    bilinearly (PIL, which low-pass filters when shrinking), as if it had been saved at that size.
    ``max_pixels``: the reader's pixel limit (default ``data.files.DEFAULT_MAX_PIXELS``).
    """
    path = Path(path)
    data = _checked_bytes(path, max_pixels)
    try:
        # Decoded as the data reader decodes the photos the model sees (OpenCV): a 16-bit
        # grey file is scaled to 8 bits, where PIL's convert("RGB") clipped it to white.
        array = decode_rgb(data, str(path))
        array = over_white(array, read_alpha(str(path), max_pixels))   # as test.py shows it
    except DatasetError as error:
        raise MetricsError(f"cannot read image {error}") from None
    if size is not None and array.shape[:2] != tuple(size):
        array = np.asarray(Image.fromarray(array).resize((size[1], size[0]), Image.BILINEAR))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)
