"""Procedurally drawn try-on data in the VITON, VITON-HD and DressCode layouts, for training and
testing without downloads.

Each sample is a person (background, hair, face, neck, arms, hands, legs, shoes) wearing a target
garment that is an in-shop product image under a known smooth deformation: every person pixel
p samples the product at

    q(p) = sum_i w_i(p) A_i^-1 (p) + d(p)

with A_i affine maps that fit the garment to the body (so it follows the pose), w_i smooth
weights summing to 1 (a single map, w = 1, for tops, skirts and dresses; one map per leg for
trousers, blended across the line between the legs) and d a low-frequency sinusoidal field of a
few pixels. q is a backward map in pixel units, exactly what the warp module predicts
(``grid_sample`` with align_corners=True), so the ideal warp is known for every sample and
returned as ``flow`` by ``draw_sample``.

Garment categories (DressCode's names):
    upper_body   a top (tank top, short or long sleeves); the person also wears trousers or shorts
    lower_body   trousers, shorts or a skirt; the person also wears a top, which is not the target
                 and stays as drawn (its hem covers the waistband)
    dresses      a dress from the shoulders to the upper legs or below, with or without sleeves

The person is drawn as regions (``REGION``), finer than any parsing scheme: the neck is its own
region and the garments keep their kind. Each scheme is a table from the regions
(``scheme_labels``): the 14-class scheme of VITON (the neck is face, 12; pants and skirts are 8;
a dress is 4), CIHP's 20 classes of VITON-HD (the neck is 10) and ATR's 18 classes of DressCode
(the neck is face, 11). "Left" and "right" are the person's own: a person facing the camera has
their right side on the image's left. The photo's target-garment pixels are exactly the region of
the target (``garment_region``); DensePose part indices follow the body parts, and the 18 COCO
keypoints are the skeleton the body was drawn from.
"""

import json
import os
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from PIL import Image

from data.pose import BODY25_TO_COCO18, NUM_KEYPOINTS

SHIFT = 4                  # cv2 drawing with 4 fractional bits: sub-pixel placement
SCALE = 1 << SHIFT

CATEGORIES = ("upper_body", "lower_body", "dresses")
LAYOUTS = ("viton", "vitonhd", "dresscode")

# Parsing labels (ACGPN scheme) and DensePose I values drawn here. "Left"/"right" are the
# person's own: a person facing the camera has their right side on the image's left.
LABEL = dict(background=0, hair=1, clothes=4, left_shoe=5, right_shoe=6, noise=7, pants=8,
             left_leg=9, right_leg=10, left_arm=11, face=12, right_arm=13)
PART = dict(torso=2, right_hand=3, left_hand=4, left_foot=5, right_foot=6, upper_leg_right=7,
            upper_leg_left=8, lower_leg_right=11, lower_leg_left=12, upper_arm_left=15,
            upper_arm_right=16, lower_arm_left=19, lower_arm_right=20, head_right=23,
            head_left=24)

# The regions the person is drawn with. "noise" is the part of an upper-body target that some
# parsers give a class of its own (ACGPN's 7, merged into 4 before use); "upper_clothes" is the
# target of the upper body and the kept top of the lower body.
REGION = dict(background=0, hair=1, face=2, neck=3, right_arm=4, left_arm=5, right_leg=6,
              left_leg=7, right_shoe=8, left_shoe=9, upper_clothes=10, noise=11, pants=12,
              skirt=13, dress=14)

# CIHP (VITON-HD's image-parse-v3) and ATR (DressCode's label_maps) class numbers.
CIHP = dict(background=0, hat=1, hair=2, glove=3, sunglasses=4, upper_clothes=5, dress=6,
            coat=7, socks=8, pants=9, torso_skin=10, scarf=11, skirt=12, face=13, left_arm=14,
            right_arm=15, left_leg=16, right_leg=17, left_shoe=18, right_shoe=19)
ATR = dict(background=0, hat=1, hair=2, sunglasses=3, upper_clothes=4, skirt=5, pants=6,
           dress=7, belt=8, left_shoe=9, right_shoe=10, face=11, left_leg=12, right_leg=13,
           left_arm=14, right_arm=15, bag=16, scarf=17)

# Region -> class of each written scheme. The noise region is upper clothes outside the
# 14-class scheme: CIHP and ATR have no class that a converter would merge into the garment.
_SCHEME_OF_REGION = {
    "viton": dict(background=LABEL["background"], hair=LABEL["hair"], face=LABEL["face"],
                  neck=LABEL["face"], right_arm=LABEL["right_arm"], left_arm=LABEL["left_arm"],
                  right_leg=LABEL["right_leg"], left_leg=LABEL["left_leg"],
                  right_shoe=LABEL["right_shoe"], left_shoe=LABEL["left_shoe"],
                  upper_clothes=LABEL["clothes"], noise=LABEL["noise"], pants=LABEL["pants"],
                  skirt=LABEL["pants"], dress=LABEL["clothes"]),
    "cihp": dict(background=CIHP["background"], hair=CIHP["hair"], face=CIHP["face"],
                 neck=CIHP["torso_skin"], right_arm=CIHP["right_arm"], left_arm=CIHP["left_arm"],
                 right_leg=CIHP["right_leg"], left_leg=CIHP["left_leg"],
                 right_shoe=CIHP["right_shoe"], left_shoe=CIHP["left_shoe"],
                 upper_clothes=CIHP["upper_clothes"], noise=CIHP["upper_clothes"],
                 pants=CIHP["pants"], skirt=CIHP["skirt"], dress=CIHP["dress"]),
    "atr": dict(background=ATR["background"], hair=ATR["hair"], face=ATR["face"],
                neck=ATR["face"], right_arm=ATR["right_arm"], left_arm=ATR["left_arm"],
                right_leg=ATR["right_leg"], left_leg=ATR["left_leg"],
                right_shoe=ATR["right_shoe"], left_shoe=ATR["left_shoe"],
                upper_clothes=ATR["upper_clothes"], noise=ATR["upper_clothes"],
                pants=ATR["pants"], skirt=ATR["skirt"], dress=ATR["dress"]),
}
SCHEMES = tuple(_SCHEME_OF_REGION)


def _lookup(mapping: dict) -> np.ndarray:
    table = np.zeros(256, np.uint8)
    for region, value in mapping.items():
        table[REGION[region]] = value
    return table


_SCHEME_TABLES = {scheme: _lookup(mapping) for scheme, mapping in _SCHEME_OF_REGION.items()}

# Regions of the target garment of each category.
TARGET_REGIONS = dict(upper_body=("upper_clothes", "noise"), lower_body=("pants", "skirt"),
                      dresses=("dress",))


def scheme_labels(regions: np.ndarray, scheme: str) -> np.ndarray:
    """Region map uint8 (H, W) -> parsing labels uint8 (H, W) of ``scheme``: "viton" (14
    classes, 0..13), "cihp" (20 classes, 0..19) or "atr" (18 classes, 0..17)."""
    if scheme not in _SCHEME_TABLES:
        raise ValueError(f"scheme={scheme!r}: expected one of {', '.join(SCHEMES)}")
    return _SCHEME_TABLES[scheme][regions]


