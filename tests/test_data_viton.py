"""The datasets on a VITON folder written by hand (PIL/numpy/json), not by our generator."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from data.datasets import DataOptions, read_garment
from data.files import DatasetError
from data.pairs import make_pairs_dataset
from data.viton_dataset import VitonTrainDataset

H0, W0 = 100, 75        # size on disk
H, W = 64, 48           # size served (scale 0.64)
IDS = ["000003", "000010", "000042"]


def write_foreign_train(root, ids=IDS):
    """A VITON_traindata folder as another tool writes it: JPEG photos and edges, grey PNG
    labels, BODY_25 keypoints under pose_keypoints_2d, int64 DensePose."""
    for folder in ("train_img", "train_color", "train_edge", "train_label", "train_pose",
                   "train_densepose"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for k, name in enumerate(ids):
        photo = np.full((H0, W0, 3), 200, np.uint8)
        photo[:, :, 0] = 10 * k
        Image.fromarray(photo).save(os.path.join(root, "train_img", f"{name}_0.jpg"), quality=95)
        garment = np.full((H0, W0, 3), 255, np.uint8)
        garment[20:80, 15:60] = (30 * k, 90, 160)
        Image.fromarray(garment).save(os.path.join(root, "train_color", f"{name}_1.jpg"))
        edge = np.zeros((H0, W0), np.uint8)
        edge[20:80, 15:60] = 255
        Image.fromarray(edge).save(os.path.join(root, "train_edge", f"{name}_1.jpg"))
        label = np.zeros((H0, W0), np.uint8)
        label[0:25, :] = 12          # face
        label[25:50, :] = 4          # upper clothes
        label[50:60, :] = 7          # noise
        label[60:100, :] = 8         # pants
        Image.fromarray(label, mode="L").save(os.path.join(root, "train_label", f"{name}_0.png"))
        body25 = np.zeros((25, 3))
        body25[:, 0] = 50.0
        body25[:, 1] = 25.0
        body25[:, 2] = 0.8
        body25[9] = (25.0, 75.0, 0.9)   # RHip -> COCO 8
        body25[8] = (1.0, 1.0, 0.9)     # MidHip, dropped
        document = {"version": 1.3, "people": [{"pose_keypoints_2d": body25.ravel().tolist(),
                                                "face_keypoints_2d": []}]}
        with open(os.path.join(root, "train_pose", f"{name}_0_keypoints.json"), "w") as f:
            json.dump(document, f)
        dense = np.zeros((H0, W0), np.int64)
        dense[30:70, 10:40] = 3
        dense[30:70, 40:75] = 16
        np.save(os.path.join(root, "train_densepose", f"{name}_0.npy"), dense)
    return root


def write_foreign_test(root, clothes="test_clothes"):
    for folder in ("test_img", clothes, "test_edge"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    for name in ("000066", "017575"):
        Image.fromarray(np.full((H0, W0, 3), 90, np.uint8)).save(
            os.path.join(root, "test_img", f"{name}_0.jpg"))
        Image.fromarray(np.full((H0, W0, 3), 30, np.uint8)).save(
            os.path.join(root, clothes, f"{name}_1.jpg"))
        edge = np.zeros((H0, W0), np.uint8)
        edge[10:90, 10:60] = 255
        Image.fromarray(edge).save(os.path.join(root, "test_edge", f"{name}_1.jpg"))
    with open(os.path.join(root, "test_pairs.txt"), "w") as f:
        f.write("000066_0.jpg 017575_1.jpg\n017575_0.jpg 000066_1.jpg\n")
    with open(os.path.join(root, "test_pairs_same.txt"), "w") as f:
        f.write("000066_0.jpg 000066_1.jpg\n\n017575_0.jpg 017575_1.jpg\n")
    return root


@pytest.fixture
def train_root(tmp_path):
    return write_foreign_train(str(tmp_path / "VITON_traindata"))


def test_opens_foreign_folder_and_resizes(train_root):
    dataset = VitonTrainDataset(train_root, H, W, seed=3)
    assert len(dataset) == 3
    item = dataset[1]
    assert item["id"] == "000010"
    assert item["image"].shape == (3, H, W) and item["image"].dtype == torch.float32
    assert item["image"].min() >= -1 and item["image"].max() <= 1
    assert abs(item["image"][0].mean().item() - (10 / 127.5 - 1)) < 0.02   # red = 10 * k
    assert item["garment"].shape == (3, H, W)
    edge = item["garment_edge"]
    assert edge.shape == (1, H, W) and set(edge.unique().tolist()) == {0.0, 1.0}
    # Edge rows 20..79 of 100 -> rows 12.8..51.2 of 64 (nearest, pixel centres).
    assert edge[0, 13:51, 10:38].min() == 1 and edge[0, :12].max() == 0
    label = item["label"]
    assert label.dtype == torch.int64 and label.shape == (H, W)
    assert set(label.unique().tolist()) == {12, 4, 7, 8}          # raw: 7 not merged
    assert (label[:15] == 12).all() and (label[17:31] == 4).all() and (label[40:] == 8).all()
    dense = item["densepose"]
    assert dense.dtype == torch.int64 and set(dense.unique().tolist()) == {0, 3, 16}
    keypoints = item["keypoints"]
    assert keypoints.shape == (18, 3) and keypoints.dtype == torch.float32
    # BODY_25 RHip (index 9) is COCO 8; coordinates scaled by 48/75 and 64/100.
    assert torch.allclose(keypoints[8], torch.tensor([25 * 0.64, 75 * 0.64, 0.9]))
    assert torch.allclose(keypoints[0, :2], torch.tensor([32.0, 16.0]))


def test_unpaired_draw_is_reproducible_and_never_own(train_root):
    dataset = VitonTrainDataset(train_root, H, W, seed=7)
    draws = {}
    for epoch in range(6):
        dataset.set_epoch(epoch)
        draws[epoch] = [dataset.unpaired_index(i) for i in range(len(dataset))]
        assert all(j != i for i, j in enumerate(draws[epoch]))
    assert len({tuple(d) for d in draws.values()}) > 1            # changes with the epoch
    again = VitonTrainDataset(train_root, H, W, seed=7)
    again.set_epoch(4)
    assert [again.unpaired_index(i) for i in range(3)] == draws[4]
    torch.manual_seed(123)
    np.random.seed(5)
    item = again[0]
    other = again.samples[draws[4][0]]
    expected = read_garment(other.garment, again.masks, H, W)[0]
    assert torch.equal(item["unpaired_garment"], expected), other.person.id


def test_samples_matched_by_name_not_position(train_root):
    # An extra garment with no person must not shift the pairing.
    Image.fromarray(np.zeros((H0, W0, 3), np.uint8)).save(
        os.path.join(train_root, "train_color", "000001_1.jpg"))
    dataset = VitonTrainDataset(train_root, H, W)
    assert [s.person.id for s in dataset.samples] == IDS
    assert dataset.samples[0].garment.image.endswith("000003_1.jpg")


def test_pairs_file(train_root):
    with open(os.path.join(train_root, "train_pairs.txt"), "w") as f:
        f.write("000042_0.jpg 000003_1.jpg\n000003_0.jpg 000042_1.jpg\n")
    dataset = VitonTrainDataset(train_root, H, W)
    assert len(dataset) == 2
    assert dataset.samples[0].person.image.endswith("000042_0.jpg")
    assert dataset.samples[0].garment.image.endswith("000003_1.jpg")


def test_missing_folder(train_root):
    os.rename(os.path.join(train_root, "train_label"), os.path.join(train_root, "labels"))
    with pytest.raises(DatasetError, match="train_label: missing folder"):
        VitonTrainDataset(train_root, H, W)


def test_densepose_folder_is_optional(train_root):
    os.rename(os.path.join(train_root, "train_densepose"), os.path.join(train_root, "dp"))
    dataset = VitonTrainDataset(train_root, H, W)
    assert not dataset.has_densepose
    item = dataset[0]
    assert not bool(item["has_densepose"]) and item["densepose"].max() == 0


def test_missing_files_listed_with_count(train_root):
    os.remove(os.path.join(train_root, "train_label", "000010_0.png"))
    os.remove(os.path.join(train_root, "train_pose", "000042_0_keypoints.json"))
    os.remove(os.path.join(train_root, "train_edge", "000042_1.jpg"))
    with pytest.raises(DatasetError) as info:
        VitonTrainDataset(train_root, H, W)
    message = str(info.value)
    assert message.startswith("2 of 3 samples lack files")
    assert "000010: train_label/000010_0.png" in message
    assert "000042: train_edge/000042_1.jpg, train_pose/000042_0_keypoints.json" in message


def test_many_missing_files_are_summarised(tmp_path):
    ids = [f"{i:06d}" for i in range(8)]
    root = write_foreign_train(str(tmp_path / "many"), ids)
    for name in ids:
        os.remove(os.path.join(root, "train_densepose", f"{name}_0.npy"))
    with pytest.raises(DatasetError, match=r"8 of 8 samples lack files: .*; and 3 more$"):
        VitonTrainDataset(root, H, W)


def corrupt(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("folder, name, make_bad, message", [
    ("train_img", "000010_0.jpg", lambda d: d[: len(d) // 2], "000010_0.jpg: truncated JPEG"),
    ("train_color", "000010_1.jpg", lambda d: b"not an image at all" * 10,
     "000010_1.jpg: not a readable image"),
    ("train_edge", "000010_1.jpg", lambda d: b"", "000010_1.jpg: empty file"),
    ("train_label", "000010_0.png", lambda d: d[:-30], "000010_0.png: truncated PNG"),
    ("train_pose", "000010_0_keypoints.json", lambda d: d[:-5],
     "000010_0_keypoints.json: malformed JSON"),
])
def test_bad_file_contents(train_root, folder, name, make_bad, message):
    path = os.path.join(train_root, folder, name)
    with open(path, "rb") as f:
        data = f.read()
    corrupt(path, make_bad(data))
    dataset = VitonTrainDataset(train_root, H, W)
    dataset[0]
    with pytest.raises(DatasetError, match=message):
        dataset[1]


def test_bad_densepose(train_root):
    path = os.path.join(train_root, "train_densepose", "000010_0.npy")
    dataset = VitonTrainDataset(train_root, H, W)
    np.save(path, np.zeros((H0, W0, 3), np.float32))
    with pytest.raises(DatasetError,
                       match=r"000010_0.npy: DensePose array has shape \(100, 75, 3\)"):
        dataset[1]
    np.save(path, np.full((H0, W0), 25, np.int32))
    with pytest.raises(DatasetError,
                       match=r"000010_0.npy: DensePose values range 25..25, outside 0..24"):
        dataset[1]
    np.save(path, np.zeros((50, 50), np.uint8))
    with pytest.raises(DatasetError, match=r"000010_0.npy: size 50x50 is not the frame of the "
                                           r"person photo .*000010_0.jpg \(100x75\)"):
        dataset[1]
    half = np.zeros((50, 38), np.uint8)          # half the photo's size, the same frame
    half[:, :19] = 16
    np.save(path, half)
    assert set(dataset[1]["densepose"].unique().tolist()) == {0, 16}
    np.save(path, np.full((H0, W0), 2.5, np.float32))
    with pytest.raises(DatasetError, match="000010_0.npy: DensePose values are not whole"):
        dataset[1]
    np.save(path, np.full((H0, W0), 24.0, np.float64))       # whole floats are accepted
    assert dataset[1]["densepose"].max() == 24


def test_bad_labels(train_root):
    path = os.path.join(train_root, "train_label", "000010_0.png")
    dataset = VitonTrainDataset(train_root, H, W)
    label = np.zeros((H0, W0), np.uint8)
    label[5, 5] = 20
    label[6, 6] = 255
    Image.fromarray(label).save(path)
    with pytest.raises(DatasetError,
                       match=r"000010_0.png: label values \[20, 255\] outside the parsing "
                             r"scheme"):
        dataset[1]
    Image.fromarray(np.stack([label * 0, label * 0 + 1, label * 0], -1)).save(path)
    with pytest.raises(DatasetError, match="000010_0.png: label image in mode RGB has differing"):
        dataset[1]


def test_palette_label_reads_indices(train_root):
    path = os.path.join(train_root, "train_label", "000010_0.png")
    label = np.zeros((H0, W0), np.uint8)
    label[:50] = 13
    image = Image.fromarray(label, mode="P")
    image.putpalette([v for i in range(256) for v in (255 - i, i, 7)])
    image.save(path)
    assert set(VitonTrainDataset(train_root, H, W)[1]["label"].unique().tolist()) == {0, 13}


def test_missing_dataset_root(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: dataset folder not found"):
        VitonTrainDataset(str(tmp_path / "nowhere"))


def test_test_dataset_paired_and_unpaired(tmp_path):
    root = write_foreign_test(str(tmp_path / "VITON_test"))
    unpaired = make_pairs_dataset(DataOptions(), root, "test_pairs.txt", H, W)
    item = unpaired[0]
    assert item["person_name"] == "000066_0.jpg" and item["cloth_name"] == "017575_1.jpg"
    assert item["paired"] is False and item["original_size"] == (H0, W0)
    assert item["image"].shape == (3, H, W) and item["garment_edge"].shape == (1, H, W)
    assert abs(item["image"].mean().item() - (90 / 127.5 - 1)) < 0.02
    paired = make_pairs_dataset(DataOptions(), root, os.path.join(root, "test_pairs_same.txt"),
                                H, W)
    assert len(paired) == 2 and all(paired[i]["paired"] for i in range(2))
    batch = next(iter(torch.utils.data.DataLoader(paired, batch_size=2)))
    assert batch["image"].shape == (2, 3, H, W) and batch["paired"].tolist() == [True, True]


def test_test_dataset_test_color_and_errors(tmp_path):
    root = write_foreign_test(str(tmp_path / "demo"), clothes="test_color")
    assert len(make_pairs_dataset(DataOptions(), root, "test_pairs.txt", H, W)) == 2
    with open(os.path.join(root, "bad_pairs.txt"), "w") as f:
        f.write("000066_0.jpg 999999_1.jpg\n")
    with pytest.raises(DatasetError, match=r"1 of 1 pairs of .*bad_pairs.txt lack files: "
                                           r"000066_0.jpg 999999_1.jpg: test_color/999999_1.jpg, "
                                           r"test_edge/999999_1.jpg"):
        make_pairs_dataset(DataOptions(), root, "bad_pairs.txt", H, W)
    with pytest.raises(DatasetError, match="nope.txt: pairs file not found"):
        make_pairs_dataset(DataOptions(), root, "nope.txt", H, W)
    os.rename(os.path.join(root, "test_color"), os.path.join(root, "colours"))
    with pytest.raises(DatasetError, match="neither test_clothes/ nor test_color/"):
        make_pairs_dataset(DataOptions(), root, "test_pairs.txt", H, W)


def test_test_masks_of_another_extension_are_found(tmp_path):
    # A PNG mask beside a JPEG garment, as training accepts: test_edge named it missing.
    root = write_foreign_test(str(tmp_path / "VITON_test"))
    jpeg = os.path.join(root, "test_edge", "017575_1.jpg")
    mask = np.zeros((H0, W0), np.uint8)
    mask[40:60, 20:30] = 255
    Image.fromarray(mask).save(jpeg[:-4] + ".png")
    os.remove(jpeg)
    item = make_pairs_dataset(DataOptions(), root, "test_pairs.txt", H, W)[0]
    assert item["cloth_name"] == "017575_1.jpg"
    assert item["garment_edge"].sum().item() == pytest.approx(20 * 10 * 0.64 * 0.64, rel=0.2)


def test_check_cli_reports_problems(train_root, capsys):
    from data.check import main
    assert main([train_root, "--height", str(H), "--width", str(W)]) == 0
    assert "3 samples" in capsys.readouterr().out
    # Flags that did nothing in the check, unsaid: a mask cache beside mask files, a size limit
    # that reached the masks only, a rebuild that deleted the cached masks it was to count.
    assert main([train_root, "--height", str(H), "--width", str(W), "--mask_cache", "c"]) == 1
    assert "--mask_cache: every garment has a mask file" in capsys.readouterr().out
    assert main([train_root, "--height", str(H), "--width", str(W),
                 "--max_megapixels", "0.001"]) == 1
    out = capsys.readouterr().out
    assert "read 3 samples" in out and "3 failed" in out and "megapixels" in out
    with pytest.raises(SystemExit):
        main([train_root, "--height", "40000", "--width", "30000"])
    assert "--height 40000: samples are served at 16 to 4096 pixels" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([train_root, "--rebuild_masks"])
    assert "--rebuild_masks: the check computes no garment mask" in capsys.readouterr().err
    # A training configuration that sets it is read, and nothing is deleted.
    config = os.path.join(os.path.dirname(train_root), "rebuild.yaml")
    with open(config, "w") as handle:
        handle.write("rebuild_masks: true\n")
    assert main([train_root, "--height", str(H), "--width", str(W), "--config", str(config)]) == 0
    corrupt(os.path.join(train_root, "train_img", "000042_0.jpg"), b"\xff\xd8\xff\xe0broken")
    assert main([train_root, "--height", str(H), "--width", str(W)]) == 1
    out = capsys.readouterr().out
    assert "read 3 samples" in out and "1 failed" in out
    assert "000042_0.jpg: truncated JPEG" in out and "PROBLEMS FOUND" in out


def _png16_grey_alpha(grey: np.ndarray) -> bytes:
    """A 16-bit grey-with-alpha PNG of ``grey`` (uint16), opaque (neither OpenCV nor Pillow
    writes one)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc
    pixels = np.dstack([grey, np.full_like(grey, 65535)]).astype(">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", grey.shape[1], grey.shape[0], 16, 4, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def test_grey_alpha_and_16_bit_labels(train_root):
    path = os.path.join(train_root, "train_label", "000010_0.png")
    label = np.zeros((H0, W0), np.uint8)
    label[:50] = 11
    Image.fromarray(np.stack([label, np.full_like(label, 255)], -1), mode="LA").save(path)
    dataset = VitonTrainDataset(train_root, H, W)
    assert set(dataset[1]["label"].unique().tolist()) == {0, 11}
    # 16-bit colour and grey-with-alpha: PIL kept the high byte only, and read every label as 0.
    wide = label.astype(np.uint16)
    cv2.imwrite(path, np.dstack([wide] * 3))
    assert set(dataset[1]["label"].unique().tolist()) == {0, 11}
    cv2.imwrite(path, np.dstack([wide] * 3 + [np.full_like(wide, 65535)]))
    assert set(dataset[1]["label"].unique().tolist()) == {0, 11}
    with open(path, "wb") as handle:     # grey with alpha, 16-bit (colour type 4)
        handle.write(_png16_grey_alpha(wide))
    assert set(dataset[1]["label"].unique().tolist()) == {0, 11}
    cv2.imwrite(path, np.dstack([wide * 257] * 3))     # widened by an image tool
    with pytest.raises(DatasetError, match=r"\[2827\] outside .*widened to 16 bits"):
        dataset[1]
    iuv = os.path.join(train_root, "iuv16.png")
    cv2.imwrite(iuv, np.dstack([wide + 3, wide + 2, wide + 1]))     # I in "b" of the RGB read
    from data.densepose import read_densepose_file
    assert set(np.unique(read_densepose_file(iuv)).tolist()) == {3, 14}
    Image.fromarray(label.astype(np.uint16) * 1000).save(path)          # 16-bit grey
    with pytest.raises(DatasetError, match=r"000010_0.png: label values \[11000\] outside"):
        dataset[1]


def test_files_of_one_stem_and_jpeg_labels(train_root):
    # A file beside a photo under the photo's stem dropped the photo (the listing kept one name
    # per stem, in the folder's order), and of two masks of one garment either was taken.
    for folder in ("train_img", "train_color", "train_edge", "train_label"):
        for name in os.listdir(os.path.join(train_root, folder)):
            with open(os.path.join(train_root, folder, os.path.splitext(name)[0] + ".json"),
                      "w") as handle:       # an annotation tool's file: not what is read
                handle.write("{}")
    dataset = VitonTrainDataset(train_root, H, W)
    assert len(dataset) == 3 and dataset[0]["label"].max() > 0
    edges = os.path.join(train_root, "train_edge")
    first = sorted(name for name in os.listdir(edges) if not name.endswith(".json"))[0]
    stem = os.path.splitext(first)[0]
    other = stem + (".png" if first.endswith(".jpg") else ".jpg")
    cv2.imwrite(os.path.join(edges, other), cv2.imread(os.path.join(edges, first)))
    with pytest.raises(DatasetError, match=rf"train_edge: {first if first < other else other} "
                                           rf"and .* share the name {stem}; keep one"):
        VitonTrainDataset(train_root, H, W)
    os.remove(os.path.join(edges, other))
    # A JPEG's compression changes the class indices along every edge.
    labels = os.path.join(train_root, "train_label")
    label = os.path.join(labels, sorted(n for n in os.listdir(labels) if n.endswith(".png"))[0])
    jpeg = cv2.imencode(".jpg", cv2.imread(label), [cv2.IMWRITE_JPEG_QUALITY, 100])[1]
    with open(label, "wb") as handle:         # named .png
        handle.write(jpeg.tobytes())
    dataset = VitonTrainDataset(train_root, H, W)
    with pytest.raises(DatasetError, match="a JPEG cannot hold exact indices"):
        [dataset[i] for i in range(len(dataset))]


def test_tiny_photos_are_refused_for_training(train_root):
    # A 4x3 person photo trained beside its 100x75 label (keypoints scaled 25 times).
    dataset = VitonTrainDataset(train_root, H, W)
    person = dataset.samples[0].person.image
    cv2.imwrite(person, np.full((4, 3, 3), 128, np.uint8))
    with pytest.raises(DatasetError, match=r"4x3 pixels; a person photo is at least 16x16"):
        dataset[0]


def test_densepose_png_and_pose_named_by_photo(train_root):
    dense = os.path.join(train_root, "train_densepose")
    parts = np.zeros((H0, W0), np.uint8)
    parts[:, :40] = 21
    os.remove(os.path.join(dense, "000010_0.npy"))
    Image.fromarray(parts).save(os.path.join(dense, "000010_0.png"))
    pose = os.path.join(train_root, "train_pose")
    os.rename(os.path.join(pose, "000010_0_keypoints.json"), os.path.join(pose, "000010_0.json"))
    dataset = VitonTrainDataset(train_root, H, W)
    assert dataset.samples[1].person.densepose.endswith("000010_0.png")
    assert dataset.samples[1].person.pose.endswith("000010_0.json")
    item = dataset[1]
    assert set(item["densepose"].unique().tolist()) == {0, 21}
    assert torch.allclose(item["keypoints"][8], torch.tensor([25 * 0.64, 75 * 0.64, 0.9]))
    os.remove(os.path.join(dense, "000010_0.png"))
    os.remove(os.path.join(pose, "000010_0.json"))
    with pytest.raises(DatasetError, match=r"000010: train_pose/000010_0_keypoints.json, "
                                           r"train_densepose/000010_0.npy \(or .png\)"):
        VitonTrainDataset(train_root, H, W)


def test_a_pairs_file_named_two_ways_is_refused_and_dot_slash_names_the_current_folder(
        tmp_path, monkeypatch):
    # --pairs ./test_pairs.txt read the --dataroot's test_pairs.txt, without a word, when the
    # current folder held one of its own.
    from data.files import resolve_path
    from data.viton import train_pairs_file
    root, here = tmp_path / "VITON_test", tmp_path / "here"
    root.mkdir()
    here.mkdir()
    (root / "test_pairs.txt").write_text("a.jpg b.jpg\n")
    (here / "test_pairs.txt").write_text("c.jpg d.jpg\n")
    monkeypatch.chdir(here)
    assert resolve_path(str(root), "./test_pairs.txt") == "./test_pairs.txt"
    assert resolve_path(str(root), "../VITON_test/test_pairs.txt") == "../VITON_test/test_pairs.txt"
    with pytest.raises(DatasetError, match=f"both {root / 'test_pairs.txt'} and "
                                           f"{here / 'test_pairs.txt'} exist"):
        resolve_path(str(root), "test_pairs.txt")
    assert resolve_path(str(root), "other.txt") == str(root / "other.txt")   # as before
    (here / "own.txt").write_text("")
    assert resolve_path(str(root), "own.txt") == "own.txt"
    monkeypatch.chdir(root)    # the same file both ways: no doubt
    assert resolve_path(str(root), "test_pairs.txt") == str(root / "test_pairs.txt")
    # A default file of the folder is its own, whatever the current folder holds.
    (root / "train_pairs.txt").write_text("a.jpg a.jpg\n")
    (here / "train_pairs.txt").write_text("c.jpg c.jpg\n")
    monkeypatch.chdir(here)
    assert train_pairs_file(str(root)) == str(root / "train_pairs.txt")


def test_check_reads_a_test_splits_parsing_as_validation_does(tmp_path, capsys):
    """It read the photos and garments only: a test split whose parsing stops validation of
    stages 1-3 (--val_root) was reported OK."""
    from data.check import main
    from data.synthetic import make_dataset
    test = make_dataset(str(tmp_path / "data"), num_train=0, num_test=2, seed=1, height=64,
                        width=48)["test"]
    label = os.path.join(test, "test_label", sorted(os.listdir(os.path.join(test,
                                                                           "test_label")))[0])
    Image.fromarray(np.full((64, 48), 200, np.uint8)).save(label)
    assert main([test, "--height", "64", "--width", "48"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {label}: label values [200] outside the parsing scheme" in out
    # PF-AFN's own VITON_test has no parsing: it serves test.py, and is said to.
    shutil.rmtree(os.path.join(test, "test_label"))
    assert main([test, "--height", "64", "--width", "48"]) == 0
    assert "without the persons' parsing" in capsys.readouterr().out
    # A pairs line no reader takes is the list's problem, not a split without its parsing.
    other = make_dataset(str(tmp_path / "other"), num_train=0, num_test=2, seed=1, height=64,
                         width=48)["test"]
    with open(os.path.join(other, "test_pairs_same.txt"), "a") as pairs:
        pairs.write("just_one_name.jpg\n")
    assert main([other, "--height", "64", "--width", "48"]) == 1
    out = capsys.readouterr().out
    assert "expected 'person.jpg cloth.jpg'" in out and "without the persons' parsing" not in out
