"""Writing samples in the VITON-HD layout: CIHP parsing as a palette PNG, OpenPose BODY_25
JSON and its rendering, DensePose as a colour picture."""

import os
from typing import Dict

import numpy as np

from data.pose import BODY25_TO_COCO18
from data.synthetic.regions import scheme_labels
from data.synthetic.renderings import draw_skeleton, render_densepose
from data.synthetic.writing import flat_points, write_image, write_json, write_palette_png

VITONHD_FOLDERS = dict(image="image", cloth="cloth", cloth_mask="cloth-mask",
                       parse="image-parse-v3", pose_json="openpose_json",
                       pose_image="openpose_img", densepose="image-densepose")
# Older copies of the dataset spell three folders so.
VITONHD_OLD_FOLDERS = dict(VITONHD_FOLDERS, parse="image-parse", pose_json="openpose-json",
                           pose_image="openpose-img")


def vitonhd_folders(old_names: bool = False) -> Dict[str, str]:
    """Folder names of a VITON-HD split, by role (image, cloth, cloth_mask, parse, pose_json,
    pose_image, densepose)."""
    return dict(VITONHD_OLD_FOLDERS if old_names else VITONHD_FOLDERS)


def body25_keypoints(keypoints: np.ndarray, feet: np.ndarray) -> np.ndarray:
    """COCO-18 (18, 3) and the feet (6, 3) -> OpenPose BODY_25 (25, 3): COCO-18 with the
    mid-hip inserted at 8 (the hips' midpoint, seen when both hips are, with the lower of their
    confidences) and the feet appended at 19..24."""
    body = np.zeros((25, 3))
    body[list(BODY25_TO_COCO18)] = keypoints
    right_hip, left_hip = keypoints[8], keypoints[11]
    if right_hip[2] > 0 and left_hip[2] > 0:
        body[8, :2] = (right_hip[:2] + left_hip[:2]) / 2
        body[8, 2] = min(right_hip[2], left_hip[2])
    body[19:] = feet
    return body


def _openpose_document(body25: np.ndarray) -> dict:
    """OpenPose 1.3's JSON of one person with BODY_25 points (25, 3) and nothing else."""
    return {"version": 1.3, "people": [{
        "person_id": [-1], "pose_keypoints_2d": flat_points(body25), "face_keypoints_2d": [],
        "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": [],
        "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}]}


def write_vitonhd_sample(split_root: str, name: str, sample: dict, old_names: bool = False) -> None:
    """One sample of a VITON-HD split (``train/`` or ``test/``), id ``name`` like 00000_00."""
    folders = vitonhd_folders(old_names)

    def path(role, suffix):
        return os.path.join(split_root, folders[role], name + suffix)

    height, width = sample["label"].shape
    write_image(path("image", ".jpg"), sample["image"])
    write_image(path("cloth", ".jpg"), sample["garment"])
    write_image(path("cloth_mask", ".jpg"), sample["edge"])
    write_palette_png(path("parse", ".png"), scheme_labels(sample["regions"], "cihp"))
    write_json(path("pose_json", "_keypoints.json"),
               _openpose_document(body25_keypoints(sample["keypoints"], sample["feet"])))
    write_image(path("pose_image", "_rendered.png"),
                draw_skeleton(sample["keypoints"], height, width, sample["feet"]))
    write_image(path("densepose", ".jpg"), render_densepose(sample["densepose"]))
