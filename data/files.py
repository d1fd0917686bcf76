"""Reading files of any dataset: photos and masks, index images (labels, DensePose parts),
pairs files, folder listings, resizing and tensors. The format modules (``data/labels.py``,
``data/pose.py``, ``data/densepose.py``) and the layouts build on these; every error is a
``DatasetError`` that names the file and what is wrong with it.
"""

import functools
import io
import os
import re
import stat
import sys
import tempfile
import warnings
from contextlib import contextmanager, nullcontext
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from PIL import Image

from common.errors import UserError, missing

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
EDGE_THRESHOLD = 127      # garment mask foreground: value / 255 > 0.5
# Largest image read, in pixels (--max_megapixels): a 48-megapixel phone photo fits; a few
# kilobytes of PNG claiming 20000 x 20000 pixels (1.2 GB decoded) do not.
DEFAULT_MAX_PIXELS = 50_000_000
# The ceiling of --max_megapixels: Pillow refuses to open more (twice its warning limit).
MAX_MEGAPIXELS = int(2 * (Image.MAX_IMAGE_PIXELS or 89_478_485) / 1e6)
# What libjpeg prints when the entropy-coded data ends before the image does: it then fills
# the rest with grey and OpenCV returns that as if it were the photo.
JPEG_DAMAGE_MESSAGES = (b"Corrupt JPEG data", b"Premature end of JPEG file")


class DatasetError(UserError, ValueError):
    """A dataset that cannot be used as it is; the message names the file(s) at fault.

    Raised in a DataLoader worker, it reaches the main process rebuilt from a message that
    holds the worker's whole traceback; only the original message's last line is kept, so the
    user still reads one line."""

    def __init__(self, message: str = ""):
        text = str(message)
        if text.startswith("Caught ") and "Original Traceback" in text:
            last = text.rstrip().splitlines()[-1]
            text = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(text)


# ---------------------------------------------------------------------------------------------
# Reading single files


# Largest image file read (bytes): far above any photo's, below what would exhaust memory.
MAX_FILE_BYTES = 1 << 30


# Largest text or array file read besides images (keypoint JSON, pairs files, configs):
# theirs are kilobytes; a dataset's DensePose arrays a few megabytes.
MAX_DATA_FILE_BYTES = 256 << 20


def read_bytes(path: str, size: int = -1, limit: int = MAX_FILE_BYTES,
               what: str = "an image file") -> bytes:
    """The file's bytes (its first ``size`` when given). Only regular files of at most
    ``limit`` bytes are read: a device or a pipe (/dev/zero, a FIFO) would never end. ``what``
    names the kind of file in messages."""
    try:
        status = os.stat(path)
        if not stat.S_ISREG(status.st_mode):
            kind = "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file"
            raise DatasetError(f"{path}: {kind}, not {what}")
        if size < 0 and status.st_size > limit:
            raise DatasetError(f"{path}: {_amount(status.st_size)}, more than the "
                               f"{_amount(limit)} {what} may take")
        with open(path, "rb") as handle:
            data = handle.read(size) if size >= 0 else _read_at_most(handle, status, limit)
    except OSError as error:
        raise DatasetError(f"{path}: cannot read ({error.strerror or error})") from None
    if size < 0 and len(data) > limit:
        raise DatasetError(f"{path}: more than the {_amount(limit)} {what} may take")
    if not data:
        raise DatasetError(f"{path}: empty file")
    return data


def _read_at_most(handle, status: os.stat_result, limit: int) -> bytes:
    """Up to ``limit`` + 1 bytes of an open file: as many as its size says (one read, no
    larger buffer), then in pieces, since it may have grown or be a /proc file of size 0."""
    pieces = [handle.read(min(status.st_size, limit) + 1)]
    total = len(pieces[0])
    while total <= limit and pieces[-1]:
        pieces.append(handle.read(min(1 << 20, limit + 1 - total)))
        total += len(pieces[-1])
    pieces = [piece for piece in pieces if piece]
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)   # no copy of a whole file