def garment_region(regions: np.ndarray, category: str) -> np.ndarray:
    """bool (H, W): the pixels of the target garment of ``category`` in a region map."""
    _check_category(category)
    mask = np.zeros(regions.shape, bool)
    for name in TARGET_REGIONS[category]:
        mask |= regions == REGION[name]
    return mask


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"category={category!r}: expected one of {', '.join(CATEGORIES)}")


@dataclass
class Garment:
    """An in-shop product image and its geometry (product pixel coordinates, (x, y)).

    Tops and dresses have shoulders; lower garments have a waist. Points named right/left are
    the wearer's: the right one is on the image's left.
    """

    image: np.ndarray          # uint8 (H, W, 3) RGB, white background
    edge: np.ndarray           # uint8 (H, W) 0 / 255
    right_shoulder: Optional[np.ndarray]  # (2,) outer shoulder corner on the image's left
    left_shoulder: Optional[np.ndarray]
    hem_centre: np.ndarray
    sleeve_axis: Optional[np.ndarray]  # (2, 2) start and unit direction of the right sleeve, or None
    category: str = "upper_body"
    kind: str = "top"          # top | trousers | shorts | skirt | dress
    waist: Optional[np.ndarray] = None     # (2, 2) right and left waistband corners
    leg_hems: Optional[np.ndarray] = None  # (2, 2) right and left trouser-leg hem centres
    # Lower garments and dresses: where the hem falls on the leg, as a fraction of the length
    # from the hip joint to the ankle (0.5 is about the knee).
    length: float = 0.0


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
# Garments


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


def _fit_in_canvas(points, cx, height, width):
    """A uniform shrink (never an enlargement) about the garment's vertical centre line that
    fits ``points`` (N, 2) inside the canvas with a 4% margin, centred vertically.

    Returns (place, fit): ``place`` maps product points (..., 2) to the canvas; ``fit`` <= 1.
    """
    low = points.min(0)
    high = points.max(0)
    margin = np.array([0.04 * width, 0.04 * height])
    fit = min(1.0, (width / 2 - margin[0]) / max(cx - low[0], high[0] - cx),
              (height - 2 * margin[1]) / (high[1] - low[1]))
    origin = np.array([cx, (low[1] + high[1]) / 2])
    target = np.array([cx, height / 2])

    def place(p):
        return (np.asarray(p) - origin) * fit + target

    return place, fit


def _sleeves(rng, right, left, shoulder, armhole, span, short):
    """Sleeve polygons hanging from the shoulder corners and the right sleeve's axis.

    ``span`` is the garment's shoulder-to-hem height the sleeve lengths are relative to;
    ``short`` selects a short sleeve, else a long one.
    """
    angle = rng.uniform(0.3, 0.75)             # from the vertical, radians
    length = span * (rng.uniform(0.25, 0.38) if short else rng.uniform(0.75, 0.95))
    direction = np.array([np.sin(angle), np.cos(angle)])
    armpit_inset = shoulder * 0.06
    polygons = []
    for side, corner in ((-1, right), (1, left)):
        d = direction * np.array([side, 1.0])
        armpit = np.array([corner[0] - side * armpit_inset, corner[1] + armhole])
        # The sleeve's cross-section runs from the shoulder corner to the armpit; the end
        # is cut perpendicular to the sleeve.
        polygons.append(np.array([corner, corner + length * d,
                                  armpit + (length - armhole * 0.6) * d, armpit]))
    mid = (right + np.array([right[0] + armpit_inset, right[1] + armhole])) / 2
    return polygons, np.stack([mid, direction * np.array([-1.0, 1.0])])


def _cut_neckline(rng, edge, neck_centre, neck_half, depth):
    """Remove a round or V neckline from a garment mask (in place)."""
    if rng.random() < 0.5:
        _ellipse(edge, neck_centre, (neck_half, depth), 0, 0)
    else:
        _polygon(edge, [neck_centre + [-neck_half, -1], neck_centre + [neck_half, -1],
                        neck_centre + [0, depth * 1.5]], 0)


def _product_image(edge, fabric):
    image = np.full(fabric.shape, 255, np.uint8)
    inside = edge > 127
    image[inside] = fabric[inside]
    return image


def draw_garment(rng: np.random.Generator, height: int, width: int,
                 category: str = "upper_body") -> Garment:
    """A product image on white of a garment of ``category`` (see CATEGORIES): a top (tank
    top, short or long sleeves), trousers, shorts or a skirt, or a dress (sleeveless, short or
    long sleeves; mini to midi length)."""
    _check_category(category)
    if category == "lower_body":
        return _draw_lower_garment(rng, height, width)
    if category == "dresses":
        return _draw_dress(rng, height, width)
    return _draw_top(rng, height, width)


def _draw_top(rng, height, width):
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
        sleeve_polygons, axis = _sleeves(rng, right, left, shoulder, armhole, hem - top,
                                         sleeve == "short")
        polygons += sleeve_polygons

    # Fit everything inside the canvas with a margin (long sleeves reach far out).
    place, fit = _fit_in_canvas(np.concatenate(polygons), cx, height, width)
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
    _cut_neckline(rng, edge, neck_centre, neck * fit, depth)

    base = _colour(rng)
    second = _contrasting(rng, base)
    chest = neck_centre[1] + (hem_centre[1] - neck_centre[1]) * 0.3
    fabric = _garment_pattern(rng, height, width, base, second, cx, chest)
    return Garment(image=_product_image(edge, fabric), edge=edge, right_shoulder=right,
                   left_shoulder=left, hem_centre=hem_centre, sleeve_axis=axis)


# Reference body proportions (pixels at a height of 256, body scale 1) the dress and lower
# garment products are cut for: shoulder line to hip joints, hip joint to ankle, and the
# shoulder half-width the top's fit maps a garment's shoulders to. The person is drawn with
# its own random proportions; these only keep the products' shapes plausible.
_REFERENCE_TORSO = 73.0
_REFERENCE_LEG = 127.0
_REFERENCE_SHOULDER = 34.0


def _hem_arc(cx, half, y, sag, count=7):
    """Points of a hem from (cx + half, y) to (cx - half, y), sagging by ``sag`` in the middle."""
    t = np.linspace(1.0, -1.0, count)
    return np.stack([cx + half * t, y + sag * (1 - t * t)], 1)


