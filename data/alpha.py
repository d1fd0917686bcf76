"""A shop cut-out's alpha channel (PNG, WebP, TIFF) as the garment's mask, where masks are
computed (``data/garment_mask.py``) and one's own photos read (test.py, the web page); and a
picture's EXIF orientation as OpenCV applies it, which its size and its alpha follow."""

import io
import os
from typing import Optional

import cv2
import numpy as np
from PIL import Image

from data.files import DatasetError, decode_image, image_format, read_bytes, read_image_bytes

# Alpha at or above this everywhere: an opaque image, whose alpha says nothing of the garment.
OPAQUE_ALPHA = 250


def _png_has_transparency(path: str) -> bool:
    """Whether a PNG's chunks before its image data include tRNS (a palette, grey or RGB image
    with transparent colours); only the chunk headers are read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(8)
            for _ in range(4096):
                head = handle.read(8)
                if len(head) < 8 or head[4:] in (b"IDAT", b"IEND"):
                    return False
                if head[4:] == b"tRNS":
                    return True
                handle.seek(int.from_bytes(head[:4], "big") + 4, os.SEEK_CUR)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    return False


def _may_have_alpha(path: str) -> bool:
    """Whether a file's header says it may hold an alpha channel: a PNG of colour type 4 or 6
    or with a tRNS chunk, a WebP whose header flags alpha, or a TIFF (its decoding tells)."""
    header = read_bytes(path, 32)
    if header[:8] == b"\x89PNG\r\n\x1a\n":
        # Byte 25: the colour type (4: grey + alpha, 6: RGBA).
        return len(header) >= 26 and (header[25] in (4, 6) or _png_has_transparency(path))
    if header[:4] == b"RIFF" and header[8:12] == b"WEBP" and len(header) >= 25:
        if header[12:16] == b"VP8X":        # extended format: flags byte, alpha bit 0x10
            return bool(header[20] & 0x10)
        if header[12:16] == b"VP8L":        # lossless: bit 28 after the signature byte
            return bool((int.from_bytes(header[21:25], "little") >> 28) & 1)
        return False                        # simple lossy WebP: no alpha
    return header[:4] in (b"II*\x00", b"MM\x00*")


def exif_orientation(image: Image.Image) -> int:
    """1-8, how OpenCV turns ``image`` (EXIF 0x0112); 1 for a TIFF, which its decoders turn."""
    return 1 if image.format == "TIFF" else image.getexif().get(0x0112, 1)


def shown_size(data: bytes) -> tuple[int, int]:
    """(H, W) as shown of the image file ``data`` (bytes read_image_bytes checked), by header."""
    with Image.open(io.BytesIO(data), formats=[image_format(data)]) as image:
        turned = exif_orientation(image) in (5, 6, 7, 8)
        return (image.width, image.height) if turned else (image.height, image.width)


def _exif_oriented(array: np.ndarray, data: bytes) -> np.ndarray:
    """``array`` (h, w) of an image file's pixels as decoded unturned, turned as it is shown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = exif_orientation(image)
    except Exception:
        return array
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.T, 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].T,
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(turns[orientation](array)) if orientation in turns else array


def read_alpha(path: str, max_pixels: Optional[int] = None) -> Optional[np.ndarray]:
    """The alpha channel of an image with one (a shop's cut-out: PNG with alpha or a
    transparent palette colour, WebP, TIFF), as uint8 (h, w); None for other files and for an
    alpha that is opaque everywhere."""
    # The header tells, so files without alpha are not read whole a second time.
    if not _may_have_alpha(path):
        return None
    data = read_image_bytes(path, max_pixels)
    image = decode_image(data, cv2.IMREAD_UNCHANGED, path)
    if image.ndim != 3 or image.shape[2] != 4:
        return None
    # IMREAD_COLOR (read_rgb) turns the picture by its EXIF orientation, IMREAD_UNCHANGED
    # does not: the alpha is turned alike so that it stays on the garment.
    alpha = _exif_oriented(image[:, :, 3], data)
    if alpha.dtype == np.uint16:
        alpha = (alpha >> 8).astype(np.uint8)
    elif alpha.dtype != np.uint8:           # a float TIFF: alpha in 0..1
        alpha = np.clip(np.round(alpha.astype(np.float64) * 255), 0, 255).astype(np.uint8)
    return None if int(alpha.min()) >= OPAQUE_ALPHA else alpha


def over_white(photo: np.ndarray, alpha: Optional[np.ndarray]) -> np.ndarray:
    """``photo`` (h, w, 3) uint8 with the transparent pixels of ``alpha`` (None: none) white."""
    if alpha is None:   # most photos: no copy through floats
        return photo
    opacity = alpha[..., None].astype(np.float32) / 255
    return np.round(photo * opacity + 255 * (1 - opacity)).astype(np.uint8)
