"""The VITON-HD layout (``zalando-hd-resized``), as distributed::

    ROOT/train_pairs.txt  ROOT/test_pairs.txt     "person.jpg cloth.jpg" per line
    ROOT/{train,test}/
        image/00000_00.jpg                        person photo (1024x768)
        cloth/00000_00.jpg                        product photo of the garment
        cloth-mask/00000_00.jpg                   its mask (white = garment)
        image-parse-v3/00000_00.png               parsing, CIHP 20 classes, palette PNG
        openpose_json/00000_00_keypoints.json     OpenPose BODY_25 (pose_keypoints_2d)
        image-densepose/00000_00.jpg              a colour RENDERING of DensePose
        image-parse-agnostic-v3.2/00000_00.png    parsing without the garment and arms (CIHP)

Older copies spell ``image-parse``, ``openpose-json``: both are accepted. Person and garment
share an id: training pairs each person with the garment of the same name (``train_pairs.txt``
is not read: copies of it pair mismatched ids). Test pairs: ``test_pairs.txt`` (``unpaired``)
or each test person with their own garment (``paired``).

DensePose: the rendering does not give exact part indices, so by default the samples have
none (``data/inputs.py`` then uses its documented replacement); ``densepose_dir`` names a
folder of part-index maps (``{stem}.npy`` or ``{stem}.png``) to use instead. Where a split has
both ``image-densepose/`` and ``image-parse-agnostic-v3.2/``, persons also list them: DCI-VTON's
warp condition (``data/dcivton.py``).
"""

import os
from typing import Optional, Sequence

from common.errors import missing
from data.dcivton import AGNOSTIC_FOLDER, DENSEPOSE_FOLDER
from data.densepose import DENSEPOSE_EXTENSIONS
from data.files import (
    IMAGE_EXTENSIONS,
    DatasetError,
    MissingFolder,
    by_stem,
    find_exact,
    image_names,
    list_folder,
    read_pairs,
    report_missing,
    resolve_path,
)
from data.samples import DataFormats, GarmentFiles, PersonFiles, Sample

NAME = "vitonhd"
FORMATS = DataFormats(label_scheme="cihp", pose_format="auto")
HELD_CATEGORIES = ("upper_body",)
SPLITS = ("train", "test")
PARSE_FOLDERS = ("image-parse-v3", "image-parse")
POSE_FOLDERS = ("openpose_json", "openpose-json")


def _folder(split_root: str, names: Sequence[str], required: bool = True) -> Optional[str]:
    for name in names:
        path = os.path.join(split_root, name)
        if os.path.isdir(path):
            return path
    if required:
        first = os.path.join(split_root, names[0])
        error = DatasetError if os.path.lexists(first) else MissingFolder
        raise error(f"{first}: {missing(first)} (expected in {split_root}"
                    + (f"; also looked for {', '.join(names[1:])})" if len(names) > 1
                       else ")"))
    return None


def is_root(root: str) -> bool:
    return any(os.path.isdir(os.path.join(root, split, "image")) for split in SPLITS)


