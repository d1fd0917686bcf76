"""Writing samples in the DressCode layout: one folder per category, 6-digit ids, ATR labels
as a grey PNG, keypoints in a 384x512 frame, DensePose part indices and stand-in UV."""

import os
from typing import Dict, Sequence

import numpy as np

from data.synthetic.regions import checked_categories, scheme_labels
from data.synthetic.renderings import draw_skeleton
from data.synthetic.writing import write_image, write_json

DRESSCODE_FOLDERS = ("images", "keypoints", "label_maps", "skeletons", "dense")
# DressCode's keypoints are given in a frame 384 wide and 512 high, whatever the photo's size.
DRESSCODE_KEYPOINT_WIDTH, DRESSCODE_KEYPOINT_HEIGHT = 384, 512
# A point the pose estimator did not see: x and y -1, score 0 (then its id).
DRESSCODE_MISSING = (-1.0, -1.0, 0.0)
# First id of each category, as DressCode numbers them; a category starts after the previous
# one's last id when more samples are asked for than fit in between.
DRESSCODE_FIRST_ID = dict(upper_body=0, lower_body=13563, dresses=20714)


def dresscode_first_ids(categories: Sequence[str], count: int) -> Dict[str, int]:
    """First id of each category when each holds ``count`` samples: DressCode's own first ids
    (DRESSCODE_FIRST_ID) while they leave room, else right after the previous category's last
    id, so ids never overlap. Raises ValueError past 6 digits."""
    firsts, next_id = {}, 0
    for category in checked_categories(categories):
        firsts[category] = max(DRESSCODE_FIRST_ID[category], next_id)
        next_id = firsts[category] + count
    if next_id > 10 ** 6:
        raise ValueError(f"DressCode ids have 6 digits: {count} samples per category do not fit")
    return firsts


def dresscode_keypoints(keypoints: np.ndarray, height: int, width: int) -> list:
    """COCO-18 (18, 3) in the photo's pixels -> DressCode's 18 rows [x, y, score, id], x scaled
    by 384 / width and y by 512 / height; unseen points are DRESSCODE_MISSING + [id]."""
    rows = []
    for index, (x, y, score) in enumerate(keypoints):
        if score > 0:
            rows.append([round(float(x) * DRESSCODE_KEYPOINT_WIDTH / width, 4),
                         round(float(y) * DRESSCODE_KEYPOINT_HEIGHT / height, 4),
                         round(float(score), 4), float(index)])
        else:
            rows.append(list(DRESSCODE_MISSING) + [float(index)])
    return rows


def densepose_uv(densepose: np.ndarray) -> np.ndarray:
    """Stand-in DensePose surface coordinates: float32 (2, H, W) U, V in [0, 1] on the body
    (the pixel's position across the image), 0 on the background."""
    height, width = densepose.shape
    body = (densepose > 0).astype(np.float32)
    u = np.linspace(0, 1, width, dtype=np.float32)[None, :] * body
    v = np.linspace(0, 1, height, dtype=np.float32)[:, None] * body
    return np.stack([u, v])


def write_dresscode_sample(category_root: str, name: str, sample: dict) -> None:
    """One sample of a DressCode category folder, id ``name`` like 013563."""
    height, width = sample["label"].shape

    def path(folder, suffix):
        return os.path.join(category_root, folder, name + suffix)

    write_image(path("images", "_0.jpg"), sample["image"])
    write_image(path("images", "_1.jpg"), sample["garment"])
    write_json(path("keypoints", "_2.json"),
               {"keypoints": dresscode_keypoints(sample["keypoints"], height, width)})
    write_image(path("label_maps", "_4.png"), scheme_labels(sample["regions"], "atr"))
    write_image(path("skeletons", "_5.jpg"), draw_skeleton(sample["keypoints"], height, width))
    write_image(path("dense", "_5.png"), sample["densepose"])
    np.savez_compressed(path("dense", "_5_uv.npz"), uv=densepose_uv(sample["densepose"]))
