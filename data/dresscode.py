"""The DressCode layout, as distributed: one folder per garment category::

    ROOT/{upper_body,lower_body,dresses}/
        images/013563_0.jpg          person photo (1024x768)
        images/013563_1.jpg          product photo of the garment
        keypoints/013563_2.json      {"keypoints": 18 x [x, y, score, id]}, COCO-18 order, in a
                                     384-wide, 512-high frame
        label_maps/013563_4.png      parsing, ATR 18 classes
        dense/013563_5.png           DensePose part indices (and 013563_5_uv.npz, not read)
        skeletons/013563_5.jpg       a drawing (not read)
        train_pairs.txt  test_pairs_paired.txt  test_pairs_unpaired.txt

DressCode ships no garment masks: they are computed from the product photos and cached
(``data.datasets.GarmentMasks``). Training reads each category's ``train_pairs.txt``; test
pairs are ``test_pairs_paired.txt`` ('paired') or ``test_pairs_unpaired.txt`` ('unpaired'), or
a pairs file of the caller's inside each category folder.
"""

import os
from typing import Optional, Sequence

from common.errors import missing
from data.files import (
    IMAGE_EXTENSIONS,
    DatasetError,
    by_stem,
    list_folder,
    read_pairs,
    report_missing,
    require_folder,
    resolve_path,
)
from data.samples import CATEGORIES, DataFormats, GarmentFiles, PersonFiles, Sample

NAME = "dresscode"
FORMATS = DataFormats(label_scheme="atr", pose_format="dresscode")
HELD_CATEGORIES = CATEGORIES
PAIRS_FILES = {"train": "train_pairs.txt", "paired": "test_pairs_paired.txt",
               "unpaired": "test_pairs_unpaired.txt"}


def is_root(root: str) -> bool:
    return any(os.path.isdir(os.path.join(root, c, "images")) for c in CATEGORIES)


def _stem_id(name: str) -> str:
    """'013563_0.jpg' -> '013563'."""
    stem = os.path.splitext(os.path.basename(name))[0]
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


class _Category:
    """The files of one category folder, listed once."""

    def __init__(self, root: str, category: str, parser_inputs: bool):
        if category not in CATEGORIES:
            raise DatasetError(f"unknown DressCode category {category!r}; expected one of "
                               f"{', '.join(CATEGORIES)}")
        if not os.path.isdir(root):
            raise DatasetError(f"{root}: dataset folder not found")
        self.root = os.path.join(root, category)
        self.category = category
        if not os.path.isdir(self.root):
            raise DatasetError(f"{self.root}: {missing(self.root)} (--category {category} of a "
                               f"DressCode root)")
        # Without parser inputs the parsing, pose and DensePose are not looked at.
        self.dirs, self.listing = {}, {}
        folders = ("images", "keypoints", "label_maps", "dense") if parser_inputs else ("images",)
        for name in folders:
            path = require_folder(self.root, name)
            self.dirs[name] = path
            self.listing[name] = list_folder(path)
        self.densepose = "dense" in self.dirs

    def pairs_file(self, which: str) -> str:
        path = (os.path.join(self.root, PAIRS_FILES[which]) if which in PAIRS_FILES
                else resolve_path(self.root, which))
        if not os.path.isfile(path):
            raise DatasetError(f"{path}: pairs file not found")
        return path

    def _find(self, folder: str, name: str, lacking: list) -> Optional[str]:
        stem = os.path.splitext(name)[0]
        found = by_stem(self.listing.get(folder, {}), self.dirs.get(folder, ""), stem,
                        (".json",) if folder == "keypoints" else IMAGE_EXTENSIONS)
        if found is None:
            lacking.append(f"{self.category}/{folder}/{name}")
            return None
        return os.path.join(self.dirs[folder], found)

    def sample(self, person_name: str, cloth_name: str, lacking: list) -> Sample:
        person_id = _stem_id(person_name)
        image = self._find("images", person_name, lacking)
        label = pose = densepose = None
        if "label_maps" in self.dirs:
            label = self._find("label_maps", f"{person_id}_4.png", lacking)
        if "keypoints" in self.dirs:
            pose = self._find("keypoints", f"{person_id}_2.json", lacking)
        if self.densepose:
            densepose = self._find("dense", f"{person_id}_5.png", lacking)
        person = PersonFiles(id=person_id, image=image, label=label, pose=pose,
                             densepose=densepose, category=self.category)
        garment = GarmentFiles(id=_stem_id(cloth_name),
                               image=self._find("images", cloth_name, lacking),
                               mask=None, category=self.category)
        return Sample(person, garment)


def _collect(root: str, categories: Sequence[str], which: str,
             parser_inputs: bool, problems: Optional[list]) -> list[Sample]:
    samples = []
    for category in categories:
        folder = _Category(root, category, parser_inputs)
        path = folder.pairs_file(which)
        names = read_pairs(path)
        missing = []
        for person_name, cloth_name in names:
            lacking: list = []
            sample = folder.sample(person_name, cloth_name, lacking)
            if lacking:
                missing.append(f"{person_name} {cloth_name}: " + ", ".join(lacking))
            else:
                samples.append(sample)
        report_missing(missing, len(names), f"pairs of {path}", problems=problems)
    return samples


def _no_densepose_dir(densepose_dir: Optional[str]) -> None:
    if densepose_dir is not None:
        raise DatasetError(f"--densepose_dir {densepose_dir}: DressCode keeps its DensePose in "
                           f"each category's dense/ folder; --densepose_dir is for VITON-HD")


def train_samples(root: str, categories: Sequence[str] = ("upper_body",),
                  densepose_dir: Optional[str] = None,
                  problems: Optional[list] = None) -> list[Sample]:
    """The ``train_pairs.txt`` samples of each category in ``categories``."""
    _no_densepose_dir(densepose_dir)
    return _collect(root, categories, "train", True, problems)


def test_pairs(root: str, pairs: str = "unpaired", categories: Sequence[str] = ("upper_body",),
               densepose_dir: Optional[str] = None, parser_inputs: bool = False,
               problems: Optional[list] = None) -> list[Sample]:
    """The test pairs of each category: 'paired', 'unpaired', or a pairs file's name inside
    each category folder (or a path)."""
    _no_densepose_dir(densepose_dir)
    return _collect(root, categories, pairs, parser_inputs, problems)
