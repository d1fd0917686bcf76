import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from data.check import main as check_main
from data.inputs import TryOnInputs
from data.synthetic import LABEL, draw_sample
from data.viton import VitonTestDataset, VitonTrainDataset
from models.flow import identity_flow, sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def to_batch(samples):
    def photo(a):
        return torch.from_numpy(a.transpose(2, 0, 1).copy()).float() / 127.5 - 1
    return dict(
        image=torch.stack([photo(s["image"]) for s in samples]),
        garment=torch.stack([photo(s["garment"]) for s in samples]),
        garment_edge=torch.stack([torch.from_numpy(s["edge"] > 127).float()[None] for s in samples]),
        label=torch.stack([torch.from_numpy(s["label"]).long() for s in samples]),
        densepose=torch.stack([torch.from_numpy(s["densepose"]).long() for s in samples]),
        keypoints=torch.stack([torch.from_numpy(s["keypoints"]).float() for s in samples]))


def test_garment_pixels_are_the_warped_product():
    for seed in range(4):
        s = draw_sample(np.random.default_rng(seed), 128, 96)
        garment = (s["label"] == LABEL["clothes"]) | (s["label"] == LABEL["noise"])
        assert garment.sum() > 500
        # The returned flow, applied as the warp module applies flows, gives the photo's
        # garment pixels (cv2.remap quantises positions to 1/32 pixel: allow 2 levels).
        product = torch.from_numpy(s["garment"].transpose(2, 0, 1).copy()).float()[None]
        warped = sample(product, torch.from_numpy(s["flow"])[None])[0].permute(1, 2, 0).numpy()
        difference = np.abs(warped - s["image"].astype(np.float32))[garment]
        assert difference.max() <= 2.5, difference.max()
        # ... and the product's edge, so warped, is the label-4 region (up to the boundary).
        edge = torch.from_numpy(s["edge"]).float()[None, None] / 255
        warped_edge = sample(edge, torch.from_numpy(s["flow"])[None], "zeros")[0, 0].numpy() > 0.5
        assert (garment & ~warped_edge).sum() <= 0.01 * garment.sum()
        assert s["label"].max() <= 13 and s["densepose"].max() <= 24
        assert s["edge"][0, 0] == 0 and (s["garment"][0, 0] == 255).all()   # white background


def test_reproducible_and_varied():
    a = draw_sample(np.random.default_rng(5), 64, 48)
    b = draw_sample(np.random.default_rng(5), 64, 48)
    c = draw_sample(np.random.default_rng(6), 64, 48)
    for key in ("image", "garment", "label", "densepose", "keypoints"):
        assert np.array_equal(a[key], b[key])
    assert not np.array_equal(a["garment"], c["garment"])
    assert not np.allclose(a["keypoints"], c["keypoints"])


def test_cli_writes_viton_layout_that_opens(tmp_path):
    out = str(tmp_path / "synth")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_synthetic_data.py"),
                             "--out", out, "--num_train", "12", "--num_test", "5", "--seed", "3",
                             "--height", "64", "--width", "48"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    train = os.path.join(out, "VITON_traindata")
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
    unpaired = VitonTestDataset(test, "test_pairs.txt", 64, 48)
    paired = VitonTestDataset(test, "test_pairs_same.txt", 64, 48)
    assert len(unpaired) == len(paired) == 5
    assert not any(unpaired[i]["paired"] for i in range(5))
    assert all(paired[i]["paired"] for i in range(5))
    assert check_main([out, "--height", "64", "--width", "48"]) == 0


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


def test_deformation_is_learnable():
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