def _draw_dress(rng, height, width):
    cx = width * (0.5 + rng.uniform(-0.03, 0.03))
    top = height * 0.1
    shoulder = width * rng.uniform(0.19, 0.25)
    neck = shoulder * rng.uniform(0.3, 0.45)
    slope = height * rng.uniform(0.015, 0.035)
    # Mini, about the knee, midi.
    cut = rng.choice(3, p=[0.35, 0.4, 0.25])
    length = rng.uniform(*((0.12, 0.35), (0.4, 0.6), (0.62, 0.85))[cut])
    sleeve = rng.choice(["none", "short", "long"], p=[0.4, 0.35, 0.25])
    per = shoulder / _REFERENCE_SHOULDER
    hip_y = top + _REFERENCE_TORSO * per * rng.uniform(0.92, 1.08)
    waist_y = top + (hip_y - top) * rng.uniform(0.5, 0.65)
    hem_y = hip_y + _REFERENCE_LEG * length * per
    armhole = (hip_y - top) * rng.uniform(0.25, 0.32)
    waist_half = shoulder * rng.uniform(0.8, 0.95)
    # Wide enough at the hips to cover the tops of the legs, flaring more the longer the skirt.
    hip_half = shoulder * rng.uniform(1.0, 1.12)
    hem_half = hip_half * (1 + (hem_y - hip_y) / (hip_y - top) * rng.uniform(0.1, 0.45))
    sag = (hem_y - top) * rng.uniform(0.0, 0.03)

    right = np.array([cx - shoulder, top + slope])
    left = np.array([cx + shoulder, top + slope])
    inset = shoulder * 0.06
    outline = [[cx - neck, top], [cx + neck, top], left,
               [cx + shoulder - inset, top + slope + armhole], [cx + waist_half, waist_y],
               [cx + hip_half, hip_y]]
    outline += list(_hem_arc(cx, hem_half, hem_y, sag))
    outline += [[cx - hip_half, hip_y], [cx - waist_half, waist_y],
                [cx - shoulder + inset, top + slope + armhole], right]
    polygons = [np.array(outline, dtype=np.float64)]
    axis = None
    if sleeve != "none":
        sleeve_polygons, axis = _sleeves(rng, right, left, shoulder, armhole, hip_y - top,
                                         sleeve == "short")
        polygons += sleeve_polygons

    place, fit = _fit_in_canvas(np.concatenate(polygons), cx, height, width)
    polygons = [place(p) for p in polygons]
    edge = np.zeros((height, width), np.uint8)
    for polygon in polygons:
        _polygon(edge, polygon, 255)
    neck_centre = place(np.array([cx, top]))
    _cut_neckline(rng, edge, neck_centre, neck * fit, (hip_y - top) * fit * rng.uniform(0.06, 0.16))

    base = _colour(rng)
    second = _contrasting(rng, base)
    waist = place(np.array([cx, waist_y]))
    fabric = _garment_pattern(rng, height, width, base, second, cx,
                              (neck_centre[1] + waist[1]) / 2)
    if rng.random() < 0.3:                               # a belt at the waist
        belt = (hip_y - top) * fit * rng.uniform(0.04, 0.07)
        rows = slice(int(round(waist[1] - belt)), int(round(waist[1] + belt)) + 1)
        fabric[rows] = _contrasting(rng, base)
    if axis is not None:
        axis = np.stack([place(axis[0]), axis[1]])
    return Garment(image=_product_image(edge, fabric), edge=edge, right_shoulder=place(right),
                   left_shoulder=place(left), hem_centre=place(np.array([cx, hem_y + sag])),
                   sleeve_axis=axis, category="dresses", kind="dress", length=float(length))


def _draw_lower_garment(rng, height, width):
    cx = width * (0.5 + rng.uniform(-0.03, 0.03))
    top = height * 0.08
    kind = str(rng.choice(["trousers", "shorts", "skirt"], p=[0.4, 0.25, 0.35]))
    if kind == "trousers":
        length = rng.uniform(0.88, 1.0)
    elif kind == "shorts":
        length = rng.uniform(0.3, 0.5)
    else:
        length = rng.uniform(0.2, 0.85)
    waist = width * rng.uniform(0.19, 0.25)             # half width
    # Waist to hem, in the proportions of the reference body (the waistband sits about 14
    # reference pixels above the hip joints).
    per = waist / 33.0
    hem_y = top + (14.0 + _REFERENCE_LEG * length) * per * rng.uniform(0.92, 1.08)
    band = (hem_y - top) / (0.1 + 0.9 * length) * rng.uniform(0.03, 0.05)

    waist_corners = np.array([[cx - waist, top], [cx + waist, top]])
    leg_hems = None
    if kind == "skirt":
        hem_half = waist * rng.uniform(1.05, 1.6)
        sag = (hem_y - top) * rng.uniform(0.0, 0.05)
        outline = np.concatenate([waist_corners, _hem_arc(cx, hem_half, hem_y, sag)])
        hem_centre = np.array([cx, hem_y + sag])
        crotch = None
    else:
        rise = (14.0 + 0.25 * _REFERENCE_LEG) * per * rng.uniform(0.85, 1.05)
        rise = min(rise, 0.8 * (hem_y - top))
        spread = rng.uniform(0.02, 0.1)                  # each leg from the vertical, radians
        leg = (hem_y - top) / np.cos(spread)
        hem_half = waist * rng.uniform(0.42, 0.55)
        # Keep the two legs' inner hem corners apart.
        hem_half = min(hem_half, (0.5 * waist + np.sin(spread) * leg) / np.cos(spread) * 0.92)
        crotch = np.array([cx, top + rise])
        hems, corners = [], []
        for side in (-1.0, 1.0):                         # the wearer's right leg first
            hem = np.array([cx + side * 0.5 * waist, top]) + leg * np.array(
                [side * np.sin(spread), np.cos(spread)])
            outward = np.array([side * np.cos(spread), -np.sin(spread)])
            hems.append(hem)
            corners.append((hem + outward * hem_half, hem - outward * hem_half))
        leg_hems = np.stack(hems)
        (right_outer, right_inner), (left_outer, left_inner) = corners
        outline = np.array([waist_corners[0], waist_corners[1], left_outer, left_inner, crotch,
                            right_inner, right_outer])
        hem_centre = leg_hems.mean(0)

    place, fit = _fit_in_canvas(outline, cx, height, width)
    edge = np.zeros((height, width), np.uint8)
    _polygon(edge, place(outline), 255)
    base = _colour(rng)
    second = _contrasting(rng, base)
    placed_top = place(np.array([cx, top]))
    fabric = _garment_pattern(rng, height, width, base, second, cx,
                              placed_top[1] + (hem_y - top) * fit * 0.25)
    # A waistband, and the fly of trousers: marks that show how the waist is placed.
    trim = tuple(int(v) for v in _contrasting(rng, base))
    fabric[:int(round(placed_top[1] + band * fit)) + 1] = trim
    if crotch is not None:
        fly_end = np.array([cx, top + 0.7 * (crotch[1] - top)])
        _capsule(fabric, place(np.array([cx, top + band])), place(fly_end), max(0.5, 0.006 * width),
                 trim)
    return Garment(image=_product_image(edge, fabric), edge=edge, right_shoulder=None,
                   left_shoulder=None, hem_centre=place(hem_centre), sleeve_axis=None,
                   category="lower_body", kind=kind, waist=place(waist_corners),
                   leg_hems=None if leg_hems is None else place(leg_hems), length=float(length))


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


