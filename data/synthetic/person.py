"""One person wearing one garment: ``draw_sample``.

The steps, each a function below: the pose (a skeleton, with the top placed on it, since the
arms follow its sleeves); the region map and DensePose parts, drawn layer by layer from the
back; the keypoints of the skeleton; the photo painted from the regions; the labels of the
regions. The same random generator state draws the same sample: the steps consume it in a
fixed order.
"""

from typing import NamedTuple, Optional, Tuple

import numpy as np

from data.synthetic.body import (
    Body,
    Torso,
    coco_keypoints,
    draw_arm_joints,
    draw_head_shape,
    draw_leg_joints,
    draw_torso_frame,
    foot_keypoints,
)
from data.synthetic.drawing import capsule, ellipse, polygon
from data.synthetic.fitting import fit_lower_garment, place_top
from data.synthetic.garments import Garment, draw_garment
from data.synthetic.photo import paint_photo
from data.synthetic.regions import PART, REGION, check_category, garment_region, scheme_labels
from data.synthetic.warping import garment_map, map_to_flow, smooth_field, wear


def draw_sample(rng: np.random.Generator, height: int = 256, width: int = 192,
                garment: Optional[Garment] = None, category: str = "upper_body", *,
                without_garment: bool = False, backdrop: str = "studio") -> dict:
    """One person wearing one garment of ``category`` (see CATEGORIES).

    Args:
        rng: the only source of randomness; the same state draws the same sample.
        garment: the target garment (its category must be ``category``); drawn when None.
        without_garment: draw the same person (same randomness) with the target garment
            left off, e.g. to see which pixels the garment covers. The returned flow is the
            same; the photo and the labels show what is under the garment.
        backdrop: how the photo's backdrop is drawn, one of ``photo.BACKDROPS``.

    Returns a dict of numpy arrays: image uint8 (H, W, 3) RGB; garment uint8 (H, W, 3) the
    product image; edge uint8 (H, W) 0/255 its mask; regions uint8 (H, W) values of REGION;
    label uint8 (H, W) the 14-class parsing 0..13 (``scheme_labels(regions, "viton")``);
    densepose uint8 (H, W) 0..24; keypoints float64 (18, 3) COCO-18 (x, y, confidence; 0 where
    not visible); feet float64 (6, 3) the feet points of OpenPose BODY_25 (19..24: left big
    toe, left small toe, left heel, right big toe, right small toe, right heel), same
    convention; flow float32 (2, H, W), the normalised backward map of the target garment
    (valid where ``garment_region(regions, category)``); and category, the str.
    """
    check_category(category)
    if garment is None:
        garment = draw_garment(rng, height, width, category)
    elif garment.category != category:
        raise ValueError(f"a {garment.category} garment cannot be worn as {category}")
    # The garment the shoulders and arms are fitted to: the target, or for the lower body a
    # top the person keeps on.
    top = draw_garment(rng, height, width) if category == "lower_body" else garment
    body, top_forward = _draw_pose(rng, height, width, garment, top, category)
    drawing = _draw_regions(rng, height, width, body, garment, top, top_forward, category,
                            without_garment)
    keypoints = coco_keypoints(rng, body, height, width)
    feet = foot_keypoints(body, keypoints, height, width)

    regions = drawing.regions
    target = garment_region(regions, category)
    kept = None
    if category == "lower_body":
        kept = (regions == REGION["upper_clothes"], drawing.top_worn)
    image = paint_photo(rng, regions, target, drawing.target_worn, keypoints, kept, backdrop)
    return dict(image=image, garment=garment.image, edge=garment.edge,
                label=scheme_labels(regions, "viton"), densepose=drawing.densepose,
                keypoints=keypoints, flow=map_to_flow(*drawing.target_map), regions=regions,
                feet=feet, category=category)


def _draw_pose(rng, height, width, garment, top, category) -> Tuple[Body, np.ndarray]:
    """The skeleton, and the top's placement on it: (2, 3) affine product -> person."""
    torso = draw_torso_frame(rng, height, width)
    top_forward = place_top(rng, top, torso, category)
    arm_radius, arms = draw_arm_joints(rng, torso, top.sleeve_axis, top_forward[:, :2])
    narrow_legs = category == "dresses" or garment.kind == "skirt"
    leg_radius, legs = draw_leg_joints(rng, torso, narrow_legs)
    head_axes, face_centre = draw_head_shape(rng, torso)
    return Body(torso, arm_radius, arms, leg_radius, legs, head_axes, face_centre), top_forward


