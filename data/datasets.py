"""One dataset interface over every layout: the training set, and what every reader shares.

A layout module (``data/viton.py``, ``data/vitonhd.py``, ``data/dresscode.py``) only says where
a dataset's files are and how they are encoded: it lists ``Sample``s (a person's files and a
garment's files) and names its ``DataFormats`` (label scheme, pose format, DensePose source).
Everything else happens here, once: reading each file with the reader of its format, checking
sizes, converting parsing to the 14-class scheme and keypoints to COCO-18 in the photo's
pixels, resizing to the working size, garment masks (read, or computed from the product photo
and cached), the unpaired garment of training, and the tensors of one item. The stage scripts
and ``data/inputs.py`` never learn which layout a batch came from. The pairs of a test set
(test.py, validation) are ``data/pairs.py``'s.

Training items (``TryOnTrainDataset``), CPU tensors:
    id: str; category: int64 () index into ``CATEGORIES``; image (3, H, W) in [-1, 1];
    garment, unpaired_garment (3, H, W) in [-1, 1], not masked; garment_edge,
    unpaired_garment_edge (1, H, W) in {0, 1}; label int64 (H, W), 14-class labels (7 not
    merged); densepose int64 (H, W) in 0..24 (zeros when ``has_densepose`` is False);
    has_densepose: bool (), only when some sample of the dataset has no DensePose; keypoints
    float32 (18, 3) x, y, confidence in pixels of (H, W); where the layout has DCI-VTON's
    condition files (``data/dcivton.py``), parse_agnostic int64 (H, W) label groups 0..12 and
    densepose_rendering (3, H, W) in [-1, 1].
"""

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Optional, Sequence

import numpy as np
import torch

from common.cli import positive_limit, refuse_flags
from data import viton
from data.dcivton import read_densepose_rendering, read_label_groups
from data.densepose import IUV_CHANNELS, read_densepose_file
from data.files import (
    DEFAULT_MAX_PIXELS,
    EDGE_THRESHOLD,
    MAX_MEGAPIXELS,
    DatasetError,
    check_garment_mask,
    check_photo_size,
    photo_tensor,
    read_bytes,
    read_gray,
    read_rgb,
    resize_nearest,
    resize_photo,
)
from data.labels import LABEL_SCHEMES, NECK_CHOICES, NECK_HELP, read_label_map
from data.pose import POSE_FORMATS, PoseFileError, read_keypoints_file, scale_keypoints
from data.samples import (
    DataFormats,
    GarmentFiles,
    PersonFiles,
    Sample,
    category_index,
    parse_categories,
)

DATASETS = ("viton", "vitonhd", "dresscode")


# ---------------------------------------------------------------------------------------------
# Garment masks


