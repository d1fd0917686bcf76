"""One pair of photos of any size: the garment's mask (the user's, or computed from the product
photo) and the try-on fitted to the model's frame and mapped back to the photo (test.py
--person/--garment, the web page)."""

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from common.images import on_white, to_uint8
from data.files import (
    EDGE_THRESHOLD,
    DatasetError,
    check_garment_mask,
    check_photo_size,
    photo_tensor,
)
from data.photo_fit import apply_placement, fit_to_frame, paste_back

MASK_GREY_LEVELS = (48, 207)  # levels neither near black nor near white
# A mask is near-binary: only its anti-aliased or JPEG-blurred outline is grey. A photo given as
# the mask (the web page's mask slot, test.py's --garment_mask) has grey levels everywhere
# (17-31% for the synthetic product photos).
MASK_MAX_GREY_SHARE = 0.1


def mask_problem(grey: np.ndarray) -> Optional[str]:
    """Why a uint8 (h, w) grey image does not look like a garment mask (white = garment, black
    around it), or None when it does: a photo given as the mask must not become one."""
    low, high = MASK_GREY_LEVELS
    grey_share = float(((grey >= low) & (grey <= high)).mean())
    if grey_share > MASK_MAX_GREY_SHARE:
        return (f"{grey_share * 100:.0f}% of its pixels are grey, neither black nor white, as in "
                f"a photo")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if (border > 127).mean() > 0.5:
        return ("its border is mostly white, where a mask is black around the garment (a "
                "photo on white, or an inverted mask?)")
    return None


def garment_mask_for(garment: np.ndarray, mask: Optional[np.ndarray] = None,
                     grabcut: bool = False, garment_name: str = "garment photo",
                     mask_name: str = "garment mask",
                     alpha: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[str]]:
    """The garment's mask, uint8 (h, w) in {0, 1} of the (h, w, 3) photo's size, and notes.

    ``mask``: a grey (h, w) uint8 image from the user (white = garment), checked; None: the
    photo's ``alpha`` channel when it has one (``data.files.read_alpha``), else the mask is
    computed from the product photo (``data.garment_mask``), with notes saying which and what
    may make it poor. Raises ``DatasetError`` naming ``garment_name`` / ``mask_name``."""
    if mask is not None:
        if mask.shape != garment.shape[:2]:
            raise DatasetError(f"{mask_name} is {mask.shape[0]}x{mask.shape[1]} but the "
                               f"{garment_name} is {garment.shape[0]}x{garment.shape[1]}; the "
                               f"mask must have the photo's size")
        problem = mask_problem(mask)
        if problem:
            raise DatasetError(f"{mask_name} does not look like a garment mask (white on "
                               f"black): {problem}")
        return check_garment_mask((mask > EDGE_THRESHOLD).astype(np.uint8), mask_name), []
    from data.garment_mask import GarmentMaskError, compute_garment_mask
    try:
        result = compute_garment_mask(garment, grabcut=grabcut, source=garment_name,
                                      alpha=alpha)
    except GarmentMaskError as error:
        raise DatasetError(str(error)) from None
    binary = (result.mask > EDGE_THRESHOLD).astype(np.uint8)
    if alpha is not None:
        return binary, [f"garment mask from the alpha channel of the {garment_name} "
                        f"({binary.mean() * 100:.0f}% of the photo"
                        f"{'; --grabcut not used: a cut-out needs none' if grabcut else ''})"]
    notes = [f"garment mask computed from the {garment_name} ({binary.mean() * 100:.0f}% of "
             f"the photo{', refined with GrabCut' if grabcut else ''})"] + list(result.notes)
    return binary, notes


@dataclass
class PhotoTryOn:
    """The try-on of one pair of photos.

    ``tryon``: uint8 (h, w, 3), the person photo's size (``data.photo_fit.paste_back``);
    ``frame``: the model-frame pictures, uint8 (H, W, 3): 'person', 'garment' and
    'warped_garment' (garments on white) and 'tryon'; ``composition_mask``: uint8 (H, W), the
    weight of the warped garment in the try-on (0..255); ``seconds``: fitting, the model and
    mapping back."""

    tryon: np.ndarray
    frame: dict
    composition_mask: np.ndarray
    seconds: float


def tryon_photos(model, person: np.ndarray, garment: np.ndarray, garment_mask: np.ndarray,
                 fit: str = "pad") -> PhotoTryOn:
    """Dress the person of a uint8 (h, w, 3) photo in the garment of a product photo (any
    size) with its (h', w') {0, 1} mask. The person photo is fitted to the model's frame by
    ``fit`` ('pad' or 'crop', ``data.photo_fit``); the garment is always padded (its whole
    outline matters to the warp), its mask alike with zeros."""
    start = time.perf_counter()
    check_photo_size(person, "the person photo")
    frame_size = (model.height, model.width)
    person_frame, placement = fit_to_frame(person, frame_size, fit)
    garment_frame, garment_placement = fit_to_frame(garment, frame_size, "pad")
    edge = apply_placement(garment_mask, garment_placement, interpolation="nearest", fill=0)
    person_t, garment_t = photo_tensor(person_frame)[None], photo_tensor(garment_frame)[None]
    edge_t = torch.from_numpy(np.ascontiguousarray(edge)).to(torch.float32)[None, None]
    out = model(person_t, garment_t, edge_t)
    tryon = out.tryon[0].float().cpu()
    pictures = {
        "person": person_frame,
        "garment": to_uint8(on_white(garment_t[0], edge_t[0])),
        "warped_garment": to_uint8(on_white(out.warped[0].float().cpu(),
                                             out.warped_edge[0].float().cpu())),
        "tryon": to_uint8(tryon, model.rounding),
    }
    mask = (out.mask[0, 0].float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    result = paste_back(person, pictures["tryon"], placement)
    return PhotoTryOn(tryon=result, frame=pictures, composition_mask=mask,
                      seconds=time.perf_counter() - start)