def _amount(count: int) -> str:
    """A byte count for messages: '1.5 GiB', '300 MiB', '12 KiB'."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"


def quoted_prefix(text, limit: int = 60) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters: a bad value from a file may
    be megabytes long."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit]) + (
        f" (and {len(text) - limit} more characters)" if len(text) > limit else "")


def read_text(path: str, what: str, limit: int = MAX_DATA_FILE_BYTES) -> str:
    """A UTF-8 text file (a byte-order mark dropped), read with the bounds of ``read_bytes``;
    a DatasetError naming the file and the first bad byte's position otherwise."""
    data = read_bytes(path, limit=limit, what=what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise DatasetError(f"{path}, line {line}: not UTF-8 text (byte "
                           f"0x{data[error.start]:02x} at offset {error.start})") from None


# The image formats read, each with the signature its files start with: the content decides,
# never the extension (a Radiance HDR or a PFM named .jpg is refused, not decoded unchecked).
IMAGE_SIGNATURES = {"JPEG": (b"\xff\xd8",), "PNG": (b"\x89PNG\r\n\x1a\n",),
                    "BMP": (b"BM",), "WEBP": (b"RIFF",), "TIFF": (b"II*\x00", b"MM\x00*")}
READ_FORMATS = "JPEG, PNG, BMP, WebP or TIFF"
# Image formats that OpenCV would decode but the project does not read, named in messages.
OTHER_SIGNATURES = ((b"#?RADIANCE", "Radiance HDR"), (b"#?RGBE", "Radiance HDR"),
                    (b"PF\n", "PFM"), (b"Pf\n", "PFM"), (b"GIF8", "GIF"),
                    (b"\x76\x2f\x31\x01", "OpenEXR"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
                    (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"\x59\xa6\x6a\x95", "Sun raster"),
                    *((f"P{n}".encode(), "Netpbm") for n in range(1, 8)))
# Most scans a JPEG may hold: a progressive photo has about 10; each scan costs a pass over the
# whole image, so 50,000 of them in 3 MB would take minutes to decode.
MAX_JPEG_SCANS = 200


def image_format(data: bytes) -> Optional[str]:
    """The name of the listed format (a key of IMAGE_SIGNATURES) whose signature ``data``
    starts with; None for anything else."""
    for name, signatures in IMAGE_SIGNATURES.items():
        if data.startswith(signatures) and (name != "WEBP" or data[8:12] == b"WEBP"):
            return name
    return None


def require_format(data: bytes, path: str) -> str:
    """``data``'s format name; a DatasetError naming ``path`` when it is none of the listed."""
    name = image_format(data)
    if name is None:
        other = next((label for signature, label in OTHER_SIGNATURES
                      if data.startswith(signature)), None)
        if other is None:
            raise DatasetError(f"{path}: not a readable image")
        raise DatasetError(f"{path}: a {other} file, not one of the image formats read "
                           f"({READ_FORMATS}), whatever its name says")
    return name


# Most segments (and scans) a JPEG's walk takes, and chunks a PNG's: real files have tens of
# segments and at most some hundred thousand chunks; a file of nothing else would take minutes.
MAX_JPEG_SEGMENTS = 100_000
MAX_PNG_CHUNKS = 1_000_000
_FILL = re.compile(rb"\xff+")
# In entropy-coded data, 0xFF is followed by 0 (stuffing), a restart marker or more 0xFF.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
TRUNCATED_JPEG = "truncated JPEG (no end-of-image marker)"
TRUNCATED_PNG = "truncated PNG (no IEND chunk)"


def _jpeg_end(data: bytes) -> int | str:
    """The offset just past a JPEG's end-of-image marker, found by walking its segments and
    scans (an EXIF thumbnail's marker is inside a segment, skipped); what is wrong instead
    when the data end first or hold no marker where one belongs. Phones write more after the
    end (a motion photo's video), which decoders ignore."""
    i, n = 2, len(data)
    for _ in range(MAX_JPEG_SEGMENTS):
        if i + 1 >= n:
            return TRUNCATED_JPEG
        if data[i] != 0xFF:
            return f"damaged JPEG (no marker at byte {i})"
        i = _FILL.match(data, i).end() - 1          # fill bytes before a marker
        marker = data[i + 1] if i + 1 < n else None
        if marker is None:
            return TRUNCATED_JPEG
        if marker == 0xD9:
            return i + 2
        if 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):   # markers without a length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:                           # entropy-coded data, to the next marker
            found = _NEXT_MARKER.search(data, i)
            if found is None:
                return TRUNCATED_JPEG
            i = found.start()
    return f"JPEG of more than {MAX_JPEG_SEGMENTS} segments"


def _png_end(data: bytes) -> int | str:
    """The offset just past a PNG's IEND chunk, walking the chunks; what is wrong instead."""
    i, n = 8, len(data)
    for _ in range(MAX_PNG_CHUNKS):
        if i + 8 > n:
            return TRUNCATED_PNG
        length, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8]
        i += 12 + length
        if kind == b"IEND":
            return i if i <= n else TRUNCATED_PNG
    return f"PNG of more than {MAX_PNG_CHUNKS} chunks"


