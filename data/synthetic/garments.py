"""In-shop product images: a garment's outline, its fabric (stripes, checks, dots, a logo) on
white, and the points the garment is fitted to a body by (shoulders, hem, waist, leg hems).

Tops (tank top, short or long sleeves), trousers, shorts, skirts and dresses (sleeveless,
short or long sleeves; mini to midi length). Every coordinate is in product pixels, (x, y).
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np

from data.synthetic.drawing import capsule, contrasting, ellipse, polygon, random_colour
from data.synthetic.regions import check_category

# Reference body proportions (pixels at a height of 256, body scale 1) the dress and lower
# garment products are cut for: shoulder line to hip joints, hip joint to ankle, and the
# shoulder half-width the top's fit maps a garment's shoulders to. The person is drawn with
# its own random proportions; these only keep the products' shapes plausible.
REFERENCE_TORSO = 73.0
REFERENCE_LEG = 127.0
REFERENCE_SHOULDER = 34.0
# Half width of the reference waist, and how far its waistband sits above the hip joints.
_REFERENCE_WAIST = 33.0
_REFERENCE_RISE = 14.0


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
    # (2, 2) start and unit direction of the right sleeve, or None (no sleeves)
    sleeve_axis: Optional[np.ndarray]
    category: str = "upper_body"
    kind: str = "top"          # top | trousers | shorts | skirt | dress
    waist: Optional[np.ndarray] = None     # (2, 2) right and left waistband corners
    leg_hems: Optional[np.ndarray] = None  # (2, 2) right and left trouser-leg hem centres
    # Lower garments and dresses: where the hem falls on the leg, as a fraction of the length
    # from the hip joint to the ankle (0.5 is about the knee).
    length: float = 0.0


def draw_garment(rng: np.random.Generator, height: int, width: int,
                 category: str = "upper_body") -> Garment:
    """A product image on white of a garment of ``category`` (see CATEGORIES): a top (tank
    top, short or long sleeves), trousers, shorts or a skirt, or a dress (sleeveless, short or
    long sleeves; mini to midi length)."""
    check_category(category)
    if category == "lower_body":
        return _draw_lower_garment(rng, height, width)
    if category == "dresses":
        return _draw_dress(rng, height, width)
    return _draw_top(rng, height, width)


# Fabric ----------------------------------------------------------------------------------------


def _second_colour_mask(rng, kind, height, width):
    """bool (H, W) or broadcastable: where a fabric of ``kind`` shows its second colour."""
    ys = np.arange(height, dtype=np.float32)[:, None]   # broadcast against xs: (H, W)
    xs = np.arange(width, dtype=np.float32)[None, :]
    period = rng.uniform(7, 18) * (width / 192.0)
    phase = rng.uniform(0, period)
    duty = rng.uniform(0.3, 0.6)
    if kind == "horizontal":
        return ((ys + phase) % period) < duty * period
    if kind == "vertical":
        return ((xs + phase) % period) < duty * period
    if kind == "diagonal":
        angle = rng.uniform(0.3, 1.2) * rng.choice([-1, 1])
        u = xs * np.cos(angle) + ys * np.sin(angle)
        return ((u + phase) % period) < duty * period
    if kind == "checks":
        return (((xs + phase) // period + (ys + phase) // period) % 2) == 0
    if kind == "dots":
        dx = (xs + phase) % period - period / 2
        dy = (ys + phase) % period - period / 2
        return dx * dx + dy * dy < (duty * period / 2) ** 2
    return np.zeros((height, width), dtype=bool)


def _draw_logo(rng, fabric, base, centre, chest):
    """A disc, square, triangle or "L" in a colour contrasting ``base``, on the chest (in
    place)."""
    width = fabric.shape[1]
    logo = contrasting(rng, base)
    size = rng.uniform(0.08, 0.14) * width
    position = np.array([centre + rng.uniform(-0.08, 0.08) * width, chest])
    shape = rng.integers(4)
    value = tuple(int(v) for v in logo)
    if shape == 0:
        ellipse(fabric, position, (size, size), 0, value)
    elif shape == 1:
        polygon(fabric, position + np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * size, value)
    elif shape == 2:
        polygon(fabric, position + np.array([[0, -1.2], [1.1, 0.9], [-1.1, 0.9]]) * size, value)
    else:  # an off-centre "L": asymmetric, so a flip or rotation of the garment shows
        polygon(fabric, position + np.array([[-1, -1], [-0.4, -1], [-0.4, 0.5], [1, 0.5],
                                             [1, 1], [-1, 1]]) * size, value)


def _garment_pattern(rng, height, width, base, second, centre, chest):
    """uint8 (H, W, 3) fabric in product coordinates: plain, stripes, checks or dots of
    ``base`` and ``second``, and maybe a logo at (``centre``, ``chest``)."""
    kind = rng.choice(["plain", "horizontal", "vertical", "diagonal", "checks", "dots"],
                      p=[0.1, 0.25, 0.2, 0.15, 0.15, 0.15])
    second_mask = np.broadcast_to(_second_colour_mask(rng, kind, height, width), (height, width))
    fabric = np.where(second_mask[..., None], second, base).astype(np.uint8)
    # A plain fabric always has a logo, so that every garment shows how it is placed.
    if kind == "plain" or rng.random() < 0.6:
        _draw_logo(rng, fabric, base, centre, chest)
    return fabric


def _product_image(edge, fabric):
    """uint8 (H, W, 3): ``fabric`` inside the garment mask ``edge``, white outside."""
    image = np.full(fabric.shape, 255, np.uint8)
    inside = edge > 127
    image[inside] = fabric[inside]
    return image


# Shapes ----------------------------------------------------------------------------------------


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
        ellipse(edge, neck_centre, (neck_half, depth), 0, 0)
    else:
        polygon(edge, [neck_centre + [-neck_half, -1], neck_centre + [neck_half, -1],
                       neck_centre + [0, depth * 1.5]], 0)


def _hem_arc(cx, half, y, sag, count=7):
    """Points of a hem from (cx + half, y) to (cx - half, y), sagging by ``sag`` in the middle."""
    t = np.linspace(1.0, -1.0, count)
    return np.stack([cx + half * t, y + sag * (1 - t * t)], 1)


def _fill(polygons, height, width):
    """uint8 (H, W) garment mask, 255 inside any of ``polygons``."""
    edge = np.zeros((height, width), np.uint8)
    for outline in polygons:
        polygon(edge, outline, 255)
    return edge


# Tops and dresses ------------------------------------------------------------------------------


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

    # Long sleeves reach far out: shrink everything into the canvas.
    place, fit = _fit_in_canvas(np.concatenate(polygons), cx, height, width)
    polygons = [place(p) for p in polygons]
    right, left = place(right), place(left)
    hem_centre = place(np.array([cx, hem]))
    if axis is not None:
        axis = np.stack([place(axis[0]), axis[1]])

    edge = _fill(polygons, height, width)
    neck_centre = place(np.array([cx, top]))
    depth = (hem - top) * fit * rng.uniform(0.06, 0.16)
    _cut_neckline(rng, edge, neck_centre, neck * fit, depth)

    base = random_colour(rng)
    second = contrasting(rng, base)
    chest = neck_centre[1] + (hem_centre[1] - neck_centre[1]) * 0.3
    fabric = _garment_pattern(rng, height, width, base, second, cx, chest)
    return Garment(image=_product_image(edge, fabric), edge=edge, right_shoulder=right,
                   left_shoulder=left, hem_centre=hem_centre, sleeve_axis=axis)


def _dress_outline(cx, top, shoulder, neck, slope, armhole, waist, hip, hem, sag):
    """(N, 2) outline of a sleeveless dress, clockwise from the neck's right corner.
    ``waist``, ``hip`` and ``hem`` are (y, half width) pairs."""
    (waist_y, waist_half), (hip_y, hip_half), (hem_y, hem_half) = waist, hip, hem
    inset = shoulder * 0.06
    outline = [[cx - neck, top], [cx + neck, top], [cx + shoulder, top + slope],
               [cx + shoulder - inset, top + slope + armhole], [cx + waist_half, waist_y],
               [cx + hip_half, hip_y]]
    outline += list(_hem_arc(cx, hem_half, hem_y, sag))
    outline += [[cx - hip_half, hip_y], [cx - waist_half, waist_y],
                [cx - shoulder + inset, top + slope + armhole], [cx - shoulder, top + slope]]
    return np.array(outline, dtype=np.float64)


def _draw_dress(rng, height, width):
    cx = width * (0.5 + rng.uniform(-0.03, 0.03))
    top = height * 0.1
    shoulder = width * rng.uniform(0.19, 0.25)
    neck = shoulder * rng.uniform(0.3, 0.45)
    slope = height * rng.uniform(0.015, 0.035)
    cut = rng.choice(3, p=[0.35, 0.4, 0.25])                       # mini, about the knee, midi
    length = rng.uniform(*((0.12, 0.35), (0.4, 0.6), (0.62, 0.85))[cut])
    sleeve = rng.choice(["none", "short", "long"], p=[0.4, 0.35, 0.25])
    per = shoulder / REFERENCE_SHOULDER
    hip_y = top + REFERENCE_TORSO * per * rng.uniform(0.92, 1.08)
    waist_y = top + (hip_y - top) * rng.uniform(0.5, 0.65)
    hem_y = hip_y + REFERENCE_LEG * length * per
    armhole = (hip_y - top) * rng.uniform(0.25, 0.32)
    waist_half = shoulder * rng.uniform(0.8, 0.95)
    # Wide enough at the hips to cover the tops of the legs, flaring more the longer the skirt.
    hip_half = shoulder * rng.uniform(1.0, 1.12)
    hem_half = hip_half * (1 + (hem_y - hip_y) / (hip_y - top) * rng.uniform(0.1, 0.45))
    sag = (hem_y - top) * rng.uniform(0.0, 0.03)

    right = np.array([cx - shoulder, top + slope])
    left = np.array([cx + shoulder, top + slope])
    polygons = [_dress_outline(cx, top, shoulder, neck, slope, armhole, (waist_y, waist_half),
                               (hip_y, hip_half), (hem_y, hem_half), sag)]
    axis = None
    if sleeve != "none":
        sleeve_polygons, axis = _sleeves(rng, right, left, shoulder, armhole, hip_y - top,
                                         sleeve == "short")
        polygons += sleeve_polygons

    place, fit = _fit_in_canvas(np.concatenate(polygons), cx, height, width)
    edge = _fill([place(p) for p in polygons], height, width)
    neck_centre = place(np.array([cx, top]))
    _cut_neckline(rng, edge, neck_centre, neck * fit, (hip_y - top) * fit * rng.uniform(0.06, 0.16))

    base = random_colour(rng)
    second = contrasting(rng, base)
    waist = place(np.array([cx, waist_y]))
    fabric = _garment_pattern(rng, height, width, base, second, cx,
                              (neck_centre[1] + waist[1]) / 2)
    if rng.random() < 0.3:                               # a belt at the waist
        belt = (hip_y - top) * fit * rng.uniform(0.04, 0.07)
        rows = slice(int(round(waist[1] - belt)), int(round(waist[1] + belt)) + 1)
        fabric[rows] = contrasting(rng, base)
    if axis is not None:
        axis = np.stack([place(axis[0]), axis[1]])
    return Garment(image=_product_image(edge, fabric), edge=edge, right_shoulder=place(right),
                   left_shoulder=place(left), hem_centre=place(np.array([cx, hem_y + sag])),
                   sleeve_axis=axis, category="dresses", kind="dress", length=float(length))


# Lower garments --------------------------------------------------------------------------------


def _skirt_outline(rng, cx, top, waist, waist_corners, hem_y):
    """A skirt flaring from the waistband (half width ``waist``): outline (N, 2) and hem
    centre (2,)."""
    hem_half = waist * rng.uniform(1.05, 1.6)
    sag = (hem_y - top) * rng.uniform(0.0, 0.05)
    outline = np.concatenate([waist_corners, _hem_arc(cx, hem_half, hem_y, sag)])
    return outline, np.array([cx, hem_y + sag])


def _trouser_outline(rng, cx, top, waist, waist_corners, hem_y, per):
    """Two legs from the waistband (half width ``waist``) to their hems, spreading a little
    from the vertical; ``per`` is product pixels per reference pixel.

    Returns outline (7, 2), leg hem centres (2, 2) (the wearer's right leg first) and the
    crotch point (2,).
    """
    rise = (_REFERENCE_RISE + 0.25 * REFERENCE_LEG) * per * rng.uniform(0.85, 1.05)
    rise = min(rise, 0.8 * (hem_y - top))
    spread = rng.uniform(0.02, 0.1)                  # each leg from the vertical, radians
    leg = (hem_y - top) / np.cos(spread)
    hem_half = waist * rng.uniform(0.42, 0.55)
    # Keep the two legs' inner hem corners apart.
    hem_half = min(hem_half, (0.5 * waist + np.sin(spread) * leg) / np.cos(spread) * 0.92)
    crotch = np.array([cx, top + rise])
    hems, corners = [], []
    for side in (-1.0, 1.0):
        hem = np.array([cx + side * 0.5 * waist, top]) + leg * np.array(
            [side * np.sin(spread), np.cos(spread)])
        outward = np.array([side * np.cos(spread), -np.sin(spread)])
        hems.append(hem)
        corners.append((hem + outward * hem_half, hem - outward * hem_half))
    (right_outer, right_inner), (left_outer, left_inner) = corners
    outline = np.array([waist_corners[0], waist_corners[1], left_outer, left_inner, crotch,
                        right_inner, right_outer])
    return outline, np.stack(hems), crotch


def _lower_garment_length(rng, kind):
    """Where the hem falls, as a fraction of the hip joint to ankle length."""
    if kind == "trousers":
        return rng.uniform(0.88, 1.0)
    if kind == "shorts":
        return rng.uniform(0.3, 0.5)
    return rng.uniform(0.2, 0.85)


def _draw_lower_garment(rng, height, width):
    cx = width * (0.5 + rng.uniform(-0.03, 0.03))
    top = height * 0.08
    kind = str(rng.choice(["trousers", "shorts", "skirt"], p=[0.4, 0.25, 0.35]))
    length = _lower_garment_length(rng, kind)
    waist = width * rng.uniform(0.19, 0.25)             # half width
    # Waist to hem, in the proportions of the reference body.
    per = waist / _REFERENCE_WAIST
    hem_y = top + (_REFERENCE_RISE + REFERENCE_LEG * length) * per * rng.uniform(0.92, 1.08)
    band = (hem_y - top) / (0.1 + 0.9 * length) * rng.uniform(0.03, 0.05)

    waist_corners = np.array([[cx - waist, top], [cx + waist, top]])
    if kind == "skirt":
        outline, hem_centre = _skirt_outline(rng, cx, top, waist, waist_corners, hem_y)
        leg_hems = crotch = None
    else:
        outline, leg_hems, crotch = _trouser_outline(rng, cx, top, waist, waist_corners, hem_y,
                                                     per)
        hem_centre = leg_hems.mean(0)

    place, fit = _fit_in_canvas(outline, cx, height, width)
    edge = _fill([place(outline)], height, width)
    base = random_colour(rng)
    second = contrasting(rng, base)
    placed_top = place(np.array([cx, top]))
    fabric = _garment_pattern(rng, height, width, base, second, cx,
                              placed_top[1] + (hem_y - top) * fit * 0.25)
    # A waistband, and the fly of trousers: marks that show how the waist is placed.
    trim = tuple(int(v) for v in contrasting(rng, base))
    fabric[:int(round(placed_top[1] + band * fit)) + 1] = trim
    if crotch is not None:
        fly_end = np.array([cx, top + 0.7 * (crotch[1] - top)])
        capsule(fabric, place(np.array([cx, top + band])), place(fly_end), max(0.5, 0.006 * width),
                trim)
    return Garment(image=_product_image(edge, fabric), edge=edge, right_shoulder=None,
                   left_shoulder=None, hem_centre=place(hem_centre), sleeve_axis=None,
                   category="lower_body", kind=kind, waist=place(waist_corners),
                   leg_hems=None if leg_hems is None else place(leg_hems), length=float(length))
