import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from data.check import main as check_main
from data.datasets import DataOptions
from data.inputs import TryOnInputs
from data.pairs import make_pairs_dataset
from data.synthetic import (
    CATEGORIES,
    LABEL,
    REGION,
    draw_garment,
    draw_sample,
    dresscode_first_ids,
    garment_region,
    make_dataset,
    sample_rng,
    scheme_labels,
)
from data.viton_dataset import VitonTrainDataset
from models.flow import identity_flow, sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def to_batch(samples):
    def photo(a):
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).float() / 127.5 - 1
    return dict(
        image=torch.stack([photo(s["image"]) for s in samples]),
        garment=torch.stack([photo(s["garment"]) for s in samples]),
        garment_edge=torch.stack([torch.from_numpy(s["edge"] > 127).float()[None]
                                  for s in samples]),
        label=torch.stack([torch.from_numpy(s["label"]).long() for s in samples]),
        densepose=torch.stack([torch.from_numpy(s["densepose"]).long() for s in samples]),
        keypoints=torch.stack([torch.from_numpy(s["keypoints"]).float() for s in samples]))


# The 14-class labels each category's target garment carries (7, noise, merged into 4).
TARGET_LABELS = dict(upper_body=(LABEL["clothes"], LABEL["noise"]), lower_body=(LABEL["pants"],),
                     dresses=(LABEL["clothes"],))


@pytest.mark.parametrize("category", CATEGORIES)
def test_garment_pixels_are_the_warped_product(category):
    for seed in range(4):
        s = draw_sample(np.random.default_rng(seed), 128, 96, category=category)
        garment = garment_region(s["regions"], category)
        assert garment.sum() > 300
        # The photo's target garment is exactly what the 14-class labels call it.
        assert np.array_equal(garment, np.isin(s["label"], TARGET_LABELS[category]))
        # The returned flow, applied as the warp module applies flows, gives the photo's
        # garment pixels (cv2.remap quantises positions to 1/32 pixel: allow 2 levels).
        product = torch.from_numpy(s["garment"].transpose(2, 0, 1).copy()).float()[None]
        warped = sample(product, torch.from_numpy(s["flow"])[None])[0].permute(1, 2, 0).numpy()
        difference = np.abs(warped - s["image"].astype(np.float32))[garment]
        assert difference.max() <= 2.5, difference.max()
        # ... and the product's edge, so warped, covers the garment region (up to the boundary).
        edge = torch.from_numpy(s["edge"]).float()[None, None] / 255
        warped_edge = sample(edge, torch.from_numpy(s["flow"])[None], "zeros")[0, 0].numpy() > 0.5
        assert (garment & ~warped_edge).sum() <= 0.01 * garment.sum()
        assert s["label"].max() <= 13 and s["densepose"].max() <= 24
        assert s["edge"][0, 0] == 0 and (s["garment"][0, 0] == 255).all()   # white background
        # Where the photo is not the target, it is not the warped product either (the flow
        # is not trivially right): most of the body around it differs.
        body = (s["regions"] != REGION["background"]) & ~garment
        assert (np.abs(warped - s["image"])[body].max(-1) > 10).mean() > 0.5


def test_reproducible_and_varied():
    a = draw_sample(np.random.default_rng(5), 64, 48)
    b = draw_sample(np.random.default_rng(5), 64, 48)
    c = draw_sample(np.random.default_rng(6), 64, 48)
    for key in ("image", "garment", "label", "densepose", "keypoints"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["garment"], c["garment"])
    assert not np.allclose(a["keypoints"], c["keypoints"])
    for category in CATEGORIES[1:]:
        d = draw_sample(np.random.default_rng(5), 64, 48, category=category)
        e = draw_sample(np.random.default_rng(5), 64, 48, category=category)
        assert all(np.array_equal(d[k], e[k]) for k in ("image", "regions", "flow", "feet"))
        assert d["category"] == category and not np.array_equal(d["garment"], a["garment"])


