"""The person/garment pairs of a test set: what test.py dresses and what validation scores.

Pairs are listed by the layouts (``data.datasets.pair_samples``) and read with the training
set's readers, except that a pairs dataset may fit its photos to the frame instead of
resizing them (``data/photo_fit.py``), as test.py fits one pair of photos of any size.

Items (``TryOnPairsDataset``), CPU tensors: image (3, H, W) and garment (3, H, W) in [-1, 1],
garment_edge (1, H, W) in {0, 1}; person_name, cloth_name (file names, which name the
results), person_path; paired (same id); category int64 () index into ``CATEGORIES``;
original_size (h, w) of the person photo; with ``parser_inputs=True`` also label int64
(H, W), densepose int64 (H, W), has_densepose (only when some person has no DensePose) and
keypoints float32 (18, 3), as the training items have them (``data/datasets.py``).
"""

import os
from typing import Optional, Sequence

import torch

from data import viton
from data.alpha import read_photo
from data.datasets import (
    DataOptions,
    GarmentMasks,
    mask_tensor,
    pair_samples,
    prepared_masks,
    read_garment,
    read_person,
)
from data.files import DatasetError, photo_tensor, read_rgb
from data.photo_fit import FIT_MODES, apply_placement, fit_to_frame
from data.samples import DataFormats, GarmentFiles, PersonFiles, Sample, category_index


def read_fitted_person(person: PersonFiles, height: int, width: int, fit: str,
                       max_pixels: Optional[int] = None) -> dict:
    """The person photo fitted to the (height, width) frame by ``fit`` ('pad' or 'crop',
    ``data.photo_fit``), and its original (h, w)."""
    image = read_photo(person.image, max_pixels)
    frame, _ = fit_to_frame(image, (height, width), fit)
    return {"image": photo_tensor(frame),
            "original_size": (int(image.shape[0]), int(image.shape[1]))}


def read_padded_garment(garment: GarmentFiles, masks: GarmentMasks, height: int,
                        width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, H, W) photo in [-1, 1] and (1, H, W) mask in {0, 1}, padded to the frame's aspect
    ratio before resizing: a garment is never cropped, its whole outline matters to the
    warp."""
    photo = read_rgb(garment.image, masks.max_pixels)
    mask = masks.read(garment, photo)
    photo, placement = fit_to_frame(photo, (height, width), "pad")
    mask = apply_placement(mask, placement, interpolation="nearest", fill=0)
    return photo_tensor(photo), mask_tensor(mask)


class TryOnPairsDataset(torch.utils.data.Dataset):
    """Person/garment pairs of a test set (items: module docstring). ``parser_inputs``: also
    read parsing, keypoints and DensePose (the parser-based stages, and the worn-garment
    region the warp stages are scored on). ``fit``: 'pad' or 'crop' fits the photos to the
    frame as test.py's one pair is fitted (photos of the frame's aspect ratio are only
    resized); None resizes them, as the maps are."""

    def __init__(self, pairs: Sequence[Sample], height: int, width: int,
                 formats: DataFormats = viton.FORMATS, masks: Optional[GarmentMasks] = None,
                 parser_inputs: bool = False, fit: Optional[str] = None):
        if fit is not None and (parser_inputs or fit not in FIT_MODES):
            raise ValueError(f"fit {fit!r}: 'pad' or 'crop', for photos without parser inputs")
        self.fit = fit
        self.pairs = list(pairs)
        self.height, self.width = int(height), int(width)
        self.formats = formats
        self.masks = masks or GarmentMasks()
        self.parser_inputs = parser_inputs
        self._all_densepose = all(pair.person.densepose is not None for pair in self.pairs)
        if parser_inputs:
            lacking = [pair.person.image for pair in self.pairs
                       if pair.person.label is None or pair.person.pose is None]
            if lacking:
                raise DatasetError(f"{len(lacking)} of {len(self.pairs)} persons have no "
                                   f"parsing or keypoints, e.g. {lacking[0]}; the parser-based "
                                   f"inputs need both")

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def computes_masks(self) -> bool:
        """Whether some garment masks are computed from the product photos."""
        return any(pair.garment.mask is None for pair in self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        if self.fit is None:
            item = read_person(pair.person, self.formats, self.height, self.width,
                               self.parser_inputs, self.masks.max_pixels)
            garment, edge = read_garment(pair.garment, self.masks, self.height, self.width)
        else:
            item = read_fitted_person(pair.person, self.height, self.width, self.fit,
                                      self.masks.max_pixels)
            garment, edge = read_padded_garment(pair.garment, self.masks, self.height,
                                                self.width)
        if self._all_densepose:
            item.pop("has_densepose", None)
        item.update({
            "garment": garment, "garment_edge": edge,
            "person_name": os.path.basename(pair.person.image),
            "cloth_name": os.path.basename(pair.garment.image),
            "person_path": pair.person.image,
            "paired": pair.person.id == pair.garment.id,
            "category": torch.tensor(category_index(pair.person.category)),
        })
        return item


def make_pairs_dataset(options: DataOptions, root: str, pairs: str, height: int, width: int,
                       parser_inputs: bool = False, fit: Optional[str] = None) -> TryOnPairsDataset:
    """The pairs of ``root`` in ``options.dataset``'s layout: ``pairs`` is 'unpaired',
    'paired' or a pairs file."""
    samples = pair_samples(options, root, pairs, parser_inputs)
    return TryOnPairsDataset(samples, height, width, options.formats(),
                             prepared_masks(options, samples), parser_inputs, fit)
