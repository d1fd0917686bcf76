"""The inputs of pre-warping garments: one item per (person, garment) pair of a test or train
split, with what the chosen warp's condition needs.

Conditions (``CONDITIONS``):
- 'photo': a parser-free student's, the person photo alone, at the warp's size;
- 'parser_based': a parser-based teacher's, the photo, parsing, DensePose and keypoints of
  ``data.datasets.read_person`` at the warp's size (``data/inputs.py`` makes the 45 channels);
- 'dcivton': DCI-VTON's warp's, its parse-agnostic label groups and DensePose rendering at the
  working size, read as its dataset class reads them (``data/dcivton.py``; VITON-HD only).

Items: name (the person photo's stem), out_dir (the folder of the person's split or
category), garment (3, H, W) in [-1, 1] not masked and garment_mask (1, H, W) in {0, 1} at the
working size (H, W), and the condition's tensors.
"""

import os
from typing import Optional, Sequence

import torch

from data import dcivton
from data.datasets import DataOptions, GarmentMasks, read_garment, read_person
from data.files import DatasetError
from data.samples import Sample

CONDITIONS = ("photo", "parser_based", "dcivton")


def split_folder(sample: Sample) -> str:
    """The folder holding the person photo's folder: VITON-HD's ``test/``, a DressCode
    category (``upper_body/``)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(sample.person.image)))


class PrewarpDataset(torch.utils.data.Dataset):
    """Pre-warp inputs of ``samples`` (module docstring).

    Args:
        samples: the pairs, as a layout lists them.
        condition: one of ``CONDITIONS``.
        size: (H, W) working size, where the garment is warped and written.
        warp_size: (h, w) the warp module runs at.
        options: the dataset's formats and garment masks.
    """

    def __init__(self, samples: Sequence[Sample], condition: str, size: tuple[int, int],
                 warp_size: tuple[int, int], options: DataOptions,
                 masks: Optional[GarmentMasks] = None):
        if condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
        if condition == "dcivton" and options.dataset != "vitonhd":
            raise DatasetError(f"DCI-VTON's warp reads VITON-HD's {dcivton.AGNOSTIC_FOLDER}/ and "
                               f"{dcivton.DENSEPOSE_FOLDER}/; --dataset {options.dataset} has "
                               f"neither")
        self.samples = list(samples)
        self.condition = condition
        self.size, self.warp_size = tuple(size), tuple(warp_size)
        self.options = options
        self.formats = options.formats()
        self.masks = masks or options.masks()

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        height, width = self.size
        item = {"name": os.path.splitext(os.path.basename(sample.person.image))[0],
                "out_dir": split_folder(sample)}
        if self.condition == "dcivton":
            garment, mask = dcivton.read_garment(sample.garment.image, sample.garment.mask,
                                                 height, width, self.options.max_pixels)
            item.update(dcivton.read_condition(item["out_dir"], sample.person.id, height,
                                               width, self.options.max_pixels))
        else:
            garment, mask = read_garment(sample.garment, self.masks, height, width)
            person = read_person(sample.person, self.formats, *self.warp_size,
                                 parser_inputs=self.condition == "parser_based",
                                 max_pixels=self.options.max_pixels)
            person.pop("original_size")
            item.update(person)
        item.update({"garment": garment, "garment_mask": mask})
        return item