def digest(s):
    h = hashlib.sha256()
    for key in ("image", "garment", "edge", "label", "densepose"):
        h.update(np.ascontiguousarray(s[key]).tobytes())
    h.update(np.round(s["keypoints"], 2).tobytes())
    return h.hexdigest()[:16]


def test_upper_body_draws_as_before_categories():
    """The upper body's samples, hence its VITON files, are those the generator drew before
    it had categories and other layouts (digests recorded with that version, whose backdrops
    were the tinted ones)."""
    recorded = {(0, 0): "026cb154bebe7fe4", (0, 1): "7e2dfa3c6c70d84a", (1, 0): "2f658e09e1de003d"}
    for (split, index), expected in recorded.items():
        sample = draw_sample(sample_rng(4, split, index), 64, 48, backdrop="tinted")
        assert digest(sample) == expected


def test_backdrops_differ_only_behind_the_person(tmp_path):
    """The studio and tinted backdrops draw the same person from the same randomness: only
    the backdrop's pixels (label 0) differ. Studio backdrops are light and neutral and differ
    little from photo to photo; tinted ones carry a cast of up to 16 levels between channels."""
    studio, tinted = [], []
    for index in range(12):
        a = draw_sample(sample_rng(4, 0, index), 64, 48)
        b = draw_sample(sample_rng(4, 0, index), 64, 48, backdrop="tinted")
        for key in ("regions", "label", "densepose", "garment", "edge", "flow", "keypoints"):
            assert np.array_equal(a[key], b[key]), key
        person = a["label"] != LABEL["background"]
        assert np.array_equal(a["image"][person], b["image"][person])
        studio.append(a["image"][~person].astype(float).mean(0))
        tinted.append(b["image"][~person].astype(float).mean(0))
    studio, tinted = np.array(studio), np.array(tinted)
    assert studio.min() >= 230 and studio.max() <= 250
    assert np.ptp(studio, axis=1).max() <= 3.5          # neutral: channels within 3.5 levels
    assert np.ptp(studio, axis=0).max() <= 13           # the same studio in every photo
    assert np.ptp(tinted, axis=1).max() > 4 and np.ptp(tinted, axis=0).max() > 13
    with pytest.raises(ValueError, match="backdrop='plain'"):
        draw_sample(sample_rng(4, 0, 0), 64, 48, backdrop="plain")
    with pytest.raises(ValueError, match="backdrop='plain'"):
        make_dataset(str(tmp_path), 0, 1, backdrop="plain")
    assert not any(tmp_path.iterdir())      # refused before any folder is made


def test_lower_body_labels_the_target_not_the_top():
    """The pixels the lower garment changes are exactly its labelled region: drawn again
    without it (same randomness), the photo differs there and nowhere else, and the top the
    person keeps on is upper clothes, outside the target."""
    for seed in range(6):
        rng = (7, seed)
        worn = draw_sample(np.random.default_rng(rng), 64, 48, category="lower_body")
        bare = draw_sample(np.random.default_rng(rng), 64, 48, category="lower_body",
                           without_garment=True)
        target = garment_region(worn["regions"], "lower_body")
        changed = (worn["image"] != bare["image"]).any(-1)
        assert target.sum() > 50
        assert not (changed & ~target).any()
        assert (target & ~changed).sum() <= 0.005 * target.sum()
        top = worn["label"] == LABEL["clothes"]
        assert top.sum() > 50 and not (top & target).any()
        assert np.array_equal(worn["regions"][~target], bare["regions"][~target])
        assert not garment_region(bare["regions"], "lower_body").any()


