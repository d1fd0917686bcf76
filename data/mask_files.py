"""Garment masks as image files (VITON's ``*_edge/`` folders, scripts/make_garment_masks.py):
encoded so that they decode, thresholded at 127, to the same binary mask, and written
atomically.
"""

import os

import cv2
import numpy as np

from common.atomic import write_bytes_atomic


def encode_mask(mask: np.ndarray, extension: str) -> bytes:
    """uint8 (H, W) 0/255 (or bool) -> encoded image bytes for ``extension`` (".png", ".jpg",
    ...), verified to decode, thresholded at 127, to the same binary mask."""
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        mask = np.where(mask, 255, 0).astype(np.uint8)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be uint8 (H, W), got {mask.dtype} {mask.shape}")
    if not np.isin(mask, (0, 255)).all():
        raise ValueError("mask values must be 0 or 255")
    extension = extension.lower()
    if extension in (".jpg", ".jpeg"):
        # Quality 100: ringing at the 0/255 steps then stays far from the 127 threshold.
        params = [cv2.IMWRITE_JPEG_QUALITY, 100]
    elif extension == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, 101]      # > 100 is lossless
    else:
        params = []
    ok, data = cv2.imencode(extension, mask, params)
    if not ok:
        raise ValueError(f"cannot encode a mask as {extension}")
    decoded = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if decoded is None or not np.array_equal(decoded > 127, mask > 127):
        raise ValueError(f"a mask encoded as {extension} does not decode to the same binary mask")
    return data.tobytes()


def write_mask(path: str, mask: np.ndarray) -> None:
    """Write a 0/255 single-channel mask; the format follows the extension (PNG, or JPEG at
    quality 100 for ``.jpg`` as VITON's ``*_edge/`` folders hold). Written to a temporary file
    in the same folder and renamed, so a crash never leaves a partial file."""
    try:
        data = encode_mask(mask, os.path.splitext(path)[1] or ".png")
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    write_bytes_atomic(path, data)
