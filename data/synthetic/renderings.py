"""Pictures of a person's pose and DensePose, as the datasets ship them: OpenPose's skeleton
rendering (VITON-HD's openpose_img, DressCode's skeletons) and DensePose's parts in colour
(VITON-HD's image-densepose)."""

from typing import Optional

import cv2
import numpy as np

from data.synthetic.drawing import SCALE, SHIFT, fixed


def _hue_colours(count, saturation=255, value=255):
    """uint8 (count, 3) RGB colours of evenly spaced hues."""
    hsv = np.zeros((1, count, 3), np.uint8)
    hsv[0, :, 0] = np.arange(count) * 180 // count
    hsv[0, :, 1] = saturation
    hsv[0, :, 2] = value
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


# COCO-18 limbs, then BODY_25's feet in the indices of cat(COCO-18, feet): 18..20 the left
# big toe, small toe, heel, 21..23 the right ones.
_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
          (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
          (13, 18), (18, 19), (13, 20), (10, 21), (21, 22), (10, 23))
_LIMB_COLOURS = _hue_colours(len(_LIMBS))

# One colour per DensePose part, black background.
_DENSEPOSE_COLOURS = np.zeros((256, 3), np.uint8)
_DENSEPOSE_COLOURS[1:25] = _hue_colours(24, 200, 230)


def draw_skeleton(keypoints: np.ndarray, height: int, width: int,
                  feet: Optional[np.ndarray] = None) -> np.ndarray:
    """The pose as a picture: uint8 (H, W, 3) RGB, coloured limbs between seen points
    (confidence > 0) on black. keypoints (18, 3) COCO-18; feet (6, 3) BODY_25 points 19..24."""
    canvas = np.zeros((height, width, 3), np.uint8)
    points = keypoints if feet is None else np.concatenate([keypoints, feet])
    thickness = max(1, int(round(height / 128)))
    for (a, b), colour in zip(_LIMBS, _LIMB_COLOURS):
        if b < len(points) and points[a, 2] > 0 and points[b, 2] > 0:
            cv2.line(canvas, tuple(fixed(points[a, :2])), tuple(fixed(points[b, :2])),
                     tuple(int(c) for c in colour), thickness, cv2.LINE_AA, SHIFT)
    for point in points[points[:, 2] > 0]:
        cv2.circle(canvas, tuple(fixed(point[:2])), int(round(thickness * 1.5 * SCALE)),
                   (255, 255, 255), -1, cv2.LINE_AA, SHIFT)
    return canvas


def render_densepose(densepose: np.ndarray) -> np.ndarray:
    """Part indices uint8 (H, W) 0..24 -> uint8 (H, W, 3) RGB picture (one colour per part)."""
    return _DENSEPOSE_COLOURS[densepose]
