"""Product photos of garments with known true masks, for testing garment mask estimation.

A photo is drawn as a studio shot would record it: an off-white backdrop with a gentle
lighting gradient and vignette, a soft drop shadow under the garment, the garment itself
(flat shape with fold shading, darker rims where the fabric turns away from the light,
patterns, seams, buttons, logos), sensor noise and JPEG compression. The garment outline is
rasterised with 4x supersampling, so every pixel knows its coverage ``a``; the photo blends
``a * fabric + (1 - a) * backdrop`` and the true mask is ``a >= 0.5``.

Shapes: t-shirt, tank top, camisole (thin straps), long sleeves, shirt with collar and
placket, dress, trousers, skirt; tilted by up to 3 degrees, some cut by the frame. Colour
classes: ``close`` (white, cream, very light grey or pastel garments 4-12 Lab units from the
backdrop, some with a dark print), ``light``, ``mid``, ``dark``; plain, striped, checked or
dotted. On request, ``close_stripes`` and ``close_print``: two colours, one of them 4-12 Lab
units from the backdrop, touching the outline all along it. JPEG quality 70-95 (4:2:0). A photo
taken to sell a garment shows its outline, so a garment whose outline would be invisible (see
MIN_OUTLINE_CONTRAST) gets another colour.

    python -m tests.product_photos --out /tmp/photos --num 200 [--colour_class close_stripes]
                                   [--source synthetic]

writes ``images/NNNN.png`` (the decoded JPEG photo), ``true/NNNN.png`` (0/255) and
``index.csv`` (size, kind and colour class of each) for ``scripts/eval_garment_masks.py``;
``--source synthetic`` writes the garments of data/synthetic/ instead.
"""

import argparse
import os
from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 4
SHIFT = 4                      # fractional bits for cv2 drawing
KINDS = ("tshirt", "tank", "camisole", "long_sleeve", "shirt", "dress", "trousers", "skirt")
COLOUR_CLASSES = ("close", "light", "mid", "dark")
# Two-colour garments whose one colour lies 4-12 Lab units from the backdrop and the other is
# light, mid or dark: wide stripes, or a print (blots, checks, large dots). Either colour may
# be the ground. Drawn only when asked for (``colour_class``), not in the random mix.
PATTERN_CLASSES = ("close_stripes", "close_print")
SIZES = ((256, 192), (512, 384), (1024, 768), (320, 320), (240, 360))
# A photo taken to sell a garment shows its outline: garments whose outline would show less
# than MIN_OUTLINE_CONTRAST Lab units (about one just-noticeable difference) along more than
# MAX_HIDDEN_OUTLINE of its length are drawn again in another colour.
MIN_OUTLINE_CONTRAST = 2.0
MAX_HIDDEN_OUTLINE = 0.05
MAX_DRAWS = 20


@dataclass
class ProductPhoto:
    image: np.ndarray        # uint8 (H, W, 3) RGB, after JPEG compression
    mask: np.ndarray         # uint8 (H, W), 0 or 255: the garment's pixels (coverage >= 0.5)
    kind: str                # one of KINDS
    colour_class: str        # one of COLOUR_CLASSES or PATTERN_CLASSES
    delta_e: float           # Lab distance of the base (or the close) colour from the backdrop
    draws: int               # colours drawn until the outline was visible (1: the first)
    alpha: np.ndarray = None  # uint8 (H, W): the garment's coverage x 255, a cut-out's alpha


# ---------------------------------------------------------------------------------------------
# Colour


def rgb_to_lab(rgb) -> np.ndarray:
    """RGB colours in 0..255, shape (..., 3) -> CIE Lab (L in 0..100), float64 (N, 3)."""
    rgb = np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float64).reshape(-1, 3)


def delta_e(rgb_a, rgb_b) -> float:
    return float(np.linalg.norm(rgb_to_lab(rgb_a)[0] - rgb_to_lab(rgb_b)[0]))


def _backdrop_colour(rng) -> np.ndarray:
    level = rng.uniform(228, 252)
    tint = rng.normal(0, 1.5, 3)
    return np.clip(level + tint, 0, 255)


