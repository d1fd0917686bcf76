"""Keypoints: reading the JSON files of pose estimators as COCO-18, and the 18 pose maps.

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

Accepted keypoint files (read_keypoints_file), all turned into COCO-18 (x, y, confidence) in
the person photo's pixels, a missing point being (0, 0, 0):

- OpenPose JSON, ``people[0].pose_keypoints`` (OpenPose <= 1.1) or ``pose_keypoints_2d``:
  18 points (COCO-18), 25 (BODY_25: COCO-18 = BODY_25 points 0..7, 9..18) or 17 (COCO-17 in
  the OpenPose layout);
- mmpose / RTMPose / DWPose predictions, COCO-17 order: a list of instances (MMPoseInferencer's
  ``pred_out_dir`` files), a dict with ``instance_info`` (the mmpose demos'
  ``--save-predictions``) or ``predictions`` (the inferencer's result), a per-frame list of
  ``{"frame_id", "instances"}`` (the first frame is read). An instance is
  ``{"keypoints": [[x, y], ...], "keypoint_scores": [...]}`` with 17 points, or 133
  (COCO-WholeBody, DWPose: its first 17 are the COCO-17 body). Of several instances the one
  with the highest mean keypoint score is read (ties: the first): try-on photos show one
  person, and a stray detection in the background scores low;
- DressCode's ``{"keypoints": [[x, y, score, id], ...]}``, 18 points in COCO-18 order in a
  384-wide, 512-high frame, scaled to the photo (x * W / 384, y * H / 512); it marks a missing
  point with a zero score or non-positive coordinates.

COCO-17 has no neck: COCO-18's neck is the midpoint of the shoulders when both are seen.
"""

import json
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from common.errors import UserError
from data.files import DatasetError, read_text

NUM_KEYPOINTS = 18

# BODY_25 index of each COCO-18 keypoint. BODY_25 inserts MidHip at 8 and appends six foot
# points (19..24); every other point keeps its COCO order.
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

# COCO-17 index of each COCO-18 keypoint (None: the neck, which COCO-17 lacks). COCO-17 lists
# left before right (1/2 eyes, 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists, 11/12 hips,
# 13/14 knees, 15/16 ankles); COCO-18 lists the right side first.
COCO17_TO_COCO18 = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
COCO17_LEFT_SHOULDER, COCO17_RIGHT_SHOULDER = 5, 6
NUM_COCO17 = 17
NUM_BODY25 = 25
NUM_WHOLEBODY = 133      # COCO-WholeBody: 17 body, 6 feet, 68 face, 2 x 21 hands

# DressCode's keypoint frame (H, W): its keypoints are given in a 384-wide, 512-high image.
DRESSCODE_FRAME = (512, 384)

POSE_FORMATS = ("auto", "openpose", "coco17", "dresscode")

POSE_RADIUS = 5


class PoseFileError(UserError, ValueError):
    """A keypoint file that cannot be read as one of the accepted formats; names the file."""


def coco17_to_coco18(points: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """COCO-17 keypoints -> COCO-18.

    Args:
        points: (17, 3) x, y, score in COCO-17 order (mmpose, RTMPose, DWPose).
        min_score: a point is seen when its score is above this (default: any positive score).

    Returns:
        float64 (18, 3). Unseen points are (0, 0, 0). The neck (index 1) is the midpoint of the
        two shoulders with the lower of their scores when both are seen, else (0, 0, 0).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_COCO17, 3):
        raise ValueError(f"COCO-17 keypoints of shape {points.shape}; expected (17, 3)")
    seen = points[:, 2] > min_score
    clean = np.where(seen[:, None], points, 0.0)
    coco18 = clean[[0 if source is None else source for source in COCO17_TO_COCO18]]
    coco18[1] = 0.0
    left, right = COCO17_LEFT_SHOULDER, COCO17_RIGHT_SHOULDER
    if seen[left] and seen[right]:
        coco18[1, :2] = (clean[left, :2] + clean[right, :2]) / 2
        coco18[1, 2] = min(clean[left, 2], clean[right, 2])
    return coco18


def dresscode_to_coco18(points: np.ndarray, image_size: Tuple[int, int]) -> np.ndarray:
    """DressCode keypoints -> COCO-18 in the photo's pixels.

    Args:
        points: (18, 3 or 4) x, y, score[, id] in COCO-18 order, in DressCode's frame (512
            high, 384 wide).
        image_size: (H, W) of the person photo.

    Returns:
        float64 (18, 3): x * W / 384, y * H / 512, score; points DressCode marks missing
        (score <= 0, or x or y <= 0) are (0, 0, 0).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] != NUM_KEYPOINTS or points.shape[1] < 3:
        raise ValueError(f"DressCode keypoints of shape {points.shape}; expected (18, 4)")
    height, width = image_size
    frame_height, frame_width = DRESSCODE_FRAME
    coco18 = points[:, :3].copy()
    coco18[:, 0] *= width / frame_width
    coco18[:, 1] *= height / frame_height
    missing = (points[:, 2] <= 0) | (points[:, 0] <= 0) | (points[:, 1] <= 0)
    coco18[missing] = 0.0
    return coco18