def _split_root(root: str, split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: dataset folder not found")
    path = os.path.join(root, split)
    if not os.path.isdir(path):
        raise DatasetError(f"{path}: {missing(path)} (a VITON-HD root holds train/ and "
                           f"test/)")
    return path


# What each folder's reader takes, where it is not an image.
READERS = {"pose": (".json",), "densepose": DENSEPOSE_EXTENSIONS}


class _Split:
    """The files of one split, listed once."""

    def __init__(self, root: str, split: str, densepose_dir: Optional[str],
                 parser_inputs: bool):
        self.root = _split_root(root, split)
        self.image_dir = _folder(self.root, ("image",))
        self.cloth_dir = _folder(self.root, ("cloth",))
        self.mask_dir = _folder(self.root, ("cloth-mask",))
        # Without parser inputs the parsing, pose and DensePose are not looked at, let alone
        # required.
        self.parse_dir = _folder(self.root, PARSE_FOLDERS) if parser_inputs else None
        self.pose_dir = _folder(self.root, POSE_FOLDERS) if parser_inputs else None
        if densepose_dir is not None and not os.path.isdir(densepose_dir):
            raise DatasetError(f"{densepose_dir}: DensePose folder not found")
        self.densepose_dir = densepose_dir if parser_inputs else None
        self.agnostic_dir = _folder(self.root, (AGNOSTIC_FOLDER,), required=False)
        self.rendering_dir = _folder(self.root, (DENSEPOSE_FOLDER,), required=False)
        self.listing = {key: list_folder(path) if path else {} for key, path in (
            ("image", self.image_dir), ("cloth", self.cloth_dir), ("mask", self.mask_dir),
            ("parse", self.parse_dir), ("pose", self.pose_dir),
            ("densepose", self.densepose_dir))}
        self.parser_inputs = parser_inputs

    def person(self, name: str, lacking: list) -> PersonFiles:
        stem = os.path.splitext(name)[0]
        image = self._find("image", self.image_dir, stem, name, lacking, exact=True)
        label = pose = densepose = None
        if self.parse_dir:
            label = self._find("parse", self.parse_dir, stem, stem + ".png", lacking)
        if self.pose_dir:
            pose = self._find("pose", self.pose_dir, stem + "_keypoints",
                              stem + "_keypoints.json", lacking)
        if self.densepose_dir:
            densepose = self._find("densepose", self.densepose_dir, stem, stem + ".npy",
                                   lacking)
        return PersonFiles(id=stem, image=image, label=label, pose=pose, densepose=densepose,
                           **self._dcivton_condition(stem))

    def _dcivton_condition(self, stem: str) -> dict:
        """DCI-VTON's condition files of ``stem``, when the split has both for it."""
        if not (self.parser_inputs and self.agnostic_dir and self.rendering_dir):
            return {}
        paths = (os.path.join(self.agnostic_dir, f"{stem}.png"),
                 os.path.join(self.rendering_dir, f"{stem}.jpg"))
        if not all(os.path.isfile(path) for path in paths):
            return {}
        return {"parse_agnostic": paths[0], "densepose_rendering": paths[1]}

    def garment(self, name: str, lacking: list) -> GarmentFiles:
        stem = os.path.splitext(name)[0]
        image = self._find("cloth", self.cloth_dir, stem, name, lacking, exact=True)
        mask = self._find("mask", self.mask_dir, stem, name, lacking)
        return GarmentFiles(id=stem, image=image, mask=mask)

    def _find(self, key: str, folder: str, stem: str, expected: str, lacking: list,
              exact: bool = False) -> Optional[str]:
        readable = READERS.get(key, IMAGE_EXTENSIONS)
        found = (find_exact(self.listing[key], folder, ((stem, expected),)) if exact
                 else by_stem(self.listing[key], folder, stem, readable))
        if found is None:
            # Joined after relpath, which would fold a name's ../ into the folder before it.
            lacking.append(os.path.join(os.path.relpath(folder, self.root), expected))
            return None
        return os.path.join(folder, found)


def _collect(split: _Split, names: Sequence[tuple[str, str]], what: str,
             problems: Optional[list]) -> list[Sample]:
    samples, missing = [], []
    for person_name, cloth_name in names:
        lacking: list = []
        person = split.person(person_name, lacking)
        garment = split.garment(cloth_name, lacking)
        if lacking:
            missing.append(f"{person_name} {cloth_name}: " + ", ".join(lacking))
        else:
            samples.append(Sample(person, garment))
    report_missing(missing, len(names), what, problems=problems)
    return samples


def train_samples(root: str, categories: Sequence[str] = HELD_CATEGORIES,
                  densepose_dir: Optional[str] = None,
                  problems: Optional[list] = None) -> list[Sample]:
    """Every person of ``train/image`` with the garment of the same name."""
    _check_categories(categories)
    split = _Split(root, "train", densepose_dir, parser_inputs=True)
    names = image_names(split.listing["image"])
    if not names:
        raise DatasetError(f"{split.image_dir}: no person photos")
    return _collect(split, [(name, name) for name in names], f"samples of {split.root}",
                    problems)


def test_pairs(root: str, pairs: str = "unpaired", categories: Sequence[str] = HELD_CATEGORIES,
               densepose_dir: Optional[str] = None, parser_inputs: bool = False,
               split: str = "test", problems: Optional[list] = None) -> list[Sample]:
    """The pairs of ``split``: 'unpaired' (``ROOT/test_pairs.txt``), 'paired' (every person
    with their own garment) or a pairs file (a name inside ROOT, or a path)."""
    _check_categories(categories)
    files = _Split(root, split, densepose_dir, parser_inputs)
    if pairs == "paired":
        names = image_names(files.listing["image"])
        listed = [(name, name) for name in names]
        source = f"{files.image_dir} (paired)"
    else:
        path = (os.path.join(root, f"{split}_pairs.txt") if pairs == "unpaired"
                else resolve_path(root, pairs))
        listed = read_pairs(path)
        source = path
    return _collect(files, listed, f"pairs of {source}", problems)


def _check_categories(categories: Sequence[str]) -> None:
    other = [c for c in categories if c not in HELD_CATEGORIES]
    if other:
        raise DatasetError(f"VITON-HD holds upper-body garments only; --category "
                           f"{','.join(other)} is not in it")
