"""Procedurally drawn try-on data in the VITON layout, for training and testing without downloads.

Each sample is a person (background, hair, face, neck, arms, hands, legs, pants, shoes) wearing a
garment that is the in-shop product image under a known smooth deformation: every person pixel
p samples the product at

    q(p) = A^-1 (p) + d(p)

with A an affine map that fits the garment's shoulders and hem to the body (so it follows the
pose) and d a low-frequency sinusoidal field of a few pixels. q is a backward map in pixel
units, exactly what the warp module predicts (``grid_sample`` with align_corners=True), so
the ideal warp is known for every sample and returned as ``flow`` by ``draw_sample``.

The parsing labels are drawn with the same shapes as the photo: the garment pixels of the
photo are exactly those labelled 4 or 7 (7, "noise", is merged into 4 before use), DensePose
part indices follow the body parts, and the 18 COCO keypoints are the skeleton the body was
drawn from.
"""

import json
import os
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from data.pose import NUM_KEYPOINTS

SHIFT = 4                  # cv2 drawing with 4 fractional bits: sub-pixel placement
SCALE = 1 << SHIFT

# Parsing labels (ACGPN scheme) and DensePose I values drawn here. "Left"/"right" are the
# person's own: a person facing the camera has their right side on the image's left.
LABEL = dict(background=0, hair=1, clothes=4, left_shoe=5, right_shoe=6, noise=7, pants=8,
             left_leg=9, right_leg=10, left_arm=11, face=12, right_arm=13)
PART = dict(torso=2, right_hand=3, left_hand=4, left_foot=5, right_foot=6, upper_leg_right=7,
            upper_leg_left=8, lower_leg_right=11, lower_leg_left=12, upper_arm_left=15,
            upper_arm_right=16, lower_arm_left=19, lower_arm_right=20, head_right=23,
            head_left=24)


@dataclass
class Garment:
    """An in-shop product image and its geometry (product pixel coordinates)."""

    image: np.ndarray          # uint8 (H, W, 3) RGB, white background
    edge: np.ndarray           # uint8 (H, W) 0 / 255
    right_shoulder: np.ndarray  # (2,) outer shoulder corner on the image's left
    left_shoulder: np.ndarray
    hem_centre: np.ndarray
    sleeve_axis: Optional[np.ndarray]  # (2, 2) start and unit direction of the right sleeve, or None


def _fixed(points) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * SCALE).astype(np.int32)


def _capsule(canvas, start, end, radius, value):
    """A thick segment with round ends (cv2 draws thick lines with round caps)."""
    thickness = max(1, int(round(2 * radius)))
    cv2.line(canvas, tuple(_fixed(start)), tuple(_fixed(end)), value, thickness, cv2.LINE_8, SHIFT)


def _ellipse(canvas, centre, axes, angle, value):
    cv2.ellipse(canvas, tuple(_fixed(centre)), tuple(_fixed(np.maximum(axes, 0.5))), float(angle),
                0, 360, value, -1, cv2.LINE_8, SHIFT)


def _polygon(canvas, points, value):
    cv2.fillPoly(canvas, [_fixed(points).reshape(-1, 1, 2)], value, cv2.LINE_8, SHIFT)


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _colour(rng, low=20, high=235):
    return rng.integers(low, high + 1, size=3).astype(np.uint8)


def _contrasting(rng, colour):
    """A colour at least ~100 away (L1 over channels / 3) from ``colour``."""
    for _ in range(8):
        other = _colour(rng)
        if np.abs(other.astype(int) - colour.astype(int)).mean() > 100:
            return other
    return (255 - colour).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Garment


