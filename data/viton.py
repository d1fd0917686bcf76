"""The VITON layout, as PF-AFN distributes it: where the files of ``VITON_traindata`` and
``VITON_test`` are (reading them is ``data/datasets.py``'s job).

Training root (``VITON_traindata``), one sample per person id ``000003``::

    train_img/000003_0.jpg               person photo, RGB
    train_color/000003_1.jpg             in-shop garment on white
    train_edge/000003_1.jpg              garment mask, grey, foreground > 127
    train_label/000003_0.png             parsing labels (0..13, ACGPN scheme; LIP, CIHP or
                                         ATR labels with ``label_scheme``, data.labels)
    train_pose/000003_0_keypoints.json   keypoints: OpenPose (18 COCO or BODY_25), COCO-17
                                         (mmpose, RTMPose, DWPose; also 000003_0.json) or
                                         DressCode (data.pose.read_keypoints_file)
    train_densepose/000003_0.npy         DensePose part index I, H x W, 0..24; or a grey,
                                         palette or IUV PNG 000003_0.png (data.densepose);
                                         optional: without the folder the parser-based
                                         inputs use data/inputs.py's replacement

Samples are matched by name, never by position in a sorted listing: with ``train_pairs.txt``
(``person.jpg garment.jpg`` per line) the pairs come from the file, otherwise from the photos
in ``train_img`` (the garment of ``X_0`` is ``X_1``). Every file a sample needs is checked
when the dataset is opened; the content of each file (decodable, complete, values in range)
is checked when it is read, and ``python -m data.check ROOT`` reads everything up front.

Test root (``VITON_test``): ``test_img/``, ``test_clothes/`` (or ``test_color/``), and
optionally ``test_edge/`` (without it the garment masks are computed from the product photos)
and ``test_label/``, ``test_pose/``, ``test_densepose/`` in the training names (the original
VITON test set has them; validation of the parser-based stages needs them). Pairs:
``test_pairs.txt`` ('unpaired'), ``test_pairs_same.txt`` ('paired'; without it every photo
of test_img with its own garment), or any pairs file.

The layout holds one garment category: ``--category`` says which (upper body by default).
"""

import os
from typing import Optional, Sequence

from data.files import (
    IMAGE_EXTENSIONS,
    DatasetError,
    by_stem,
    find_exact,
    image_names,
    list_folder,
    optional_folder,
    person_id,
    read_pairs,
    report_missing,
    require_folder,
    resolve_path,
)
from data.samples import CATEGORIES, DataFormats, GarmentFiles, PersonFiles, Sample, next_garments

NAME = "viton"
FORMATS = DataFormats(label_scheme="viton", pose_format="auto")
HELD_CATEGORIES = CATEGORIES     # any one of them (--category)
TRAIN_FOLDERS = ("train_img", "train_color", "train_edge", "train_label", "train_pose",
                 "train_densepose")
CLOTHES_FOLDERS = ("clothes", "color")
PAIRS_FILES = {"unpaired": "test_pairs.txt", "paired": "test_pairs_same.txt"}


def is_train_root(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "train_img"))


def is_test_root(root: str) -> bool:
    return os.path.isdir(os.path.join(root, "test_img"))


def _one_category(categories: Sequence[str]) -> str:
    if len(categories) != 1:
        raise DatasetError(f"a VITON-layout folder holds one garment category; --category "
                           f"names {len(categories)} ({','.join(categories)})")
    return categories[0]