def _check_complete(data: bytes, path: str) -> int:
    """Reject JPEG/PNG files cut short: decoders fill the missing part with grey silently.
    Bytes after the end (a phone's motion photo) are left alone, as decoders leave them.
    Returns where the image ends."""
    end = (_jpeg_end(data) if data[:2] == b"\xff\xd8" else
           _png_end(data) if data[:8] == b"\x89PNG\r\n\x1a\n" else len(data))
    if isinstance(end, str):
        raise DatasetError(f"{path}: {end}")
    return end


def check_jpeg_scans(data: bytes, path: str, end: Optional[int] = None) -> None:
    """Refuse a JPEG of more than MAX_JPEG_SCANS scans before decoding it. Start-of-scan
    markers (FF DA) cannot occur inside entropy-coded data (0xFF is stuffed there), so counting
    them bounds the scans (an embedded thumbnail's add a few); only up to the image's ``end``
    (found when not given), not in what follows it (a motion photo's video)."""
    if data[:2] == b"\xff\xd8":
        if end is None:
            found = _jpeg_end(data)
            end = found if isinstance(found, int) else len(data)
        scans = data.count(b"\xff\xda", 0, end)
        if scans > MAX_JPEG_SCANS:
            raise DatasetError(f"{path}: JPEG of {scans} scans, more than the {MAX_JPEG_SCANS} "
                               f"read (each scan is a pass over the whole image)")


def header_size(data: bytes) -> Optional[Tuple[str, int]]:
    """('WxH', pixels) from the header of an image file in a listed format, without decoding
    it; None for other content and for a header that gives no size."""
    name = image_format(data)
    if name is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            # Only the format the signature names: Pillow would otherwise try every plugin.
            with Image.open(io.BytesIO(data), formats=[name]) as image:
                width, height = image.size
                return f"{height}x{width}", width * height
        except Image.DecompressionBombError as error:
            # Pillow refuses to open more than twice its own limit; its message has the count.
            found = re.search(r"\((\d+) pixels\)", str(error))
            pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
            return f"{pixels}-pixel", pixels
        except Exception:
            return None


def check_pixels(data: bytes, path: str, max_pixels: Optional[int] = None) -> None:
    """Refuse, before decoding, an image of more than ``max_pixels`` pixels (default
    ``DEFAULT_MAX_PIXELS``): its decoded size, not its file size, is what memory pays. An image
    whose header gives no size is refused too: its decoded size would be unknown."""
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    require_format(data, path)
    size = header_size(data)
    if size is None:
        raise DatasetError(f"{path}: a {image_format(data)} file that Pillow cannot open (a kind "
                           f"it does not read, floating-point samples say, or damaged); save it "
                           f"as an 8-bit PNG or JPEG")
    if size[1] > limit:
        raise DatasetError(f"{path}: {size[0]} image ({size[1] / 1e6:.3g} megapixels) is more "
                           f"than the {limit / 1e6:g} megapixels read (--max_megapixels); "
                           f"downscale it or raise the limit")
    frames = _frames(data)   # the decoders read the first frame alone, unsaid
    if frames > 1:
        raise DatasetError(f"{path}: {frames} frames (an animation or pages), of which one "
                           f"would be read; save that one alone")