def _garment_colour(rng, colour_class, backdrop) -> np.ndarray:
    """A base colour of the given class; ``close`` colours sit 4..12 Lab units from the backdrop."""
    if colour_class == "close":
        for _ in range(200):
            style = rng.choice(["white", "cream", "grey", "pastel"])
            if style == "white":
                colour = backdrop + rng.choice([-1, 1]) * rng.uniform(5, 14) + rng.normal(0, 1, 3)
            elif style == "cream":
                colour = backdrop + np.array([rng.uniform(-3, 2), rng.uniform(-6, -2),
                                              rng.uniform(-22, -10)])
            elif style == "grey":
                colour = backdrop - rng.uniform(10, 26) + rng.normal(0, 1, 3)
            else:
                hue = rng.normal(0, 1, 3)
                hue -= hue.mean()
                colour = backdrop - 4 + 14 * hue / (np.abs(hue).max() + 1e-9)
            colour = np.clip(colour, 0, 255)
            if 4.0 <= delta_e(colour, backdrop) <= 12.0:
                return colour
        return np.clip(backdrop - 12, 0, 255)
    if colour_class == "light":
        return rng.uniform(150, 235, 3)
    if colour_class == "mid":
        return rng.uniform(50, 190, 3)
    return rng.uniform(10, 70, 3)


# ---------------------------------------------------------------------------------------------
# Shapes, in garment coordinates: x across (0 at the centre), y down (0 at the top, 1 at the
# bottom); the drawing normalises the bounding box. Each returns the polygons whose union is
# the garment, and details for the fabric (a placket, a waistband).


def _mirror(left_half):
    """Close a shape from its left half, listed top (centre) to bottom (centre)."""
    left_half = np.asarray(left_half, np.float64)
    right = left_half[::-1] * np.array([-1.0, 1.0])
    return np.concatenate([left_half, right])


def _arc(centre, radii, start, stop, count=12):
    angles = np.linspace(start, stop, count)
    return np.stack([centre[0] + radii[0] * np.cos(angles),
                     centre[1] + radii[1] * np.sin(angles)], 1)


def _neck(half_width, depth):
    """Left half of a neckline from its lowest point (x = 0) up to the shoulder seam."""
    return _arc((0.0, 0.0), (half_width, depth), np.pi / 2, np.pi, 10)


def _top(rng, sleeve_length, sleeve_angle, sleeve_width, body_bottom=1.0):
    """An upper garment: neckline, shoulders, sleeves (length 0 for none; angle from the
    vertical in radians), body down to ``body_bottom``."""
    neck_half = rng.uniform(0.12, 0.17)
    neck_depth = rng.uniform(0.05, 0.12)
    shoulder_x = rng.uniform(0.38, 0.45)
    shoulder_y = rng.uniform(0.02, 0.05)
    armpit_y = rng.uniform(0.25, 0.32)
    hem_half = rng.uniform(0.4, 0.48)
    neck = _neck(neck_half, neck_depth)
    points = list(neck)
    if sleeve_length > 0:
        direction = np.array([-np.sin(sleeve_angle), np.cos(sleeve_angle)])
        outer_start = np.array([-shoulder_x, shoulder_y])
        inner_start = np.array([-shoulder_x + 0.03, armpit_y])
        outer_end = outer_start + direction * sleeve_length
        # The cuff is cut across the sleeve, towards the body side.
        inner_end = outer_end + np.array([direction[1], -direction[0]]) * sleeve_width
        points += [outer_start, outer_end, inner_end, inner_start]
    else:
        points += [np.array([-shoulder_x, shoulder_y])]
        points += list(_arc((-shoulder_x - 0.02, armpit_y), (0.08, armpit_y - shoulder_y),
                            -np.pi / 2, 0.0, 8))
    waist = np.array([-rng.uniform(0.36, 0.44), (armpit_y + body_bottom) / 2])
    points += [waist, np.array([-hem_half, body_bottom]), np.array([0.0, body_bottom])]
    return [_mirror(points)], dict(neck_half=neck_half, neck_depth=neck_depth)


