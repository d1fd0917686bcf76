"""The pairs of a test set with their photos fitted to the model's frame (``data/photo_fit.py``)
instead of resized to it, as test.py fits one pair of photos of any size: test.py's folders,
the baselines and export's calibration pairs. Person photos are read over white where they are
cut-outs; garments are always padded, never cropped (their whole outline matters to the warp).
Items as ``data.pairs.TryOnPairsDataset``'s, without parser inputs."""

from functools import partial
from typing import Optional

import numpy as np
import torch

from data.alpha import over_white, read_alpha
from data.datasets import DataOptions, mask_tensor
from data.files import check_photo_size, photo_tensor, read_rgb
from data.pairs import TryOnPairsDataset, make_pairs_dataset
from data.photo_fit import FIT_MODES, apply_placement, fit_to_frame, paste_back, plan_fit
from data.samples import Sample


def read_photo(path: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """A person photo as shown, uint8 (h, w, 3) RGB: a cut-out's transparent pixels made white,
    the studio backdrop of try-on photos (the colours hidden under them are not what it shows)."""
    return over_white(read_rgb(path, max_pixels), read_alpha(path, max_pixels))


def to_photo(image: np.ndarray, photo_size: tuple[int, int], fit: str, person_path: str,
             max_pixels: Optional[int] = None) -> np.ndarray:
    """A frame-sized uint8 image of a pair (a try-on, a baseline) mapped back to the person
    photo's ``photo_size`` as ``FittedPairsDataset`` fitted it; the crop fit keeps the photo's
    own pixels, read as ``read_photo`` reads them, outside its window."""
    placement = plan_fit(photo_size, image.shape[:2], fit)
    photo = read_photo(person_path, max_pixels) if fit == "crop" else None
    return paste_back(photo, image, placement)


class FittedPairsDataset(TryOnPairsDataset):
    """``TryOnPairsDataset`` whose photos are fitted to the frame by ``fit`` ('pad' or 'crop')."""

    def __init__(self, *args, fit: str = "pad", **kwargs):
        if fit not in FIT_MODES:
            raise ValueError(f"fit {fit!r}: expected one of {', '.join(FIT_MODES)}")
        super().__init__(*args, **kwargs)
        self.fit = fit

    def read(self, pair: Sample) -> tuple[dict, torch.Tensor, torch.Tensor]:
        max_pixels = self.masks.max_pixels
        person = read_photo(pair.person.image, max_pixels)
        check_photo_size(person, pair.person.image)
        frame, _ = fit_to_frame(person, (self.height, self.width), self.fit)
        item = {"image": photo_tensor(frame),
                "original_size": (int(person.shape[0]), int(person.shape[1]))}
        garment = read_rgb(pair.garment.image, max_pixels)
        check_photo_size(garment, pair.garment.image, "garment photo")
        mask = self.masks.read(pair.garment, garment)
        garment, placement = fit_to_frame(garment, (self.height, self.width), "pad")
        mask = apply_placement(mask, placement, interpolation="nearest", fill=0)
        return item, photo_tensor(garment), mask_tensor(mask)


def make_fitted_pairs_dataset(options: DataOptions, root: str, pairs: str, height: int,
                              width: int, fit: str = "pad") -> FittedPairsDataset:
    """``data.pairs.make_pairs_dataset``'s pairs, their photos fitted to the frame by ``fit``."""
    return make_pairs_dataset(options, root, pairs, height, width,
                              dataset=partial(FittedPairsDataset, fit=fit))


def category_unused(dataset: str) -> tuple:
    """The ``common.cli.unused_flags`` rule of ``--category`` where pairs are read without
    parsing: it chooses DressCode's folders; a VITON or VITON-HD folder's pairs are the same."""
    return (("category",), dataset != "dresscode", "choosing DressCode's category folders "
            "(--dataset dresscode): a VITON or VITON-HD folder's pairs are the same in every "
            "category")
