"""Fitting photos of any size and aspect ratio to the model's frame, and mapping results back.

The model works on a fixed frame, 3:4 at 256x192 (any H x W of the checkpoint). A user's photo
is fitted to it in one of two ways, both centred:

- ``pad`` (default): the photo is padded to the frame's aspect ratio on the short side only,
  with the median colour of the photo's outermost rows and columns (so the padding continues a
  studio backdrop), and resized to the frame; the padded canvas is laid out in frame pixels,
  never built at the photo's resolution. Nothing of the photo is cut off.
- ``crop``: the largest centred window of the frame's aspect ratio is cut from the photo and
  resized to the frame; the parts outside the window are not seen by the model.

``paste_back`` maps the model's output to the photo: it is resized to the padded canvas or to
the crop window, and the result has the photo's exact size; every pixel outside the fitted
window (``crop``) is the photo's own.

The policy, one for test.py's folder mode, its one-pair mode and the web page: the person photo
is fitted by ``--fit`` (pad by default), the garment photo always padded, and results mapped
back with ``paste_back``. A photo of the frame's aspect ratio is only resized, so for the
datasets as distributed (3:4) nothing is padded or cut. Training and validation resize photos
and their label maps alike, to the frame (the maps must stay aligned with the photo).
"""

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from data.files import resize_photo

FIT_MODES = ("pad", "crop")


@dataclass(frozen=True)
class Placement:
    """Where a photo of ``photo_size`` (h, w) sits in the fitted frame.

    ``canvas_size`` (H_c, W_c): the padded canvas (``pad``) or the crop window (``crop``) at
    the photo's resolution, of the frame's aspect ratio; ``offset`` (y, x): the photo's
    top-left corner inside the canvas (``pad``), or the window's top-left corner inside the
    photo (``crop``); ``frame_size`` (H, W): the model's frame; ``fill``: RGB of the padding."""

    mode: str
    photo_size: tuple[int, int]
    canvas_size: tuple[int, int]
    offset: tuple[int, int]
    frame_size: tuple[int, int]
    fill: tuple[int, int, int] = (255, 255, 255)


def border_colour(image: np.ndarray) -> tuple[int, ...]:
    """Median colour of the outermost rows and columns of a uint8 (h, w, C) or (h, w) image."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]], axis=0)
    return tuple(int(v) for v in np.median(border.reshape(-1, 1 if image.ndim == 2 else
                                                          image.shape[2]), axis=0))


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return resize_photo(image, *size)


def plan_fit(photo_size: tuple[int, int], frame_size: tuple[int, int], mode: str = "pad",
             fill: tuple[int, int, int] = (255, 255, 255)) -> Placement:
    """The placement of a photo of ``photo_size`` (h, w) in a frame of ``frame_size`` (H, W)."""
    if mode not in FIT_MODES:
        raise ValueError(f"fit mode must be one of {FIT_MODES}, got {mode!r}")
    h, w = (int(v) for v in photo_size)
    frame_h, frame_w = (int(v) for v in frame_size)
    if min(h, w, frame_h, frame_w) < 1:
        raise ValueError(f"empty photo or frame: photo {h}x{w}, frame {frame_h}x{frame_w}")
    # Compare h / w with H / W without rounding: h * W against w * H.
    photo_taller = h * frame_w > w * frame_h
    if mode == "pad":
        if photo_taller:
            canvas = (h, max(w, round(h * frame_w / frame_h)))
        else:
            canvas = (max(h, round(w * frame_h / frame_w)), w)
        offset = ((canvas[0] - h) // 2, (canvas[1] - w) // 2)
    else:
        if photo_taller:
            canvas = (min(h, max(1, round(w * frame_h / frame_w))), w)
        else:
            canvas = (h, min(w, max(1, round(h * frame_w / frame_h))))
        offset = ((h - canvas[0]) // 2, (w - canvas[1]) // 2)
    return Placement(mode, (h, w), canvas, offset, (frame_h, frame_w), tuple(fill))


def fit_to_frame(image: np.ndarray, frame_size: tuple[int, int], mode: str = "pad",
                 fill=None, interpolation: str = "photo") -> tuple[np.ndarray, Placement]:
    """Fit a uint8 (h, w, 3) photo, or an (h, w) mask, to ``frame_size`` (H, W).

    ``fill``: padding colour (a number for masks); default the photo's border median.
    ``interpolation``: 'photo' (area / bilinear) or 'nearest' (masks and label maps).
    Returns the (H, W[, 3]) frame and the ``Placement`` that ``paste_back`` inverts."""
    if image.ndim not in (2, 3) or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (h, w) or (h, w, 3) image, got {image.dtype} "
                         f"{tuple(image.shape)}")
    if fill is None:
        fill = border_colour(image)
    fill = tuple(int(v) for v in np.broadcast_to(np.asarray(fill), (3,)))
    placement = plan_fit(image.shape[:2], frame_size, mode, fill)
    return apply_placement(image, placement, interpolation), placement


def _photo_box(placement: Placement) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the photo inside the frame, in frame pixels (pad): the
    padded canvas is never built at the photo's resolution, so memory follows the photo and
    the frame, not the canvas (a 16 x 20000 strip pads to 20000 x 15000)."""
    (frame_h, frame_w), (canvas_h, canvas_w) = placement.frame_size, placement.canvas_size
    (top, left), (h, w) = placement.offset, placement.photo_size

    def span(start, length, canvas, frame):
        first = min(frame - 1, round(start * frame / canvas))
        last = min(frame, max(first + 1, round((start + length) * frame / canvas)))
        return first, last
    y0, y1 = span(top, h, canvas_h, frame_h)
    x0, x1 = span(left, w, canvas_w, frame_w)
    return y0, y1, x0, x1