def shape_tshirt(rng):
    return _top(rng, rng.uniform(0.18, 0.3), rng.uniform(0.7, 1.1), rng.uniform(0.16, 0.22))


def shape_long_sleeve(rng):
    return _top(rng, rng.uniform(0.7, 0.85), rng.uniform(0.2, 0.45), rng.uniform(0.12, 0.16))


def shape_tank(rng):
    strap = rng.uniform(0.05, 0.1)
    neck_half = rng.uniform(0.14, 0.22)
    neck_depth = rng.uniform(0.15, 0.3)
    armhole_y = rng.uniform(0.25, 0.35)
    hem_half = rng.uniform(0.36, 0.44)
    points = list(_arc((0.0, 0.0), (neck_half, neck_depth), np.pi / 2, np.pi, 10))
    points += [np.array([-neck_half - strap, 0.0])]
    # The armhole curves in from the strap and out again to the side seam.
    points += list(_arc((-hem_half - 0.02, 0.0), (hem_half + 0.02 - neck_half - strap, armhole_y),
                        0.0, np.pi / 2, 10))
    points += [np.array([-hem_half, 1.0]), np.array([0.0, 1.0])]
    return [_mirror(points)], {}


def shape_camisole(rng):
    top = rng.uniform(0.22, 0.3)
    hem_half = rng.uniform(0.38, 0.46)
    strap = rng.uniform(0.02, 0.035)
    body = _mirror([[0.0, top + 0.04], [-0.18, top - 0.01], [-0.36, top + 0.02],
                    [-hem_half, 1.0], [0.0, 1.0]])
    polygons = [body]
    for sign in (-1, 1):
        x0 = sign * 0.27
        x1 = sign * rng.uniform(0.2, 0.26)
        polygons.append(np.array([[x1 - strap / 2, 0.0], [x1 + strap / 2, 0.0],
                                  [x0 + strap / 2, top + 0.03], [x0 - strap / 2, top + 0.03]]))
    return polygons, {}


def shape_shirt(rng):
    polygons, info = _top(rng, rng.uniform(0.65, 0.8), rng.uniform(0.2, 0.4),
                          rng.uniform(0.12, 0.16))
    half = info["neck_half"]
    depth = info["neck_depth"]
    # Collar points fold down over the chest beyond the neckline.
    for sign in (-1, 1):
        polygons.append(np.array([[sign * (half + 0.03), -0.01], [sign * 0.01, depth * 0.7],
                                  [sign * (half * 0.6), depth + 0.09]]))
    return polygons, dict(info, placket=True)


def shape_dress(rng):
    if rng.random() < 0.5:
        polygons = [p * np.array([1.0, 0.45]) for p in shape_tank(rng)[0]]
    else:
        polygons = _top(rng, rng.uniform(0.08, 0.15), rng.uniform(0.8, 1.1),
                        rng.uniform(0.15, 0.2), body_bottom=0.45)[0]
    skirt = _mirror([[0.0, 0.42], [-0.4, 0.42], [-rng.uniform(0.55, 0.7), 1.0], [0.0, 1.0]])
    return polygons + [skirt], {}


def shape_trousers(rng):
    waist = rng.uniform(0.3, 0.38)
    crotch = rng.uniform(0.3, 0.4)
    flare = rng.uniform(-0.04, 0.06)
    gap = rng.uniform(0.04, 0.1)
    leg = waist + flare - gap / 2
    points = [[0.0, crotch], [-gap / 2, 1.0], [-gap / 2 - leg, 1.0], [-waist - 0.02, 0.25],
              [-waist, 0.0], [0.0, 0.0]]
    return [_mirror(points[::-1])], dict(waistband=True)


def shape_skirt(rng):
    waist = rng.uniform(0.28, 0.36)
    hem = rng.uniform(0.45, 0.62)
    hem_curve = _arc((0.0, 0.9), (hem, 0.1), np.pi, np.pi / 2, 12)
    points = [[0.0, 0.0], [-waist, 0.0]] + list(hem_curve)
    return [_mirror(points)], dict(waistband=True)