class _Folders:
    """The folders of one split (prefix 'train' or 'test') and their listings."""

    def __init__(self, root: str, prefix: str, required: Sequence[str],
                 optional: Sequence[str]):
        if not os.path.isdir(root):
            raise DatasetError(f"{root}: dataset folder not found")
        self.root, self.prefix = root, prefix
        self.dirs = {name: require_folder(root, f"{prefix}_{name}") for name in required}
        for name in optional:
            path = optional_folder(os.path.join(root, f"{prefix}_{name}"))
            if path:
                self.dirs[name] = path
        self.listing = {name: list_folder(path) for name, path in self.dirs.items()}

    def find(self, folder: str, exact: Optional[Sequence[tuple[str, str]]], any_stem: str,
             shown: str, lacking: list) -> Optional[str]:
        """A file of ``folder``: one of the ``exact`` (stem, name)s, or any image extension of
        ``any_stem``; missing ones are added to ``lacking``."""
        if exact is None:
            found = by_stem(self.listing[folder], self.dirs[folder], any_stem)
        else:
            found = find_exact(self.listing[folder], self.dirs[folder], exact)
        if found is None:
            lacking.append(f"{self.prefix}_{folder}/{shown}")
            return None
        return os.path.join(self.dirs[folder], found)

    def person(self, person_name: str, category: str, lacking: list,
               parser_inputs: bool = True) -> PersonFiles:
        stem = os.path.splitext(person_name)[0]
        image = self.find("img", ((stem, person_name),), stem, person_name, lacking)
        label = pose = densepose = None
        if parser_inputs and "label" in self.dirs:
            label = self.find("label", None, stem, stem + ".png", lacking)
        if parser_inputs and "pose" in self.dirs:
            pose = self.find("pose", ((stem + "_keypoints", stem + "_keypoints.json"),
                                      (stem, stem + ".json")), stem, stem + "_keypoints.json",
                             lacking)
        if parser_inputs and "densepose" in self.dirs:
            densepose = self.find("densepose", ((stem, stem + ".npy"), (stem, stem + ".png")),
                                  stem, stem + ".npy (or .png)", lacking)
        return PersonFiles(id=person_id(person_name), image=image, label=label, pose=pose,
                           densepose=densepose, category=category)

    def garment(self, cloth_name: str, category: str, clothes: str, lacking: list,
                exact: bool) -> GarmentFiles:
        cloth_stem = os.path.splitext(cloth_name)[0] if cloth_name.lower().endswith(
            IMAGE_EXTENSIONS) else cloth_name
        names = ((cloth_stem, cloth_name),) if exact else None
        shown = cloth_name if exact else cloth_stem + ".jpg"
        image = self.find(clothes, names, cloth_stem, shown, lacking)
        mask = None
        if "edge" in self.dirs:   # the garment's mask: its stem, any image extension
            mask = self.find("edge", None, cloth_stem, shown, lacking)
        return GarmentFiles(id=person_id(cloth_name), image=image, mask=mask, category=category)


def train_pairs_file(root: str, pairs_file: Optional[str] = None) -> Optional[str]:
    """The pairs file of a training folder: ``pairs_file`` (a name inside ``root`` or a path),
    else ``train_pairs.txt`` when present, else None (every photo with its own garment)."""
    if pairs_file is None and os.path.isfile(os.path.join(root, "train_pairs.txt")):
        return os.path.join(root, "train_pairs.txt")
    return pairs_file and resolve_path(root, pairs_file)


def _no_densepose_dir(densepose_dir: Optional[str]) -> None:
    if densepose_dir is not None:
        raise DatasetError(f"--densepose_dir {densepose_dir}: a VITON-layout folder keeps its "
                           f"DensePose in train_densepose/ (test_densepose/); --densepose_dir is "
                           f"for VITON-HD")