def _as_points(values, columns: Sequence[int], source: str, what: str) -> np.ndarray:
    """Nested or flat keypoint values -> float64 (K, C) with C in ``columns``."""
    try:
        points = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise PoseFileError(f"{source}: {what} are not numbers ({error})") from None
    if points.ndim == 1 and points.size and len(columns) == 1 and points.size % columns[0] == 0:
        points = points.reshape(-1, columns[0])
    if points.ndim != 2 or points.shape[1] not in columns:
        raise PoseFileError(f"{source}: {what} of shape {points.shape}; expected rows of "
                            f"{' or '.join(str(c) for c in columns)} values")
    if not np.all(np.isfinite(points)):
        raise PoseFileError(f"{source}: {what} contain NaN or infinity")
    return points


def _openpose_points(data: dict, source: str) -> Tuple[np.ndarray, str]:
    """(K, 3) points of people[0] of an OpenPose document and the key they were under;
    (0, 3) when no person was detected."""
    people = data["people"]
    if not isinstance(people, list):
        raise PoseFileError(f"{source}: 'people' is not a list")
    if len(people) == 0:
        return np.zeros((0, 3)), "no person"
    person = people[0]
    if not isinstance(person, dict):
        raise PoseFileError(f"{source}: people[0] is not an object")
    for key in ("pose_keypoints_2d", "pose_keypoints"):
        if key in person:
            break
    else:
        raise PoseFileError(f"{source}: people[0] has neither 'pose_keypoints' nor "
                            f"'pose_keypoints_2d'")
    try:
        flat = np.asarray(person[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise PoseFileError(f"{source}: keypoints are not numbers ({error})") from None
    if flat.size % 3:
        raise PoseFileError(f"{source}: {flat.size} keypoint values, not a multiple of 3 "
                            f"(x, y, confidence)")
    points = flat.reshape(-1, 3)
    if not np.all(np.isfinite(points)):
        raise PoseFileError(f"{source}: keypoints contain NaN or infinity")
    return points, key


def _is_instance(item) -> bool:
    return isinstance(item, dict) and "keypoints" in item


def _mmpose_instances(document, source: str) -> list:
    """The instances of one image of an mmpose prediction document (layouts: module docstring)."""
    if isinstance(document, dict):
        for key in ("instance_info", "predictions", "instances"):
            if key in document:
                return _mmpose_instances(document[key], source)
        if _is_instance(document):
            return [document]
        raise PoseFileError(f"{source}: no 'people', 'keypoints', 'instance_info' or "
                            f"'predictions' in the JSON document")
    if not isinstance(document, list):
        raise PoseFileError(f"{source}: a JSON {type(document).__name__}, not a keypoint document")
    if not document:
        return []
    first = document[0]
    if isinstance(first, list):              # predictions: one list of instances per image
        return _mmpose_instances(first, source)
    if isinstance(first, dict) and "instances" in first and not _is_instance(first):
        return _mmpose_instances(first["instances"], source)   # per-frame list: first frame
    if not all(_is_instance(item) for item in document):
        raise PoseFileError(f"{source}: a list whose items are not all instances with 'keypoints'")
    return document


def _instance_points(instance: dict, source: str) -> np.ndarray:
    """(K, 3) x, y, score of one mmpose instance."""
    if "keypoint_scores" in instance:
        points = _as_points(instance["keypoints"], (2,), source, "instance keypoints")
        try:
            scores = np.asarray(instance["keypoint_scores"], dtype=np.float64).reshape(-1, 1)
        except (TypeError, ValueError) as error:
            raise PoseFileError(f"{source}: keypoint_scores are not numbers ({error})") from None
        if not np.all(np.isfinite(scores)):
            raise PoseFileError(f"{source}: keypoint_scores contain NaN or infinity")
        if len(scores) != len(points):
            raise PoseFileError(f"{source}: {len(points)} keypoints but {len(scores)} "
                                f"keypoint_scores")
        return np.concatenate([points, scores], axis=1)
    # Without scores, rows of three are (x, y, score).
    return _as_points(instance["keypoints"], (3,), source, "instance keypoints (x, y, score "
                      "without keypoint_scores)")


def is_dresscode_document(document) -> bool:
    """DressCode's layout: {"keypoints": rows of [x, y, score, id]}."""
    if not (isinstance(document, dict) and "keypoints" in document
            and "keypoint_scores" not in document):
        return False
    rows = document["keypoints"]
    return (isinstance(rows, list) and len(rows) > 0
            and all(isinstance(row, list) and len(row) == 4 for row in rows))


def _coco18_from_body(points: np.ndarray, source: str, pose_format: str, layout: str,
                      min_score: float) -> Tuple[np.ndarray, str]:
    """COCO-18 from the (K, 3) points of an OpenPose or mmpose document, by their count."""
    count = len(points)
    if layout == "openpose" and pose_format in ("auto", "openpose"):
        if count == NUM_KEYPOINTS:
            return points, "COCO-18"
        if count == NUM_BODY25:
            return points[list(BODY25_TO_COCO18)], "BODY_25"
    if pose_format in ("auto", "coco17"):
        if count == NUM_COCO17:
            return coco17_to_coco18(points, min_score), "COCO-17"
        if count == NUM_WHOLEBODY and layout == "mmpose":
            return coco17_to_coco18(points[:NUM_COCO17], min_score), "COCO-WholeBody"
    expected = {
        ("openpose", "auto"): "18 (COCO-18), 25 (BODY_25) or 17 (COCO-17)",
        ("openpose", "openpose"): "18 (COCO) or 25 (BODY_25) with pose_format 'openpose' "
                                  "(17: COCO-17, pose_format 'coco17' or 'auto')",
        ("openpose", "coco17"): "17 (COCO-17) with pose_format 'coco17'",
        ("mmpose", "auto"): "17 (COCO-17) or 133 (COCO-WholeBody)",
        ("mmpose", "coco17"): "17 (COCO-17) or 133 (COCO-WholeBody)",
    }[(layout, pose_format)]
    raise PoseFileError(f"{source}: {count} keypoints fit no accepted format; expected {expected}")


def parse_keypoints(document, source: str = "<json>", image_size: Optional[Tuple[int, int]] = None,
                    pose_format: str = "auto", min_score: float = 0.0) -> Tuple[np.ndarray, str]:
    """A parsed keypoint JSON document -> (COCO-18 keypoints, description of the format).

    Args:
        document: the parsed JSON (layouts: module docstring).
        source: the file it came from, for messages.
        image_size: (H, W) of the person photo; needed for DressCode's keypoints only.
        pose_format: "auto" (by structure and point count), "openpose" (COCO-18 or BODY_25),
            "coco17" (COCO-17 in the OpenPose or an mmpose layout) or "dresscode".
        min_score: COCO-17 points whose score is not above it are dropped (coco17_to_coco18).

    Returns:
        float64 (18, 3) x, y, confidence in the photo's pixels (all zeros when no person was
        detected), and e.g. "openpose pose_keypoints_2d BODY_25".
    """
    if pose_format not in POSE_FORMATS:
        raise ValueError(f"pose_format={pose_format!r}: expected one of {', '.join(POSE_FORMATS)}")
    empty = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    if isinstance(document, dict) and "people" in document:
        if pose_format == "dresscode":
            raise PoseFileError(f"{source}: an OpenPose document ('people'), not DressCode's "
                                f"keypoints (pose_format 'dresscode')")
        points, key = _openpose_points(document, source)
        if len(points) == 0:
            return empty, f"openpose {key}"
        coco18, order = _coco18_from_body(points, source, pose_format, "openpose", min_score)
        people = len(document["people"])
        # As the release reads it: the first person OpenPose found, whoever it is.
        first = f", the first of {people} people" if people > 1 else ""
        return coco18, f"openpose {key} {order}{first}"
    if pose_format == "openpose":
        raise PoseFileError(f"{source}: no 'people' list in the OpenPose JSON")
    if is_dresscode_document(document) or pose_format == "dresscode":
        if pose_format not in ("auto", "dresscode"):
            raise PoseFileError(f"{source}: DressCode keypoints ([x, y, score, id] rows), not "
                                f"pose_format {pose_format!r}")
        if not isinstance(document, dict) or "keypoints" not in document:
            raise PoseFileError(f"{source}: no 'keypoints' in the DressCode JSON")
        points = _as_points(document["keypoints"], (4,), source, "DressCode keypoints")
        if len(points) != NUM_KEYPOINTS:
            raise PoseFileError(f"{source}: {len(points)} DressCode keypoints; expected 18 "
                                f"(COCO-18 order)")
        if image_size is None:
            raise PoseFileError(f"{source}: DressCode keypoints are in a 512x384 frame (height "
                                f"x width); the person photo's size is needed to scale them")
        return dresscode_to_coco18(points, image_size), "dresscode COCO-18"
    instances = _mmpose_instances(document, source)
    if not instances:
        return empty, "mmpose, no instance"
    candidates = [_instance_points(instance, source) for instance in instances]
    best = max(range(len(candidates)), key=lambda i: float(candidates[i][:, 2].mean())
               if len(candidates[i]) else float("-inf"))
    coco18, order = _coco18_from_body(candidates[best], source, pose_format, "mmpose", min_score)
    return coco18, f"mmpose {order}"


def read_keypoints_file(path: str, image_size: Optional[Tuple[int, int]] = None,
                        pose_format: str = "auto", min_score: float = 0.0) -> np.ndarray:
    """A keypoint JSON file of any accepted format -> float64 (18, 3) COCO-18.

    Args:
        path: the JSON file.
        image_size: (H, W) of the person photo (used by DressCode's keypoints only).
        pose_format: "auto", "openpose", "coco17" or "dresscode" (see parse_keypoints).
        min_score: see coco17_to_coco18.

    Returns:
        (x, y, confidence) per COCO-18 keypoint in the photo's pixels; (0, 0, 0) where missing.

    Raises:
        PoseFileError naming the file: unreadable, malformed JSON, a layout or point count that
        fits no format, NaN values, DressCode keypoints without ``image_size``.
    """
    return parse_keypoints(load_json(path), path, image_size, pose_format, min_score)[0]


# Largest keypoint JSON file read: one person's points take a few kilobytes, a whole-body
# estimate of a crowd a few hundred.
MAX_JSON_BYTES = 64 << 20
# Longest whole number read in a keypoint file: coordinates and ids have a few digits; Python
# would otherwise parse (or refuse with a traceback) numbers of thousands of digits.
MAX_NUMBER_DIGITS = 30


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _NumberTooLong(len(text))
    return int(text)


class _NumberTooLong(ValueError):
    """A whole number of more than MAX_NUMBER_DIGITS digits in a JSON document."""


def load_json(path: str):
    """A JSON file -> its document; PoseFileError naming the file when it cannot be read: not
    a regular file, more than MAX_JSON_BYTES, not UTF-8, malformed, nested too deep, or a
    number of more than MAX_NUMBER_DIGITS digits."""
    try:
        text = read_text(path, "a keypoint file", MAX_JSON_BYTES)
    except DatasetError as error:
        raise PoseFileError(str(error)) from None
    try:
        return json.loads(text, parse_int=_bounded_int)
    except _NumberTooLong as error:
        raise PoseFileError(f"{path}: a number of {error.args[0]} digits; keypoint files hold "
                            f"numbers of at most {MAX_NUMBER_DIGITS}") from None
    except json.JSONDecodeError as error:
        raise PoseFileError(f"{path}: malformed JSON ({error})") from None
    except RecursionError:
        raise PoseFileError(f"{path}: JSON nested too deep to be a keypoint file") from None
    except ValueError as error:         # e.g. a float literal Python refuses
        raise PoseFileError(f"{path}: malformed JSON ({str(error)[:120]})") from None


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
