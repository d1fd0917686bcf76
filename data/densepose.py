"""DensePose part indices I from the files outside tools write -> uint8 (H, W) in 0..24.

I: 0 background, 1..24 body parts (1-2 torso, 3/4 hands, 5/6 feet, 7..14 legs, 15..22 arms,
23-24 head). Accepted files, chosen by extension and content:

    .npy   (H, W) array of part indices, any integer dtype or whole floats (PF-AFN's files;
           read_densepose);
    .png   single channel: grey, or a palette image whose palette index is the part (its
           colours are not read); a colour PNG whose channels are all equal counts as grey;
    .png   DensePose's IUV image: three different channels I, U, V. DensePose's tools wrote it
           with OpenCV, whose channel order is BGR, so I (written first) is the blue channel of
           the file read as RGB: ``iuv_channel="b"`` (default); "g" and "r" name the others.

JPEG files are refused: their compression changes the indices (VITON-HD's image-densepose
JPEGs are colour renderings of DensePose, not part indices).
"""

import io
import os
import re
from typing import Optional

import numpy as np

from data.files import MAX_DATA_FILE_BYTES, DatasetError, decode_index_image, read_bytes

NUM_DENSEPOSE_PARTS = 25  # I: 0 background, 1..24 body parts

IUV_CHANNELS = ("b", "g", "r")
DENSEPOSE_EXTENSIONS = (".npy", ".png")
_RGB_INDEX = {"r": 0, "g": 1, "b": 2}  # decode_index_image returns colour images in RGB order


_NPY_HEADER = re.compile(r"\{'descr': '([<>|]?[a-z]\d+)', 'fortran_order': False, "
                         r"'shape': \((\d+), (\d+)\), \}")


def load_npy(path: str) -> np.ndarray:
    """A ``.npy`` file's array, its header checked against the bytes that follow it before
    anything is allocated (a header claiming (100000, 100000) float64 over a few bytes is one
    line, not 80 GB asked of the allocator). The common case (a C-ordered 2-D array) is read
    without parsing the header as Python (np.load's literal_eval costs more than reading a
    256x192 array)."""
    data = read_bytes(path, limit=MAX_DATA_FILE_BYTES, what="a .npy array")
    if data[:6] == b"\x93NUMPY" and len(data) > 10 and data[6] == 1:
        length = int.from_bytes(data[8:10], "little")
        match = _NPY_HEADER.match(data[10:10 + length].decode("latin1"))
        if match:
            dtype = np.dtype(match.group(1))
            shape = (int(match.group(2)), int(match.group(3)))
            return _array_from(data[10 + length:], shape, dtype, False, path)
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"unsupported .npy version {version}")
        shape, fortran, dtype = read_header(stream)
    except (OSError, ValueError, EOFError, SyntaxError, TypeError) as error:
        raise DatasetError(f"{path}: not a readable .npy array "
                           f"({str(error).splitlines()[0][:120] if str(error) else error})") \
            from None
    if dtype.hasobject or dtype.itemsize == 0:
        raise DatasetError(f"{path}: a .npy array of {dtype}; part indices are numbers")
    return _array_from(data[stream.tell():], shape, dtype, fortran, path)


def _array_from(body: bytes, shape: tuple, dtype: np.dtype, fortran: bool,
                path: str) -> np.ndarray:
    """The array of ``shape`` and ``dtype`` that ``body`` holds; DatasetError naming ``path``
    when the header's claim does not match the bytes there are."""
    count = 1
    for side in shape:
        count *= int(side)
    if count * dtype.itemsize != len(body):
        raise DatasetError(f"{path}: .npy header claims shape {tuple(shape)} {dtype} "
                           f"({count * dtype.itemsize} bytes) but the file holds {len(body)} "
                           f"bytes of data")
    return np.frombuffer(body, dtype, count).reshape(shape, order="F" if fortran else "C")


def part_indices(array: np.ndarray, path: str, hint: str = "") -> np.ndarray:
    """Check an array of DensePose part indices -> uint8 (h, w) in 0..24 (a copy).

    Raises:
        DatasetError naming ``path``: not 2-D, not numbers, not whole, outside 0..24 (with
        ``hint`` appended to that message).
    """
    if array.ndim != 2:
        raise DatasetError(f"{path}: DensePose array has shape {tuple(array.shape)}; "
                           f"expected (H, W) part indices")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise DatasetError(f"{path}: DensePose array has dtype {array.dtype}; expected numbers")
    if array.size == 0:
        raise DatasetError(f"{path}: DensePose array is empty")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise DatasetError(f"{path}: DensePose values are not whole part indices")
    low, high = array.min(), array.max()
    if low < 0 or high > NUM_DENSEPOSE_PARTS - 1:
        raise DatasetError(f"{path}: DensePose values range {low:g}..{high:g}, outside "
                           f"0..{NUM_DENSEPOSE_PARTS - 1}{hint}")
    # A copy: load_npy's arrays are read-only views of the file's bytes.
    return array.astype(np.uint8)


def read_densepose(path: str) -> np.ndarray:
    """A ``.npy`` (H, W) array of DensePose part indices -> uint8 (h, w) in 0..24. PNGs and IUV
    images: data.densepose.read_densepose_file."""
    return part_indices(load_npy(path), path)


def read_densepose_png(path: str, iuv_channel: str = "b",
                       max_pixels: Optional[int] = None) -> np.ndarray:
    """A PNG of part indices -> uint8 (h, w) in 0..24.

    Grey and palette PNGs hold I directly (a palette PNG as its palette index); a colour PNG
    with equal channels is grey; a colour PNG with different channels is an IUV image whose
    I is in ``iuv_channel`` ("b", "g" or "r" of the file read as RGB; DensePose's IUV files,
    written by OpenCV in BGR order, have I in "b").
    """
    if iuv_channel not in _RGB_INDEX:
        raise ValueError(f"iuv_channel={iuv_channel!r}: expected one of {', '.join(IUV_CHANNELS)}")
    array, mode = decode_index_image(path, max_pixels)
    hint = ""
    if array.ndim == 3:
        if np.array_equal(array[:, :, 0], array[:, :, 1]) and \
                np.array_equal(array[:, :, 0], array[:, :, 2]):
            array = array[:, :, 0]
        else:
            array = array[:, :, _RGB_INDEX[iuv_channel]]
            hint = (f" in channel {iuv_channel!r} of this IUV image (mode {mode}); is I in "
                    f"another channel (iuv_channel: b, g or r)?")
    return part_indices(array, path, hint)


def read_densepose_file(path: str, iuv_channel: str = "b",
                        max_pixels: Optional[int] = None) -> np.ndarray:
    """Any accepted DensePose file (module docstring) -> uint8 (h, w) part indices in 0..24.

    Chosen by extension: ``.npy`` -> read_densepose, ``.png`` -> read_densepose_png.

    Raises:
        DatasetError naming the file: another extension, unreadable, wrong shape, values
        outside 0..24.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        return read_densepose(path)
    if extension == ".png":
        return read_densepose_png(path, iuv_channel, max_pixels)
    if extension in (".jpg", ".jpeg"):
        raise DatasetError(f"{path}: a JPEG cannot hold exact DensePose part indices (lossy "
                           f"compression; VITON-HD's image-densepose JPEGs are colour "
                           f"renderings); expected .npy or .png part indices")
    raise DatasetError(f"{path}: unsupported DensePose file extension {extension!r}; expected "
                       f"{' or '.join(DENSEPOSE_EXTENSIONS)}")