def train_samples(root: str, categories: Sequence[str] = ("upper_body",),
                  densepose_dir: Optional[str] = None, problems: Optional[list] = None,
                  pairs_file: Optional[str] = None) -> list[Sample]:
    """The samples of a ``VITON_traindata`` folder (pairs: module docstring). Samples lacking
    files are an error, or with ``problems`` a message appended to it."""
    _no_densepose_dir(densepose_dir)
    category = _one_category(categories)
    # DensePose is optional: without train_densepose/ the parser-based inputs use the
    # replacement of data/inputs.py (the engine says so in the log).
    folders = _Folders(root, "train", ("img", "color", "edge", "label", "pose"), ("densepose",))
    pairs_path = train_pairs_file(root, pairs_file)
    if pairs_path is not None:
        pairs = read_pairs(pairs_path)
    else:
        photos = image_names(folders.listing["img"])
        if not photos:
            raise DatasetError(f"{folders.dirs['img']}: no person photos")
        pairs = []
        for name in photos:
            stem = os.path.splitext(name)[0]
            pairs.append((name, stem[:-2] + "_1" if stem.endswith("_0") else stem))
    samples, missing = [], []
    for person_name, cloth_name in pairs:
        lacking: list = []
        person = folders.person(person_name, category, lacking)
        garment = folders.garment(cloth_name, category, "color", lacking, exact=False)
        if lacking:
            # Listed in the folders' order, as a user compares them with a listing.
            lacking.sort(key=lambda entry: TRAIN_FOLDERS.index(entry.split("/")[0]))
            missing.append(f"{person.id}: " + ", ".join(lacking))
        else:
            samples.append(Sample(person, garment))
    report_missing(missing, len(pairs), "samples", limit=5, problems=problems)
    return samples


def resolve_test_pairs(root: str, pairs: str) -> tuple[Optional[str], str]:
    """(pairs file or None for 'every photo with its garment', description)."""
    if pairs in PAIRS_FILES:
        path = os.path.join(root, PAIRS_FILES[pairs])
        if pairs == "paired" and not os.path.isfile(path):
            return None, "every photo of test_img with its own garment"
        return path, path
    path = resolve_path(root, pairs)
    return path, path


def test_pairs(root: str, pairs: str = "unpaired", categories: Sequence[str] = ("upper_body",),
               densepose_dir: Optional[str] = None, parser_inputs: bool = False,
               problems: Optional[list] = None) -> list[Sample]:
    """The pairs of a ``VITON_test`` folder (module docstring). ``parser_inputs``: the
    persons' parsing, keypoints and DensePose are required too.

    A ``VITON_traindata`` folder gives its samples (paired) or each person with the next
    sample's garment (unpaired): a held-out part of the training data validates too."""
    _no_densepose_dir(densepose_dir)
    if not is_test_root(root) and is_train_root(root):
        samples = train_samples(root, categories, problems=problems)
        if pairs not in ("paired", "unpaired"):
            raise DatasetError(f"{root} is a training folder: its pairs are 'paired' or "
                               f"'unpaired', not a pairs file ({pairs})")
        return samples if pairs == "paired" else next_garments(samples)
    category = _one_category(categories)
    optional = ["edge"] + (["densepose"] if parser_inputs else [])
    required = ["img"] + (["label", "pose"] if parser_inputs else [])
    folders = _Folders(root, "test", required, optional)
    clothes = [name for name in CLOTHES_FOLDERS if os.path.isdir(os.path.join(root,
                                                                              f"test_{name}"))]
    if not clothes:
        raise DatasetError(f"{os.path.join(root, 'test_clothes')}: missing folder (neither "
                           f"test_clothes/ nor test_color/ in {root})")
    folders.dirs[clothes[0]] = os.path.join(root, f"test_{clothes[0]}")
    folders.listing[clothes[0]] = list_folder(folders.dirs[clothes[0]])
    path, source = resolve_test_pairs(root, pairs)
    if path is None:
        photos = image_names(folders.listing["img"])
        names = [(name, f"{person_id(name)}_1{os.path.splitext(name)[1]}") for name in photos]
    else:
        names = read_pairs(path)
    samples, missing = [], []
    for person_name, cloth_name in names:
        lacking: list = []
        person = folders.person(person_name, category, lacking, parser_inputs=parser_inputs)
        garment = folders.garment(cloth_name, category, clothes[0], lacking, exact=True)
        if lacking:
            missing.append(f"{person_name} {cloth_name}: " + ", ".join(lacking))
        else:
            samples.append(Sample(person, garment))
    report_missing(missing, len(names), f"pairs of {source}", limit=5, problems=problems)
    return samples
