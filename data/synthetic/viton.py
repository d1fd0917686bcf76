"""Writing samples in the VITON layout (VITON_traindata, VITON_test): labels in the 14-class
scheme, DensePose as part indices (.npy), COCO-18 keypoints in OpenPose's old JSON."""

import os

import numpy as np

from data.synthetic.writing import flat_points, write_image, write_json

TRAIN_FOLDERS = ("train_img", "train_color", "train_edge", "train_label", "train_pose",
                 "train_densepose")
TEST_FOLDERS = ("test_img", "test_clothes", "test_edge", "test_label", "test_pose",
                "test_densepose")


def _write_person(root, split, name, sample):
    """The person's photo, parsing, DensePose and keypoints of ``split`` ("train", "test")."""
    write_image(os.path.join(root, f"{split}_img", f"{name}_0.jpg"), sample["image"])
    write_image(os.path.join(root, f"{split}_label", f"{name}_0.png"), sample["label"])
    np.save(os.path.join(root, f"{split}_densepose", f"{name}_0.npy"), sample["densepose"])
    write_json(os.path.join(root, f"{split}_pose", f"{name}_0_keypoints.json"),
               {"version": 1.0, "people": [{"pose_keypoints": flat_points(sample["keypoints"])}]})


def write_train_sample(root: str, name: str, sample: dict) -> None:
    """One sample of VITON_traindata (labels in the 14-class scheme)."""
    write_image(os.path.join(root, "train_color", f"{name}_1.jpg"), sample["garment"])
    write_image(os.path.join(root, "train_edge", f"{name}_1.jpg"), sample["edge"])
    _write_person(root, "train", name, sample)


def write_test_sample(root: str, name: str, sample: dict) -> None:
    """One sample of VITON_test: photo, garment, garment mask, and the person's parsing,
    keypoints and DensePose (as the original VITON test set has them; validation of the
    parser-based stages reads them, test.py does not)."""
    write_image(os.path.join(root, "test_clothes", f"{name}_1.jpg"), sample["garment"])
    write_image(os.path.join(root, "test_edge", f"{name}_1.jpg"), sample["edge"])
    _write_person(root, "test", name, sample)
