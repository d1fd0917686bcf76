"""The skeleton a person is drawn from, and its keypoints.

Lengths are drawn in reference pixels (a person in a picture 256 high, at body scale 1) and
turned into image pixels by the torso's frame: ``Torso.at(across, down)`` is the point
``across`` to the person's left and ``down`` below the base of the neck, scaled and tilted
with the body. Positions are image pixels (x, y). "Left" and "right" are the person's own.
"""

from dataclasses import dataclass
from typing import Dict, NamedTuple

import numpy as np

from data.pose import NUM_KEYPOINTS
from data.synthetic.drawing import rotation

SIDES = ("right", "left")      # the wearer's right side is on the image's left (sign -1)


def side_sign(side: str) -> float:
    """-1 for the wearer's right side (the image's left), +1 for the left."""
    return -1.0 if side == "right" else 1.0


@dataclass
class Torso:
    """The frame of the body: scale, tilt and the base of the neck, and the torso's size in
    reference pixels."""

    scale: float               # image pixels per reference pixel
    tilt: float                # radians, clockwise on the image
    rotation: np.ndarray       # (2, 2) rotation by ``tilt``
    neck: np.ndarray           # (2,) base of the neck, image pixels
    shoulder_half: float       # half the distance between the shoulder joints
    shoulder_drop: float       # shoulder joints below the neck
    length: float              # neck to hip joints
    hip_half: float

    @property
    def tilt_degrees(self) -> float:
        return np.degrees(self.tilt)

    def offset(self, across, down) -> np.ndarray:
        """(2,) a displacement of reference pixels turned into image pixels."""
        return self.rotation @ np.array([across, down]) * self.scale

    def at(self, across, down) -> np.ndarray:
        """(2,) image point ``across`` and ``down`` reference pixels from the neck."""
        return self.neck + self.offset(across, down)

    @property
    def shoulders(self):
        """Right and left shoulder joints, (2,) each."""
        return (self.at(-self.shoulder_half, self.shoulder_drop),
                self.at(self.shoulder_half, self.shoulder_drop))

    @property
    def hips(self):
        """Right and left hip joints, (2,) each."""
        return self.at(-self.hip_half, self.length), self.at(self.hip_half, self.length)


class Arm(NamedTuple):
    shoulder: np.ndarray       # (2,) joints, image pixels
    elbow: np.ndarray
    wrist: np.ndarray
    forearm: np.ndarray        # (2,) unit direction elbow -> wrist


class Leg(NamedTuple):
    hip: np.ndarray            # (2,) joints, image pixels
    knee: np.ndarray
    ankle: np.ndarray


@dataclass
class Body:
    """A drawn skeleton: the torso frame, the limbs' joints and the head's ellipse (image
    pixels). ``arms`` and ``legs`` hold the right side first."""

    torso: Torso
    arm_radius: float
    arms: Dict[str, Arm]
    leg_radius: float
    legs: Dict[str, Leg]
    head_axes: np.ndarray      # (2,) half axes of the head
    face_centre: np.ndarray    # (2,)

    def foot(self, side: str) -> np.ndarray:
        """(2,) centre of the shoe, a little below the ankle."""
        return self.legs[side].ankle + self.torso.offset(0, 6)

    def hand(self, side: str):
        """The hand's ellipse beyond the wrist: centre (2,), half axes (2,), angle (degrees)."""
        arm = self.arms[side]
        centre = arm.wrist + arm.forearm * self.arm_radius * 0.9
        axes = np.array([self.arm_radius * 0.85, self.arm_radius * 1.15])
        angle = np.degrees(np.arctan2(arm.forearm[1], arm.forearm[0])) - 90
        return centre, axes, angle


def draw_torso_frame(rng: np.random.Generator, height: int, width: int) -> Torso:
    """A torso of random scale, tilt and proportions, its neck near the top middle."""
    scale = rng.uniform(0.85, 1.08) * (height / 256.0)
    tilt = rng.uniform(-0.08, 0.08)
    neck = np.array([width * (0.5 + rng.uniform(-0.08, 0.08)), height * rng.uniform(0.2, 0.26)])
    shoulder_half = rng.uniform(26, 34)
    shoulder_drop = rng.uniform(4, 9)
    length = rng.uniform(72, 86)
    hip_half = shoulder_half * rng.uniform(0.62, 0.78)
    return Torso(scale, tilt, rotation(tilt), neck, shoulder_half, shoulder_drop, length,
                 hip_half)


