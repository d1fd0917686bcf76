"""The person/garment pairs of a test set: what test.py dresses and what validation scores.

Pairs are listed by the layouts (``data.datasets.pair_samples``) and read with the training
set's readers; ``data/fitted_pairs.py`` fits the photos to the frame instead of resizing them,
as test.py fits one pair of photos of any size.

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
from data.datasets import (
    DataOptions,
    GarmentMasks,
    pair_samples,
    prepared_masks,
    read_garment,
    read_person,
)
from data.files import DatasetError
from data.samples import DataFormats, Sample, category_index


class TryOnPairsDataset(torch.utils.data.Dataset):
    """Person/garment pairs of a test set (items: module docstring), resized to the frame as
    the maps are. ``parser_inputs``: also read parsing, keypoints and DensePose (the
    parser-based stages, and the worn-garment region the warp stages are scored on)."""

    def __init__(self, pairs: Sequence[Sample], height: int, width: int,
                 formats: DataFormats = viton.FORMATS, masks: Optional[GarmentMasks] = None,
                 parser_inputs: bool = False):
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

    def read(self, pair: Sample) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """The person's item, and the garment and its mask, of ``pair``."""
        item = read_person(pair.person, self.formats, self.height, self.width,
                           self.parser_inputs, self.masks.max_pixels)
        return (item, *read_garment(pair.garment, self.masks, self.height, self.width))

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        item, garment, edge = self.read(pair)
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
                       parser_inputs: bool = False, dataset=TryOnPairsDataset) -> TryOnPairsDataset:
    """The pairs of ``root`` in ``options.dataset``'s layout: ``pairs`` is 'unpaired',
    'paired' or a pairs file; ``dataset`` the class that reads them."""
    samples = pair_samples(options, root, pairs, parser_inputs)
    return dataset(samples, height, width, options.formats(), prepared_masks(options, samples),
                   parser_inputs)
