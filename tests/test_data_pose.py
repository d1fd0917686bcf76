import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from data.pose import (BODY25_TO_COCO18, PoseFileError, keypoints_from_openpose, read_openpose,
                       render_pose_maps)


def release_pose_map(x, y, height, width, radius=5):
    """The release's drawing of one keypoint, as its loader did it (PIL rectangle)."""
    image = Image.new("L", (width, height))
    if x > 1 and y > 1:
        ImageDraw.Draw(image).rectangle((x - radius, y - radius, x + radius, y + radius),
                                        "white", "white")
    return np.where(np.array(image) > 0, 1.0, -1.0)


def test_square_at_known_pixels():
    keypoints = torch.tensor([[[10.7, 20.2, 0.9], [0.0, 0.0, 0.0], [1.0, 50.0, 1.0],
                               [3.5, 2.5, 0.1]]])
    maps = render_pose_maps(keypoints, 64, 48)
    assert maps.shape == (1, 4, 64, 48)
    assert set(maps.unique().tolist()) == {-1.0, 1.0}
    inside = maps[0, 0] > 0
    rows, cols = torch.nonzero(inside, as_tuple=True)
    # Centred on floor(x) = 10, floor(y) = 20: rows 15..25, columns 5..15, 121 pixels.
    assert (rows.min().item(), rows.max().item(), cols.min().item(), cols.max().item()) == \
        (15, 25, 5, 15)
    assert inside.sum().item() == 121
    # x <= 1 or y <= 1: not drawn (OpenPose writes 0, 0 for a missed point).
    assert (maps[0, 1] == -1).all() and (maps[0, 2] == -1).all()
    # Near the corner the square is clipped: rows 0..7, columns 0..8.
    rows, cols = torch.nonzero(maps[0, 3] > 0, as_tuple=True)
    assert (rows.max().item(), cols.max().item(), (maps[0, 3] > 0).sum().item()) == (7, 8, 72)


def test_matches_release_drawing_on_random_points():
    rng = np.random.default_rng(0)
    height, width = 40, 30
    # Points inside, on the borders, outside, and at x or y <= 1; float32-exact values.
    xy = rng.uniform(-8, 40, size=(200, 2)).astype(np.float32)
    xy[:20] = np.round(xy[:20])
    maps = render_pose_maps(torch.from_numpy(xy), height, width)
    for (x, y), rendered in zip(xy.astype(np.float64), maps.numpy()):
        np.testing.assert_array_equal(rendered, release_pose_map(x, y, height, width))


def test_batched_shapes_and_radius():
    keypoints = torch.full((2, 18, 3), 20.0)
    maps = render_pose_maps(keypoints, 48, 40, radius=2)
    assert maps.shape == (2, 18, 48, 40)
    assert ((maps > 0).sum(dim=(-1, -2)) == 25).all()


def test_body25_maps_to_coco18():
    body25 = np.zeros((25, 3))
    body25[:, 0] = np.arange(25) + 100      # x encodes the BODY_25 index
    body25[:, 1] = 50
    body25[:, 2] = 1
    points = keypoints_from_openpose({"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]})
    assert points.shape == (18, 3)
    # COCO 8..13 (hips, knees, ankles) are BODY_25 9..14; MidHip (8) and the feet are dropped.
    assert points[:, 0].tolist() == [100 + i for i in BODY25_TO_COCO18]
    assert points[8, 0] == 109 and points[13, 0] == 114 and points[17, 0] == 118


def test_formats_and_errors(tmp_path):
    flat18 = list(np.arange(54, dtype=float))
    assert keypoints_from_openpose({"people": [{"pose_keypoints": flat18}]})[1].tolist() == [3, 4, 5]
    assert keypoints_from_openpose({"people": []}).sum() == 0
    with pytest.raises(PoseFileError, match="expected 18 .* or 25"):
        keypoints_from_openpose({"people": [{"pose_keypoints": [0.0] * 30}]})
    with pytest.raises(PoseFileError, match="multiple of 3"):
        keypoints_from_openpose({"people": [{"pose_keypoints": [0.0] * 53}]})
    with pytest.raises(PoseFileError, match="neither"):
        keypoints_from_openpose({"people": [{"face_keypoints": []}]})
    bad = tmp_path / "x_keypoints.json"
    bad.write_text('{"people": [')
    with pytest.raises(PoseFileError, match="x_keypoints.json: malformed JSON"):
        read_openpose(str(bad))
    good = tmp_path / "y_keypoints.json"
    good.write_text(json.dumps({"people": [{"pose_keypoints": flat18}]}))
    assert read_openpose(str(good)).shape == (18, 3)