def _garment_pattern(rng, height, width, base, second, centre, chest):
    """(H, W, 3) uint8 fabric in product coordinates: stripes, checks, dots, and maybe a logo."""
    ys = np.arange(height, dtype=np.float32)[:, None]   # broadcast against xs: (H, W)
    xs = np.arange(width, dtype=np.float32)[None, :]
    unit = width / 192.0
    kind = rng.choice(["plain", "horizontal", "vertical", "diagonal", "checks", "dots"],
                      p=[0.1, 0.25, 0.2, 0.15, 0.15, 0.15])
    period = rng.uniform(7, 18) * unit
    phase = rng.uniform(0, period)
    duty = rng.uniform(0.3, 0.6)
    if kind == "horizontal":
        second_mask = ((ys + phase) % period) < duty * period
    elif kind == "vertical":
        second_mask = ((xs + phase) % period) < duty * period
    elif kind == "diagonal":
        angle = rng.uniform(0.3, 1.2) * rng.choice([-1, 1])
        u = xs * np.cos(angle) + ys * np.sin(angle)
        second_mask = ((u + phase) % period) < duty * period
    elif kind == "checks":
        second_mask = (((xs + phase) // period + (ys + phase) // period) % 2) == 0
    elif kind == "dots":
        dx = (xs + phase) % period - period / 2
        dy = (ys + phase) % period - period / 2
        second_mask = dx * dx + dy * dy < (duty * period / 2) ** 2
    else:
        second_mask = np.zeros((height, width), dtype=bool)
    second_mask = np.broadcast_to(second_mask, (height, width))
    fabric = np.where(second_mask[..., None], second, base).astype(np.uint8)
    if kind == "plain" or rng.random() < 0.6:
        logo = _contrasting(rng, base)
        size = rng.uniform(0.08, 0.14) * width
        position = np.array([centre + rng.uniform(-0.08, 0.08) * width, chest])
        shape = rng.integers(4)
        value = tuple(int(v) for v in logo)
        if shape == 0:
            _ellipse(fabric, position, (size, size), 0, value)
        elif shape == 1:
            _polygon(fabric, position + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * size, value)
        elif shape == 2:
            _polygon(fabric, position + np.array([[0, -1.2], [1.1, 0.9], [-1.1, 0.9]]) * size, value)
        else:  # an off-centre "L": asymmetric, so a flip or rotation of the garment shows
            _polygon(fabric, position + np.array([[-1, -1], [-0.4, -1], [-0.4, 0.5], [1, 0.5],
                                                  [1, 1], [-1, 1]]) * size, value)
    return fabric


def draw_garment(rng: np.random.Generator, height: int, width: int) -> Garment:
    """An upper garment (tank top, short or long sleeves) on a white product image."""
    cx = width * (0.5 + rng.uniform(-0.03, 0.03))
    top = height * rng.uniform(0.14, 0.22)
    hem = height * rng.uniform(0.74, 0.88)
    shoulder = width * rng.uniform(0.22, 0.3)        # half width at the shoulders
    hem_half = shoulder * rng.uniform(0.82, 1.08)
    neck = shoulder * rng.uniform(0.3, 0.45)
    slope = height * rng.uniform(0.015, 0.04)
    armhole = (hem - top) * rng.uniform(0.22, 0.3)
    sleeve = rng.choice(["none", "short", "long"], p=[0.25, 0.45, 0.3])

    right = np.array([cx - shoulder, top + slope])
    left = np.array([cx + shoulder, top + slope])
    body = np.array([[cx - neck, top], [cx + neck, top], left, [cx + hem_half, hem],
                     [cx - hem_half, hem], right])
    polygons = [body]
    axis = None
    if sleeve != "none":
        angle = rng.uniform(0.3, 0.75)             # from the vertical, radians
        length = (hem - top) * (rng.uniform(0.25, 0.38) if sleeve == "short"
                                else rng.uniform(0.75, 0.95))
        direction = np.array([np.sin(angle), np.cos(angle)])
        armpit_inset = shoulder * 0.06
        for side, corner in ((-1, right), (1, left)):
            d = direction * np.array([side, 1.0])
            armpit = np.array([corner[0] - side * armpit_inset, corner[1] + armhole])
            # The sleeve's cross-section runs from the shoulder corner to the armpit; the end
            # is cut perpendicular to the sleeve.
            polygons.append(np.array([corner, corner + length * d,
                                      armpit + (length - armhole * 0.6) * d, armpit]))
        mid = (right + np.array([right[0] + armpit_inset, right[1] + armhole])) / 2
        axis = np.stack([mid, direction * np.array([-1.0, 1.0])])

    # Fit everything inside the canvas with a margin (long sleeves reach far out).
    points = np.concatenate(polygons)
    low = points.min(0)
    high = points.max(0)
    margin = np.array([0.04 * width, 0.04 * height])
    fit = min(1.0, (width / 2 - margin[0]) / max(cx - low[0], high[0] - cx),
              (height - 2 * margin[1]) / (high[1] - low[1]))
    origin = np.array([cx, (low[1] + high[1]) / 2])
    target = np.array([cx, height / 2])

    def place(p):
        return (np.asarray(p) - origin) * fit + target

    polygons = [place(p) for p in polygons]
    right, left = place(right), place(left)
    hem_centre = place(np.array([cx, hem]))
    if axis is not None:
        axis = np.stack([place(axis[0]), axis[1]])

    edge = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        _polygon(edge, polygon, 255)
    neck_centre = place(np.array([cx, top]))
    depth = (hem - top) * fit * rng.uniform(0.06, 0.16)
    if rng.random() < 0.5:
        _ellipse(edge, neck_centre, (neck * fit, depth), 0, 0)
    else:
        _polygon(edge, [neck_centre + [-neck * fit, -1], neck_centre + [neck * fit, -1],
                        neck_centre + [0, depth * 1.5]], 0)

    base = _colour(rng)
    second = _contrasting(rng, base)
    chest = neck_centre[1] + (hem_centre[1] - neck_centre[1]) * 0.3
    fabric = _garment_pattern(rng, height, width, base, second, cx, chest)
    image = np.full((height, width, 3), 255, np.uint8)
    inside = edge > 127
    image[inside] = fabric[inside]
    return Garment(image=image, edge=edge, right_shoulder=right, left_shoulder=left,
                   hem_centre=hem_centre, sleeve_axis=axis)


# ---------------------------------------------------------------------------------------------
# Deformation


def smooth_field(rng, height, width, amplitude):
    """A low-frequency displacement (2, H, W) in pixels: two random plane waves per component."""
    xs = np.arange(width, dtype=np.float32) / width
    ys = np.arange(height, dtype=np.float32) / height
    field = np.zeros((2, height, width), np.float32)
    for c in range(2):
        for _ in range(2):
            fx, fy = rng.uniform(-1.2, 1.2, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            a = amplitude * rng.uniform(0.3, 0.7)
            # sin(u + v) = sin u cos v + cos u sin v: two outer products instead of H*W sines.
            u = 2 * np.pi * fx * xs + phase
            v = 2 * np.pi * fy * ys
            field[c] += a * (np.outer(np.cos(v), np.sin(u)) + np.outer(np.sin(v), np.cos(u)))
    return field


def garment_map(forward: np.ndarray, field: np.ndarray):
    """Backward sampling map of the worn garment.

    Args:
        forward: (2, 3) affine product -> person.
        field: (2, H, W) displacement in product pixels.

    Returns:
        map_x, map_y float32 (H, W): product coordinates each person pixel shows.
    """
    height, width = field.shape[1:]
    backward = cv2.invertAffineTransform(forward)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    map_x = (backward[0, 0] * xs + backward[0, 2]) + backward[0, 1] * ys + field[0]
    map_y = (backward[1, 0] * xs + backward[1, 2]) + backward[1, 1] * ys + field[1]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def map_to_flow(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Pixel sampling map -> (2, H, W) normalised flow of ``grid_sample(align_corners=True)``."""
    height, width = map_x.shape
    return np.stack([map_x / ((width - 1) / 2) - 1, map_y / ((height - 1) / 2) - 1]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Person


def draw_sample(rng: np.random.Generator, height: int = 256, width: int = 192,
                garment: Optional[Garment] = None) -> dict:
    """One person wearing one garment.

    Returns a dict of numpy arrays: image uint8 (H, W, 3) RGB; garment uint8 (H, W, 3); edge
    uint8 (H, W) 0/255; label uint8 (H, W) parsing 0..13; densepose uint8 (H, W) 0..24;
    keypoints float64 (18, 3) (x, y, confidence; 0 where not visible); flow float32
    (2, H, W), the normalised backward map of the garment (valid where label is 4 or 7).
    """
    if garment is None:
        garment = draw_garment(rng, height, width)
    unit = height / 256.0
    s = rng.uniform(0.85, 1.08) * unit            # body scale, pixels per reference pixel
    tilt = rng.uniform(-0.08, 0.08)
    rot = _rotation(tilt)
    neck = np.array([width * (0.5 + rng.uniform(-0.08, 0.08)), height * rng.uniform(0.2, 0.26)])

    def body(dx, dy):
        return neck + rot @ np.array([dx, dy]) * s

    shoulder_half = rng.uniform(26, 34)
    shoulder_drop = rng.uniform(4, 9)
    torso = rng.uniform(72, 86)
    hip_half = shoulder_half * rng.uniform(0.62, 0.78)
    r_shoulder, l_shoulder = body(-shoulder_half, shoulder_drop), body(shoulder_half, shoulder_drop)
    r_hip, l_hip = body(-hip_half, torso), body(hip_half, torso)

    # Garment placement: an affine map from three product points to three body points; the
    # margin makes the garment cover the torso.
    margin = rng.uniform(1.08, 1.22)
    hem_drop = rng.uniform(0.0, 0.22) * torso
    src = np.float32([garment.right_shoulder, garment.left_shoulder, garment.hem_centre])
    dst = np.float32([body(-shoulder_half * margin, shoulder_drop * 0.8),
                      body(shoulder_half * margin, shoulder_drop * 0.8),
                      body(rng.uniform(-3, 3), torso + hem_drop)])
    forward = cv2.getAffineTransform(src, dst).astype(np.float64)
    linear = forward[:, :2]

    # Arms follow the sleeves (they are drawn under the garment and leave the sleeve end).
    arm_radius = rng.uniform(7.5, 10) * s
    upper_arm, lower_arm = rng.uniform(48, 58) * s, rng.uniform(42, 52) * s
    joints = {}
    for side, shoulder in (("right", r_shoulder), ("left", l_shoulder)):
        sign = -1.0 if side == "right" else 1.0
        if garment.sleeve_axis is not None:
            direction = linear @ (garment.sleeve_axis[1] * np.array([sign * -1.0, 1.0]))
            # A short, wide garment flattens its sleeves; arms stay within 50 degrees of the
            # body axis (the sleeve then hangs loose around the arm).
            local = rot.T @ direction
            angle = min(np.arctan2(abs(local[0]), max(local[1], 1e-6)), 0.87)
            direction = rot @ np.array([sign * np.sin(angle), np.cos(angle)])
        else:
            angle = rng.uniform(0.12, 0.5)
            direction = rot @ np.array([sign * np.sin(angle), np.cos(angle)])
        elbow = shoulder + direction * upper_arm
        bend = rng.uniform(-0.5, 0.35) * sign   # negative bends the forearm inward
        forearm = _rotation(bend) @ direction
        wrist = elbow + forearm * lower_arm
        joints[side] = (shoulder, elbow, wrist, forearm)

    leg_radius = rng.uniform(11, 14) * s
    upper_leg, lower_leg = rng.uniform(60, 70) * s, rng.uniform(58, 66) * s
    legs = {}
    for side, hip in (("right", r_hip), ("left", l_hip)):
        sign = -1.0 if side == "right" else 1.0
        spread = rng.uniform(-0.02, 0.12) * sign
        knee = hip + rot @ np.array([np.sin(spread), np.cos(spread)]) * upper_leg
        lower = spread + rng.uniform(-0.05, 0.05)
        ankle = knee + rot @ np.array([np.sin(lower), np.cos(lower)]) * lower_leg
        legs[side] = (hip, knee, ankle)

    head_axes = np.array([rng.uniform(15, 19), rng.uniform(19, 23)]) * s
    face_centre = body(rng.uniform(-2, 2), -rng.uniform(22, 27))
    label = np.zeros((height, width), np.uint8)
    dense = np.zeros((height, width), np.uint8)

    # Hair behind the head and shoulders, drawn first so everything covers it.
    hair_long = rng.random() < 0.4
    if hair_long:
        _ellipse(label, face_centre + rot @ np.array([0, 20]) * s,
                 head_axes * np.array([1.25, 1.9]), np.degrees(tilt), LABEL["hair"])

    # Legs, shoes, pants.
    for side, (hip, knee, ankle) in legs.items():
        leg_label = LABEL[f"{side}_leg"]
        _capsule(label, hip, knee, leg_radius, leg_label)
        _capsule(label, knee, ankle, leg_radius * 0.8, leg_label)
        _capsule(dense, hip, knee, leg_radius, PART[f"upper_leg_{side}"])
        _capsule(dense, knee, ankle, leg_radius * 0.8, PART[f"lower_leg_{side}"])
    for side, (hip, knee, ankle) in legs.items():
        foot = ankle + rot @ np.array([0, 6]) * s
        _ellipse(label, foot, np.array([11, 7]) * s, np.degrees(tilt), LABEL[f"{side}_shoe"])
        _ellipse(dense, foot, np.array([11, 7]) * s, np.degrees(tilt), PART[f"{side}_foot"])
    long_pants = rng.random() < 0.6
    pants_width = rng.uniform(1.05, 1.25)
    _polygon(label, [body(-hip_half * 1.25, torso - 14), body(hip_half * 1.25, torso - 14),
                     body(hip_half * 1.3, torso + 16), body(-hip_half * 1.3, torso + 16)],
             LABEL["pants"])
    for side, (hip, knee, ankle) in legs.items():
        stop = ankle - (ankle - knee) * 0.08 if long_pants else hip + (knee - hip) * rng.uniform(0.5, 1.0)
        if long_pants:
            _capsule(label, hip, knee, leg_radius * pants_width, LABEL["pants"])
            _capsule(label, knee, stop, leg_radius * 0.8 * pants_width, LABEL["pants"])
        else:
            _capsule(label, hip, stop, leg_radius * pants_width, LABEL["pants"])
    _polygon(dense, [r_shoulder, l_shoulder, l_hip, r_hip], PART["torso"])

    # Arms and hands.
    for side, (shoulder, elbow, wrist, forearm) in joints.items():
        arm_label = LABEL[f"{side}_arm"]
        _capsule(label, shoulder, elbow, arm_radius, arm_label)
        _capsule(label, elbow, wrist, arm_radius * 0.85, arm_label)
        _capsule(dense, shoulder, elbow, arm_radius, PART[f"upper_arm_{side}"])
        _capsule(dense, elbow, wrist, arm_radius * 0.85, PART[f"lower_arm_{side}"])
        hand = wrist + forearm * arm_radius * 0.9
        hand_axes = np.array([arm_radius * 0.85, arm_radius * 1.15])
        hand_angle = np.degrees(np.arctan2(forearm[1], forearm[0])) - 90
        _ellipse(label, hand, hand_axes, hand_angle, arm_label)
        _ellipse(dense, hand, hand_axes, hand_angle, PART[f"{side}_hand"])

    neck_top = face_centre + rot @ np.array([0, head_axes[1] * 0.6])
    neck_radius = rng.uniform(7, 9) * s
    _capsule(label, neck, neck_top, neck_radius, LABEL["face"])
    _capsule(dense, neck, neck_top, neck_radius, PART["head_right"])

    # The garment: the product sampled through the deformation.
    field = smooth_field(rng, height, width, amplitude=rng.uniform(1.5, 4.0) * width / 192)
    map_x, map_y = garment_map(forward, field)
    worn = cv2.remap(garment.image, map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    worn_edge = cv2.remap(garment.edge, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 127
    label[worn_edge] = LABEL["clothes"]
    dense[worn_edge & ((dense == 0) | (dense == PART["torso"]))] = PART["torso"]
    dense[(dense == PART["torso"]) & ~worn_edge] = 0

    # Head over everything: hair cap, then the face.
    hair_cap = face_centre + rot @ np.array([0, -head_axes[1] * rng.uniform(0.2, 0.35)])
    _ellipse(label, hair_cap, head_axes * np.array([1.1, 0.95]), np.degrees(tilt), LABEL["hair"])
    _ellipse(label, face_centre + rot @ np.array([0, head_axes[1] * 0.12]),
             head_axes * np.array([0.92, 0.88]), np.degrees(tilt), LABEL["face"])
    _ellipse(dense, face_centre, head_axes * 1.06, np.degrees(tilt), PART["head_right"])
    head_half = np.zeros_like(dense)
    _polygon(head_half, [face_centre + rot @ np.array([0, -60]) * s,
                         face_centre + rot @ np.array([60, -60]) * s,
                         face_centre + rot @ np.array([60, 60]) * s,
                         face_centre + rot @ np.array([0, 60]) * s], 1)
    dense[(dense == PART["head_right"]) & (head_half == 1)] = PART["head_left"]

    # "Noise" (7): part of the garment some parsers give a separate class; merged into 4.
    if rng.random() < 0.3:
        blob = np.zeros_like(label)
        _ellipse(blob, body(rng.uniform(-15, 15), torso * rng.uniform(0.3, 0.8)),
                 np.array([rng.uniform(4, 10), rng.uniform(4, 10)]) * s, rng.uniform(0, 180), 1)
        label[(blob == 1) & (label == LABEL["clothes"])] = LABEL["noise"]

    # Keypoints: COCO-18 order; points outside the image are not detected (0, 0, 0).
    eyes_y = -head_axes[1] * 0.05
    points = np.array([
        face_centre + rot @ np.array([0, head_axes[1] * 0.3]),     # nose
        neck,
        r_shoulder, joints["right"][1], joints["right"][2],
        l_shoulder, joints["left"][1], joints["left"][2],
        r_hip, legs["right"][1], legs["right"][2],
        l_hip, legs["left"][1], legs["left"][2],
        face_centre + rot @ np.array([-head_axes[0] * 0.4, eyes_y]),
        face_centre + rot @ np.array([head_axes[0] * 0.4, eyes_y]),
        face_centre + rot @ np.array([-head_axes[0] * 0.95, 0]),
        face_centre + rot @ np.array([head_axes[0] * 0.95, 0]),
    ])
    confidence = rng.uniform(0.55, 0.98, size=NUM_KEYPOINTS)
    keypoints = np.concatenate([points, confidence[:, None]], 1)
    visible = ((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
               & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))
    visible[16:] &= rng.random(2) > 0.2                 # ears are often missed
    keypoints[~visible] = 0

    image = _paint_photo(rng, label, worn, keypoints, unit)
    return dict(image=image, garment=garment.image, edge=garment.edge, label=label,
                densepose=dense, keypoints=keypoints, flow=map_to_flow(map_x, map_y))


def _paint_photo(rng, label, worn, keypoints, unit):
    """Colour the label map: background scene, skin, hair, pants, shoes; garment = ``worn``."""
    height, width = label.shape
    # A light, nearly uniform studio backdrop, as in VITON's photos: the parser-based teacher
    # never sees the background (it is outside every preserved region), so a busy one could
    # not be learned from its inputs.
    base = rng.uniform(205, 248) + rng.uniform(-8, 8, 3)
    shade = rng.uniform(-10, 10)
    t = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    scene = np.broadcast_to(base + shade * t, (height, width, 3))
    scene = np.ascontiguousarray(np.clip(scene, 0, 255).astype(np.uint8))

    skin = np.array([rng.uniform(120, 235), 0, 0])
    skin[1] = skin[0] * rng.uniform(0.7, 0.85)
    skin[2] = skin[1] * rng.uniform(0.75, 0.9)
    palette = np.zeros((256, 3), np.uint8)
    palette[[LABEL["face"], LABEL["left_arm"], LABEL["right_arm"], LABEL["left_leg"],
             LABEL["right_leg"]]] = skin.astype(np.uint8)
    palette[LABEL["hair"]] = _colour(rng, 10, 140)
    palette[LABEL["pants"]] = _colour(rng, 15, 200)
    shoes = _colour(rng, 10, 120)
    palette[LABEL["left_shoe"]] = shoes
    palette[LABEL["right_shoe"]] = shoes
    image = palette[label]
    background = label == LABEL["background"]
    garment = (label == LABEL["clothes"]) | (label == LABEL["noise"])
    image = np.where(background[..., None], scene, image)
    image = np.where(garment[..., None], worn, image)

    # Eyes and mouth, only on face pixels so the labels stay true.
    face_pixels = label == LABEL["face"]
    features = np.zeros_like(label)
    for index in (14, 15):
        if keypoints[index, 2] > 0:
            cv2.circle(features, tuple(_fixed(keypoints[index, :2])), int(round(2 * unit * SCALE)),
                       1, -1, cv2.LINE_8, SHIFT)
    if keypoints[0, 2] > 0:
        mouth = keypoints[0, :2] + np.array([0, 7 * unit])
        _ellipse(features, mouth, np.array([4, 1.5]) * unit, 0, 1)
    image[(features == 1) & face_pixels] = (40, 25, 25)
    return image


# ---------------------------------------------------------------------------------------------
# Writing the VITON layout


def _write(path, image_rgb_or_gray, quality=95):
    if image_rgb_or_gray.ndim == 3:
        image_rgb_or_gray = image_rgb_or_gray[:, :, ::-1]
    if path.endswith(".jpg"):
        ok = cv2.imwrite(path, image_rgb_or_gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok = cv2.imwrite(path, image_rgb_or_gray)
    if not ok:
        raise OSError(f"{path}: could not write")


def sample_rng(seed: int, split: int, index: int) -> np.random.Generator:
    """Independent, reproducible randomness per (seed, split, sample)."""
    return np.random.default_rng((seed, split, index))


def write_train_sample(root: str, name: str, sample: dict) -> None:
    _write(os.path.join(root, "train_img", f"{name}_0.jpg"), sample["image"])
    _write(os.path.join(root, "train_color", f"{name}_1.jpg"), sample["garment"])
    _write(os.path.join(root, "train_edge", f"{name}_1.jpg"), sample["edge"])
    _write(os.path.join(root, "train_label", f"{name}_0.png"), sample["label"])
    np.save(os.path.join(root, "train_densepose", f"{name}_0.npy"), sample["densepose"])
    flat = [round(float(v), 3) for v in sample["keypoints"].reshape(-1)]
    with open(os.path.join(root, "train_pose", f"{name}_0_keypoints.json"), "w") as handle:
        json.dump({"version": 1.0, "people": [{"pose_keypoints": flat}]}, handle)


def write_test_sample(root: str, name: str, sample: dict) -> None:
    _write(os.path.join(root, "test_img", f"{name}_0.jpg"), sample["image"])
    _write(os.path.join(root, "test_clothes", f"{name}_1.jpg"), sample["garment"])
    _write(os.path.join(root, "test_edge", f"{name}_1.jpg"), sample["edge"])


TRAIN_FOLDERS = ("train_img", "train_color", "train_edge", "train_label", "train_pose",
                 "train_densepose")
TEST_FOLDERS = ("test_img", "test_clothes", "test_edge")


def _generate(task):
    root, split, seed, start, stop, height, width = task
    for index in range(start, stop):
        sample = draw_sample(sample_rng(seed, split, index), height, width)
        name = f"{index:06d}"
        if split == 0:
            write_train_sample(root, name, sample)
        else:
            write_test_sample(root, name, sample)
    return stop - start


def make_dataset(out: str, num_train: int, num_test: int, seed: int = 0, height: int = 256,
                 width: int = 192, workers: int = 1) -> dict:
    """Write ``out/VITON_traindata`` and ``out/VITON_test`` (with test_pairs.txt, unpaired,
    and test_pairs_same.txt, paired). Returns the two roots."""
    train_root = os.path.join(out, "VITON_traindata")
    test_root = os.path.join(out, "VITON_test")
    for folder in TRAIN_FOLDERS:
        os.makedirs(os.path.join(train_root, folder), exist_ok=True)
    for folder in TEST_FOLDERS:
        os.makedirs(os.path.join(test_root, folder), exist_ok=True)

    chunk = 64
    tasks = [(train_root, 0, seed, a, min(a + chunk, num_train), height, width)
             for a in range(0, num_train, chunk)]
    tasks += [(test_root, 1, seed, a, min(a + chunk, num_test), height, width)
              for a in range(0, num_test, chunk)]
    if workers > 1 and len(tasks) > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_generate, tasks):
                pass
    else:
        for task in tasks:
            _generate(task)

    if num_test:
        names = [f"{i:06d}" for i in range(num_test)]
        with open(os.path.join(test_root, "test_pairs_same.txt"), "w") as handle:
            handle.writelines(f"{n}_0.jpg {n}_1.jpg\n" for n in names)
        # Unpaired: a derangement, so no person gets their own garment (unless only one).
        order = np.random.default_rng((seed, 2)).permutation(num_test)
        shift = np.roll(order, 1) if num_test > 1 else order
        partner = np.empty(num_test, dtype=np.int64)
        partner[order] = shift
        with open(os.path.join(test_root, "test_pairs.txt"), "w") as handle:
            handle.writelines(f"{names[i]}_0.jpg {names[partner[i]]}_1.jpg\n"
                              for i in range(num_test))
    return {"train": train_root, "test": test_root}
