"""How a garment is fitted to a body: affine maps from product points (shoulders, hem, waist,
leg hems) to body points, and the backward sampling maps of the worn garment.

A top or dress is one affine map; a skirt too; trousers have one per leg, blended across the
line between the legs (see data.synthetic.warping for the maps).
"""

import cv2
import numpy as np

from data.synthetic.body import Body, Torso
from data.synthetic.garments import REFERENCE_LEG, Garment
from data.synthetic.warping import blended_garment_map, garment_map, smooth_field


def place_top(rng, top: Garment, torso: Torso, category: str) -> np.ndarray:
    """(2, 3) float64 affine map product -> person of a top or dress, from its shoulders and
    hem centre to three body points.

    The shoulders land a margin outside the shoulder joints, so the garment covers the torso.
    A dress ends its ``length`` down the legs; a top (the target, or the top the lower body
    keeps on) ends a little below the hips, a kept top at least a little below the lower
    garment's waistband.
    """
    margin = rng.uniform(1.08, 1.22)
    if category == "dresses":
        hem_drop = REFERENCE_LEG * top.length
    elif category == "lower_body":
        hem_drop = rng.uniform(-0.02, 0.22) * torso.length
    else:
        hem_drop = rng.uniform(0.0, 0.22) * torso.length
    source = np.float32([top.right_shoulder, top.left_shoulder, top.hem_centre])
    target = np.float32([torso.at(-torso.shoulder_half * margin, torso.shoulder_drop * 0.8),
                         torso.at(torso.shoulder_half * margin, torso.shoulder_drop * 0.8),
                         torso.at(rng.uniform(-3, 3), torso.length + hem_drop)])
    return cv2.getAffineTransform(source, target).astype(np.float64)


def _along_leg(leg, fraction):
    """The point ``fraction`` of the way down the polyline hip -> knee -> ankle."""
    hip, knee, ankle = leg
    upper, lower = np.linalg.norm(knee - hip), np.linalg.norm(ankle - knee)
    distance = fraction * (upper + lower)
    if distance <= upper:
        return hip + (knee - hip) * (distance / upper)
    return knee + (ankle - knee) * min(1.0, (distance - upper) / lower)


def _leg_blend_weight(centre, down, half, scale, height, width):
    """float (H, W) weight of the left leg's map: a smoothstep from 0 to 1 across the line
    from the waist's ``centre`` along ``down`` (unit (2,)), over a width of ``half`` (the
    waist's half width, reference pixels) either side."""
    across = np.array([down[1], -down[0]])          # towards the wearer's left (image right)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    lateral = (xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]
    ramp = np.clip(0.5 + lateral / (0.5 * half * scale), 0.0, 1.0)
    return ramp * ramp * (3 - 2 * ramp)


def fit_lower_garment(rng, garment: Garment, body: Body, height: int, width: int):
    """The backward map (map_x, map_y float32 (H, W)) of a lower garment on this body.

    The waistband spans the hips and the tops of the legs a little above the hip joints; the
    hem falls ``garment.length`` of the way down the legs. A skirt is one affine map (waist
    corners and hem centre). Each trouser leg has its own (waist corners and that leg's hem
    centre): the two agree on the waistline and are blended with a smoothstep across the line
    between the legs, so the map stays smooth and one-to-one where the legs meet.
    """
    torso = body.torso
    rise = rng.uniform(14, 20)
    half = (torso.hip_half + 0.9 * body.leg_radius / torso.scale) * rng.uniform(1.0, 1.12)
    waist_right = torso.at(-half, torso.length - rise)
    waist_left = torso.at(half, torso.length - rise)
    hems = [_along_leg(body.legs[side], garment.length) for side in ("right", "left")]
    field = smooth_field(rng, height, width, amplitude=rng.uniform(1.0, 2.5) * width / 192)
    if garment.leg_hems is None:
        forward = cv2.getAffineTransform(
            np.float32([garment.waist[0], garment.waist[1], garment.hem_centre]),
            np.float32([waist_right, waist_left, (hems[0] + hems[1]) / 2])).astype(np.float64)
        return garment_map(forward, field)
    forwards = [cv2.getAffineTransform(np.float32([garment.waist[0], garment.waist[1], source]),
                                       np.float32([waist_right, waist_left, hem])).astype(float)
                for source, hem in zip(garment.leg_hems, hems)]
    centre = (waist_right + waist_left) / 2
    down = (hems[0] + hems[1]) / 2 - centre
    down /= np.linalg.norm(down)
    left = _leg_blend_weight(centre, down, half, torso.scale, height, width)
    return blended_garment_map(forwards, [1 - left, left], field)
