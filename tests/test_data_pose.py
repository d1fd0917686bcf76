import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from data.pose import (
    BODY25_TO_COCO18,
    PoseFileError,
    coco17_to_coco18,
    dresscode_to_coco18,
    parse_keypoints,
    read_keypoints_file,
    render_pose_maps,
)


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
    points = parse_keypoints({"people": [{"pose_keypoints_2d": body25.ravel().tolist()}]},
                             pose_format="openpose")[0]
    assert points.shape == (18, 3)
    # COCO 8..13 (hips, knees, ankles) are BODY_25 9..14; MidHip (8) and the feet are dropped.
    assert points[:, 0].tolist() == [100 + i for i in BODY25_TO_COCO18]
    assert points[8, 0] == 109 and points[13, 0] == 114 and points[17, 0] == 118


def test_formats_and_errors(tmp_path):
    flat18 = list(np.arange(54, dtype=float))
    keypoints = parse_keypoints({"people": [{"pose_keypoints": flat18}]}, pose_format="openpose")[0]
    assert keypoints[1].tolist() == [3, 4, 5]
    assert parse_keypoints({"people": []}, pose_format="openpose")[0].sum() == 0
    with pytest.raises(PoseFileError, match="expected 18 .* or 25"):
        parse_keypoints({"people": [{"pose_keypoints": [0.0] * 30}]}, pose_format="openpose")[0]
    with pytest.raises(PoseFileError, match="multiple of 3"):
        parse_keypoints({"people": [{"pose_keypoints": [0.0] * 53}]}, pose_format="openpose")[0]
    with pytest.raises(PoseFileError, match="neither"):
        parse_keypoints({"people": [{"face_keypoints": []}]}, pose_format="openpose")[0]
    bad = tmp_path / "x_keypoints.json"
    bad.write_text('{"people": [')
    with pytest.raises(PoseFileError, match="x_keypoints.json: malformed JSON"):
        read_keypoints_file(str(bad))
    good = tmp_path / "y_keypoints.json"
    good.write_text(json.dumps({"people": [{"pose_keypoints": flat18}]}))
    assert read_keypoints_file(str(good)).shape == (18, 3)


def test_of_several_people_the_first_is_read_and_said(tmp_path):
    """As the release reads them; the description (data.check's count of keypoint formats)
    says so, where nothing had."""
    first, second = list(np.arange(54, dtype=float)), [0.0] * 54
    keypoints, described = parse_keypoints({"people": [{"pose_keypoints_2d": first},
                                                       {"pose_keypoints_2d": second}]})
    assert keypoints[1].tolist() == [3, 4, 5]
    assert described == "openpose pose_keypoints_2d COCO-18, the first of 2 people"
    assert parse_keypoints({"people": [{"pose_keypoints_2d": first}]})[1] == \
        "openpose pose_keypoints_2d COCO-18"


def test_coco17_maps_to_coco18():
    coco17 = np.zeros((17, 3))
    coco17[:, 0] = np.arange(17) + 100      # x encodes the COCO-17 index
    coco17[:, 1] = 50
    coco17[:, 2] = 0.5 + np.arange(17) / 100
    points = coco17_to_coco18(coco17)
    assert points.shape == (18, 3)
    # COCO-18: nose, neck, R shoulder/elbow/wrist, L shoulder/elbow/wrist, R hip/knee/ankle,
    # L hip/knee/ankle, R eye, L eye, R ear, L ear. COCO-17 lists left before right.
    assert points[:, 0].tolist() == [100, 105.5, 106, 108, 110, 105, 107, 109, 112, 114, 116,
                                     111, 113, 115, 102, 101, 104, 103]
    # The neck: midpoint of the shoulders (COCO-17 5 and 6), the lower of their scores.
    assert points[1].tolist() == [105.5, 50, 0.55]
    coco17[5, 2] = 0
    points = coco17_to_coco18(coco17)
    assert points[1].tolist() == [0, 0, 0] and points[5].tolist() == [0, 0, 0]
    assert points[2].tolist() == [106, 50, 0.56]


def test_dresscode_frame_scaling():
    points = np.zeros((18, 4))
    points[:, 0], points[:, 1], points[:, 2] = 96, 128, 1     # a quarter of 384 x 512
    points[:, 3] = np.arange(18)
    points[4] = (-1, -1, 0, 4)
    scaled = dresscode_to_coco18(points, (1024, 768))
    assert scaled[0].tolist() == [192, 256, 1] and scaled[4].tolist() == [0, 0, 0]
    assert dresscode_to_coco18(points, (400, 300))[0].tolist() == [75, 100, 1]


def test_read_openpose_missing_file_names_it(tmp_path):
    with pytest.raises(PoseFileError, match="none_keypoints.json: cannot read"):
        read_keypoints_file(str(tmp_path / "none_keypoints.json"))
