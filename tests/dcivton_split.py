"""A tiny VITON-HD test split with every file DCI-VTON's dataset class reads, for the golden
pre-warps of tests/golden/dcivton/ and the test that compares scripts/prewarp.py with them.

``make_dcivton_split(out)``: ``data.synthetic.make_dataset(out, 0, 3, seed=0, height=1024,
width=768, layout='vitonhd', backdrop='tinted')`` (photos of VITON-HD's size: DCI-VTON's
dataset class draws its arm masks on a 768x1024 canvas; the backdrop the golden pre-warps were
made with), plus ``image-parse-agnostic-v3.2/{stem}.png``: the CIHP
parsing with the garment, the arms and the neck (labels 5, 6, 7, 10, 14, 15) set to background,
as a palette PNG like the parsing.
"""

import os

import numpy as np
from PIL import Image

from data.dcivton import AGNOSTIC_FOLDER
from data.synthetic import make_dataset

REMOVED_LABELS = (5, 6, 7, 10, 14, 15)


def write_parse_agnostic(split_root: str) -> None:
    """``image-parse-agnostic-v3.2/`` of a split, from its ``image-parse-v3/``."""
    source = os.path.join(split_root, "image-parse-v3")
    target = os.path.join(split_root, AGNOSTIC_FOLDER)
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(source)):
        parsing = Image.open(os.path.join(source, name))
        labels = np.array(parsing)
        labels[np.isin(labels, REMOVED_LABELS)] = 0
        agnostic = Image.fromarray(labels.astype(np.uint8), "P")
        agnostic.putpalette(parsing.getpalette())
        agnostic.save(os.path.join(target, name))


def make_dcivton_split(out: str) -> str:
    """The VITON-HD root (holding ``test/`` and ``test_pairs.txt``) written under ``out``."""
    roots = make_dataset(out, 0, 3, seed=0, height=1024, width=768, layout="vitonhd",
                         backdrop="tinted")
    write_parse_agnostic(roots["test"])
    return roots["root"]