def _frames(data: bytes) -> int:
    """The frames of a PNG (animated: with an acTL chunk), WebP or TIFF; 1 where none tell."""
    name = image_format(data)
    if name not in ("PNG", "WEBP", "TIFF") or (name == "PNG" and b"acTL" not in data):
        return 1
    try:
        with Image.open(io.BytesIO(data), formats=[name]) as image:
            return getattr(image, "n_frames", 1)
    except Exception:
        return 1


def check_image_bytes(data: bytes, path: str, max_pixels: Optional[int] = None) -> bytes:
    """``data`` when it may be decoded: a listed format (by signature), complete (JPEG, PNG),
    sized by its header at most ``max_pixels`` pixels (default ``DEFAULT_MAX_PIXELS``), and a
    JPEG of at most MAX_JPEG_SCANS scans. Every image read passes here."""
    require_format(data, path)
    end = _check_complete(data, path)
    check_pixels(data, path, max_pixels)
    check_jpeg_scans(data, path, end)
    return data


@contextmanager
def _libjpeg_messages():
    """Collect what C libraries print on stderr (libjpeg's warnings) in the enclosed code;
    the text is printed again afterwards, so nothing is lost."""
    captured = {"text": b""}
    try:
        saved = os.dup(2)
    except OSError:     # no stderr to redirect
        yield captured
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured["text"] = sink.read()
    if captured["text"] and not any(m in captured["text"] for m in JPEG_DAMAGE_MESSAGES):
        sys.stderr.write(captured["text"].decode(errors="replace"))


def decode_image(data: bytes, flags: int, path: str) -> np.ndarray:
    """An image file's ``data`` decoded by OpenCV with ``flags``; DatasetError naming ``path``
    when it is not an image or a JPEG is damaged. The content must be a listed format and a
    JPEG's scans are bounded (the pixel count is checked where the limit is known:
    ``check_image_bytes``)."""
    require_format(data, path)
    check_jpeg_scans(data, path)
    with _libjpeg_messages() if data[:2] == b"\xff\xd8" else nullcontext({"text": b""}) as messages:
        try:
            with _opencv_quiet():
                image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        except cv2.error as error:   # e.g. more pixels than OpenCV decodes (2**30)
            raise DatasetError(f"{path}: OpenCV cannot decode it ({error.err})") from None
    damage = [line for line in messages["text"].decode(errors="replace").splitlines()
              if line.encode().startswith(JPEG_DAMAGE_MESSAGES)]
    if damage:
        raise DatasetError(f"{path}: damaged JPEG ({damage[0].strip()}): its data ends "
                           f"before the image does, and the rest would be grey")
    if image is None:
        raise DatasetError(f"{path}: not a readable image" + (
            " (a TIFF of 32-bit samples, integer or floating-point, which OpenCV does not "
            "decode; save it as an 8-bit PNG or JPEG)" if _wide_tiff(data) else ""))
    return image


