"""Writing one file: an image (JPEG or PNG, from RGB or grey), a JSON document, a palette PNG
of parsing labels, a point list for JSON."""

import json
import os

import cv2
import numpy as np
from PIL import Image


def write_image(path, image_rgb_or_gray, quality=95):
    """uint8 (H, W, 3) RGB or (H, W) grey to ``path``: JPEG (``quality``) for .jpg, else by
    extension (PNG, lossless). Raises OSError when nothing was written."""
    if image_rgb_or_gray.ndim == 3:
        image_rgb_or_gray = image_rgb_or_gray[:, :, ::-1]      # cv2 writes BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.endswith(".jpg") else []
    # Encoded here and written by Python: cv2.imwrite crashes on a path that is not valid
    # UTF-8 (a non-ASCII name under an ASCII locale).
    ok, encoded = cv2.imencode(os.path.splitext(path)[1] or ".png", image_rgb_or_gray, params)
    if not ok:
        raise OSError(f"{path}: could not encode")
    with open(path, "wb") as handle:
        handle.write(encoded.tobytes())


def write_json(path, document):
    with open(path, "w") as handle:
        json.dump(document, handle)


def flat_points(points) -> list:
    """Points (N, K) -> a flat list of N * K floats, rounded to 3 decimals (OpenPose's JSON)."""
    return [round(float(v), 3) for v in np.asarray(points).reshape(-1)]


def _voc_palette(count: int = 256) -> list:
    """PASCAL VOC's colour map, as parsers (SCHP, CIHP tools) colour their palette PNGs: the
    bits of the class index, three at a time, go to R, G and B from the most significant bit
    down. A flat list of count * 3 values."""
    palette = []
    for index in range(count):
        colour = [0, 0, 0]
        value, bit = index, 7
        while value:
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << bit
            value >>= 3
            bit -= 1
        palette += colour
    return palette


PARSE_PALETTE = _voc_palette()


def write_palette_png(path, labels):
    """Labels uint8 (H, W) as a palette PNG: the pixel values are the palette indices."""
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]),
                            np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    image.putpalette(PARSE_PALETTE)
    image.save(path)
