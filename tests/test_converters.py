"""Converters of what outside tools write: parsing schemes, keypoint formats, DensePose files,
the dataset hooks that use them, and scripts/convert_data.py. Every input is written by hand
here (PIL / numpy / json); expected values are spelled out, not derived from the tables."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data.datasets import DataOptions, train_samples, unused_iuv_channel
from data.densepose import read_densepose_file
from data.files import DatasetError
from data.labels import (
    ATR_TO_VITON,
    LABEL_SCHEMES,
    LIP_TO_VITON,
    LabelError,
    convert_labels,
    label_table,
    read_label_map,
)
from data.pose import PoseFileError, parse_keypoints, read_keypoints_file
from data.viton_dataset import VitonTrainDataset
from options import parse_config
from scripts import convert_data
from train_pb_warp import ParserBasedWarp

# Expected 14-class label of every source label, as DATASETS.md section 4 lists them; CIHP's
# neck (10) goes to 3, the neck skin the generator repaints (DATASETS.md section 6).
EXPECTED = {
    "lip": [0, 1, 1, 7, 12, 4, 4, 4, 7, 8, 7, 7, 8, 12, 11, 13, 9, 10, 5, 6],
    "cihp": [0, 1, 1, 7, 12, 4, 4, 4, 7, 8, 3, 7, 8, 12, 11, 13, 9, 10, 5, 6],
    "atr": [0, 1, 1, 12, 4, 8, 8, 4, 8, 5, 6, 12, 9, 10, 11, 13, 2, 11],
    "viton": list(range(14)),
}


def save_grey(path, array):
    Image.fromarray(np.asarray(array, np.uint8), mode="L").save(path)
    return str(path)


def save_palette(path, array):
    """Palette PNG whose colours are unrelated to the indices, as CIHP_PGN / SCHP write them."""
    image = Image.fromarray(np.asarray(array, np.uint8), mode="P")
    image.putpalette([v for i in range(256) for v in ((37 * i) % 256, 255 - i, (91 * i) % 256)])
    image.save(path)
    return str(path)


def every_value_map(count):
    """(3, 2 * count) labels: each source value 0..count-1 in two columns, rows repeated."""
    return np.repeat(np.arange(count, dtype=np.uint8), 2)[None].repeat(3, axis=0)


# ---------------------------------------------------------------------------------------------
# Labels


@pytest.mark.parametrize("scheme", LABEL_SCHEMES)
@pytest.mark.parametrize("save", [save_grey, save_palette], ids=["grey", "palette"])
def test_every_source_value_converts(tmp_path, scheme, save):
    count = len(EXPECTED[scheme])
    path = save(tmp_path / f"{scheme}.png", every_value_map(count))
    converted = read_label_map(path, scheme)
    assert converted.dtype == np.uint8 and converted.shape == (3, 2 * count)
    np.testing.assert_array_equal(converted[:, ::2], converted[:, 1::2])
    assert converted[0, ::2].tolist() == EXPECTED[scheme]
    assert (converted == converted[0]).all()


def test_tables_are_the_documented_ones():
    assert label_table("lip") == dict(enumerate(EXPECTED["lip"])) == LIP_TO_VITON
    assert label_table("atr") == dict(enumerate(EXPECTED["atr"])) == ATR_TO_VITON
    assert label_table("cihp") == dict(enumerate(EXPECTED["cihp"]))
    assert label_table("viton") == {i: i for i in range(14)}


@pytest.mark.parametrize("neck, target", [("skin", 3), ("face", 12), ("garment", 7),
                                          ("background", 0)])
def test_cihp_neck_choice(tmp_path, neck, target):
    labels = np.array([[10, 10, 13, 5], [10, 0, 15, 14]], np.uint8)
    path = save_palette(tmp_path / "cihp.png", labels)
    converted = read_label_map(path, "cihp", neck=neck)
    assert converted.tolist() == [[target, target, 12, 4], [target, 0, 13, 11]]
    # LIP's 10 is jumpsuits: noise whatever the neck choice.
    assert read_label_map(path, "lip", neck=neck)[0, 0] == 7


def test_neck_is_refused_for_labels_without_a_neck_class(capsys):
    # It was accepted and did nothing on VITON's 14 classes, LIP's and ATR's.
    assert DataOptions(dataset="vitonhd", neck="face").formats().neck == "face"
    assert DataOptions(dataset="viton", label_scheme="cihp", neck="garment").formats().neck
    assert DataOptions(dataset="viton").formats().neck == "skin"
    for options in (DataOptions(neck="face"), DataOptions(dataset="dresscode", neck="garment"),
                    DataOptions(dataset="vitonhd", label_scheme="lip", neck="background")):
        with pytest.raises(DatasetError, match="only CIHP parsing has a neck, not"):
            options.formats()
    with pytest.raises(SystemExit, match="2"):
        convert_data.main(["labels", "--src", ".", "--out", "x", "--scheme", "lip", "--neck",
                           "face"])
    assert "only CIHP parsing has a neck class, not lip" in capsys.readouterr().err


def test_unknown_label_names_the_file(tmp_path):
    labels = np.zeros((4, 4), np.uint8)
    labels[1, 1], labels[2, 2] = 20, 37
    path = save_grey(tmp_path / "person_0.png", labels)
    with pytest.raises(DatasetError, match=r"person_0.png: label values \[20, 37\] outside the "
                                           r"CIHP scheme 0..19"):
        read_label_map(path, "cihp")
    labels[1, 1], labels[2, 2] = 18, 0
    path = save_palette(tmp_path / "atr_0.png", labels)
    with pytest.raises(DatasetError, match=r"atr_0.png: label values \[18\] outside the ATR"):
        read_label_map(path, "atr")
    assert read_label_map(path, "lip")[1, 1] == 5          # 18 is LIP's left shoe
    with pytest.raises(DatasetError, match=r"atr_0.png: label values \[18\] outside the "
                                           r"parsing scheme 0..13"):
        read_label_map(path, "viton")


def test_rgb_labels_need_equal_channels(tmp_path):
    labels = np.array([[0, 5], [13, 19]], np.uint8)
    path = str(tmp_path / "rgb.png")
    Image.fromarray(np.stack([labels] * 3, -1)).save(path)
    assert read_label_map(path, "lip").tolist() == [[0, 4], [12, 6]]
    Image.fromarray(np.stack([labels, labels, labels + 1], -1)).save(path)
    with pytest.raises(DatasetError, match="rgb.png: label image in mode RGB has differing"):
        read_label_map(path, "lip")


def test_convert_labels_reports_unknown_values():
    table = {0: 0, 1: 4, 2: 12}
    converted = convert_labels(np.array([[2, 1], [0, 2]], np.int64), table)
    assert converted.tolist() == [[12, 4], [0, 12]]
    assert convert_labels(np.array([2, 1, 0], np.int64), table).dtype == np.uint8
    with pytest.raises(LabelError, match=r"labels/x.png: label values \[-1, 3, 300\] are not in"):
        convert_labels(np.array([0, 3, 300, -1, 1]), table, "labels/x.png")
    with pytest.raises(LabelError, match=r"x: label values \[3\]"):
        convert_labels(np.array([[0, 3]], np.uint8), table, "x")
    with pytest.raises(ValueError, match="neck='collar'"):
        label_table("cihp", neck="collar")
    with pytest.raises(ValueError, match="label scheme 'pascal'"):
        label_table("pascal")


# ---------------------------------------------------------------------------------------------
# Keypoints: one hand-written COCO-18 pose, written in every accepted format

# COCO-18: nose, neck, right shoulder/elbow/wrist, left shoulder/elbow/wrist, right hip/knee/
# ankle, left hip/knee/ankle, right/left eye, right/left ear. The neck is the midpoint of the
# shoulders with the lower of their scores (what COCO-17 inputs must reproduce); the left
# ankle and the left ear are missing.
POSE = np.array([
    [96, 40, 0.91], [96, 70, 0.8], [70, 70, 0.8], [60, 110, 0.7], [56, 150, 0.6],
    [122, 70, 0.85], [132, 110, 0.75], [136, 150, 0.65], [80, 160, 0.9], [78, 200, 0.8],
    [76, 240, 0.7], [112, 160, 0.9], [114, 200, 0.8], [0, 0, 0], [90, 34, 0.95],
    [102, 34, 0.93], [84, 38, 0.5], [0, 0, 0]], dtype=np.float64)
# COCO-17 (left first): nose, left/right eye, left/right ear, left/right shoulder, elbow,
# wrist, hip, knee, ankle, as COCO-18 indices.
COCO17_AS_COCO18 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def coco17_points(pose=POSE):
    return pose[COCO17_AS_COCO18].copy()


def body25_points(pose=POSE):
    body = np.zeros((25, 3))
    body[:8] = pose[:8]
    body[8] = (96, 160, 0.9)                 # mid hip, not a COCO-18 point
    body[9:19] = pose[8:18]
    body[19:] = (50, 250, 0.4)               # feet
    return body


def write_json(path, document):
    with open(path, "w") as handle:
        json.dump(document, handle)
    return str(path)


def mmpose_instance(points, missing_score=0.0):
    """An mmpose instance: every point has coordinates; a missing one only a zero score."""
    xy = np.where(points[:, 2:] > 0, points[:, :2], (33.0, 44.0))
    scores = np.where(points[:, 2] > 0, points[:, 2], missing_score)
    return {"keypoints": xy.tolist(), "keypoint_scores": scores.tolist(),
            "bbox": [[10.0, 20.0, 150.0, 250.0]], "bbox_score": 0.97}


def pose_files(folder, size=(1024, 768)):
    """The pose written in each accepted layout -> {name: path}. DressCode's is in its
    384 x 512 frame for a photo of ``size`` (H, W)."""
    stray = coco17_points()
    stray[:, :2] += 5
    stray[:, 2] = np.where(stray[:, 2] > 0, 0.1, 0)           # a low-scoring second person
    dresscode = np.concatenate([POSE, np.arange(18)[:, None]], axis=1)
    dresscode[:, 0] *= 384 / size[1]
    dresscode[:, 1] *= 512 / size[0]
    dresscode[13] = (-1, -1, 0, 13)                            # missing: negative, score 0
    dresscode[17] = (0, 0, 0, 17)                              # missing: zeros
    documents = {
        "openpose18": {"version": 1.0, "people": [{"pose_keypoints": POSE.ravel().tolist()}]},
        "body25": {"version": 1.3,
                   "people": [{"pose_keypoints_2d": body25_points().ravel().tolist(),
                               "face_keypoints_2d": []}]},
        "openpose17": {"people": [{"pose_keypoints_2d": coco17_points().ravel().tolist()}]},
        "mmpose_list": [mmpose_instance(stray), mmpose_instance(coco17_points())],
        "mmpose_demo": {"meta_info": {"dataset_name": "coco"},
                        "instance_info": [mmpose_instance(coco17_points())]},
        "mmpose_inferencer": {"predictions": [[mmpose_instance(coco17_points()),
                                               mmpose_instance(stray)]], "visualization": []},
        "mmpose_video": [{"frame_id": 0, "instances": [mmpose_instance(coco17_points())]}],
        "wholebody": [mmpose_instance(np.concatenate(
            [coco17_points(), np.tile([[40.0, 50.0, 0.3]], (116, 1))]))],
        "dresscode": {"keypoints": dresscode.tolist()},
    }
    return {name: write_json(os.path.join(folder, f"{name}.json"), doc)
            for name, doc in documents.items()}


def test_every_pose_format_reads_to_the_same_points(tmp_path):
    files = pose_files(str(tmp_path), size=(1024, 768))
    for name, path in files.items():
        points = read_keypoints_file(path, image_size=(1024, 768))
        assert points.dtype == np.float64 and points.shape == (18, 3), name
        np.testing.assert_allclose(points, POSE, rtol=0, atol=1e-9, err_msg=name)


def test_forced_formats(tmp_path):
    files = pose_files(str(tmp_path), size=(512, 384))
    assert np.allclose(read_keypoints_file(files["openpose18"], pose_format="openpose"), POSE)
    assert np.allclose(read_keypoints_file(files["mmpose_list"], pose_format="coco17"), POSE)
    assert np.allclose(read_keypoints_file(files["openpose17"], pose_format="coco17"), POSE)
    assert np.allclose(read_keypoints_file(files["dresscode"], (512, 384), "dresscode"), POSE)
    with pytest.raises(PoseFileError, match="openpose17.json: 17 keypoints fit no accepted "
                                            "format; expected 18 .COCO. or 25"):
        read_keypoints_file(files["openpose17"], pose_format="openpose")
    with pytest.raises(PoseFileError, match="openpose18.json: 18 keypoints .* expected 17"):
        read_keypoints_file(files["openpose18"], pose_format="coco17")
    with pytest.raises(PoseFileError, match="mmpose_list.json: no 'people' list"):
        read_keypoints_file(files["mmpose_list"], pose_format="openpose")
    with pytest.raises(PoseFileError, match="dresscode.json: DressCode keypoints .* not "
                                            "pose_format 'coco17'"):
        read_keypoints_file(files["dresscode"], pose_format="coco17")
    with pytest.raises(PoseFileError, match="body25.json: an OpenPose document"):
        read_keypoints_file(files["body25"], (512, 384), pose_format="dresscode")
    with pytest.raises(ValueError, match="pose_format='posenet'"):
        read_keypoints_file(files["body25"], pose_format="posenet")


def test_dresscode_scale_and_size(tmp_path):
    dresscode = np.zeros((18, 4))
    dresscode[:, 3] = np.arange(18)
    dresscode[0] = (192, 256, 0.9, 0)            # the centre of the 384 x 512 frame
    dresscode[1] = (96, 0, 0.8, 1)               # y = 0: missing
    dresscode[2] = (96, 128, 0.0, 2)             # score 0: missing
    path = write_json(tmp_path / "013563_2.json", {"keypoints": dresscode.tolist()})
    points = read_keypoints_file(path, image_size=(1000, 600))
    assert points[0].tolist() == [300.0, 500.0, 0.9]
    assert points[1].tolist() == [0, 0, 0] and points[2].tolist() == [0, 0, 0]
    with pytest.raises(PoseFileError, match="013563_2.json: DressCode keypoints are in a "
                                            "512x384 frame .height x width.; the person "
                                            "photo's size is needed"):
        read_keypoints_file(path)


def test_coco17_neck_needs_both_shoulders():
    points = coco17_points()
    points[6] = (70, 70, 0.0)                    # right shoulder unseen (COCO-17 index 6)
    coco18 = parse_keypoints([mmpose_instance(points)])[0]
    assert coco18[1].tolist() == [0, 0, 0] and coco18[2].tolist() == [0, 0, 0]
    assert coco18[5].tolist() == [122, 70, 0.85]
    low = parse_keypoints([mmpose_instance(coco17_points())], min_score=0.7)[0]
    assert low[3].tolist() == [0, 0, 0] and low[6].tolist() == [132, 110, 0.75]  # 0.7 dropped
    assert low[1].tolist() == [96, 70, 0.8]


@pytest.mark.parametrize("document, message", [
    ({"people": [{"pose_keypoints_2d": [1.0] * 30}]},
     r"bad.json: 10 keypoints fit no accepted format; expected 18 \(COCO-18\), 25"),
    ([{"keypoints": [[1.0, 2.0]] * 20, "keypoint_scores": [0.5] * 20}],
     r"bad.json: 20 keypoints fit no accepted format; expected 17 \(COCO-17\) or 133"),
    ([{"keypoints": [[1.0, 2.0]] * 17, "keypoint_scores": [0.5] * 16}],
     "bad.json: 17 keypoints but 16 keypoint_scores"),
    ({"keypoints": [[1.0, 2.0, 1.0, 0]] * 17}, "bad.json: 17 DressCode keypoints; expected 18"),
    ({"people": [{"pose_keypoints": [float("nan")] * 54}]}, "bad.json: keypoints contain NaN"),
    ([{"keypoints": [[float("nan"), 2.0]] * 17, "keypoint_scores": [0.5] * 17}],
     "bad.json: instance keypoints contain NaN"),
    ({"keypoints": [[1.0, 2.0, 1.0, 0]] * 17 + [[float("nan"), 1, 1, 17]]},
     "bad.json: DressCode keypoints contain NaN"),
    ({"pose": []}, "bad.json: no 'people', 'keypoints'"),
    ("text", "bad.json: a JSON str, not a keypoint document"),
])
def test_bad_pose_files_name_the_file(tmp_path, document, message):
    path = write_json(tmp_path / "bad.json", document)
    with pytest.raises(PoseFileError, match=message):
        read_keypoints_file(path, image_size=(512, 384))


def test_unreadable_pose_files(tmp_path):
    with pytest.raises(PoseFileError, match="gone.json: cannot read"):
        read_keypoints_file(str(tmp_path / "gone.json"))
    (tmp_path / "cut.json").write_text('[{"keypoints": [[1, 2]')
    with pytest.raises(PoseFileError, match="cut.json: malformed JSON"):
        read_keypoints_file(str(tmp_path / "cut.json"))


def test_no_person_gives_no_keypoints(tmp_path):
    for document in ({"people": []}, [], {"instance_info": []}):
        path = write_json(tmp_path / "empty.json", document)
        assert read_keypoints_file(path).tolist() == [[0.0, 0.0, 0.0]] * 18


# ---------------------------------------------------------------------------------------------
# DensePose

PARTS = np.array([[0, 1, 2, 3], [4, 15, 16, 24], [22, 23, 0, 9]], np.uint8)


def iuv_image(parts=PARTS):
    """An IUV image as DensePose writes it, read back as RGB: I in blue, U in green, V in red."""
    u = np.full(parts.shape, 200, np.uint8)
    v = (np.arange(parts.size, dtype=np.uint8).reshape(parts.shape) * 7 + 1) % 25
    return np.stack([v, u, parts], axis=-1)


def test_densepose_files(tmp_path):
    np.save(tmp_path / "a.npy", PARTS.astype(np.int64))
    save_grey(tmp_path / "b.png", PARTS)
    save_palette(tmp_path / "c.png", PARTS)
    Image.fromarray(np.stack([PARTS] * 3, -1)).save(tmp_path / "d.png")   # grey as RGB
    Image.fromarray(iuv_image()).save(tmp_path / "e.png")
    for name in "abcde":
        parts = read_densepose_file(str(tmp_path / f"{name}.{'npy' if name == 'a' else 'png'}"))
        assert parts.dtype == np.uint8
        np.testing.assert_array_equal(parts, PARTS, err_msg=name)


def test_iuv_channel_choice(tmp_path):
    path = str(tmp_path / "iuv.png")
    Image.fromarray(iuv_image()).save(path)
    red = iuv_image()[:, :, 0]
    assert red.max() <= 24
    np.testing.assert_array_equal(read_densepose_file(path, iuv_channel="r"), red)
    with pytest.raises(DatasetError, match=r"iuv.png: DensePose values range 200..200, outside "
                                           r"0..24 in channel 'g' of this IUV image"):
        read_densepose_file(path, iuv_channel="g")
    # I written in red instead (an IUV image saved in RGB order).
    Image.fromarray(iuv_image()[:, :, ::-1]).save(path)
    np.testing.assert_array_equal(read_densepose_file(path, iuv_channel="r"), PARTS)
    with pytest.raises(ValueError, match="iuv_channel='i'"):
        read_densepose_file(path, iuv_channel="i")


def test_bad_densepose_files_name_the_file(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(DatasetError, match=r"cube.npy: DensePose array has shape \(3, 4, 5\)"):
        read_densepose_file(str(tmp_path / "cube.npy"))
    save_grey(tmp_path / "high.png", PARTS + 10)
    with pytest.raises(DatasetError, match="high.png: DensePose values range 10..34, outside "
                                           "0..24"):
        read_densepose_file(str(tmp_path / "high.png"))
    Image.fromarray(iuv_image()).save(tmp_path / "iuv.jpg")
    with pytest.raises(DatasetError, match="iuv.jpg: a JPEG cannot hold exact DensePose"):
        read_densepose_file(str(tmp_path / "iuv.jpg"))
    (tmp_path / "parts.txt").write_text("1 2 3")
    with pytest.raises(DatasetError, match="parts.txt: unsupported DensePose file extension"):
        read_densepose_file(str(tmp_path / "parts.txt"))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DatasetError, match="broken.png: truncated PNG"):
        read_densepose_file(str(tmp_path / "broken.png"))


# ---------------------------------------------------------------------------------------------
# The training dataset on converted formats

H0, W0 = 128, 96          # on disk
H, W = 64, 48             # served
IDS = ["000003", "000010"]

# Source labels in bands of rows, with their 14-class value, per scheme.
BANDS = {
    "cihp": [(2, 1), (13, 12), (10, 3), (5, 4), (3, 7), (14, 11), (15, 13), (9, 8), (18, 5),
             (0, 0)],
    "atr": [(2, 1), (11, 12), (16, 2), (4, 4), (7, 4), (14, 11), (15, 13), (5, 8), (9, 5),
            (17, 11)],
}


def write_train_folder(root, labels, pose, densepose, scheme=None):
    """A VITON training folder whose labels, keypoints and DensePose are written as
    ``labels`` ("native", "cihp", "atr"), ``pose`` ("native", "coco17", "dresscode") and
    ``densepose`` ("npy", "grey", "iuv"); the photos and garments are the same in all. The
    label bands are those of ``scheme`` (default: ``labels``), converted when "native"."""
    for folder in VitonTrainDataset.folders:
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    scheme = scheme or labels
    for k, name in enumerate(IDS):
        rng = np.random.default_rng(k)
        photo = rng.integers(0, 256, (H0, W0, 3), dtype=np.uint8)
        Image.fromarray(photo).save(os.path.join(root, "train_img", f"{name}_0.png"))
        garment = np.full((H0, W0, 3), 255, np.uint8)
        garment[30:100, 20:80] = (40 * k, 90, 160)
        Image.fromarray(garment).save(os.path.join(root, "train_color", f"{name}_1.png"))
        edge = np.zeros((H0, W0), np.uint8)
        edge[30:100, 20:80] = 255
        Image.fromarray(edge).save(os.path.join(root, "train_edge", f"{name}_1.png"))

        source = np.zeros((H0, W0), np.uint8)
        native = np.zeros((H0, W0), np.uint8)
        rows = np.array_split(np.arange(H0), len(BANDS[scheme]))
        for band, (value, target) in zip(rows, BANDS[scheme]):
            source[band, (k * 7) % 20:] = value
            native[band, (k * 7) % 20:] = target
        label_path = os.path.join(root, "train_label", f"{name}_0.png")
        if labels == "native":
            save_grey(label_path, native)
        else:
            save_palette(label_path, source)

        pose_points = POSE.copy()
        pose_points[:, :2] *= 0.5 - 0.125 * k          # exact in binary; within the photo
        pose_path = os.path.join(root, "train_pose", f"{name}_0_keypoints.json")
        if pose == "native":
            write_json(pose_path, {"people": [{"pose_keypoints": pose_points.ravel().tolist()}]})
        elif pose == "coco17":
            # mmpose's naming: the photo's stem.
            write_json(os.path.join(root, "train_pose", f"{name}_0.json"),
                       {"meta_info": {},
                        "instance_info": [mmpose_instance(coco17_points(pose_points))]})
        else:
            dresscode = np.concatenate([pose_points, np.arange(18)[:, None]], axis=1)
            dresscode[:, 0] *= 384 / W0
            dresscode[:, 1] *= 512 / H0
            write_json(pose_path, {"keypoints": dresscode.tolist()})

        parts = np.zeros((H0, W0), np.uint8)
        parts[20:60, 10:50] = 3 + k
        parts[60:120, 30:90] = 16 + k
        parts[0:20, :] = 24
        dense_stem = os.path.join(root, "train_densepose", f"{name}_0")
        if densepose == "npy":
            np.save(dense_stem + ".npy", parts)
        elif densepose == "grey":
            save_grey(dense_stem + ".png", parts)
        else:
            Image.fromarray(iuv_image(parts)).save(dense_stem + ".png")
    return root


@pytest.mark.parametrize("labels, pose, densepose", [("cihp", "coco17", "grey"),
                                                     ("atr", "dresscode", "iuv")])
def test_dataset_reads_converted_formats_as_native(tmp_path, labels, pose, densepose):
    native = VitonTrainDataset(write_train_folder(str(tmp_path / "native"), "native", "native",
                                                  "npy", scheme=labels), H, W, seed=1)
    converted = VitonTrainDataset(write_train_folder(str(tmp_path / "other"), labels, pose,
                                                     densepose), H, W, seed=1,
                                  label_scheme=labels, pose_format="auto", iuv_channel="b")
    assert len(native) == len(converted) == len(IDS)
    for index in range(len(IDS)):
        expected, item = native[index], converted[index]
        assert sorted(item) == sorted(expected)
        for key, value in expected.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == item[key].dtype and torch.equal(value, item[key]), key
            else:
                assert value == item[key], key
        assert len(item["label"].unique()) >= 6            # the bands survived the resize


def test_dataset_conversion_errors_name_the_file(tmp_path):
    root = write_train_folder(str(tmp_path / "cihp"), "cihp", "native", "grey")
    # CIHP labels read as the 14-class scheme: values 14..18 are out of range.
    with pytest.raises(DatasetError, match=r"train_label/000003_0.png: label values \[14, 15, 18\] "
                                           r"outside the parsing scheme 0..13"):
        VitonTrainDataset(root, H, W)[0]
    bad = np.zeros((H0, W0), np.uint8)
    bad[5, 5], bad[6, 6], bad[7, 7] = 25, 18, 19
    save_palette(os.path.join(root, "train_label", "000010_0.png"), bad)
    dataset = VitonTrainDataset(root, H, W, label_scheme="atr")
    with pytest.raises(DatasetError, match=r"train_label/000010_0.png: label values \[18, 19, 25\] "
                                           r"outside the ATR scheme 0..17"):
        dataset[1]


def test_dataset_prefers_npy_densepose_and_rejects_bad_arguments(tmp_path):
    root = write_train_folder(str(tmp_path / "both"), "native", "native", "grey", scheme="cihp")
    dataset = VitonTrainDataset(root, H, W)
    assert dataset.samples[0].person.densepose.endswith("000003_0.png")
    np.save(os.path.join(root, "train_densepose", "000003_0.npy"), np.zeros((H0, W0), np.uint8))
    dataset = VitonTrainDataset(root, H, W)
    assert dataset.samples[0].person.densepose.endswith("000003_0.npy")
    assert dataset[0]["densepose"].max() == 0
    for name, value in (("label_scheme", "pascal"), ("neck", "collar"),
                        ("pose_format", "body25"), ("iuv_channel", "i")):
        with pytest.raises(ValueError, match=f"{name}='{value}'"):
            VitonTrainDataset(root, H, W, **{name: value})


def test_an_iuv_channel_that_no_densepose_file_uses_is_said(tmp_path, capsys):
    # PF-AFN's .npy part indices have no channels: --iuv_channel did nothing, unsaid. It is
    # said, not refused: a configuration file may set it for several datasets.
    root = write_train_folder(str(tmp_path / "npy"), "native", "native", "npy", scheme="cihp")
    stage = ParserBasedWarp()
    cfg = parse_config(["--config", "configs/tiny.yaml", "--dataroot", root, "--iuv_channel",
                        "r"], stage.add_arguments, stage.defaults, default_name=stage.name)
    lines = stage.describe_dataset(stage.make_dataset(cfg), cfg)
    assert "--iuv_channel r is not used: no DensePose file here is an IUV image (a PNG)" in lines
    iuv = write_train_folder(str(tmp_path / "iuv"), "native", "native", "iuv", scheme="cihp")
    assert unused_iuv_channel(DataOptions(iuv_channel="r"), train_samples(DataOptions(), iuv)) \
        is None
    from data.check import main
    main([root, "--height", str(H), "--width", str(W), "--iuv_channel", "g"])
    assert "NOTE --iuv_channel g is not used" in capsys.readouterr().out


def test_check_reports_the_conversion(tmp_path, capsys):
    from data.check import main
    root = write_train_folder(str(tmp_path / "train"), "cihp", "coco17", "iuv")
    assert main([root, "--height", str(H), "--width", str(W)]) == 1
    out = capsys.readouterr().out
    assert "outside the parsing scheme 0..13" in out and "PROBLEMS FOUND" in out
    assert main([root, "--height", str(H), "--width", str(W), "--label_scheme", "cihp",
                 "--neck", "garment", "--iuv_channel", "b"]) == 0
    out = capsys.readouterr().out
    assert "parsing labels, converted from CIHP, 20 classes, to the 14-class scheme, " \
           "neck 10 -> garment 7: present [0, 1, 4, 5, 7, 8, 11, 12, 13]" in out
    assert "mmpose COCO-17" in out and "I read from channel b" in out and "\nOK" in out
    assert main([root, "--height", str(H), "--width", str(W), "--label_scheme", "cihp",
                 "--iuv_channel", "g"]) == 1
    assert "in channel 'g' of this IUV image" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# scripts/convert_data.py


def test_cli_labels(tmp_path, capsys):
    src, out = tmp_path / "parse", tmp_path / "train_label"
    src.mkdir()
    save_palette(src / "000003_0.png", every_value_map(20))
    save_grey(src / "000010_0.png", np.full((3, 4), 10, np.uint8))
    bad = np.zeros((3, 4), np.uint8)
    bad[0, 0] = 25
    save_grey(src / "000042_0.png", bad)
    (src / "notes.txt").write_text("not a label map")
    status = convert_data.main(["labels", "--src", str(src), "--out", str(out), "--scheme", "cihp",
                                "--neck", "background"])
    printed = capsys.readouterr().out
    assert status == 1
    assert "000042_0.png: label values [25] outside the CIHP scheme 0..19" in printed
    assert "labels: converted 2 of 3 files" in printed
    assert "1 failed; 1 other files skipped" in printed
    assert sorted(os.listdir(out)) == ["000003_0.png", "000010_0.png"]   # nothing half-written
    written = Image.open(out / "000003_0.png")
    assert written.mode == "L"
    expected = list(EXPECTED["cihp"])
    expected[10] = 0
    assert np.array(written)[0, ::2].tolist() == expected
    assert np.array(Image.open(out / "000010_0.png")).max() == 0
    # The rewritten labels read as the native scheme.
    assert read_label_map(str(out / "000003_0.png")).max() == 13


def test_cli_pose(tmp_path, capsys):
    src, out, images = tmp_path / "keypoints", tmp_path / "train_pose", tmp_path / "images"
    src.mkdir()
    images.mkdir()
    files = pose_files(str(src), size=(1024, 768))
    Image.new("RGB", (768, 1024)).save(images / "013563_0.jpg")
    os.rename(files["dresscode"], src / "013563_2.json")           # DressCode's naming
    os.rename(files["body25"], src / "000001_0_keypoints.json")   # OpenPose's
    os.rename(files["mmpose_demo"], src / "results_000002_0.json")  # the mmpose demo's
    status = convert_data.main(["pose", "--src", str(src), "--out", str(out),
                                "--images", str(images)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    names = sorted(os.listdir(out))
    assert names == sorted(["013563_0_keypoints.json", "000001_0_keypoints.json",
                            "000002_0_keypoints.json"] +
                           [f"{name}_keypoints.json" for name in files
                            if name not in ("dresscode", "body25", "mmpose_demo")])
    for name in names:
        with open(out / name) as handle:
            document = json.load(handle)
        points = np.array(document["people"][0]["pose_keypoints"]).reshape(18, 3)
        np.testing.assert_allclose(points, POSE, atol=1e-9, err_msg=name)
    assert "pose: converted 9 of 9 files" in printed and "NOTE" not in printed
    # A file with nobody in it is converted with zero keypoints, and said to be empty.
    nobody = tmp_path / "nobody"
    nobody.mkdir()
    write_json(nobody / "000004_0_keypoints.json", {"version": 1.3, "people": []})
    os.link(src / "000001_0_keypoints.json", nobody / "000001_0_keypoints.json")
    status = convert_data.main(["pose", "--src", str(nobody), "--out", str(tmp_path / "nb")])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert ("NOTE 1 file(s) hold no person (or no point above --min_score): written with every "
            "keypoint at zero, so their pose maps are empty: 000004_0_keypoints.json") in printed
    with open(tmp_path / "nb" / "000004_0_keypoints.json") as handle:
        assert not any(json.load(handle)["people"][0]["pose_keypoints"])
    # A file that was not written (its output name taken) is an ERROR, not in the NOTE.
    write_json(nobody / "000004_0.json", {"version": 1.3, "people": []})
    status = convert_data.main(["pose", "--src", str(nobody), "--out", str(tmp_path / "nb2")])
    printed = capsys.readouterr().out
    assert status == 1
    assert "ERROR " in printed and "NOTE 1 file(s)" in printed
    assert printed.count("000004_0_keypoints.json") == 2    # its ERROR line names it twice
    assert "so their pose maps are empty: 000004_0.json\n" in printed

    # Without the photos DressCode's file fails, by name; the others still convert.
    status = convert_data.main(["pose", "--src", str(src), "--out", str(tmp_path / "again")])
    printed = capsys.readouterr().out
    assert status == 1
    assert ("013563_2.json: DressCode keypoints are in a 512x384 frame (height x width); pass "
            "--images") in printed
    assert not os.path.exists(tmp_path / "again" / "013563_0_keypoints.json")
    status = convert_data.main(["pose", "--src", str(src), "--out", str(tmp_path / "sized"),
                                "--image_size", "1024x768"])
    assert status == 0
    # Flags of formats no file here has did nothing, unsaid.
    openpose = tmp_path / "openpose"
    openpose.mkdir()
    os.link(src / "000001_0_keypoints.json", openpose / "000001_0_keypoints.json")
    capsys.readouterr()
    assert convert_data.main(["pose", "--src", str(openpose), "--out", str(tmp_path / "op"),
                              "--min_score", "0.5", "--image_size", "1024x768"]) == 0
    printed = capsys.readouterr().out
    assert ("NOTE --min_score was not used: no file here is COCO-17 or COCO-WholeBody (they are "
            "openpose pose_keypoints_2d BODY_25)") in printed
    assert "NOTE --image_size was not used: no file here is dresscode" in printed
    # Two inputs naming the same photo: the second is refused, by name.
    write_json(src / "000001_0.json", [mmpose_instance(coco17_points())])
    status = convert_data.main(["pose", "--src", str(src), "--out", str(tmp_path / "twice"),
                                "--image_size", "1024x768"])
    printed = capsys.readouterr().out
    assert status == 1
    assert "000001_0_keypoints.json: would write 000001_0_keypoints.json, already " \
           "written" in printed


def test_cli_densepose(tmp_path, capsys, user_error):
    src, out = tmp_path / "dense", tmp_path / "train_densepose"
    src.mkdir()
    Image.fromarray(iuv_image()).save(src / "000003_0.png")
    np.save(src / "000010_0.npy", PARTS.astype(np.float32))
    np.savez(src / "000010_0_uv.npz", u=np.zeros(3))             # DressCode's UV: skipped
    save_grey(src / "000042_0.png", PARTS + 20)
    status = convert_data.main(["densepose", "--src", str(src), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 1
    assert "000042_0.png: DensePose values range 20..44, outside 0..24" in printed
    assert "densepose: converted 2 of 3 files" in printed and "1 other files skipped" in printed
    assert sorted(os.listdir(out)) == ["000003_0.npy", "000010_0.npy"]
    for name in os.listdir(out):
        array = np.load(out / name)
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, PARTS)
    # .npy part indices have no channel to choose: --iuv_channel did nothing, unsaid.
    npy = tmp_path / "npy"
    npy.mkdir()
    np.save(npy / "000010_0.npy", PARTS.astype(np.uint8))
    assert convert_data.main(["densepose", "--src", str(npy), "--out", str(tmp_path / "n"),
                              "--iuv_channel", "r"]) == 0
    assert "NOTE --iuv_channel was not used: no file here is .png (they are .npy)" in \
        capsys.readouterr().out
    # A file already in --out (here the user's own) was replaced, unsaid; --overwrite does it.
    (tmp_path / "n" / "000010_0.npy").write_bytes(b"mine")
    assert convert_data.main(["densepose", "--src", str(npy), "--out", str(tmp_path / "n")]) == 0
    printed = capsys.readouterr().out
    assert "NOTE 1 file(s) already in" in printed and "kept (--overwrite replaces them)" in printed
    # Two inputs of one output name: the second is refused on a run that keeps the first's
    # output, as on the run that wrote it.
    save_grey(npy / "000010_0.png", PARTS)
    for run in range(2):
        assert convert_data.main(["densepose", "--src", str(npy), "--out",
                                  str(tmp_path / "clash")]) == 1, run
        assert "would write 000010_0.npy, already written from" in capsys.readouterr().out
    (npy / "000010_0.png").unlink()
    assert (tmp_path / "n" / "000010_0.npy").read_bytes() == b"mine"
    assert convert_data.main(["densepose", "--src", str(npy), "--out", str(tmp_path / "n"),
                              "--overwrite"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "n" / "000010_0.npy"), PARTS)
    before = {name: (src / name).read_bytes() for name in os.listdir(src)}
    link = tmp_path / "link_to_src"
    link.symlink_to(src, target_is_directory=True)
    for target in (src, link, src / "inside"):
        assert "is the input folder" in user_error(lambda target=target: convert_data.main(
            ["densepose", "--src", str(src), "--out", str(target)]))
    assert {name: (src / name).read_bytes() for name in os.listdir(src)} == before