def test_categories_are_varied():
    rng = np.random.default_rng(0)
    lower = [draw_garment(rng, 64, 48, "lower_body") for _ in range(30)]
    assert {g.kind for g in lower} == {"trousers", "shorts", "skirt"}
    assert all(g.category == "lower_body" and g.waist.shape == (2, 2) for g in lower)
    assert all((g.leg_hems is None) == (g.kind == "skirt") for g in lower)
    skirts = [g.length for g in lower if g.kind == "skirt"]
    assert min(skirts) < 0.4 and max(skirts) > 0.6
    dresses = [draw_garment(rng, 64, 48, "dresses") for _ in range(30)]
    sleeved = [g.sleeve_axis is not None for g in dresses]
    assert any(sleeved) and not all(sleeved)
    lengths = [g.length for g in dresses]
    assert min(lengths) < 0.35 and max(lengths) > 0.6
    # Arms always show; legs show below a short garment.
    for seed in range(8):
        for category in ("lower_body", "dresses"):
            rng = np.random.default_rng((3, seed))
            g = draw_garment(rng, 96, 72, category)
            s = draw_sample(rng, 96, 72, garment=g, category=category)
            assert np.array_equal(s["garment"], g.image)
            assert np.isin(s["label"], (LABEL["left_arm"], LABEL["right_arm"])).sum() > 30
            if g.length < 0.5:
                assert np.isin(s["label"], (LABEL["left_leg"], LABEL["right_leg"])).sum() > 30


def test_garment_must_match_the_category():
    garment = draw_garment(np.random.default_rng(0), 64, 48, "dresses")
    with pytest.raises(ValueError, match="dresses"):
        draw_sample(np.random.default_rng(0), 64, 48, garment=garment)
    with pytest.raises(ValueError, match="category"):
        draw_sample(np.random.default_rng(0), 64, 48, category="shoes")


# DATASETS.md section 4: CIHP 20 and ATR 18 classes -> the 14-class scheme (CIHP's neck, 10,
# to 12, skin; its other unmatched classes to 7).
CIHP_TO_VITON = {0: 0, 1: 1, 2: 1, 3: 7, 4: 12, 5: 4, 6: 4, 7: 4, 8: 7, 9: 8, 10: 12, 11: 7,
                 12: 8, 13: 12, 14: 11, 15: 13, 16: 9, 17: 10, 18: 5, 19: 6}
ATR_TO_VITON = {0: 0, 1: 1, 2: 1, 3: 12, 4: 4, 5: 8, 6: 8, 7: 4, 8: 8, 9: 5, 10: 6, 11: 12,
                12: 9, 13: 10, 14: 11, 15: 13, 16: 2, 17: 11}


def convert(labels, table):
    lookup = np.full(256, 255, np.uint8)
    for source, target in table.items():
        lookup[source] = target
    out = lookup[labels]
    assert (out != 255).all(), np.unique(labels[out == 255])
    return out


def merged(label):
    return np.where(label == LABEL["noise"], LABEL["clothes"], label)


@pytest.mark.parametrize("category", CATEGORIES)
def test_label_schemes_agree_with_the_drawing(category):
    for seed in range(3):
        s = draw_sample(np.random.default_rng((2, seed)), 64, 48, category=category)
        cihp, atr = scheme_labels(s["regions"], "cihp"), scheme_labels(s["regions"], "atr")
        assert np.array_equal(scheme_labels(s["regions"], "viton"), s["label"])
        assert np.array_equal(convert(cihp, CIHP_TO_VITON), merged(s["label"]))
        assert np.array_equal(convert(atr, ATR_TO_VITON), merged(s["label"]))
        # The neck is its own class in CIHP only; it is face in the others.
        neck = s["regions"] == REGION["neck"]
        assert neck.any() and (cihp[neck] == 10).all() and (atr[neck] == 11).all()
        assert (s["label"][neck] == LABEL["face"]).all()
        # The garment keeps its kind where the scheme has one.
        target = garment_region(s["regions"], category)
        kinds = dict(upper_body=({5}, {4}), lower_body=({9, 12}, {5, 6}), dresses=({6}, {7}))
        assert set(np.unique(cihp[target])) <= kinds[category][0]
        assert set(np.unique(atr[target])) <= kinds[category][1]
        # The person's left arm is on the image's right.
        xs = np.arange(48)[None, :].repeat(64, 0)
        assert xs[cihp == 14].mean() > xs[cihp == 15].mean()
        assert xs[atr == 12].mean() > xs[atr == 13].mean()