class _Drawing(NamedTuple):
    """What _draw_regions drew, for the labels and the photo."""

    regions: np.ndarray        # uint8 (H, W) values of REGION
    densepose: np.ndarray      # uint8 (H, W) part indices 0..24
    target_worn: np.ndarray    # uint8 (H, W, 3) the target product seen through its map
    target_map: tuple          # (map_x, map_y) float32 (H, W), the target's backward map
    top_worn: np.ndarray       # uint8 (H, W, 3) the top or dress seen through its map


def _draw_regions(rng, height, width, body: Body, garment, top, top_forward, category,
                  without_garment):
    """The region map and DensePose parts, layer by layer from the back: hair behind the head,
    legs and shoes, what covers the legs, arms and hands, the neck, the top or dress, then
    the head. Returns a _Drawing."""
    regions = np.zeros((height, width), np.uint8)
    dense = np.zeros((height, width), np.uint8)
    _draw_hair_behind(rng, regions, body)
    _draw_legs_and_shoes(regions, dense, body)
    if category == "upper_body":
        _draw_pants(rng, regions, body)
    elif category == "lower_body":
        target_map = fit_lower_garment(rng, garment, body, height, width)
        target_worn, target_edge = wear(garment, *target_map)
        if not without_garment:
            regions[target_edge] = REGION["skirt" if garment.kind == "skirt" else "pants"]
    # DensePose's torso, trimmed to the top's pixels once the top is worn (_densepose_torso).
    (right_shoulder, left_shoulder), (right_hip, left_hip) = body.torso.shoulders, body.torso.hips
    polygon(dense, [right_shoulder, left_shoulder, left_hip, right_hip], PART["torso"])
    _draw_arms_and_hands(regions, dense, body)
    _draw_neck(rng, regions, dense, body)
    top_map, top_worn = _wear_top(rng, regions, dense, top, top_forward, body.torso, category,
                                  without_garment)
    if category != "lower_body":
        target_worn, target_map = top_worn, top_map
    if category != "upper_body":
        # Hands in front of the lower garment, the kept top's hem or the dress's skirt (the
        # upper body keeps the original drawing order, hands under the garment).
        for side in body.arms:
            centre, axes, angle = body.hand(side)
            ellipse(regions, centre, axes, angle, REGION[f"{side}_arm"])
    _draw_head(rng, regions, dense, body)
    if category == "upper_body":
        _mark_noise(rng, regions, body.torso)
    return _Drawing(regions, dense, target_worn, target_map, top_worn)


def _draw_hair_behind(rng, regions, body: Body):
    """Long hair (40% of people) behind the head and shoulders: drawn first, so everything
    covers it."""
    if rng.random() < 0.4:
        torso = body.torso
        ellipse(regions, body.face_centre + torso.offset(0, 20),
                body.head_axes * np.array([1.25, 1.9]), torso.tilt_degrees, REGION["hair"])


def _draw_legs_and_shoes(regions, dense, body: Body):
    """Both legs (upper and lower, regions and DensePose), then both shoes over them."""
    radius, torso = body.leg_radius, body.torso
    for side, (hip, knee, ankle) in body.legs.items():
        leg_region = REGION[f"{side}_leg"]
        capsule(regions, hip, knee, radius, leg_region)
        capsule(regions, knee, ankle, radius * 0.8, leg_region)
        capsule(dense, hip, knee, radius, PART[f"upper_leg_{side}"])
        capsule(dense, knee, ankle, radius * 0.8, PART[f"lower_leg_{side}"])
    for side in body.legs:
        foot, axes = body.foot(side), np.array([11, 7]) * torso.scale
        ellipse(regions, foot, axes, torso.tilt_degrees, REGION[f"{side}_shoe"])
        ellipse(dense, foot, axes, torso.tilt_degrees, PART[f"{side}_foot"])


def _draw_pants(rng, regions, body: Body):
    """The upper-body person's own trousers (60%, down to the ankles) or shorts, a little wider
    than the legs, from a band below the waist."""
    torso, radius = body.torso, body.leg_radius
    long_pants = rng.random() < 0.6
    pants_width = rng.uniform(1.05, 1.25)
    hip_half, length = torso.hip_half, torso.length
    # The seat: from a little above the hip joints to a little below, wider than the hips.
    band = [torso.at(-hip_half * 1.25, length - 14), torso.at(hip_half * 1.25, length - 14),
            torso.at(hip_half * 1.3, length + 16), torso.at(-hip_half * 1.3, length + 16)]
    polygon(regions, band, REGION["pants"])
    for hip, knee, ankle in body.legs.values():
        if long_pants:
            stop = ankle - (ankle - knee) * 0.08
            capsule(regions, hip, knee, radius * pants_width, REGION["pants"])
            capsule(regions, knee, stop, radius * 0.8 * pants_width, REGION["pants"])
        else:
            stop = hip + (knee - hip) * rng.uniform(0.5, 1.0)
            capsule(regions, hip, stop, radius * pants_width, REGION["pants"])