def blended_garment_map(forwards: Sequence[np.ndarray], weights: Sequence[np.ndarray],
                        field: np.ndarray):
    """Backward map of a garment fitted by several affine maps: sum_i w_i A_i^-1 (p) + d(p).

    Args:
        forwards: affine maps (2, 3) product -> person.
        weights: one float (H, W) per map, smooth, summing to 1 at every pixel.
        field: (2, H, W) displacement in product pixels.

    Returns:
        map_x, map_y float32 (H, W), as garment_map.
    """
    height, width = field.shape[1:]
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    map_x = field[0].astype(np.float64)
    map_y = field[1].astype(np.float64)
    for forward, weight in zip(forwards, weights):
        b = cv2.invertAffineTransform(forward)
        map_x = map_x + weight * (b[0, 0] * xs + b[0, 1] * ys + b[0, 2])
        map_y = map_y + weight * (b[1, 0] * xs + b[1, 1] * ys + b[1, 2])
    return map_x.astype(np.float32), map_y.astype(np.float32)


def map_to_flow(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Pixel sampling map -> (2, H, W) normalised flow of ``grid_sample(align_corners=True)``."""
    height, width = map_x.shape
    return np.stack([map_x / ((width - 1) / 2) - 1, map_y / ((height - 1) / 2) - 1]).astype(np.float32)


def _wear(garment: Garment, map_x, map_y):
    """The product seen through a backward map: image uint8 (H, W, 3), mask bool (H, W)."""
    worn = cv2.remap(garment.image, map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    worn_edge = cv2.remap(garment.edge, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 127
    return worn, worn_edge


def _along_leg(leg, fraction):
    """The point ``fraction`` of the way down the polyline hip -> knee -> ankle."""
    hip, knee, ankle = leg
    upper, lower = np.linalg.norm(knee - hip), np.linalg.norm(ankle - knee)
    distance = fraction * (upper + lower)
    if distance <= upper:
        return hip + (knee - hip) * (distance / upper)
    return knee + (ankle - knee) * min(1.0, (distance - upper) / lower)


def _fit_lower_garment(rng, garment, legs, body, torso, hip_half, leg_radius, s, height, width):
    """The backward map (map_x, map_y float32 (H, W)) of a lower garment on this body.

    The waistband spans the hips and the tops of the legs a little above the hip joints; the
    hem falls ``garment.length`` of the way down the legs. A skirt is one affine map (waist
    corners and hem centre). Each trouser leg has its own (waist corners and that leg's hem
    centre): the two agree on the waistline and are blended with a smoothstep across the line
    between the legs, so the map stays smooth and one-to-one where the legs meet.
    """
    rise = rng.uniform(14, 20)
    half = (hip_half + 0.9 * leg_radius / s) * rng.uniform(1.0, 1.12)
    waist_right, waist_left = body(-half, torso - rise), body(half, torso - rise)
    hems = [_along_leg(legs[side], garment.length) for side in ("right", "left")]
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
    across = np.array([down[1], -down[0]])          # towards the wearer's left (image right)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    lateral = (xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]
    ramp = np.clip(0.5 + lateral / (0.5 * half * s), 0.0, 1.0)
    left = ramp * ramp * (3 - 2 * ramp)
    return blended_garment_map(forwards, [1 - left, left], field)


# ---------------------------------------------------------------------------------------------
# Person


def draw_sample(rng: np.random.Generator, height: int = 256, width: int = 192,
                garment: Optional[Garment] = None, category: str = "upper_body", *,
                without_garment: bool = False) -> dict:
    """One person wearing one garment of ``category`` (see CATEGORIES).

    Args:
        rng: the only source of randomness; the same state draws the same sample.
        garment: the target garment (its category must be ``category``); drawn when None.
        without_garment: draw the same person (same randomness) with the target garment
            left off, e.g. to see which pixels the garment covers. The returned flow is the
            same; the photo and the labels show what is under the garment.

    Returns a dict of numpy arrays: image uint8 (H, W, 3) RGB; garment uint8 (H, W, 3) the
    product image; edge uint8 (H, W) 0/255 its mask; regions uint8 (H, W) values of REGION;
    label uint8 (H, W) the 14-class parsing 0..13 (``scheme_labels(regions, "viton")``);
    densepose uint8 (H, W) 0..24; keypoints float64 (18, 3) COCO-18 (x, y, confidence; 0 where
    not visible); feet float64 (6, 3) the feet points of OpenPose BODY_25 (19..24: left big
    toe, left small toe, left heel, right big toe, right small toe, right heel), same
    convention; flow float32 (2, H, W), the normalised backward map of the target garment
    (valid where ``garment_region(regions, category)``); and category, the str.
    """
    _check_category(category)
    if garment is None:
        garment = draw_garment(rng, height, width, category)
    elif garment.category != category:
        raise ValueError(f"a {garment.category} garment cannot be worn as {category}")
    # The garment the shoulders and arms are fitted to: the target, or for the lower body a
    # top the person keeps on.
    top = draw_garment(rng, height, width) if category == "lower_body" else garment
    narrow_legs = category == "dresses" or garment.kind == "skirt"
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

    # Placement of the top (or dress): an affine map from three product points to three body
    # points; the margin makes the garment cover the torso. A kept top reaches at least a
    # little below the waistband of the lower garment; a dress ends its length down the legs.
    margin = rng.uniform(1.08, 1.22)
    if category == "dresses":
        hem_drop = _REFERENCE_LEG * garment.length
    elif category == "lower_body":
        hem_drop = rng.uniform(-0.02, 0.22) * torso
    else:
        hem_drop = rng.uniform(0.0, 0.22) * torso
    src = np.float32([top.right_shoulder, top.left_shoulder, top.hem_centre])
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
        if top.sleeve_axis is not None:
            direction = linear @ (top.sleeve_axis[1] * np.array([sign * -1.0, 1.0]))
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
        # Legs stay close together under a skirt or dress, which would not cover them apart.
        spread = (rng.uniform(-0.03, 0.05) if narrow_legs else rng.uniform(-0.02, 0.12)) * sign
        knee = hip + rot @ np.array([np.sin(spread), np.cos(spread)]) * upper_leg
        lower = spread + rng.uniform(-0.05, 0.05)
        ankle = knee + rot @ np.array([np.sin(lower), np.cos(lower)]) * lower_leg
        legs[side] = (hip, knee, ankle)

    head_axes = np.array([rng.uniform(15, 19), rng.uniform(19, 23)]) * s
    face_centre = body(rng.uniform(-2, 2), -rng.uniform(22, 27))
    regions = np.zeros((height, width), np.uint8)
    dense = np.zeros((height, width), np.uint8)

    # Hair behind the head and shoulders, drawn first so everything covers it.
    hair_long = rng.random() < 0.4
    if hair_long:
        _ellipse(regions, face_centre + rot @ np.array([0, 20]) * s,
                 head_axes * np.array([1.25, 1.9]), np.degrees(tilt), REGION["hair"])

    # Legs, shoes, then what covers the legs.
    for side, (hip, knee, ankle) in legs.items():
        leg_region = REGION[f"{side}_leg"]
        _capsule(regions, hip, knee, leg_radius, leg_region)
        _capsule(regions, knee, ankle, leg_radius * 0.8, leg_region)
        _capsule(dense, hip, knee, leg_radius, PART[f"upper_leg_{side}"])
        _capsule(dense, knee, ankle, leg_radius * 0.8, PART[f"lower_leg_{side}"])
    feet = {}
    for side, (hip, knee, ankle) in legs.items():
        foot = ankle + rot @ np.array([0, 6]) * s
        feet[side] = foot
        _ellipse(regions, foot, np.array([11, 7]) * s, np.degrees(tilt), REGION[f"{side}_shoe"])
        _ellipse(dense, foot, np.array([11, 7]) * s, np.degrees(tilt), PART[f"{side}_foot"])
    if category == "upper_body":
        long_pants = rng.random() < 0.6
        pants_width = rng.uniform(1.05, 1.25)
        _polygon(regions, [body(-hip_half * 1.25, torso - 14), body(hip_half * 1.25, torso - 14),
                           body(hip_half * 1.3, torso + 16), body(-hip_half * 1.3, torso + 16)],
                 REGION["pants"])
        for side, (hip, knee, ankle) in legs.items():
            stop = ankle - (ankle - knee) * 0.08 if long_pants else hip + (knee - hip) * rng.uniform(0.5, 1.0)
            if long_pants:
                _capsule(regions, hip, knee, leg_radius * pants_width, REGION["pants"])
                _capsule(regions, knee, stop, leg_radius * 0.8 * pants_width, REGION["pants"])
            else:
                _capsule(regions, hip, stop, leg_radius * pants_width, REGION["pants"])
    elif category == "lower_body":
        target_x, target_y = _fit_lower_garment(rng, garment, legs, body, torso, hip_half,
                                                leg_radius, s, height, width)
        target_worn, target_edge = _wear(garment, target_x, target_y)
        if not without_garment:
            regions[target_edge] = REGION["skirt" if garment.kind == "skirt" else "pants"]
    _polygon(dense, [r_shoulder, l_shoulder, l_hip, r_hip], PART["torso"])

    # Arms and hands.
    hands = []
    for side, (shoulder, elbow, wrist, forearm) in joints.items():
        arm_region = REGION[f"{side}_arm"]
        _capsule(regions, shoulder, elbow, arm_radius, arm_region)
        _capsule(regions, elbow, wrist, arm_radius * 0.85, arm_region)
        _capsule(dense, shoulder, elbow, arm_radius, PART[f"upper_arm_{side}"])
        _capsule(dense, elbow, wrist, arm_radius * 0.85, PART[f"lower_arm_{side}"])
        hand = wrist + forearm * arm_radius * 0.9
        hand_axes = np.array([arm_radius * 0.85, arm_radius * 1.15])
        hand_angle = np.degrees(np.arctan2(forearm[1], forearm[0])) - 90
        _ellipse(regions, hand, hand_axes, hand_angle, arm_region)
        _ellipse(dense, hand, hand_axes, hand_angle, PART[f"{side}_hand"])
        hands.append((hand, hand_axes, hand_angle, arm_region))

    neck_top = face_centre + rot @ np.array([0, head_axes[1] * 0.6])
    neck_radius = rng.uniform(7, 9) * s
    _capsule(regions, neck, neck_top, neck_radius, REGION["neck"])
    _capsule(dense, neck, neck_top, neck_radius, PART["head_right"])

    # The top or dress: the product sampled through the deformation.
    field = smooth_field(rng, height, width, amplitude=rng.uniform(1.5, 4.0) * width / 192)
    map_x, map_y = garment_map(forward, field)
    worn, worn_edge = _wear(top, map_x, map_y)
    if category == "lower_body" or not without_garment:
        regions[worn_edge] = REGION["dress" if category == "dresses" else "upper_clothes"]
    covered = worn_edge
    if category == "dresses":
        # DensePose's torso ends at the hips; below them the dress hangs over the legs.
        ys = np.arange(height, dtype=np.float64)[:, None]
        xs = np.arange(width, dtype=np.float64)[None, :]
        along = (-np.sin(tilt) * (xs - neck[0]) + np.cos(tilt) * (ys - neck[1])) / s
        covered = worn_edge & (along < torso + 4)
    dense[covered & ((dense == 0) | (dense == PART["torso"]))] = PART["torso"]
    dense[(dense == PART["torso"]) & ~covered] = 0
    if category != "lower_body":
        target_worn, target_x, target_y = worn, map_x, map_y
    if category != "upper_body":
        # Hands in front of the lower garment, the kept top's hem or the dress's skirt (the
        # upper body keeps the original drawing order, hands under the garment).
        for hand, hand_axes, hand_angle, arm_region in hands:
            _ellipse(regions, hand, hand_axes, hand_angle, arm_region)

    # Head over everything: hair cap, then the face.
    hair_cap = face_centre + rot @ np.array([0, -head_axes[1] * rng.uniform(0.2, 0.35)])
    _ellipse(regions, hair_cap, head_axes * np.array([1.1, 0.95]), np.degrees(tilt), REGION["hair"])
    _ellipse(regions, face_centre + rot @ np.array([0, head_axes[1] * 0.12]),
             head_axes * np.array([0.92, 0.88]), np.degrees(tilt), REGION["face"])
    _ellipse(dense, face_centre, head_axes * 1.06, np.degrees(tilt), PART["head_right"])
    head_half = np.zeros_like(dense)
    _polygon(head_half, [face_centre + rot @ np.array([0, -60]) * s,
                         face_centre + rot @ np.array([60, -60]) * s,
                         face_centre + rot @ np.array([60, 60]) * s,
                         face_centre + rot @ np.array([0, 60]) * s], 1)
    dense[(dense == PART["head_right"]) & (head_half == 1)] = PART["head_left"]

    # "Noise" (7): part of the garment some parsers give a separate class; merged into 4.
    if category == "upper_body" and rng.random() < 0.3:
        blob = np.zeros_like(regions)
        _ellipse(blob, body(rng.uniform(-15, 15), torso * rng.uniform(0.3, 0.8)),
                 np.array([rng.uniform(4, 10), rng.uniform(4, 10)]) * s, rng.uniform(0, 180), 1)
        regions[(blob == 1) & (regions == REGION["upper_clothes"])] = REGION["noise"]

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
    visible = _inside(points, height, width)
    visible[16:] &= rng.random(2) > 0.2                 # ears are often missed
    keypoints[~visible] = 0

    # BODY_25's foot points, seen from the front: toes at the bottom of the shoe (the big toe
    # on the inner side), the heel behind the ankle. Seen when their ankle is.
    foot_points, foot_ankles = [], []
    for side, sign, ankle_index in (("left", 1.0, 13), ("right", -1.0, 10)):
        centre = feet[side]
        foot_points += [centre + rot @ np.array([-sign * 4, 5]) * s,
                        centre + rot @ np.array([sign * 7, 3]) * s,
                        centre + rot @ np.array([0, -3]) * s]
        foot_ankles += [ankle_index] * 3
    foot_points = np.array(foot_points)
    foot_confidence = keypoints[foot_ankles, 2] * _inside(foot_points, height, width)
    foot_keypoints = np.concatenate([foot_points, foot_confidence[:, None]], 1)
    foot_keypoints[foot_confidence == 0] = 0

    target = garment_region(regions, category)
    kept = (regions == REGION["upper_clothes"], worn) if category == "lower_body" else None
    image = _paint_photo(rng, regions, target, target_worn, keypoints, unit, kept)
    return dict(image=image, garment=garment.image, edge=garment.edge,
                label=scheme_labels(regions, "viton"), densepose=dense, keypoints=keypoints,
                flow=map_to_flow(target_x, target_y), regions=regions, feet=foot_keypoints,
                category=category)


def _inside(points, height, width):
    return ((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
            & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))


def _paint_photo(rng, regions, target, worn, keypoints, unit, kept=None):
    """Colour the region map: background scene, skin, hair, pants, shoes; the target garment's
    pixels (bool (H, W) ``target``) are ``worn``; ``kept`` = (mask, image), a garment the
    person keeps on (the lower body's top), painted likewise."""
    height, width = regions.shape
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
    palette[[REGION[name] for name in ("face", "neck", "left_arm", "right_arm", "left_leg",
                                       "right_leg")]] = skin.astype(np.uint8)
    palette[REGION["hair"]] = _colour(rng, 10, 140)
    palette[REGION["pants"]] = _colour(rng, 15, 200)
    shoes = _colour(rng, 10, 120)
    palette[REGION["left_shoe"]] = shoes
    palette[REGION["right_shoe"]] = shoes
    image = palette[regions]
    background = regions == REGION["background"]
    image = np.where(background[..., None], scene, image)
    if kept is not None:
        image = np.where(kept[0][..., None], kept[1], image)
    image = np.where(target[..., None], worn, image)

    # Eyes and mouth, only on the skin of the head so the labels stay true.
    face_pixels = (regions == REGION["face"]) | (regions == REGION["neck"])
    features = np.zeros_like(regions)
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
# Files of the three layouts


def _write(path, image_rgb_or_gray, quality=95):
    if image_rgb_or_gray.ndim == 3:
        image_rgb_or_gray = image_rgb_or_gray[:, :, ::-1]
    if path.endswith(".jpg"):
        ok = cv2.imwrite(path, image_rgb_or_gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok = cv2.imwrite(path, image_rgb_or_gray)
    if not ok:
        raise OSError(f"{path}: could not write")


def _write_json(path, document):
    with open(path, "w") as handle:
        json.dump(document, handle)


def _voc_palette(count: int = 256) -> list:
    """PASCAL VOC's colour map, as parsers (SCHP, CIHP tools) colour their palette PNGs: the
    bits of the class index, three at a time, go to R, G and B from the most significant bit
    down. A flat list of count * 3 values."""
    palette = []
    for index in range(count):
        colour = [0, 0, 0]
        value, bit = index, 7
        while value:
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << bit
            value >>= 3
            bit -= 1
        palette += colour
    return palette


PARSE_PALETTE = _voc_palette()


def _write_palette_png(path, labels):
    """Labels uint8 (H, W) as a palette PNG: the pixel values are the palette indices."""
    image = Image.frombytes("P", (labels.shape[1], labels.shape[0]),
                            np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    image.putpalette(PARSE_PALETTE)
    image.save(path)


def _hue_colours(count, saturation=255, value=255):
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

# DensePose's parts rendered as colours, black background: VITON-HD's image-densepose is such
# a picture, not the part indices.
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
            cv2.line(canvas, tuple(_fixed(points[a, :2])), tuple(_fixed(points[b, :2])),
                     tuple(int(c) for c in colour), thickness, cv2.LINE_AA, SHIFT)
    for point in points[points[:, 2] > 0]:
        cv2.circle(canvas, tuple(_fixed(point[:2])), int(round(thickness * 1.5 * SCALE)),
                   (255, 255, 255), -1, cv2.LINE_AA, SHIFT)
    return canvas


def render_densepose(densepose: np.ndarray) -> np.ndarray:
    """Part indices uint8 (H, W) 0..24 -> uint8 (H, W, 3) RGB picture (one colour per part)."""
    return _DENSEPOSE_COLOURS[densepose]


def body25_keypoints(keypoints: np.ndarray, feet: np.ndarray) -> np.ndarray:
    """COCO-18 (18, 3) and the feet (6, 3) -> OpenPose BODY_25 (25, 3): COCO-18 with the
    mid-hip inserted at 8 (the hips' midpoint, seen when both hips are, with the lower of their
    confidences) and the feet appended at 19..24."""
    body = np.zeros((25, 3))
    body[list(BODY25_TO_COCO18)] = keypoints
    right_hip, left_hip = keypoints[8], keypoints[11]
    if right_hip[2] > 0 and left_hip[2] > 0:
        body[8, :2] = (right_hip[:2] + left_hip[:2]) / 2
        body[8, 2] = min(right_hip[2], left_hip[2])
    body[19:] = feet
    return body


def _flat(points):
    return [round(float(v), 3) for v in np.asarray(points).reshape(-1)]


def sample_rng(seed: int, split: int, index: int,
               category: str = "upper_body") -> np.random.Generator:
    """Independent, reproducible randomness per (seed, split, sample, category). The upper
    body's stream is that of (seed, split, index), as before categories existed, so its files
    do not change; every layout draws the same person for the same (seed, split, index)."""
    if category == "upper_body":
        return np.random.default_rng((seed, split, index))
    return np.random.default_rng((seed, split, index, CATEGORIES.index(category)))


# VITON ------------------------------------------------------------------------------------------


def write_train_sample(root: str, name: str, sample: dict) -> None:
    """One sample of VITON_traindata (labels in the 14-class scheme)."""
    _write(os.path.join(root, "train_img", f"{name}_0.jpg"), sample["image"])
    _write(os.path.join(root, "train_color", f"{name}_1.jpg"), sample["garment"])
    _write(os.path.join(root, "train_edge", f"{name}_1.jpg"), sample["edge"])
    _write(os.path.join(root, "train_label", f"{name}_0.png"), sample["label"])
    np.save(os.path.join(root, "train_densepose", f"{name}_0.npy"), sample["densepose"])
    _write_json(os.path.join(root, "train_pose", f"{name}_0_keypoints.json"),
                {"version": 1.0, "people": [{"pose_keypoints": _flat(sample["keypoints"])}]})


def write_test_sample(root: str, name: str, sample: dict) -> None:
    """One sample of VITON_test: photo, garment, garment mask, and the person's parsing,
    keypoints and DensePose (as the original VITON test set has them; validation of the
    parser-based stages reads them, test.py does not)."""
    _write(os.path.join(root, "test_img", f"{name}_0.jpg"), sample["image"])
    _write(os.path.join(root, "test_clothes", f"{name}_1.jpg"), sample["garment"])
    _write(os.path.join(root, "test_edge", f"{name}_1.jpg"), sample["edge"])
    _write(os.path.join(root, "test_label", f"{name}_0.png"), sample["label"])
    np.save(os.path.join(root, "test_densepose", f"{name}_0.npy"), sample["densepose"])
    _write_json(os.path.join(root, "test_pose", f"{name}_0_keypoints.json"),
                {"version": 1.0, "people": [{"pose_keypoints": _flat(sample["keypoints"])}]})


TRAIN_FOLDERS = ("train_img", "train_color", "train_edge", "train_label", "train_pose",
                 "train_densepose")
TEST_FOLDERS = ("test_img", "test_clothes", "test_edge", "test_label", "test_pose",
                "test_densepose")


# VITON-HD ---------------------------------------------------------------------------------------

VITONHD_FOLDERS = dict(image="image", cloth="cloth", cloth_mask="cloth-mask",
                       parse="image-parse-v3", pose_json="openpose_json",
                       pose_image="openpose_img", densepose="image-densepose")
# Older copies of the dataset spell three folders so.
VITONHD_OLD_FOLDERS = dict(VITONHD_FOLDERS, parse="image-parse", pose_json="openpose-json",
                           pose_image="openpose-img")


def vitonhd_folders(old_names: bool = False) -> Dict[str, str]:
    """Folder names of a VITON-HD split, by role (image, cloth, cloth_mask, parse, pose_json,
    pose_image, densepose)."""
    return dict(VITONHD_OLD_FOLDERS if old_names else VITONHD_FOLDERS)


def write_vitonhd_sample(split_root: str, name: str, sample: dict, old_names: bool = False) -> None:
    """One sample of a VITON-HD split (``train/`` or ``test/``), id ``name`` like 00000_00."""
    folders = vitonhd_folders(old_names)

    def path(role, suffix):
        return os.path.join(split_root, folders[role], name + suffix)

    height, width = sample["label"].shape
    _write(path("image", ".jpg"), sample["image"])
    _write(path("cloth", ".jpg"), sample["garment"])
    _write(path("cloth_mask", ".jpg"), sample["edge"])
    _write_palette_png(path("parse", ".png"), scheme_labels(sample["regions"], "cihp"))
    body = body25_keypoints(sample["keypoints"], sample["feet"])
    _write_json(path("pose_json", "_keypoints.json"), {"version": 1.3, "people": [{
        "person_id": [-1], "pose_keypoints_2d": _flat(body), "face_keypoints_2d": [],
        "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": [],
        "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}]})
    _write(path("pose_image", "_rendered.png"),
           draw_skeleton(sample["keypoints"], height, width, sample["feet"]))
    _write(path("densepose", ".jpg"), render_densepose(sample["densepose"]))


# DressCode --------------------------------------------------------------------------------------

DRESSCODE_FOLDERS = ("images", "keypoints", "label_maps", "skeletons", "dense")
# DressCode's keypoints are given in a frame 384 wide and 512 high, whatever the photo's size.
DRESSCODE_KEYPOINT_WIDTH, DRESSCODE_KEYPOINT_HEIGHT = 384, 512
# A point the pose estimator did not see: x and y -1, score 0 (then its id).
DRESSCODE_MISSING = (-1.0, -1.0, 0.0)
# First id of each category, as DressCode numbers them; a category starts after the previous
# one's last id when more samples are asked for than fit in between.
DRESSCODE_FIRST_ID = dict(upper_body=0, lower_body=13563, dresses=20714)


def dresscode_first_ids(categories: Sequence[str], count: int) -> Dict[str, int]:
    """First id of each category when each holds ``count`` samples: DressCode's own first ids
    (DRESSCODE_FIRST_ID) while they leave room, else right after the previous category's last
    id, so ids never overlap. Raises ValueError past 6 digits."""
    firsts, next_id = {}, 0
    for category in _categories(categories):
        firsts[category] = max(DRESSCODE_FIRST_ID[category], next_id)
        next_id = firsts[category] + count
    if next_id > 10 ** 6:
        raise ValueError(f"DressCode ids have 6 digits: {count} samples per category do not fit")
    return firsts


def dresscode_keypoints(keypoints: np.ndarray, height: int, width: int) -> list:
    """COCO-18 (18, 3) in the photo's pixels -> DressCode's 18 rows [x, y, score, id], x scaled
    by 384 / width and y by 512 / height; unseen points are DRESSCODE_MISSING + [id]."""
    rows = []
    for index, (x, y, score) in enumerate(keypoints):
        if score > 0:
            rows.append([round(float(x) * DRESSCODE_KEYPOINT_WIDTH / width, 4),
                         round(float(y) * DRESSCODE_KEYPOINT_HEIGHT / height, 4),
                         round(float(score), 4), float(index)])
        else:
            rows.append(list(DRESSCODE_MISSING) + [float(index)])
    return rows


def densepose_uv(densepose: np.ndarray) -> np.ndarray:
    """Stand-in DensePose surface coordinates: float32 (2, H, W) U, V in [0, 1] on the body
    (the pixel's position across the image), 0 on the background."""
    height, width = densepose.shape
    body = (densepose > 0).astype(np.float32)
    u = np.linspace(0, 1, width, dtype=np.float32)[None, :] * body
    v = np.linspace(0, 1, height, dtype=np.float32)[:, None] * body
    return np.stack([u, v])


def write_dresscode_sample(category_root: str, name: str, sample: dict) -> None:
    """One sample of a DressCode category folder, id ``name`` like 013563."""
    height, width = sample["label"].shape
    _write(os.path.join(category_root, "images", f"{name}_0.jpg"), sample["image"])
    _write(os.path.join(category_root, "images", f"{name}_1.jpg"), sample["garment"])
    _write_json(os.path.join(category_root, "keypoints", f"{name}_2.json"),
                {"keypoints": dresscode_keypoints(sample["keypoints"], height, width)})
    _write(os.path.join(category_root, "label_maps", f"{name}_4.png"),
           scheme_labels(sample["regions"], "atr"))
    _write(os.path.join(category_root, "skeletons", f"{name}_5.jpg"),
           draw_skeleton(sample["keypoints"], height, width))
    _write(os.path.join(category_root, "dense", f"{name}_5.png"), sample["densepose"])
    np.savez_compressed(os.path.join(category_root, "dense", f"{name}_5_uv.npz"),
                        uv=densepose_uv(sample["densepose"]))


# Writing a dataset ------------------------------------------------------------------------------


def _generate(task):
    layout, root, category, split, seed, start, stop, height, width, option = task
    for index in range(start, stop):
        sample = draw_sample(sample_rng(seed, split, index, category), height, width,
                             category=category)
        if layout == "viton":
            name = f"{index:06d}"
            if split == 0:
                write_train_sample(root, name, sample)
            else:
                write_test_sample(root, name, sample)
        elif layout == "vitonhd":
            write_vitonhd_sample(root, f"{index:05d}_00", sample, old_names=option)
        else:
            write_dresscode_sample(root, f"{option + index:06d}", sample)
    return stop - start


def _derangement(count: int, rng: np.random.Generator) -> np.ndarray:
    """partner[i] != i for every i (when count > 1): one cycle through a random order."""
    order = rng.permutation(count)
    shift = np.roll(order, 1) if count > 1 else order
    partner = np.empty(count, dtype=np.int64)
    partner[order] = shift
    return partner


def _write_pairs(path, persons, garments):
    with open(path, "w") as handle:
        handle.writelines(f"{p} {g}\n" for p, g in zip(persons, garments))


def _categories(categories) -> tuple:
    if isinstance(categories, str):
        categories = (categories,)
    categories = tuple(categories)
    if not categories:
        raise ValueError("categories: at least one of " + ", ".join(CATEGORIES))
    for category in categories:
        _check_category(category)
    if len(set(categories)) != len(categories):
        raise ValueError(f"categories={categories}: each at most once")
    # Written in DressCode's order, whatever the order asked.
    return tuple(c for c in CATEGORIES if c in categories)


def make_dataset(out: str, num_train: int, num_test: int, seed: int = 0, height: int = 256,
                 width: int = 192, workers: int = 1, layout: str = "viton",
                 categories: Sequence[str] = ("upper_body",), old_names: bool = False) -> dict:
    """Write a synthetic dataset in ``layout`` with ``num_train`` training and ``num_test`` test
    samples per category. Returns the roots written, by name.

    layout "viton": ``out/VITON_traindata`` and ``out/VITON_test`` (with test_pairs.txt,
        unpaired, and test_pairs_same.txt, paired) for the upper body; the same two folders
        under ``out/lower_body/`` and ``out/dresses/`` for the other categories. Labels in the
        14-class scheme. Roots: "train", "test" (upper body), "lower_body_train",
        "lower_body_test", "dresses_train", "dresses_test".
    layout "vitonhd" (upper body only): ``out/VITON-HD/{train,test}/`` with image, cloth,
        cloth-mask, image-parse-v3 (CIHP palette PNG), openpose_json (BODY_25), openpose_img,
        image-densepose (a rendering); ``train_pairs.txt`` (own garment) and ``test_pairs.txt``
        (another's) in ``out/VITON-HD``. ``old_names``: image-parse, openpose-json,
        openpose-img. Roots: "root", "train", "test".
    layout "dresscode": ``out/DressCode/{category}/`` with images, keypoints, label_maps (ATR
        grey PNG), skeletons, dense, and train_pairs.txt, test_pairs_paired.txt,
        test_pairs_unpaired.txt; ids of 6 digits, disjoint across categories, training ids
        first. Roots: "root" and one per category.

    The same (seed, split, index, category) draws the same person in every layout.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    categories = _categories(categories)
    if layout == "vitonhd" and categories != ("upper_body",):
        raise ValueError("the VITON-HD layout holds upper-body garments only "
                         f"(asked for {', '.join(categories)})")
    if num_train < 0 or num_test < 0:
        raise ValueError("num_train and num_test must be >= 0")
    chunk = 64
    tasks = []
    roots = {}

    def add_tasks(root, category, split, count, option=None):
        tasks.extend((layout, root, category, split, seed, a, min(a + chunk, count), height,
                      width, option) for a in range(0, count, chunk))

    pair_files = []        # (path, persons, garments), written after the samples
    if layout == "viton":
        for category in categories:
            base = out if category == "upper_body" else os.path.join(out, category)
            prefix = "" if category == "upper_body" else category + "_"
            train_root = os.path.join(base, "VITON_traindata")
            test_root = os.path.join(base, "VITON_test")
            for folder in TRAIN_FOLDERS:
                os.makedirs(os.path.join(train_root, folder), exist_ok=True)
            for folder in TEST_FOLDERS:
                os.makedirs(os.path.join(test_root, folder), exist_ok=True)
            roots[prefix + "train"], roots[prefix + "test"] = train_root, test_root
            add_tasks(train_root, category, 0, num_train)
            add_tasks(test_root, category, 1, num_test)
            if num_test:
                names = [f"{i:06d}" for i in range(num_test)]
                partner = _derangement(num_test, _pairs_rng(seed, category))
                pair_files.append((os.path.join(test_root, "test_pairs_same.txt"),
                                   [f"{n}_0.jpg" for n in names], [f"{n}_1.jpg" for n in names]))
                pair_files.append((os.path.join(test_root, "test_pairs.txt"),
                                   [f"{n}_0.jpg" for n in names],
                                   [f"{names[j]}_1.jpg" for j in partner]))
    elif layout == "vitonhd":
        root = os.path.join(out, "VITON-HD")
        roots["root"] = root
        for split, split_name, count in ((0, "train", num_train), (1, "test", num_test)):
            split_root = os.path.join(root, split_name)
            for folder in vitonhd_folders(old_names).values():
                os.makedirs(os.path.join(split_root, folder), exist_ok=True)
            roots[split_name] = split_root
            add_tasks(split_root, "upper_body", split, count, bool(old_names))
        train_names = [f"{i:05d}_00.jpg" for i in range(num_train)]
        test_names = [f"{i:05d}_00.jpg" for i in range(num_test)]
        partner = _derangement(num_test, _pairs_rng(seed, "upper_body"))
        pair_files.append((os.path.join(root, "train_pairs.txt"), train_names, train_names))
        pair_files.append((os.path.join(root, "test_pairs.txt"), test_names,
                           [test_names[j] for j in partner]))
    else:
        root = os.path.join(out, "DressCode")
        roots["root"] = root
        firsts = dresscode_first_ids(categories, num_train + num_test)
        for category in categories:
            first = firsts[category]
            category_root = os.path.join(root, category)
            for folder in DRESSCODE_FOLDERS:
                os.makedirs(os.path.join(category_root, folder), exist_ok=True)
            roots[category] = category_root
            add_tasks(category_root, category, 0, num_train, first)
            add_tasks(category_root, category, 1, num_test, first + num_train)
            train = [f"{first + i:06d}" for i in range(num_train)]
            test = [f"{first + num_train + i:06d}" for i in range(num_test)]
            partner = _derangement(num_test, _pairs_rng(seed, category))
            pair_files.append((os.path.join(category_root, "train_pairs.txt"),
                               [f"{n}_0.jpg" for n in train], [f"{n}_1.jpg" for n in train]))
            pair_files.append((os.path.join(category_root, "test_pairs_paired.txt"),
                               [f"{n}_0.jpg" for n in test], [f"{n}_1.jpg" for n in test]))
            pair_files.append((os.path.join(category_root, "test_pairs_unpaired.txt"),
                               [f"{n}_0.jpg" for n in test],
                               [f"{test[j]}_1.jpg" for j in partner]))

    if workers > 1 and len(tasks) > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_generate, tasks):
                pass
    else:
        for task in tasks:
            _generate(task)
    for path, persons, garments in pair_files:
        if persons:
            _write_pairs(path, persons, garments)
    return roots


def _pairs_rng(seed, category):
    """The randomness of the unpaired test pairs (the upper body's as before categories)."""
    if category == "upper_body":
        return np.random.default_rng((seed, 2))
    return np.random.default_rng((seed, 2, CATEGORIES.index(category)))
