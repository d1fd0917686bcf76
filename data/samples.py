"""What a dataset is made of, before anything is read: garment categories, the encodings of a
layout's files, and the files of one person and one garment.

The layout modules (``data/viton.py``, ``data/vitonhd.py``, ``data/dresscode.py``) list
``Sample``s of these; ``data/datasets.py`` reads them. This module reads nothing.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

from data.files import DatasetError

# Garment categories (DATASETS.md section 6). A sample's category is an index into this tuple
# (``batch['category']``); ``data/inputs.py`` keeps its per-category tables in this order.
CATEGORIES = ("upper_body", "lower_body", "dresses")


def category_index(name: str) -> int:
    if name not in CATEGORIES:
        raise DatasetError(f"unknown garment category {name!r}; expected one of "
                           f"{', '.join(CATEGORIES)}")
    return CATEGORIES.index(name)


def parse_categories(text: str, available: Sequence[str] = CATEGORIES) -> tuple[str, ...]:
    """'upper_body,dresses' or 'all' -> ('upper_body', 'dresses'), checked against the
    categories ``available`` in a layout."""
    names = list(available) if text.strip() == "all" else [
        part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in available]
    if unknown or not names:
        raise DatasetError(f"--category {text!r}: expected a comma-separated subset of "
                           f"{', '.join(available)} (or 'all')")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class DataFormats:
    """How a layout's files are encoded: the parsing's label scheme (``data.labels``), the
    target of CIHP's neck, the keypoint format (``data.pose``) and which channel of an IUV
    image holds DensePose's part index (``data.densepose``)."""

    label_scheme: str = "viton"
    neck: str = "skin"
    pose_format: str = "auto"
    iuv_channel: str = "b"


@dataclass(frozen=True)
class PersonFiles:
    """One person's files. ``label``, ``pose`` and ``densepose`` are None where a layout (or a
    test set) has none; ``id`` is shared with the person's own garment. ``parse_agnostic`` and
    ``densepose_rendering``: VITON-HD's ``image-parse-agnostic-v3.2`` labels and
    ``image-densepose`` rendering, DCI-VTON's warp condition, where the layout has them."""

    id: str
    image: str
    label: Optional[str] = None
    pose: Optional[str] = None
    densepose: Optional[str] = None
    category: str = "upper_body"
    parse_agnostic: Optional[str] = None
    densepose_rendering: Optional[str] = None


@dataclass(frozen=True)
class GarmentFiles:
    """A product photo and its mask (None: computed from the photo and cached)."""

    id: str
    image: str
    mask: Optional[str] = None
    category: str = "upper_body"


@dataclass(frozen=True)
class Sample:
    person: PersonFiles
    garment: GarmentFiles


def next_garments(samples: Sequence[Sample]) -> list[Sample]:
    """Each person in the next sample's garment (the last in the first's): unpaired pairs."""
    return [Sample(s.person, g.garment) for s, g in zip(samples, samples[1:] + samples[:1])]
