"""OpenPose keypoints: reading the JSON files, BODY_25 -> COCO-18, and the 18 pose maps.

PF-AFN's pose condition has one channel per COCO-18 keypoint (nose, neck, right shoulder,
elbow, wrist, left shoulder, elbow, wrist, right hip, knee, ankle, left hip, knee, ankle,
right eye, left eye, right ear, left ear). A keypoint is drawn when x > 1 and y > 1 (its
confidence is not used) as a filled square of side 2 * radius + 1, value +1 inside and -1
elsewhere.

The release drew each square with PIL's ``rectangle((x - r, y - r, x + r, y + r))``, which
truncates the corners to int and fills both ends inclusively, then clips to the image. For
x > 1 this covers the columns floor(x) - r .. floor(x) + r (a negative left corner is clipped
to 0 whether it is truncated or floored), and likewise for rows: that is the pixel set
rendered here, without drawing, by comparing pixel coordinates with the floored centre.
"""

import json
from typing import Union

import numpy as np
import torch

NUM_KEYPOINTS = 18

# BODY_25 index of each COCO-18 keypoint. BODY_25 inserts MidHip at 8 and appends six foot
# points (19..24); every other point keeps its COCO order.
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

POSE_RADIUS = 5


class PoseFileError(ValueError):
    """A keypoint file that cannot be read as OpenPose output."""


def keypoints_from_openpose(data: dict, source: str = "<json>") -> np.ndarray:
    """The first person's keypoints of a parsed OpenPose JSON document.

    Accepts ``people[0].pose_keypoints`` (OpenPose <= 1.1) or ``pose_keypoints_2d`` (newer),
    with 18 (COCO) or 25 (BODY_25, mapped to COCO-18) points, as a flat list of
    x, y, confidence triples. No person -> all zeros (no keypoint drawn), as the release does.

    Returns:
        float64 (18, 3) array of (x, y, confidence) in the file's pixels.
    """
    if not isinstance(data, dict) or "people" not in data:
        raise PoseFileError(f"{source}: no 'people' list in the OpenPose JSON")
    people = data["people"]
    if not isinstance(people, list):
        raise PoseFileError(f"{source}: 'people' is not a list")
    if len(people) == 0:
        return np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    person = people[0]
    if not isinstance(person, dict):
        raise PoseFileError(f"{source}: people[0] is not an object")
    for key in ("pose_keypoints_2d", "pose_keypoints"):
        if key in person:
            values = person[key]
            break
    else:
        raise PoseFileError(f"{source}: people[0] has neither 'pose_keypoints' nor "
                            f"'pose_keypoints_2d'")
    try:
        points = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise PoseFileError(f"{source}: keypoints are not numbers ({error})") from None
    if points.size == 0:
        return np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    if points.size % 3:
        raise PoseFileError(f"{source}: {points.size} keypoint values, not a multiple of 3 "
                            f"(x, y, confidence)")
    points = points.reshape(-1, 3)
    if len(points) == 25:
        points = points[list(BODY25_TO_COCO18)]
    elif len(points) != NUM_KEYPOINTS:
        raise PoseFileError(f"{source}: {len(points)} keypoints; expected 18 (COCO) or "
                            f"25 (BODY_25)")
    if not np.all(np.isfinite(points)):
        raise PoseFileError(f"{source}: keypoints contain NaN or infinity")
    return points


def read_openpose(path: str) -> np.ndarray:
    """Read an OpenPose ``*_keypoints.json`` file -> float64 (18, 3); see keypoints_from_openpose."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except json.JSONDecodeError as error:
        raise PoseFileError(f"{path}: malformed JSON ({error})") from None
    except UnicodeDecodeError as error:
        raise PoseFileError(f"{path}: not UTF-8 text ({error})") from None
    return keypoints_from_openpose(data, path)


def render_pose_maps(keypoints: torch.Tensor, height: int, width: int,
                     radius: int = POSE_RADIUS) -> torch.Tensor:
    """Pose maps of the release, without drawing.

    Args:
        keypoints: (..., K, 2 or 3) x, y (and confidence, ignored) in pixels.
        height, width: map size.
        radius: half side of the square (the release: 5, an 11x11 square).

    Returns:
        (..., K, height, width) float tensor on the keypoints' device: +1 on the square
        |row - floor(y)| <= radius, |col - floor(x)| <= radius of each keypoint with x > 1
        and y > 1 (clipped to the image), -1 elsewhere.
    """
    xy = keypoints[..., :2]
    dtype = xy.dtype if xy.is_floating_point() else torch.float32
    xy = xy.to(dtype)
    visible = (xy[..., 0] > 1) & (xy[..., 1] > 1)
    centre = torch.floor(xy)
    rows = torch.arange(height, device=xy.device, dtype=dtype)
    cols = torch.arange(width, device=xy.device, dtype=dtype)
    in_rows = ((rows - centre[..., 1:2]).abs() <= radius) & visible.unsqueeze(-1)  # (..., K, H)
    in_cols = (cols - centre[..., 0:1]).abs() <= radius                            # (..., K, W)
    # The square is the outer product of its row and column indicators; 2 * inside - 1
    # gives +1 / -1 with a single full-size tensor.
    maps = (in_rows.to(dtype) * 2).unsqueeze(-1) * in_cols.to(dtype).unsqueeze(-2)
    return maps.sub_(1)


def scale_keypoints(keypoints: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Keypoints (K, 3) of an image resized by (scale_x, scale_y); confidence unchanged."""
    scaled = np.array(keypoints, dtype=np.float64, copy=True)
    scaled[:, 0] *= scale_x
    scaled[:, 1] *= scale_y
    return scaled


def write_openpose(path: str, keypoints: Union[np.ndarray, list], key: str = "pose_keypoints") -> None:
    """Write keypoints (K, 3) as an OpenPose JSON file with one person under ``key``."""
    flat = [float(v) for v in np.asarray(keypoints, dtype=np.float64).reshape(-1)]
    document = {"version": 1.0, "people": [{key: flat}]}
    with open(path, "w") as handle:
        json.dump(document, handle)