def draw_arm_joints(rng, torso: Torso, sleeve_axis, top_linear):
    """The arms, hanging along the top's sleeves when it has them (they are drawn under the
    garment and leave the sleeve end), else at a random angle from the body.

    Args:
        sleeve_axis: the top's (2, 2) right sleeve axis in product pixels, or None.
        top_linear: (2, 2) the linear part of the top's placement product -> person.

    Returns (arm_radius, {side: Arm}).
    """
    s, rot = torso.scale, torso.rotation
    arm_radius = rng.uniform(7.5, 10) * s
    upper_arm, lower_arm = rng.uniform(48, 58) * s, rng.uniform(42, 52) * s
    arms = {}
    for side, shoulder in zip(SIDES, torso.shoulders):
        sign = side_sign(side)
        if sleeve_axis is not None:
            direction = top_linear @ (sleeve_axis[1] * np.array([sign * -1.0, 1.0]))
            # A short, wide garment flattens its sleeves; arms stay within 50 degrees of the
            # body axis (the sleeve then hangs loose around the arm).
            local = rot.T @ direction
            angle = min(np.arctan2(abs(local[0]), max(local[1], 1e-6)), 0.87)
        else:
            angle = rng.uniform(0.12, 0.5)
        direction = rot @ np.array([sign * np.sin(angle), np.cos(angle)])
        elbow = shoulder + direction * upper_arm
        bend = rng.uniform(-0.5, 0.35) * sign   # negative bends the forearm inward
        forearm = rotation(bend) @ direction
        arms[side] = Arm(shoulder, elbow, elbow + forearm * lower_arm, forearm)
    return arm_radius, arms


def draw_leg_joints(rng, torso: Torso, narrow: bool):
    """The legs, nearly straight down; ``narrow`` keeps them close together (under a skirt or
    dress, which would not cover them apart). Returns (leg_radius, {side: Leg})."""
    rot = torso.rotation
    leg_radius = rng.uniform(11, 14) * torso.scale
    upper_leg, lower_leg = rng.uniform(60, 70) * torso.scale, rng.uniform(58, 66) * torso.scale
    legs = {}
    for side, hip in zip(SIDES, torso.hips):
        spread = rng.uniform(-0.03, 0.05) if narrow else rng.uniform(-0.02, 0.12)
        spread *= side_sign(side)
        knee = hip + rot @ np.array([np.sin(spread), np.cos(spread)]) * upper_leg
        lower = spread + rng.uniform(-0.05, 0.05)
        ankle = knee + rot @ np.array([np.sin(lower), np.cos(lower)]) * lower_leg
        legs[side] = Leg(hip, knee, ankle)
    return leg_radius, legs


def draw_head_shape(rng, torso: Torso):
    """The head's half axes (2,) and the face's centre (2,) above the neck."""
    head_axes = np.array([rng.uniform(15, 19), rng.uniform(19, 23)]) * torso.scale
    face_centre = torso.at(rng.uniform(-2, 2), -rng.uniform(22, 27))
    return head_axes, face_centre


def _inside(points, height, width):
    return ((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
            & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))


def coco_keypoints(rng, body: Body, height: int, width: int) -> np.ndarray:
    """float64 (18, 3) COCO-18 (x, y, confidence) of the skeleton; points outside the image,
    and some ears, are not detected (0, 0, 0)."""
    rot, head_axes, face = body.torso.rotation, body.head_axes, body.face_centre
    arms, legs = body.arms, body.legs
    eyes_y = -head_axes[1] * 0.05
    points = np.array([
        face + rot @ np.array([0, head_axes[1] * 0.3]),            # nose
        body.torso.neck,
        arms["right"].shoulder, arms["right"].elbow, arms["right"].wrist,
        arms["left"].shoulder, arms["left"].elbow, arms["left"].wrist,
        legs["right"].hip, legs["right"].knee, legs["right"].ankle,
        legs["left"].hip, legs["left"].knee, legs["left"].ankle,
        face + rot @ np.array([-head_axes[0] * 0.4, eyes_y]),      # eyes
        face + rot @ np.array([head_axes[0] * 0.4, eyes_y]),
        face + rot @ np.array([-head_axes[0] * 0.95, 0]),          # ears
        face + rot @ np.array([head_axes[0] * 0.95, 0]),
    ])
    confidence = rng.uniform(0.55, 0.98, size=NUM_KEYPOINTS)
    keypoints = np.concatenate([points, confidence[:, None]], 1)
    visible = _inside(points, height, width)
    visible[16:] &= rng.random(2) > 0.2                 # ears are often missed
    keypoints[~visible] = 0
    return keypoints


def foot_keypoints(body: Body, keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """float64 (6, 3) the feet points of OpenPose BODY_25 (19..24: left big toe, small toe,
    heel, then the right ones), seen from the front: toes at the bottom of the shoe (the big
    toe on the inner side), the heel behind the ankle. A point is seen, with its ankle's
    confidence, when its ankle is (COCO-18 ``keypoints``) and it lies in the image."""
    torso = body.torso
    points, ankles = [], []
    for side, ankle_index in (("left", 13), ("right", 10)):
        centre, sign = body.foot(side), side_sign(side)
        points += [centre + torso.offset(-sign * 4, 5), centre + torso.offset(sign * 7, 3),
                   centre + torso.offset(0, -3)]
        ankles += [ankle_index] * 3
    points = np.array(points)
    confidence = keypoints[ankles, 2] * _inside(points, height, width)
    feet = np.concatenate([points, confidence[:, None]], 1)
    feet[confidence == 0] = 0
    return feet