def default_mask_cache() -> str:
    """``$PFAFN_CACHE/garment_masks`` (default ``~/.cache/pfafn``): datasets are often
    read-only, so computed garment masks are kept there."""
    base = os.environ.get("PFAFN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                         "pfafn")
    return os.path.join(base, "garment_masks")


@dataclass
class GarmentMasks:
    """Masks of product photos: read from the layout's mask file, or computed with
    ``data.garment_mask`` and cached as ``CACHE/<method>/<content>.png``: ``method`` a hash of
    the method's version and the GrabCut choice, so a mask made another way is not reused;
    ``content`` a hash of the photo file's bytes, so a photo replaced by another (of the same
    name and size) or another file of the same stem (``x.jpg``, ``x.png``) never gets its mask.
    Written once, atomically, by whichever process computes it first; a cache that cannot be
    written (a read-only home) is said once and the masks are computed in memory. ``forget``
    drops cached masks so that they are computed again (``--rebuild_masks``)."""

    cache_dir: Optional[str] = None
    grabcut: bool = False
    max_pixels: Optional[int] = None

    def cache_path(self, image_path: str) -> str:
        from data.garment_mask import METHOD_VERSION
        made = f"{METHOD_VERSION}\0{'grabcut' if self.grabcut else 'plain'}"
        method = hashlib.sha1(made.encode("utf-8")).hexdigest()[:16]
        return os.path.join(self.cache_dir or default_mask_cache(), method,
                            f"{_content_key(image_path)}.png")

    def is_cached(self, garment: GarmentFiles) -> bool:
        return garment.mask is not None or os.path.isfile(self.cache_path(garment.image))

    def forget(self, garments: Sequence[GarmentFiles]) -> None:
        """Delete the cached masks of ``garments``."""
        for path in (self.cache_path(item.image) for item in garments if item.mask is None):
            if os.path.isfile(path):
                os.unlink(path)

    def read(self, garment: GarmentFiles, photo: np.ndarray) -> np.ndarray:
        """uint8 (h, w) in {0, 1}, the size of ``photo`` (the garment's decoded photo)."""
        if garment.mask is not None:
            mask = read_gray(garment.mask, self.max_pixels)
            if mask.shape != photo.shape[:2]:
                raise DatasetError(f"{garment.mask}: size {mask.shape[0]}x{mask.shape[1]} "
                                   f"differs from its garment {garment.image} "
                                   f"({photo.shape[0]}x{photo.shape[1]})")
            return check_garment_mask((mask > EDGE_THRESHOLD).astype(np.uint8), garment.mask)
        path = self.cache_path(garment.image)
        if os.path.isfile(path):
            cached = read_gray(path)
            if cached.shape == photo.shape[:2]:
                return (cached > EDGE_THRESHOLD).astype(np.uint8)
        # Computing a mask is the rare path (a layout without mask files, once per garment).
        from common.images import write_image
        from data.garment_mask import GarmentMaskError, garment_mask_from_file
        try:
            mask = garment_mask_from_file(garment.image, self.grabcut, photo,
                                          self.max_pixels).mask
        except GarmentMaskError as error:
            raise DatasetError(f"{error} (no mask file: the mask is computed from the product "
                               f"photo)") from None
        try:
            write_image(path, mask)
        except OSError as error:
            _cache_unwritable(path, error)
        return (mask > EDGE_THRESHOLD).astype(np.uint8)


def _content_key(image_path: str) -> str:
    """A hash of the file's bytes (its format included: the signature is part of them). A file
    that cannot be read has no mask to cache; its absolute path stands in."""
    try:
        data = read_bytes(image_path)
    except DatasetError:
        data = os.path.abspath(image_path).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_UNWRITABLE_CACHES = set()


def _cache_unwritable(path: str, error: OSError) -> None:
    """Say once per process that the mask cache cannot be written (masks are then computed)."""
    folder = os.path.dirname(os.path.dirname(path))
    if folder not in _UNWRITABLE_CACHES:
        _UNWRITABLE_CACHES.add(folder)
        print(f"warning: cannot write the garment-mask cache {folder} "
              f"({error.strerror or error}); masks are computed each time (set --mask_cache "
              f"or PFAFN_CACHE to a writable folder to keep them)", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reading one person or one garment at the working size


def read_garment(garment: GarmentFiles, masks: GarmentMasks, height: int,
                 width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, H, W) photo in [-1, 1] and (1, H, W) mask in {0, 1}, resized to the frame."""
    photo = read_rgb(garment.image, masks.max_pixels)
    check_photo_size(photo, garment.image, "garment photo")
    # Binarised before resizing so a nearest resize keeps it binary.
    mask = resize_nearest(masks.read(garment, photo), height, width)
    return photo_tensor(resize_photo(photo, height, width)), mask_tensor(mask)


def mask_tensor(mask: np.ndarray) -> torch.Tensor:
    """uint8 (h, w) in {0, 1} -> float32 (1, h, w)."""
    return torch.from_numpy(mask).to(torch.float32)[None]


# A label or DensePose map may be stored this many times smaller than its photo, per side;
# a smaller one (1x1 for a 64x64 photo) would become a few flat blocks when scaled up.
MAX_MAP_SHRINK = 8


def _check_map_size(array: np.ndarray, path: str, photo: str, photo_size) -> None:
    """A label or DensePose map must show the photo's frame: its size, or another size of the
    same aspect ratio (some datasets ship their maps at a lower resolution; they are resized
    with nearest neighbours like every map)."""
    height, width = array.shape[:2]
    if (height, width) == tuple(photo_size):
        return
    if height * MAX_MAP_SHRINK < photo_size[0] or width * MAX_MAP_SHRINK < photo_size[1]:
        raise DatasetError(f"{path}: size {height}x{width} is far smaller than the person photo "
                           f"{photo} ({photo_size[0]}x{photo_size[1]}); scaled up it would "
                           f"mark no part of the body (at most {MAX_MAP_SHRINK} times smaller)")
    if abs(height * photo_size[1] - width * photo_size[0]) > max(photo_size) * 0.01 * max(
            height, width):
        raise DatasetError(f"{path}: size {height}x{width} is not the frame of the person photo "
                           f"{photo} ({photo_size[0]}x{photo_size[1]}): another aspect ratio")


def _missing(person: PersonFiles, what: str) -> DatasetError:
    return DatasetError(f"{person.image}: this dataset has no {what} for the person (needed by "
                        f"the parser-based inputs)")


def read_person(person: PersonFiles, formats: DataFormats, height: int, width: int,
                parser_inputs: bool = True, max_pixels: Optional[int] = None) -> dict:
    """The person photo, and with ``parser_inputs`` the parsing, DensePose and keypoints, each
    checked against the photo's size and resized to (height, width) alike, so that the maps
    stay aligned with the photo. Images of more than ``max_pixels`` pixels are refused before
    they are decoded."""
    image = read_rgb(person.image, max_pixels)
    check_photo_size(image, person.image)
    original = image.shape[:2]
    item = {"image": photo_tensor(resize_photo(image, height, width)),
            "original_size": (int(original[0]), int(original[1]))}
    if not parser_inputs:
        return item
    if person.label is None:
        raise _missing(person, "parsing")
    if person.pose is None:
        raise _missing(person, "keypoints")
    label = read_label_map(person.label, formats.label_scheme, formats.neck, max_pixels)
    _check_map_size(label, person.label, person.image, original)
    if person.densepose is not None:
        densepose = read_densepose_file(person.densepose, formats.iuv_channel, max_pixels)
        _check_map_size(densepose, person.densepose, person.image, original)
        densepose = resize_nearest(densepose, height, width)
    else:
        densepose = np.zeros((height, width), np.uint8)
    try:
        keypoints = read_keypoints_file(person.pose, original, formats.pose_format)
    except PoseFileError as error:
        raise DatasetError(str(error)) from None
    if original != (height, width):
        keypoints = scale_keypoints(keypoints, width / original[1], height / original[0])
    item.update({
        "label": torch.from_numpy(resize_nearest(label, height, width)).to(torch.int64),
        "densepose": torch.from_numpy(densepose).to(torch.int64),
        "has_densepose": torch.tensor(person.densepose is not None),
        "keypoints": torch.from_numpy(keypoints).to(torch.float32),
    })
    if person.parse_agnostic and person.densepose_rendering:
        item.update({"parse_agnostic": read_label_groups(person.parse_agnostic, height, width,
                                                         max_pixels),
                     "densepose_rendering": read_densepose_rendering(
                         person.densepose_rendering, height, width, max_pixels)})
    return item


def _mix64(value: int) -> int:
    """SplitMix64's finaliser: a 64-bit hash whose low bits are well mixed. Hashing
    (seed, epoch, index) gives a reproducible draw per sample at the cost of a few integer
    operations (a seeded numpy Generator per item costs ~0.3 ms)."""
    mask = (1 << 64) - 1
    value = (value + 0x9E3779B97F4A7C15) & mask
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
    return value ^ (value >> 31)


# ---------------------------------------------------------------------------------------------
# Datasets


class TryOnTrainDataset(torch.utils.data.Dataset):
    """Parser-based training samples of any layout (items: module docstring).

    Args:
        samples: each person with their own garment, as a layout lists them.
        height, width: size every item is returned at (other sizes are resized).
        formats: how labels, keypoints and DensePose are encoded.
        masks: where garment masks come from.
        seed: base of the unpaired-garment draw.

    The unpaired garment of sample i in epoch e is drawn uniformly among the other samples of
    i's category, from a hash of (seed, epoch, i): it does not depend on global random state,
    worker or rank. Call ``set_epoch`` each epoch.
    """

    def __init__(self, samples: Sequence[Sample], height: int, width: int,
                 formats: DataFormats = viton.FORMATS, masks: Optional[GarmentMasks] = None,
                 seed: int = 0):
        self.samples = list(samples)
        self.height, self.width = int(height), int(width)
        self.formats = formats
        self.masks = masks or GarmentMasks()
        self.seed = int(seed)
        self.epoch = 0
        groups: dict[str, list[int]] = {}
        for index, sample in enumerate(self.samples):
            groups.setdefault(sample.person.category, []).append(index)
        self._group_of = {}
        self._position = {}
        for members in groups.values():
            for position, index in enumerate(members):
                self._group_of[index] = members
                self._position[index] = position

    def __len__(self) -> int:
        return len(self.samples)

    @cached_property
    def has_densepose(self) -> bool:
        """Whether every sample has DensePose part indices (then items carry no
        'has_densepose')."""
        return all(sample.person.densepose is not None for sample in self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Select the unpaired garments of ``epoch``."""
        self.epoch = int(epoch)

    def unpaired_index(self, index: int, epoch: Optional[int] = None) -> int:
        """Index of the sample whose garment is ``index``'s unpaired garment in ``epoch``: another
        sample of the same category (itself only when it is alone in its category)."""
        members = self._group_of[index]
        count = len(members)
        if count == 1:
            return index
        epoch = self.epoch if epoch is None else epoch
        other = _mix64(_mix64(_mix64(self.seed) ^ epoch) ^ index) % (count - 1)
        position = self._position[index]
        return members[other + 1 if other >= position else other]

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        item = read_person(sample.person, self.formats, self.height, self.width,
                           max_pixels=self.masks.max_pixels)
        item.pop("original_size")
        if self.has_densepose:
            # Every sample has it: the batch says nothing, and data/inputs.py skips the
            # replacement altogether.
            item.pop("has_densepose")
        garment, edge = read_garment(sample.garment, self.masks, self.height, self.width)
        unpaired = self.samples[self.unpaired_index(index)].garment
        unpaired_garment, unpaired_edge = read_garment(unpaired, self.masks, self.height,
                                                       self.width)
        item.update({"id": sample.person.id,
                     "category": torch.tensor(category_index(sample.person.category)),
                     "garment": garment, "garment_edge": edge,
                     "unpaired_garment": unpaired_garment,
                     "unpaired_garment_edge": unpaired_edge})
        return item


# ---------------------------------------------------------------------------------------------
# Choosing a layout by name


@dataclass(frozen=True)
class DataOptions:
    """What the command line says about a dataset (the flags of ``add_data_arguments``).
    ``label_scheme`` and ``pose_format`` 'auto': the layout's own (VITON: the 14-class
    scheme; VITON-HD: CIHP; DressCode: ATR and its keypoint JSON)."""

    dataset: str = "viton"
    categories: tuple = ("upper_body",)
    label_scheme: str = "auto"
    neck: str = "skin"
    pose_format: str = "auto"
    iuv_channel: str = "b"
    densepose_dir: Optional[str] = None
    mask_cache: Optional[str] = None
    rebuild_masks: bool = False
    grabcut: bool = False
    max_megapixels: float = DEFAULT_MAX_PIXELS / 1e6

    @classmethod
    def from_config(cls, cfg) -> "DataOptions":
        """From an argparse namespace (missing flags keep their defaults)."""
        defaults = cls()
        values = {name: getattr(cfg, name, getattr(defaults, name))
                  for name in ("dataset", "label_scheme", "neck", "pose_format", "iuv_channel",
                               "densepose_dir", "mask_cache", "rebuild_masks", "grabcut",
                               "max_megapixels")}
        if values["mask_cache"] and os.path.isfile(values["mask_cache"]):
            raise DatasetError(f"--mask_cache {values['mask_cache']}: a file, not a folder")
        category = getattr(cfg, "category", None)
        held = layout(values["dataset"]).HELD_CATEGORIES
        values["categories"] = parse_categories(category, held) if category else held[:1]
        return cls(**values)

    def formats(self) -> DataFormats:
        own = layout(self.dataset).FORMATS
        scheme = own.label_scheme if self.label_scheme == "auto" else self.label_scheme
        if self.neck != "skin" and scheme != "cihp":   # LIP's 10 is jumpsuits
            raise DatasetError(f"--neck {self.neck}: only CIHP parsing has a neck, not {scheme}")
        pose_format = own.pose_format if self.pose_format == "auto" else self.pose_format
        return DataFormats(scheme, self.neck, pose_format, self.iuv_channel)

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1e6)

    def masks(self) -> GarmentMasks:
        return GarmentMasks(cache_dir=self.mask_cache, grabcut=self.grabcut,
                            max_pixels=self.max_pixels)


def layout(name: str):
    """The layout module of a dataset name: it lists ``train_samples`` and ``test_pairs``, and
    names its ``FORMATS`` and ``HELD_CATEGORIES``. Each is imported when it is named."""
    if name == "viton":
        return viton
    if name == "vitonhd":
        from data import vitonhd
        return vitonhd
    if name == "dresscode":
        from data import dresscode
        return dresscode
    raise DatasetError(f"unknown dataset layout {name!r}; expected one of {', '.join(DATASETS)}")


def train_samples(options: DataOptions, root: str,
                  problems: Optional[list] = None) -> list[Sample]:
    """The training samples of ``root`` in ``options.dataset``'s layout. Samples lacking files
    are an error, or with ``problems`` given a message appended to it (and left out)."""
    return layout(options.dataset).train_samples(root, options.categories,
                                                 options.densepose_dir, problems=problems)


def pair_samples(options: DataOptions, root: str, pairs: str = "unpaired",
                 parser_inputs: bool = False, problems: Optional[list] = None) -> list[Sample]:
    """The test pairs of ``root``: ``pairs`` is 'unpaired', 'paired' or a pairs file."""
    return layout(options.dataset).test_pairs(root, pairs, options.categories,
                                              options.densepose_dir, parser_inputs=parser_inputs,
                                              problems=problems)


def prepared_masks(options: DataOptions, samples: Sequence[Sample]) -> GarmentMasks:
    """The garment masks of ``samples``, whose cached copies ``rebuild_masks`` deletes first.
    The mask flags are refused where every garment has a mask file: they would do nothing."""
    given = [f"--{f}" for f in ("mask_cache", "rebuild_masks", "grabcut") if getattr(options, f)]
    if given and samples and all(sample.garment.mask is not None for sample in samples):
        raise DatasetError(f"{', '.join(given)}: every garment has a mask file (as in "
                           f"{os.path.dirname(samples[0].garment.mask)}), so no mask is "
                           f"computed and the flag would do nothing; leave it out")
    masks = options.masks()
    if options.rebuild_masks:
        masks.forget([sample.garment for sample in samples])
    return masks


def unused_iuv_channel(options: DataOptions, samples) -> Optional[str]:
    """A note when ``--iuv_channel`` is set but no DensePose file of ``samples`` is an IUV PNG
    (said, not refused: a configuration file may set it for several datasets)."""
    if options.iuv_channel != "b" and not any(
            str(sample.person.densepose).lower().endswith(".png") for sample in samples):
        return (f"--iuv_channel {options.iuv_channel} is not used: no DensePose file here is an "
                f"IUV image (a PNG)")
    return None


def make_train_dataset(options: DataOptions, root: str, height: int, width: int,
                       seed: int = 0, max_samples: int = 0) -> TryOnTrainDataset:
    samples = train_samples(options, root)[:max_samples or None]   # 0: all of them
    return TryOnTrainDataset(samples, height, width, options.formats(),
                             prepared_masks(options, samples), seed)


PARSING_FLAGS = ("label_scheme", "neck", "pose_format", "iuv_channel", "densepose_dir")
READS_NO_PARSING = ("this command reads no parsing, keypoints or DensePose (the parser-free "
                    "try-on needs the photos, garments and garment masks only)")


MASK_FLAGS = ("mask_cache", "rebuild_masks", "grabcut")


def add_data_arguments(parser, root: str = "--dataroot", parsing: bool = True,
                       masks: Sequence[str] = MASK_FLAGS, no_masks: str = "") -> None:
    """The dataset flags of the folder the flag ``root`` names; ``parsing``: with the flags of
    how parsing, keypoints and DensePose are read (a tool that reads none has none); ``masks``:
    the flags of computed garment masks it takes, the others refused with ``no_masks`` (what
    they are for, which the tool does not do) and left out of its help."""
    parser.add_argument("--dataset", default="viton", choices=DATASETS,
                        help=f"layout of {root}: viton (VITON_traindata / VITON_test), "
                             "vitonhd (the top folder holding train/ and test/), dresscode "
                             "(the top folder holding upper_body/, lower_body/, dresses/)")
    parser.add_argument("--category", default=None,
                        help="garment categories, comma-separated: upper_body, lower_body, "
                             "dresses, or all; when not given, upper_body (a VITON-layout folder "
                             "holds one, VITON-HD only upper_body)")
    if parsing:
        _add_parsing_arguments(parser)
    else:   # each refused with what it is for, not argparse's "unrecognized arguments"
        refuse_flags(parser, {f"--{flag}": READS_NO_PARSING for flag in PARSING_FLAGS})
    if "mask_cache" in masks:
        parser.add_argument("--mask_cache", default=None,
                            help="folder for garment masks computed from product photos; when "
                                 "not given, $PFAFN_CACHE/garment_masks, or "
                                 "~/.cache/pfafn/garment_masks")
    if "rebuild_masks" in masks:
        parser.add_argument("--rebuild_masks", action="store_true",
                            help="compute cached garment masks again")
    if "grabcut" in masks:
        parser.add_argument("--grabcut", action="store_true",
                            help="refine computed garment masks with OpenCV's GrabCut (slower)")
    refuse_flags(parser, {f"--{flag}": no_masks for flag in MASK_FLAGS if flag not in masks})
    parser.set_defaults(**{flag: None if flag == "mask_cache" else False
                           for flag in MASK_FLAGS if flag not in masks})
    add_max_megapixels_argument(parser)


def _megapixels(text: str) -> float:
    value = positive_limit(text)
    if value > MAX_MEGAPIXELS:
        raise argparse.ArgumentTypeError(f"at most {MAX_MEGAPIXELS}, what Pillow opens, got "
                                         f"{text!r}")
    return value


def add_max_megapixels_argument(parser) -> None:
    """``--max_megapixels``, the limit every image reader holds (``max_pixels`` in MP)."""
    parser.add_argument("--max_megapixels", type=_megapixels, default=DEFAULT_MAX_PIXELS / 1e6,
                        help="largest image read, in megapixels (width x height / 1e6): larger "
                             "files are refused before they are decoded, whatever their size "
                             "on disk")


def _add_parsing_arguments(parser) -> None:
    parser.add_argument("--label_scheme", default="auto", choices=("auto",) + LABEL_SCHEMES,
                        help="scheme of the parsing files, converted to the 14-class scheme "
                             "(auto: the layout's, viton / cihp / atr)")
    parser.add_argument("--neck", default="skin", choices=NECK_CHOICES, help=NECK_HELP)
    parser.add_argument("--pose_format", default="auto", choices=POSE_FORMATS,
                        help="keypoint files: auto-detected OpenPose COCO-18 / BODY_25, COCO-17 "
                             "(mmpose, RTMPose, DWPose) or DressCode")
    parser.add_argument("--iuv_channel", default="b", choices=IUV_CHANNELS,
                        help="channel of DensePose IUV PNGs holding the part index I (OpenCV "
                             "wrote DensePose's own as BGR: b)")
    parser.add_argument("--densepose_dir", default=None,
                        help="VITON-HD: a folder of DensePose part indices ({stem}.npy or "
                             ".png) to use instead of the documented replacement (VITON-HD "
                             "ships only a colour rendering)")