def _draw_arms_and_hands(regions, dense, body: Body):
    """Both arms (upper and lower) and hands, regions and DensePose."""
    radius = body.arm_radius
    for side, arm in body.arms.items():
        arm_region = REGION[f"{side}_arm"]
        capsule(regions, arm.shoulder, arm.elbow, radius, arm_region)
        capsule(regions, arm.elbow, arm.wrist, radius * 0.85, arm_region)
        capsule(dense, arm.shoulder, arm.elbow, radius, PART[f"upper_arm_{side}"])
        capsule(dense, arm.elbow, arm.wrist, radius * 0.85, PART[f"lower_arm_{side}"])
        centre, axes, angle = body.hand(side)
        ellipse(regions, centre, axes, angle, arm_region)
        ellipse(dense, centre, axes, angle, PART[f"{side}_hand"])


def _draw_neck(rng, regions, dense, body: Body):
    """The neck, from its base up into the head; DensePose counts it as head."""
    torso = body.torso
    neck_top = body.face_centre + torso.rotation @ np.array([0, body.head_axes[1] * 0.6])
    neck_radius = rng.uniform(7, 9) * torso.scale
    capsule(regions, torso.neck, neck_top, neck_radius, REGION["neck"])
    capsule(dense, torso.neck, neck_top, neck_radius, PART["head_right"])


def _wear_top(rng, regions, dense, top, top_forward, torso: Torso, category, without_garment):
    """The top or dress over the body: the product sampled through its placement plus a smooth
    deformation. Returns its backward map (map_x, map_y float32 (H, W)) and the worn product
    uint8 (H, W, 3)."""
    height, width = regions.shape
    field = smooth_field(rng, height, width, amplitude=rng.uniform(1.5, 4.0) * width / 192)
    top_map = garment_map(top_forward, field)
    worn, worn_edge = wear(top, *top_map)
    # Only the target can be left off: the lower body's top is always worn.
    if category == "lower_body" or not without_garment:
        regions[worn_edge] = REGION["dress" if category == "dresses" else "upper_clothes"]
    _densepose_torso(dense, worn_edge, torso, category)
    return top_map, worn


def _densepose_torso(dense, worn_edge, torso: Torso, category):
    """DensePose's torso (in place): the top's pixels over the torso or the background; the
    torso's own polygon where the top does not cover it is background."""
    covered = worn_edge
    if category == "dresses":
        # DensePose's torso ends at the hips; below them the dress hangs over the legs.
        height, width = dense.shape
        ys = np.arange(height, dtype=np.float64)[:, None]
        xs = np.arange(width, dtype=np.float64)[None, :]
        tilt, neck = torso.tilt, torso.neck
        along = (-np.sin(tilt) * (xs - neck[0]) + np.cos(tilt) * (ys - neck[1])) / torso.scale
        covered = worn_edge & (along < torso.length + 4)
    dense[covered & ((dense == 0) | (dense == PART["torso"]))] = PART["torso"]
    dense[(dense == PART["torso"]) & ~covered] = 0


def _draw_head(rng, regions, dense, body: Body):
    """Over everything: the hair's cap, then the face; DensePose's head split into the
    person's right and left halves."""
    torso, axes, face = body.torso, body.head_axes, body.face_centre
    rot, angle = torso.rotation, torso.tilt_degrees
    hair_cap = face + rot @ np.array([0, -axes[1] * rng.uniform(0.2, 0.35)])
    ellipse(regions, hair_cap, axes * np.array([1.1, 0.95]), angle, REGION["hair"])
    ellipse(regions, face + rot @ np.array([0, axes[1] * 0.12]), axes * np.array([0.92, 0.88]),
            angle, REGION["face"])
    ellipse(dense, face, axes * 1.06, angle, PART["head_right"])
    left_half = np.zeros_like(dense)
    polygon(left_half, [face + torso.offset(0, -60), face + torso.offset(60, -60),
                        face + torso.offset(60, 60), face + torso.offset(0, 60)], 1)
    dense[(dense == PART["head_right"]) & (left_half == 1)] = PART["head_left"]


def _mark_noise(rng, regions, torso: Torso):
    """In 30% of the upper-body samples, a blob of the target top becomes the "noise" region:
    the part of the garment some parsers give a separate class (ACGPN's 7, merged into 4)."""
    if rng.random() < 0.3:
        blob = np.zeros_like(regions)
        ellipse(blob, torso.at(rng.uniform(-15, 15), torso.length * rng.uniform(0.3, 0.8)),
                np.array([rng.uniform(4, 10), rng.uniform(4, 10)]) * torso.scale,
                rng.uniform(0, 180), 1)
        regions[(blob == 1) & (regions == REGION["upper_clothes"])] = REGION["noise"]