@contextmanager
def _opencv_quiet():
    """OpenCV's own log lines off while it decodes: a file it cannot decode is named in our
    error, and its lines on stderr said it again, unasked."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def _wide_tiff(data: bytes) -> bool:
    """Whether ``data`` is a TIFF whose samples are 32-bit (Pillow's modes I and F)."""
    if image_format(data) != "TIFF":
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.mode in ("I", "F")
    except Exception:
        return False


def read_image_bytes(path: str, max_pixels: Optional[int] = None) -> bytes:
    """An image file's bytes, checked before decoding: complete (JPEG, PNG) and of at most
    ``max_pixels`` pixels (default ``DEFAULT_MAX_PIXELS``). A file that does not start as an
    image does is refused before it is read whole (it may be a gigabyte of anything)."""
    require_format(read_bytes(path, 32), path)
    return check_image_bytes(read_bytes(path), path, max_pixels)


def _decode(path: str, flags: int, max_pixels: Optional[int] = None) -> np.ndarray:
    return decode_image(read_image_bytes(path, max_pixels), flags, path)


def read_rgb(path: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """Decode a photo -> uint8 (h, w, 3) RGB, in sRGB (``decode_rgb``). Raises DatasetError if
    unreadable, truncated, damaged or larger than ``max_pixels`` (default
    ``DEFAULT_MAX_PIXELS``)."""
    return decode_rgb(read_image_bytes(path, max_pixels), path)


def decode_rgb(data: bytes, path: str) -> np.ndarray:
    """An image file's ``data`` -> uint8 (h, w, 3) RGB, turned as its EXIF orientation says and
    in sRGB. A file that embeds the ICC profile of another RGB space (a phone's Display P3, a
    camera's Adobe RGB) is converted from it, as a colour-managed viewer shows it (the release
    took its values as sRGB); with no profile, an sRGB one, one of another colour model (CMYK,
    grey), or one that cannot be read or used, the values are kept as decoded, as a viewer
    keeps them."""
    rgb = decode_image(data, cv2.IMREAD_COLOR, path)[:, :, ::-1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")           # PIL's pixel-count warning: checked
            with Image.open(io.BytesIO(data)) as image:
                icc = image.info.get("icc_profile")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return rgb                                    # OpenCV reads what PIL does not
    transform = _to_srgb(bytes(icc)) if icc else None
    if transform is None:
        return rgb
    from PIL import ImageCms
    return np.asarray(ImageCms.applyTransform(Image.fromarray(np.ascontiguousarray(rgb)),
                                              transform))


@functools.lru_cache(maxsize=8)
def _to_srgb(icc: bytes):
    """The transform from the RGB space of an ICC profile to sRGB; None for a profile that
    changes no colour by more than a level (sRGB's own, whatever its name), of no RGB space, or
    that cannot be read or used."""
    from PIL import ImageCms
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if profile.profile.xcolor_space != "RGB ":
            return None
        transform = ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB",
                                            "RGB")
        levels = np.arange(0, 256, 15, dtype=np.uint8)
        probe = np.stack(np.meshgrid(levels, levels, levels), -1).reshape(-1, 18, 3)
        moved = np.asarray(ImageCms.applyTransform(Image.fromarray(probe), transform))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return None if np.abs(moved.astype(int) - probe).max() <= 1 else transform


# A garment mask covering more than this fraction of its photo marks no outline.
MAX_MASK_FRACTION = 0.99


def check_garment_mask(binary: np.ndarray, name: str) -> np.ndarray:
    """A garment mask in {0, 1} (h, w), returned when it marks a garment: an empty mask, or one
    covering all but a sliver of its photo (a blank or inverted file), is a DatasetError
    naming ``name``."""
    if not binary.any():
        raise DatasetError(f"{name} is empty (no pixel above {EDGE_THRESHOLD}); white marks "
                           f"the garment")
    if binary.mean() > MAX_MASK_FRACTION:
        raise DatasetError(f"{name} covers {100 * binary.mean():.1f}% of its photo, so it marks "
                           f"no garment's outline (white marks the garment, black the "
                           f"background; is it inverted or blank?)")
    return binary


def read_gray(path: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """Decode an image as grey levels -> uint8 (h, w)."""
    return _decode(path, cv2.IMREAD_GRAYSCALE, max_pixels)


def decode_index_image(path: str, max_pixels: Optional[int] = None) -> Tuple[np.ndarray, str]:
    """Decode an image whose pixels are indices (parsing labels, DensePose parts).

    Returns:
        (array, mode). ``array`` is (h, w) for grey and palette images: a palette image gives
        its palette index, not the colour (decoding to colours would destroy the index); grey
        with alpha gives its grey channel. Colour images give (h, w, 3) in RGB order, alpha
        dropped. dtype uint8, or wider for 16/32-bit grey images. ``mode`` is PIL's name of
        the file's mode ("L" for 8-bit grey), for messages.

    Raises:
        DatasetError naming the file when it is unreadable or truncated.
    """
    data = read_image_bytes(path, max_pixels)
    if image_format(data) == "JPEG":
        raise DatasetError(f"{path}: a JPEG cannot hold exact indices (its compression changes "
                           f"them along every edge); expected a PNG, grey or palette")
    png = image_format(data) == "PNG" and len(data) > 25
    depth, colour = (data[24], data[25]) if png else (None, None)   # a PNG's bit depth, type
    if (depth, colour) == (8, 0):
        # 8-bit grey PNG, the usual case: OpenCV is several times faster than PIL here.
        return decode_image(data, cv2.IMREAD_UNCHANGED, path), "L"
    if depth == 16 and colour != 0:
        # 16-bit colour or grey-with-alpha PNG: PIL keeps only the high byte of each value (a
        # label of 0..19 reads as 0); OpenCV keeps all 16 bits, in BGR(A) order.
        decoded = decode_image(data, cv2.IMREAD_UNCHANGED, path)
        return np.ascontiguousarray(decoded[:, :, 2::-1]), "RGB;16"
    try:
        with Image.open(io.BytesIO(data), formats=[image_format(data)]) as image:
            image.load()
            mode = image.mode
            array = np.array(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"{path}: not a readable image ({error})") from None
    if array.ndim == 3:
        # LA / PA: the index is the first channel; RGBA: the colour without its alpha.
        array = array[:, :, 0] if array.shape[2] == 2 else array[:, :, :3]
    return array, mode


def single_channel(array: np.ndarray, mode: str, path: str,
                   what: str = "label image") -> np.ndarray:
    """(h, w) from a decoded index image: colour images only when their channels agree."""
    if array.ndim == 3:
        if not (np.array_equal(array[:, :, 0], array[:, :, 1])
                and np.array_equal(array[:, :, 0], array[:, :, 2])):
            raise DatasetError(f"{path}: {what} in mode {mode} has differing colour channels; "
                               f"expected one class index per pixel (grey or palette)")
        array = array[:, :, 0]
    return array


# ---------------------------------------------------------------------------------------------
# Conversions


MIN_PHOTO_SIDE = 16   # pixels: a smaller photo shows no person or garment


def check_photo_size(photo: np.ndarray, name: str, what: str = "person photo") -> None:
    """A DatasetError naming ``name`` for a photo too small to show a person (a garment)."""
    if min(photo.shape[:2]) < MIN_PHOTO_SIDE:
        raise DatasetError(f"{name}: {photo.shape[0]}x{photo.shape[1]} pixels; a {what} is at "
                           f"least {MIN_PHOTO_SIDE}x{MIN_PHOTO_SIDE}")


def resize_photo(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A photo at (height, width): averaged over each output pixel's area when shrinking both
    sides (bilinear sampling would skip most source pixels and alias, e.g. 1024x768 ->
    256x192 reads 1 in 4 rows), bilinear otherwise."""
    if image.shape[:2] == (height, width):
        return image
    shrinking = height <= image.shape[0] and width <= image.shape[1]
    return cv2.resize(image, (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of labels, masks and DensePose (pixel-centre sampling)."""
    if array.shape[:2] == (height, width):
        return array
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def photo_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (h, w, 3) RGB -> float32 (3, h, w) in [-1, 1] (x / 255 * 2 - 1)."""
    chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return chw.to(torch.float32).div_(127.5).sub_(1.0)


def person_id(name: str) -> str:
    """``000003_0.jpg`` -> ``000003``; a name without the ``_0``/``_1`` suffix is its own id."""
    stem = os.path.splitext(os.path.basename(name))[0]
    if len(stem) > 2 and stem[-2] == "_" and stem[-1] in "01":
        return stem[:-2]
    return stem


# ---------------------------------------------------------------------------------------------
# Folders and pairs files


def list_folder(folder: str) -> dict:
    """Map stem -> the sorted names of the files of ``folder`` with that stem; a DatasetError
    naming the folder when it cannot be listed (no permission)."""
    files: dict = {}
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise DatasetError(f"{folder}: cannot list the folder ({error.strerror or error})") \
            from None
    for name in sorted(names):
        if not name.startswith("."):
            files.setdefault(os.path.splitext(name)[0], []).append(name)
    return files


def image_names(listing: dict) -> list:
    """The sorted names of the images of a ``list_folder`` listing."""
    return sorted(name for names in listing.values() for name in names
                  if name.lower().endswith(IMAGE_EXTENSIONS))


def by_stem(listing: dict, folder: str, stem: str,
            extensions: Sequence[str] = IMAGE_EXTENSIONS) -> Optional[str]:
    """The file of ``folder`` (``listing``: its ``list_folder``) named ``stem`` with any
    extension, or None; of several, the one with one of ``extensions`` (what the folder's
    reader takes), and a DatasetError naming them where two have, as either could be meant."""
    names = listing.get(stem, [])
    readable = [name for name in names if name.lower().endswith(tuple(extensions))]
    if len(readable) > 1:
        raise DatasetError(f"{folder}: {' and '.join(readable)} share the name {stem}; keep "
                           f"one of them")
    return (readable or names or [None])[0]


def find_exact(listing: dict, folder: str, names: Sequence[Tuple[str, str]]) -> Optional[str]:
    """The first name of ``names`` ((stem, name) pairs) present in ``folder`` (``listing``: its
    ``list_folder``; a name with a folder in it is looked for on disk)."""
    for stem, name in names:
        if name in listing.get(stem, ()) or os.path.isfile(os.path.join(folder, name)):
            return name
    return None


def optional_folder(path: str) -> Optional[str]:
    """``path`` when it is a folder, None when nothing is there. A link there that leads
    nowhere, or a file, is a DatasetError: it was taken for no folder, and the split read
    without it (a stand-in for DensePose, masks computed instead of the user's)."""
    if os.path.isdir(path):
        return path
    if os.path.lexists(path):
        raise DatasetError(f"{path}: " + (missing(path) if os.path.islink(path) else
                                          "a file where the layout has a folder"))
    return None


class MissingFolder(DatasetError):
    """A folder of a layout that is not there at all (not a link leading nowhere)."""


def require_folder(root: str, name: str) -> str:
    folder = os.path.join(root, name)
    if not os.path.isdir(folder):
        error = DatasetError if os.path.lexists(folder) else MissingFolder
        raise error(f"{folder}: {missing(folder)} (expected in {root})")
    return folder


def report_missing(missing: list, total: int, what: str, limit: int = 5,
                   problems: Optional[list] = None) -> None:
    """Raise one DatasetError naming the first ``limit`` of ``missing`` and their count; with
    ``problems`` given, append that message to it instead (data.check goes on with the rest)."""
    if not missing:
        return
    shown = "; ".join(missing[:limit])
    more = f"; and {len(missing) - limit} more" if len(missing) > limit else ""
    message = f"{len(missing)} of {total} {what} lack files: {shown}{more}"
    if problems is None:
        raise DatasetError(message)
    problems.append(message)


# Largest pairs file read: VITON's test_pairs.txt takes 60 KB; this allows some 500,000 pairs.
MAX_PAIRS_FILE_BYTES = 16 << 20


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")   # tab, newline: whitespace


def read_pairs(path: str) -> list:
    """A pairs file -> list of (person_name, cloth_name), one ``person cloth`` per line. The
    file is UTF-8 (a byte-order mark is dropped) of at most MAX_PAIRS_FILE_BYTES; a bad line
    is quoted by its first characters only."""
    if not os.path.isfile(path):
        raise DatasetError(f"{path}: pairs file not found")
    text = read_text(path, "a pairs file", MAX_PAIRS_FILE_BYTES)
    pairs = []
    for number, line in enumerate(text.split("\n"), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise DatasetError(f"{path}, line {number}: expected 'person.jpg cloth.jpg', "
                               f"got {quoted_prefix(line.strip())}")
        if _CONTROL.search(line.strip()):      # shown raw, a NUL cut the message's name
            raise DatasetError(f"{path}, line {number}: a control character in "
                               f"{quoted_prefix(line.strip())}; names with one are not read")
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise DatasetError(f"{path}: pairs file has no pairs")
    return pairs


def resolve_path(root: str, name: str) -> str:
    """``name`` inside ``root``, else from the current folder (absolute, ./ or ../, or only
    there). A bare name of two files, one in each place, is refused."""
    inside = os.path.join(root, name)
    here = os.path.isabs(name) or name.split(os.sep)[0] in (os.curdir, os.pardir)
    both = not here and os.path.isfile(name) and os.path.exists(inside)
    if both and not os.path.samefile(name, inside):
        raise DatasetError(f"{name}: both {inside} and {os.path.abspath(name)} exist; name "
                           f"one: ./{name} for the current folder's, or a full path")
    return name if here or (not os.path.exists(inside) and os.path.isfile(name)) else inside