SHAPES = dict(tshirt=shape_tshirt, tank=shape_tank, camisole=shape_camisole,
              long_sleeve=shape_long_sleeve, shirt=shape_shirt, dress=shape_dress,
              trousers=shape_trousers, skirt=shape_skirt)
ASPECT = dict(tshirt=0.85, tank=1.25, camisole=1.3, long_sleeve=0.85, shirt=0.9, dress=1.5,
              trousers=1.45, skirt=0.9)    # height / width of the garment's bounding box


# ---------------------------------------------------------------------------------------------
# Rendering


def _fixed(points):
    return np.round(np.asarray(points) * (1 << SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _coverage(polygons, height, width, factor=SUPERSAMPLE):
    """Fraction of each pixel inside the union of ``polygons`` (pixel coordinates) -> float32."""
    big = np.zeros((height * factor, width * factor), np.uint8)
    for polygon in polygons:
        # pixel centres sit at k + 0.5 in continuous coordinates
        cv2.fillPoly(big, [_fixed((np.asarray(polygon) + 0.5) * factor - 0.5)], 255,
                     cv2.LINE_8, SHIFT)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _smooth_noise(rng, height, width, scale):
    """Zero-mean random field with features about ``scale`` pixels across, std ~1."""
    small = (max(2, int(height / scale) + 2), max(2, int(width / scale) + 2))
    field = rng.normal(0, 1, small).astype(np.float32)
    field = cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    return field / (field.std() + 1e-6)


def _pattern(rng, height, width, unit, colour_class, base):
    """Second-colour mask (H, W) bool and the second colour, or (None, None) for plain."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.choice(["plain", "stripes", "checks", "dots"], p=[0.55, 0.25, 0.1, 0.1])
    if kind == "plain":
        return None, None
    period = rng.uniform(6, 20) * unit
    angle = rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
    u = xs * np.cos(angle) + ys * np.sin(angle)
    v = -xs * np.sin(angle) + ys * np.cos(angle)
    if kind == "stripes":
        second = (u % period) < period * rng.uniform(0.2, 0.5)
    elif kind == "checks":
        second = ((u // period + v // period) % 2) == 0
    else:
        second = ((u % period - period / 2) ** 2 + (v % period - period / 2) ** 2
                  < (period * 0.25) ** 2)
    # Low-contrast patterns for pale garments (a tone-on-tone stripe), any for the others.
    if colour_class == "close" or rng.random() < 0.4:
        colour = base + rng.normal(0, 1, 3) * 4 - rng.uniform(3, 8)
    else:
        colour = rng.uniform(20, 235, 3)
    return second, np.clip(colour, 0, 255)


def _close_pattern(rng, height, width, unit, colour_class, backdrop):
    """A two-colour pattern of PATTERN_CLASSES: (second-colour mask (H, W) bool, ground colour,
    second colour, the colour 4-12 Lab units from the backdrop)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
    u = xs * np.cos(angle) + ys * np.sin(angle)
    v = -xs * np.sin(angle) + ys * np.cos(angle)
    period = rng.uniform(12, 40) * unit
    if colour_class == "close_stripes":
        second = (u % period) < period * rng.uniform(0.3, 0.7)
    else:
        style = rng.choice(["blots", "checks", "dots"])
        if style == "blots":
            field = _smooth_noise(rng, height, width, rng.uniform(6, 20) * unit)
            second = field > np.quantile(field, rng.uniform(0.3, 0.7))
        elif style == "checks":
            second = ((u // (period / 2) + v // (period / 2)) % 2) == 0
        else:
            second = ((u % period - period / 2) ** 2 + (v % period - period / 2) ** 2
                      < (period * rng.uniform(0.3, 0.45)) ** 2)
    close = _garment_colour(rng, "close", backdrop)
    other = _garment_colour(rng, str(rng.choice(["light", "mid", "dark"])), backdrop)
    ground, second_colour = (close, other) if rng.random() < 0.5 else (other, close)
    return second, ground, second_colour, close


def _fabric(rng, coverage, colour_class, backdrop, unit, box_w, place, info):
    """The garment's colours, float32 (H, W, 3) RGB 0..255 (meaningful where coverage > 0),
    and its base colour (for PATTERN_CLASSES, the one close to the backdrop)."""
    height, width = coverage.shape
    if colour_class in PATTERN_CLASSES:
        second, ground, second_colour, base = _close_pattern(rng, height, width, unit,
                                                              colour_class, backdrop)
    else:
        base = ground = _garment_colour(rng, colour_class, backdrop)
        second, second_colour = _pattern(rng, height, width, unit, colour_class, base)
    fabric = np.broadcast_to(ground, (height, width, 3)).astype(np.float32).copy()
    if second is not None:
        fabric[second] = second_colour
    if colour_class == "close" and rng.random() < 0.3:
        # A dark logo or print on the chest of a pale garment.
        chest = place(np.array([[rng.uniform(-0.15, 0.15), rng.uniform(0.3, 0.45)]]))[0]
        size = box_w * rng.uniform(0.06, 0.12)
        logo = rng.uniform(10, 90, 3)
        cv2.ellipse(fabric, (int(chest[0]), int(chest[1])), (int(size * 1.4), int(size)),
                    float(rng.uniform(0, 180)), 0, 360, tuple(float(c) for c in logo), -1)
    folds = _smooth_noise(rng, height, width, 30 * unit) * rng.uniform(0.005, 0.02)
    shading = 1.0 + folds
    lighter = rgb_to_lab(ground)[0, 0] > rgb_to_lab(backdrop)[0, 0]
    # Fabric turning away from the light darkens along the outline; a garment lighter than
    # the backdrop (a white shirt on grey paper) lies flat and shows no such rim.
    if not lighter and rng.random() < 0.75:
        inside = (coverage > 0.5).astype(np.uint8)
        distance = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        rim = rng.uniform(1.0, 3.0) * unit
        shading -= rng.uniform(0.02, 0.06) * np.clip(1.0 - distance / rim, 0, 1)
    fabric *= shading[..., None]
    if info.get("placket"):
        top, bottom = place(np.array([[0.0, 0.12], [0.0, 1.0]]))
        darker = tuple(float(c) for c in ground * 0.9)
        cv2.line(fabric, tuple(int(v) for v in top), tuple(int(v) for v in bottom), darker,
                 max(1, int(round(unit))), cv2.LINE_AA)
        for k in range(5):
            button = place(np.array([[0.03, 0.2 + 0.16 * k]]))[0]
            cv2.circle(fabric, tuple(int(v) for v in button), max(1, int(round(2 * unit))),
                       tuple(float(c) for c in ground * 0.8), -1, cv2.LINE_AA)
    if info.get("waistband"):
        a, b = place(np.array([[-0.5, 0.06], [0.5, 0.06]]))
        cv2.line(fabric, tuple(int(v) for v in a), tuple(int(v) for v in b),
                 tuple(float(c) for c in ground * 0.88), max(1, int(round(unit))), cv2.LINE_AA)
    return fabric, base


def outline_hidden_fraction(photo: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of the outline of ``mask`` (uint8 (H, W) 0/255) along which ``photo`` (float or
    uint8 (H, W, 3) RGB) shows less than MIN_OUTLINE_CONTRAST Lab units between the mean
    colours 1-4 pixels inside and 1-4 pixels outside."""
    lab = cv2.cvtColor(np.asarray(photo, np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    inside = (mask > 127).astype(np.uint8)
    disc = {r: cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)) for r in (1, 4)}
    rings = [(cv2.erode(inside, disc[1]) > 0) & (cv2.erode(inside, disc[4]) == 0),
             (cv2.dilate(inside, disc[4]) > 0) & (cv2.dilate(inside, disc[1]) == 0)]
    means = []
    for ring in rings:
        weight = ring.astype(np.float32)
        total = np.maximum(cv2.GaussianBlur(weight, (0, 0), 3), 1e-6)
        means.append(cv2.GaussianBlur(lab * weight[..., None], (0, 0), 3) / total[..., None])
    contrast = np.linalg.norm(means[0] - means[1], axis=-1)
    outline = (cv2.dilate(inside, disc[1]) > 0) & (cv2.erode(inside, disc[1]) == 0)
    return float((contrast[outline] < MIN_OUTLINE_CONTRAST).mean())


def make_product_photo(rng: np.random.Generator, height: int = 256, width: int = 192,
                       kind: str = None, colour_class: str = None, jpeg_quality: int = None,
                       ) -> ProductPhoto:
    """One product photo with its true mask; ``kind`` / ``colour_class`` random when None."""
    kind = kind or str(rng.choice(KINDS))
    colour_class = colour_class or str(rng.choice(COLOUR_CLASSES, p=[0.35, 0.25, 0.25, 0.15]))
    unit = min(height, width * 4 / 3) / 256.0      # 1 at 256x192
    polygons, info = SHAPES[kind](rng)
    # Normalise the shape's bounding box to x in [-0.5, 0.5], y in [0, 1].
    points = np.concatenate(polygons)
    low, high = points.min(0), points.max(0)

    def normalise(p):
        return (np.asarray(p) - [(low[0] + high[0]) / 2, low[1]]) / (high - low)

    polygons = [normalise(p) for p in polygons]

    # Garment box: height fraction of the frame, limited by the width; a slight rotation.
    aspect = ASPECT[kind] * rng.uniform(0.92, 1.08)
    box_h = min(height * rng.uniform(0.68, 0.86), width * rng.uniform(0.7, 0.86) * aspect)
    box_w = box_h / aspect
    centre = np.array([width / 2 + rng.uniform(-0.04, 0.04) * width,
                       height / 2 + rng.uniform(-0.04, 0.04) * height])
    if kind in ("dress", "trousers") and rng.random() < 0.2:
        centre[1] += (height - box_h) / 2 + rng.uniform(0.01, 0.05) * height  # cut by the frame
    tilt = np.radians(rng.uniform(-3, 3))
    rotation = np.array([[np.cos(tilt), -np.sin(tilt)], [np.sin(tilt), np.cos(tilt)]])

    def place(shape_points):
        local = (np.asarray(shape_points) - [0.0, 0.5]) * [box_w, box_h]
        return local @ rotation.T + centre

    polygons = [place(p) for p in polygons]
    coverage = _coverage(polygons, height, width)
    true_mask = np.where(coverage >= 0.5, 255, 0).astype(np.uint8)

    # Backdrop: base colour x (linear lighting gradient) x (vignette ~ r^2 .. r^3).
    backdrop = _backdrop_colour(rng)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    nx, ny = (xs - width / 2) / (width / 2), (ys - height / 2) / (height / 2)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0, 0.035) * (nx * np.cos(direction) + ny * np.sin(direction))
    vignette = rng.uniform(0, 0.05) * ((nx ** 2 + ny ** 2) / 2) ** rng.uniform(1.0, 1.5)
    light = 1.0 + gradient - vignette
    # Soft drop shadow: the garment's coverage offset and blurred, darkening up to ~10%.
    offset = rng.uniform(0.004, 0.02, 2) * width * np.array([rng.choice([-1, 1]), 1.0])
    blur = rng.uniform(0.018, 0.04) * width
    shift = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
    shadow = cv2.warpAffine(coverage, shift, (width, height), borderMode=cv2.BORDER_CONSTANT)
    shadow = cv2.GaussianBlur(shadow, (0, 0), blur)
    light = light * (1.0 - rng.uniform(0.02, 0.1) * shadow)
    scene = backdrop[None, None, :] * light[..., None]

    # Fabric: base colour, pattern, folds, darker rims, seams, details; drawn again (another
    # colour) while the outline would be invisible.
    for draws in range(1, MAX_DRAWS + 1):  # noqa: B007 (the count is recorded below)
        fabric, base = _fabric(rng, coverage, colour_class, backdrop, unit, box_w, place,
                               info)
        clean = coverage[..., None] * fabric + (1 - coverage[..., None]) * scene
        if outline_hidden_fraction(clean, true_mask) <= MAX_HIDDEN_OUTLINE:
            break
    fabric += rng.normal(0, rng.uniform(0.5, 2.0), fabric.shape).astype(np.float32)

    photo = coverage[..., None] * fabric + (1 - coverage[..., None]) * scene
    photo += rng.normal(0, rng.uniform(0.4, 1.5), photo.shape).astype(np.float32)
    photo = np.clip(np.round(photo), 0, 255).astype(np.uint8)
    quality = int(jpeg_quality or rng.integers(70, 96))
    data = cv2.imencode(".jpg", photo[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    photo = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return ProductPhoto(image=photo, mask=true_mask, kind=kind, colour_class=colour_class,
                        delta_e=delta_e(base, backdrop), draws=draws,
                        alpha=np.round(coverage * 255).astype(np.uint8))


def product_photo_set(seed: int, count: int, sizes=SIZES, colour_class: str = None) -> list:
    """``count`` photos cycling through ``sizes`` and KINDS, each from its own seeded RNG."""
    photos = []
    for index in range(count):
        rng = np.random.default_rng((seed, index))
        height, width = sizes[index % len(sizes)]
        kind = KINDS[(index // len(sizes)) % len(KINDS)]
        photos.append(make_product_photo(rng, height, width, kind=kind,
                                         colour_class=colour_class))
    return photos


def synthetic_garment_set(seed: int, count: int, sizes=SIZES) -> list:
    """``count`` product images of ``data.synthetic.draw_garment`` (pure white background,
    hard edges), cycling through ``sizes`` and its categories, as ProductPhoto (kind: the
    category, colour_class "synthetic", delta_e 0)."""
    from data.synthetic import CATEGORIES, draw_garment
    photos = []
    for index in range(count):
        height, width = sizes[index % len(sizes)]
        category = CATEGORIES[(index // len(sizes)) % len(CATEGORIES)]
        garment = draw_garment(np.random.default_rng((seed, index)), height, width, category)
        photos.append(ProductPhoto(image=garment.image, mask=garment.edge, kind=category,
                                   colour_class="synthetic", delta_e=0.0, draws=1))
    return photos


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write product photos and their true masks: "
                                                 "images/NNNN.png, true/NNNN.png, index.csv.")
    parser.add_argument("--out", required=True,
                        help="folder; images/, true/ and index.csv go inside")
    parser.add_argument("--num", type=int, default=200, help="number of photos")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed; the same seed writes the same files")
    parser.add_argument("--colour_class", default=None, choices=COLOUR_CLASSES + PATTERN_CLASSES,
                        help="draw only this colour class (default: a mix of COLOUR_CLASSES)")
    parser.add_argument("--alpha", action="store_true",
                        help="write the photos as cut-outs: RGBA PNGs whose alpha is the "
                             "garment's coverage (product photos only)")
    parser.add_argument("--source", default="product", choices=["product", "synthetic"],
                        help="product: the studio photos of this module; synthetic: "
                             "the garments of data/synthetic/ on pure white")
    args = parser.parse_args(argv)
    given = [flag for flag, value in (("--colour_class", args.colour_class),
                                      ("--alpha", args.alpha)) if value]
    if args.source == "synthetic" and given:
        parser.error(f"{' and '.join(given)}: product photos only, not --source synthetic")
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "true"), exist_ok=True)
    if args.source == "synthetic":
        photos = synthetic_garment_set(args.seed, args.num)
    else:
        photos = product_photo_set(args.seed, args.num, colour_class=args.colour_class)
    rows = ["name,height,width,kind,colour_class,delta_e"]
    for index, photo in enumerate(photos):
        name = f"{index:04d}"
        # PNG: the photo has been through its own JPEG compression already.
        image = photo.image[:, :, ::-1]
        if args.alpha and photo.alpha is not None:
            image = np.dstack([image, photo.alpha])
        cv2.imwrite(os.path.join(args.out, "images", name + ".png"), image)
        cv2.imwrite(os.path.join(args.out, "true", name + ".png"), photo.mask)
        height, width = photo.mask.shape
        rows.append(f"{name},{height},{width},{photo.kind},{photo.colour_class},"
                    f"{photo.delta_e:.1f}")
    with open(os.path.join(args.out, "index.csv"), "w") as handle:
        handle.write("\n".join(rows) + "\n")
    print(f"wrote {len(photos)} photos to {args.out}")


if __name__ == "__main__":
    main()