def same_photo(decoded, drawn):
    """A JPEG of ``drawn``: at 64x48 fine stripes lose much to JPEG, their 4x4 means little."""
    def blocks(a):
        return cv2.resize(a.astype(np.float32), (a.shape[1] // 4, a.shape[0] // 4),
                          interpolation=cv2.INTER_AREA)
    return np.abs(blocks(decoded) - blocks(drawn)).mean() < 4


def read_indices(path):
    with Image.open(path) as image:
        return image.mode, np.array(image)


def check_pairs(path, persons, garments):
    with open(path) as handle:
        lines = [line.split() for line in handle.read().splitlines()]
    assert [p for p, _ in lines] == persons
    assert [g for _, g in lines] == garments


def derangement_of(path, names):
    with open(path) as handle:
        lines = [line.split() for line in handle.read().splitlines()]
    persons, garments = [p for p, _ in lines], [g for _, g in lines]
    assert persons == names and sorted(garments) == sorted(names)
    assert all(p != g for p, g in zip(persons, garments))


@pytest.mark.parametrize("old_names", [False, True])
def test_vitonhd_layout(tmp_path, old_names):
    roots = make_dataset(str(tmp_path), 2, 3, seed=5, height=64, width=48, layout="vitonhd",
                         old_names=old_names)
    root = os.path.join(str(tmp_path), "VITON-HD")
    assert roots == {"root": root, "train": os.path.join(root, "train"),
                     "test": os.path.join(root, "test")}
    parse, pose_json, pose_image = (("image-parse", "openpose-json", "openpose-img") if old_names
                                    else ("image-parse-v3", "openpose_json", "openpose_img"))
    for split, split_name, count in ((0, "train", 2), (1, "test", 3)):
        folder = os.path.join(root, split_name)
        assert sorted(os.listdir(folder)) == sorted(["image", "cloth", "cloth-mask", parse,
                                                     pose_json, pose_image, "image-densepose"])
        for index in range(count):
            name = f"{index:05d}_00"
            s = draw_sample(sample_rng(5, split, index), 64, 48)
            mode, cihp = read_indices(os.path.join(folder, parse, name + ".png"))
            assert mode == "P" and cihp.max() <= 19
            assert np.array_equal(convert(cihp, CIHP_TO_VITON), merged(s["label"]))
            for sub in ("image", "cloth"):
                photo = cv2.imread(os.path.join(folder, sub, name + ".jpg"))[:, :, ::-1]
                drawn = s["image"] if sub == "image" else s["garment"]
                assert same_photo(photo, drawn)
            mask = cv2.imread(os.path.join(folder, "cloth-mask", name + ".jpg"),
                              cv2.IMREAD_GRAYSCALE)
            assert ((mask > 127) != (s["edge"] > 127)).mean() < 0.01
            with open(os.path.join(folder, pose_json, name + "_keypoints.json")) as handle:
                body = np.array(json.load(handle)["people"][0]["pose_keypoints_2d"]).reshape(25, 3)
            # BODY_25 -> COCO-18: points 0..7 and 9..18; 8 is the hips' midpoint.
            assert np.allclose(body[[0, 1, 2, 3, 4, 5, 6, 7] + list(range(9, 19))],
                               s["keypoints"], atol=1e-3)
            if (s["keypoints"][[8, 11], 2] > 0).all():
                assert np.allclose(body[8, :2], s["keypoints"][[8, 11], :2].mean(0), atol=2e-3)
                assert body[8, 2] > 0
            else:
                assert (body[8] == 0).all()
            assert np.allclose(body[19:], s["feet"], atol=1e-3)
            rendered = cv2.imread(os.path.join(folder, pose_image, name + "_rendered.png"))
            assert rendered.shape == (64, 48, 3) and rendered.any()
            dense = cv2.imread(os.path.join(folder, "image-densepose", name + ".jpg"))
            assert dense.shape == (64, 48, 3)
            assert dense[s["densepose"] == 0].mean() < 10        # black outside the body
            # A picture, not the indices: its channels disagree on the body.
            assert np.abs(dense[..., 0].astype(int) - dense[..., 2]).max() > 50
    check_pairs(os.path.join(root, "train_pairs.txt"), ["00000_00.jpg", "00001_00.jpg"],
                ["00000_00.jpg", "00001_00.jpg"])
    derangement_of(os.path.join(root, "test_pairs.txt"), [f"{i:05d}_00.jpg" for i in range(3)])
    with pytest.raises(ValueError, match="upper-body"):
        make_dataset(str(tmp_path / "other"), 1, 1, layout="vitonhd", categories=("lower_body",))


def test_vitonhd_feet_follow_the_ankles():
    for seed in range(12):
        s = draw_sample(np.random.default_rng((4, seed)), 256, 192)
        left_foot, right_foot = s["feet"][:3], s["feet"][3:]
        for feet, ankle in ((left_foot, s["keypoints"][13]), (right_foot, s["keypoints"][10])):
            seen = feet[:, 2] > 0
            assert not seen.any() or ankle[2] > 0
            assert (np.linalg.norm(feet[seen, :2] - ankle[:2], axis=1) < 25).all()
            assert (feet[seen, 1] > ankle[1] - 10).all()
        if (s["feet"][:, 2] > 0).all():
            # Big toes inside the small toes: the left foot is on the image's right.
            assert s["feet"][0, 0] < s["feet"][1, 0] and s["feet"][3, 0] > s["feet"][4, 0]


def test_dresscode_layout(tmp_path):
    roots = make_dataset(str(tmp_path), 2, 2, seed=6, height=64, width=48, layout="dresscode",
                         categories=("dresses", "lower_body", "upper_body"))
    root = os.path.join(str(tmp_path), "DressCode")
    assert roots == {"root": root, **{c: os.path.join(root, c) for c in CATEGORIES}}
    first = dict(upper_body=0, lower_body=13563, dresses=20714)
    ids = set()
    for category in CATEGORIES:
        folder = roots[category]
        assert sorted(os.listdir(folder)) == sorted(
            ["images", "keypoints", "label_maps", "skeletons", "dense", "train_pairs.txt",
             "test_pairs_paired.txt", "test_pairs_unpaired.txt"])        # no garment masks
        names = [f"{first[category] + i:06d}" for i in range(4)]
        ids.update(names)
        for number, name in enumerate(names):
            split, index = divmod(number, 2)
            s = draw_sample(sample_rng(6, split, index, category), 64, 48, category=category)
            photo = cv2.imread(os.path.join(folder, "images", f"{name}_0.jpg"))[:, :, ::-1]
            garment = cv2.imread(os.path.join(folder, "images", f"{name}_1.jpg"))[:, :, ::-1]
            assert same_photo(photo, s["image"]) and same_photo(garment, s["garment"])
            mode, atr = read_indices(os.path.join(folder, "label_maps", f"{name}_4.png"))
            assert mode == "L" and atr.max() <= 17
            assert np.array_equal(convert(atr, ATR_TO_VITON), merged(s["label"]))
            target = dict(upper_body=(4,), lower_body=(5, 6), dresses=(7,))[category]
            assert np.array_equal(np.isin(atr, target), garment_region(s["regions"], category))
            with open(os.path.join(folder, "keypoints", f"{name}_2.json")) as handle:
                rows = np.array(json.load(handle)["keypoints"], dtype=np.float64)
            assert rows.shape == (18, 4) and np.array_equal(rows[:, 3], np.arange(18))
            seen = s["keypoints"][:, 2] > 0
            assert np.allclose(rows[seen, 0], s["keypoints"][seen, 0] * 384 / 48, atol=1e-3)
            assert np.allclose(rows[seen, 1], s["keypoints"][seen, 1] * 512 / 64, atol=1e-3)
            assert np.allclose(rows[seen, 2], s["keypoints"][seen, 2], atol=1e-4)
            assert (rows[~seen, :3] == [-1, -1, 0]).all()
            _, dense = read_indices(os.path.join(folder, "dense", f"{name}_5.png"))
            assert np.array_equal(dense, s["densepose"])
            uv = np.load(os.path.join(folder, "dense", f"{name}_5_uv.npz"))["uv"]
            assert uv.shape == (2, 64, 48) and uv.dtype == np.float32
            assert uv.min() >= 0 and uv.max() <= 1 and (uv[:, s["densepose"] == 0] == 0).all()
            skeleton = cv2.imread(os.path.join(folder, "skeletons", f"{name}_5.jpg"))
            assert skeleton.shape == (64, 48, 3)
        check_pairs(os.path.join(folder, "train_pairs.txt"), [f"{n}_0.jpg" for n in names[:2]],
                    [f"{n}_1.jpg" for n in names[:2]])
        check_pairs(os.path.join(folder, "test_pairs_paired.txt"),
                    [f"{n}_0.jpg" for n in names[2:]], [f"{n}_1.jpg" for n in names[2:]])
        with open(os.path.join(folder, "test_pairs_unpaired.txt")) as handle:
            pairs = [line.split() for line in handle.read().splitlines()]
        assert pairs == [[f"{names[2]}_0.jpg", f"{names[3]}_1.jpg"],
                         [f"{names[3]}_0.jpg", f"{names[2]}_1.jpg"]]
    assert len(ids) == 12 and all(len(i) == 6 for i in ids)


def test_dresscode_ids_stay_disjoint_when_many():
    assert dresscode_first_ids(CATEGORIES, 100) == dict(upper_body=0, lower_body=13563,
                                                        dresses=20714)
    # 7,200 samples do not fit between DressCode's first ids of lower_body and dresses.
    assert dresscode_first_ids(CATEGORIES, 7200) == dict(upper_body=0, lower_body=13563,
                                                         dresses=20763)
    assert dresscode_first_ids(("dresses", "upper_body"), 30000) == dict(upper_body=0,
                                                                         dresses=30000)
    assert dresscode_first_ids(("lower_body",), 5) == dict(lower_body=13563)
    with pytest.raises(ValueError, match="6 digits"):
        dresscode_first_ids(CATEGORIES, 400000)


def test_viton_layout_of_other_categories(tmp_path):
    roots = make_dataset(str(tmp_path), 2, 2, seed=8, height=64, width=48, layout="viton",
                         categories=("lower_body", "dresses"))
    assert set(roots) == {"lower_body_train", "lower_body_test", "dresses_train", "dresses_test"}
    assert not os.path.exists(os.path.join(str(tmp_path), "VITON_traindata"))
    for category in ("lower_body", "dresses"):
        train = roots[f"{category}_train"]
        assert train == os.path.join(str(tmp_path), category, "VITON_traindata")
        for index in range(2):
            s = draw_sample(sample_rng(8, 0, index, category), 64, 48, category=category)
            label = cv2.imread(os.path.join(train, "train_label", f"{index:06d}_0.png"),
                               cv2.IMREAD_GRAYSCALE)
            assert np.array_equal(label, s["label"]) and label.max() <= 13
            densepose = np.load(os.path.join(train, "train_densepose", f"{index:06d}_0.npy"))
            assert np.array_equal(densepose, s["densepose"])
        dataset = VitonTrainDataset(train, 64, 48)
        assert len(dataset) == 2 and dataset[0]["label"].max() <= 13
        test = roots[f"{category}_test"]
        assert len(make_pairs_dataset(DataOptions(), test, "test_pairs.txt", 64, 48)) == 2
        assert len(make_pairs_dataset(DataOptions(), test, "test_pairs_same.txt", 64, 48)) == 2


def test_cli_writes_viton_layout_that_opens(tmp_path):
    out = str(tmp_path / "synth")
    result = subprocess.run([sys.executable,
                             os.path.join(ROOT, "scripts", "make_synthetic_data.py"),
                             "--out", out, "--num_train", "12", "--num_test", "5", "--seed", "3",
                             "--height", "64", "--width", "48"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"train: {os.path.join(out, 'VITON_traindata')}" in result.stdout
    assert sorted(os.listdir(out)) == ["VITON_test", "VITON_traindata"]
    assert sorted(os.listdir(os.path.join(out, "VITON_test"))) == [
        ".synthetic", "test_clothes", "test_densepose", "test_edge", "test_img", "test_label",
        "test_pairs.txt", "test_pairs_same.txt", "test_pose"]
    train = os.path.join(out, "VITON_traindata")
    assert sorted(os.listdir(train)) == [".synthetic", "train_color", "train_densepose",
                                         "train_edge",
                                         "train_img", "train_label", "train_pose"]
    assert sorted(os.listdir(os.path.join(train, "train_pose")))[0] == "000000_0_keypoints.json"
    for folder, name in (("train_img", "000011_0.jpg"), ("train_color", "000011_1.jpg"),
                         ("train_edge", "000011_1.jpg"), ("train_label", "000011_0.png"),
                         ("train_densepose", "000011_0.npy")):
        assert os.path.isfile(os.path.join(train, folder, name))
    dataset = VitonTrainDataset(train, 64, 48)
    assert len(dataset) == 12
    item = dataset[3]
    inputs = TryOnInputs.from_batch({k: v[None] if torch.is_tensor(v) else [v]
                                     for k, v in item.items()})
    assert inputs.pb_condition.shape == (1, 45, 64, 48)
    assert inputs.person_clothes_edge.sum() > 100
    test = os.path.join(out, "VITON_test")
    unpaired = make_pairs_dataset(DataOptions(), test, "test_pairs.txt", 64, 48)
    paired = make_pairs_dataset(DataOptions(), test, "test_pairs_same.txt", 64, 48)
    assert len(unpaired) == len(paired) == 5
    assert not any(unpaired[i]["paired"] for i in range(5))
    assert all(paired[i]["paired"] for i in range(5))
    assert check_main([out, "--height", "64", "--width", "48"]) == 0


def load_cli():
    spec = importlib.util.spec_from_file_location(
        "make_synthetic_data", os.path.join(ROOT, "scripts", "make_synthetic_data.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli_layouts_and_categories(tmp_path, capsys):
    main = load_cli()
    out = str(tmp_path / "synth")
    main(["--out", out, "--num_train", "1", "--num_test", "2", "--height", "64", "--width", "48",
          "--layout", "dresscode", "--category", "lower_body,dresses"])
    printed = capsys.readouterr().out
    for category in ("lower_body", "dresses"):
        assert f"{category}: {os.path.join(out, 'DressCode', category)}" in printed
    assert sorted(os.listdir(os.path.join(out, "DressCode"))) == [".synthetic", "dresses",
                                                                  "lower_body"]
    assert sorted(os.listdir(os.path.join(out, "DressCode", "lower_body", "images"))) == [
        "013563_0.jpg", "013563_1.jpg", "013564_0.jpg", "013564_1.jpg", "013565_0.jpg",
        "013565_1.jpg"]
    main(["--out", out, "--num_train", "1", "--num_test", "0", "--height", "64", "--width", "48",
          "--layout", "vitonhd", "--old_names"])
    assert os.path.isdir(os.path.join(out, "VITON-HD", "train", "openpose-json"))
    assert f"train: {os.path.join(out, 'VITON-HD', 'train')}" in capsys.readouterr().out
    for bad in (["--layout", "vitonhd", "--category", "dresses"], ["--category", "shoes"],
                ["--category", "dresses,dresses"], ["--old_names"]):
        with pytest.raises(SystemExit) as error:
            main(["--out", out, "--num_train", "1", "--num_test", "0", *bad])
        assert error.value.code == 2, bad
        assert "error" in capsys.readouterr().err


class TinyWarp(nn.Module):
    """A small flow regressor: condition -> offsets at 1/8 size, added to the identity."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(45, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(64, 2, 3, 1, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, cond, garment, edge):
        offset = F.interpolate(self.net(cond), size=garment.shape[-2:], mode="bilinear",
                               align_corners=False)
        flow = identity_flow(garment.shape[0], *garment.shape[-2:]) + offset
        return sample(garment, flow), sample(edge, flow, "zeros")


def iou(a, b):
    a, b = a > 0.5, b > 0.5
    return ((a & b).sum() / (a | b).sum()).item()


@pytest.fixture
def one_thread():
    # The network is tiny: with several threads, synchronisation costs more than it saves
    # (several times slower on a busy 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_deformation_is_learnable(one_thread):
    """A warp trained for a few seconds puts the garment where the person wears it, far
    better than leaving it in place (the identity warp)."""
    torch.manual_seed(0)
    train = TryOnInputs.from_batch(to_batch(
        [draw_sample(np.random.default_rng((9, i)), 64, 48) for i in range(160)]))
    test = TryOnInputs.from_batch(to_batch(
        [draw_sample(np.random.default_rng((9, 1000 + i)), 64, 48) for i in range(48)]))
    model = TinyWarp()
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(150):
        index = torch.randint(0, 160, (16,))
        warped, edge = model(train.pb_condition[index], train.garment[index],
                             train.garment_edge[index])
        loss = (warped - train.person_clothes[index]).abs().mean() + \
            2 * (edge - train.person_clothes_edge[index]).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        warped, edge = model(test.pb_condition, test.garment, test.garment_edge)
    identity_l1 = (test.garment - test.person_clothes).abs().mean().item()
    identity_iou = iou(test.garment_edge, test.person_clothes_edge)
    learned_l1 = (warped - test.person_clothes).abs().mean().item()
    learned_iou = iou(edge, test.person_clothes_edge)
    assert learned_iou > identity_iou + 0.25, (learned_iou, identity_iou)
    assert learned_l1 < 0.5 * identity_l1, (learned_l1, identity_l1)


def test_cli_never_writes_over_a_dataset_it_finds(tmp_path, capsys):
    main = load_cli()
    out = tmp_path / "synth"
    argv = ["--out", str(out), "--num_train", "1", "--num_test", "0", "--height", "64",
            "--width", "48"]
    main(argv)
    photo = out / "VITON_traindata" / "train_img" / "000000_0.jpg"
    photo.write_bytes(b"the user's own photo")
    with pytest.raises(SystemExit) as error:
        main(argv)
    assert error.value.code == 2 and "already holds VITON_traindata" in capsys.readouterr().err
    assert photo.read_bytes() == b"the user's own photo"
    main(argv + ["--overwrite"])
    assert photo.read_bytes() != b"the user's own photo"
    # --overwrite replaces: no sample of a larger earlier dataset is left beside the new ones.
    main(argv[:2] + ["--num_train", "3"] + argv[4:] + ["--overwrite"])
    main(argv + ["--overwrite"])
    assert sorted(p.name for p in (out / "VITON_traindata" / "train_img").iterdir()) == [
        "000000_0.jpg"]
    # A folder this tool did not write is never deleted.
    foreign = tmp_path / "theirs"
    (foreign / "VITON_test" / "test_img").mkdir(parents=True)
    (foreign / "VITON_test" / "test_img" / "a.jpg").write_bytes(b"theirs")
    with pytest.raises(SystemExit) as error:
        main(["--out", str(foreign)] + argv[2:] + ["--overwrite"])
    assert error.value.code == 2 and "did not write" in capsys.readouterr().err
    assert (foreign / "VITON_test" / "test_img" / "a.jpg").read_bytes() == b"theirs"


def test_cli_backdrop_reaches_the_photos(tmp_path):
    """--backdrop tinted writes the same persons as make_dataset(backdrop='tinted'), and not
    the studio default's photos."""
    main = load_cli()
    common = ["--num_train", "0", "--num_test", "1", "--height", "64", "--width", "48"]
    main(["--out", str(tmp_path / "cli"), *common, "--backdrop", "tinted"])
    tinted = make_dataset(str(tmp_path / "tinted"), 0, 1, height=64, width=48, backdrop="tinted")
    studio = make_dataset(str(tmp_path / "studio"), 0, 1, height=64, width=48)
    photo = Path("test_img", "000000_0.jpg")
    written = (tmp_path / "cli" / "VITON_test" / photo).read_bytes()
    assert written == (Path(tinted["test"]) / photo).read_bytes()
    assert written != (Path(studio["test"]) / photo).read_bytes()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "bad"), *common, "--backdrop", "plain"])