def _resize_to(image: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    image = np.ascontiguousarray(image)
    if interpolation == "nearest":
        return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    return _resize(image, size)


def apply_placement(image: np.ndarray, placement: Placement, interpolation: str = "photo",
                    fill=None) -> np.ndarray:
    """Fit another image of the photo's size exactly as ``placement`` says: its mask, say,
    with ``interpolation='nearest'`` and ``fill=0`` (default fill: the placement's colour)."""
    if image.shape[:2] != placement.photo_size:
        raise ValueError(f"image of size {image.shape[0]}x{image.shape[1]} does not match the "
                         f"placement's photo size {placement.photo_size[0]}x"
                         f"{placement.photo_size[1]}")
    if placement.mode == "crop":
        (canvas_h, canvas_w), (top, left) = placement.canvas_size, placement.offset
        window = image[top:top + canvas_h, left:left + canvas_w]
        return _resize_to(window, placement.frame_size, interpolation)
    if fill is None:
        fill = placement.fill if image.ndim == 3 else placement.fill[0]
    frame = np.empty(placement.frame_size + image.shape[2:], dtype=image.dtype)
    frame[...] = np.asarray(fill, dtype=image.dtype)
    y0, y1, x0, x1 = _photo_box(placement)
    frame[y0:y1, x0:x1] = _resize_to(image, (y1 - y0, x1 - x0), interpolation)
    return frame


def paste_back(photo: Optional[np.ndarray], frame_result: np.ndarray,
               placement: Placement) -> np.ndarray:
    """The model's (H, W, 3) uint8 output mapped onto a copy of the (h, w, 3) ``photo``.

    ``pad``: the photo's part of the output is cut out and resized to the photo, so every
    pixel comes from the output (``photo`` may be None). ``crop``: the output is resized to
    the crop window and pasted there; pixels outside the window stay the photo's own."""
    if photo is None and placement.mode != "pad":
        raise ValueError("paste_back with a crop placement needs the photo")
    if photo is not None and photo.shape[:2] != placement.photo_size:
        raise ValueError("photo size differs from the placement's")
    if placement.mode == "pad":
        y0, y1, x0, x1 = _photo_box(placement)
        return _resize(np.ascontiguousarray(frame_result[y0:y1, x0:x1]), placement.photo_size)
    (canvas_h, canvas_w), (top, left) = placement.canvas_size, placement.offset
    out = photo.copy()
    out[top:top + canvas_h, left:left + canvas_w] = _resize(frame_result, (canvas_h, canvas_w))
    return out
