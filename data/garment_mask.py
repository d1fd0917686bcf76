"""Garment masks ("edges") from product photos on near-white studio backgrounds, no model weights.

PF-AFN needs a mask of every garment (``test_edge/``); a product photo of one's own comes
without one (PF-AFN's authors said they made theirs with OpenCV's grabCut). A product photo's
background is light and nearly uniform (a lighting gradient, a vignette, a soft shadow under
the garment), so the garment is what differs from it:

1. Background. A quadratic surface per CIE Lab channel, fitted robustly to a band along the
   image border (least squares, refitted without the pixels farther than the pixel noise allows:
   the garment where it touches the frame). After a first mask it is fitted again to every
   pixel away from the garment, which the border alone extrapolates poorly.
2. Colour evidence, against the surface. "Strong": chroma or added lightness above a threshold
   (NOISE_FACTOR x the border noise, at least COLOUR_FLOOR / CHROMA_FLOOR), or darker than a
   soft shadow can make the background (SHADOW_MAX_DARKENING). JPEG ringing and chroma bleeding
   around a strong garment scale with its contrast, so a strong pixel must also reach
   COLOUR_RELATIVE of the strongest evidence within ARTEFACT_RADIUS. "Weak": any other pixel at
   least WEAK_FLOOR (or the noise level) from the surface: a soft shadow, compression halo, or
   a pale garment (white, cream, light grey on white).
3. Edge evidence. Canny on the step strength of the Lab image: the colour gradient at a fine
   scale minus the one at a coarse scale, which is large across the sharp outline of a garment
   and small across a soft shadow's ramp. Thresholds sit above the border's gradient noise.
   Near strong colour evidence only steps in lightness are kept: chroma steps there are the
   pattern or JPEG's chroma blocks, while a pale part of the garment meets the backdrop with a
   step in lightness. A faint step next to a strong one is kept: it is the outline of a pale
   stripe or print where it meets the backdrop.
4. Region. Strong, weak and edge pixels, holes filled (what the image border cannot reach
   through background is garment). Then the background grows back from outside into the weak
   pixels, 4-connected, for at most SHADOW_REACH of the image, stopped by strong pixels and by
   edges whose gaps of up to EDGE_GAP pixels are closed: it takes soft shadows and halos, and
   where a pale garment's outline has a wider gap it takes a dent of bounded depth, not the
   garment. When strong evidence makes up most of the garment, weak pixels outside its hull
   (the closing of the strong pixels) are shadow however wide. The largest connected region
   is kept, with any other of at least SECOND_REGION_FRACTION of its area (two pieces
   photographed together).
5. Silhouette. The outline's neighbourhood is decided again by a marker watershed: garment
   seeds a few pixels inside the region, background seeds outside the reach of step 4, the
   rest flooded from both in order of the colour step between neighbours. A dent that the
   background took through a gap in a pale stripe's outline goes back to the garment, joined
   to the rest of the stripe without a step, while a shadow stays with the backdrop it ramps
   into.
6. Boundary, at full resolution. Each pixel near the outline is compared with the nearest pixel
   a few pixels inside (its garment colour g) and outside (its background colour o): a pixel
   mixing them as a*g + (1-a)*o is garment when a >= 1/2, the rule that makes a mask from
   coverage. First in a band of SNAP_WIDE pixels, removing only mixtures nearer o that keep
   o's lightness (JPEG's chroma bleeding), then in a narrow band both ways. A pixel off the
   line from o to g (a third colour), or where g and o are too close to tell apart, keeps the
   label of step 5.
7. Optional ``grabcut=True``: OpenCV's GrabCut initialised from the mask (sure garment inside,
   sure background outside, probable labels in a band around the outline) at most
   GRABCUT_MAX_SIDE pixels wide, then step 6 on its result.

Steps 1-5 and 7 run on a copy at most WORK_MAX_SIDE pixels long. Limits: background enclosed by
the garment (a sleeve resting on the hip) is filled in, as it cannot be told from a white
garment's own interior; a narrow slit between a hanging sleeve and the body stays garment where
its shadow, or JPEG's chroma bleeding into it, makes it differ from the background; a pale part
of a patterned garment that touches the outline and nothing pale inside (a light hem stripe,
a light blot along a trouser leg) may be dented where its outline is faint, and a pale part
in chroma only (cream) is trimmed by step 6's bleeding rule where it is a few pixels wide.
"""

from dataclasses import dataclass, field
from typing import List, Tuple

import cv2
import numpy as np

from common.errors import UserError
from data.alpha import read_alpha
from data.files import read_rgb

# Part of the cache key of computed masks (data.datasets.GarmentMasks): raise it when a change
# gives other masks. 2: the silhouette step (5) and the faint edges kept beside strong ones.
METHOD_VERSION = 2
WORK_MAX_SIDE = 512          # steps 1-5 run at most at this size (pixels, longer side)
BORDER_BAND = 0.03           # border band width, fraction of the shorter side
FIT_NOISE_FACTOR = 5.0       # background fit: outliers beyond this many pixel-noise sigmas ...
FIT_MIN_CUTOFF = 1.5         # ... and beyond at least this many Lab units
NOISE_FACTOR = 4.0           # colour thresholds in border noise standard deviations
COLOUR_FLOOR = 3.0           # least lightness threshold, Lab units
CHROMA_FLOOR = 3.0           # least chroma threshold, Lab units
SHADOW_MAX_DARKENING = 12.0  # L* units a soft shadow may darken the background
WEAK_FLOOR = 2.0             # least Lab distance from the background of a weak pixel
ARTEFACT_RADIUS = 16         # photo pixels: JPEG's 4:2:0 chroma blocks are 16 wide
COLOUR_RELATIVE = 0.1        # strong evidence reaches this fraction of the strongest nearby
STRONG_EXCESS = 3.0          # edges near colour evidence this many times its threshold go ...
LUMA_SHARE = 0.7             # ... unless lightness makes this share of their gradient
EDGE_FINE_SIGMA = 0.7        # working pixels: smoothing of the analysed image
EDGE_COARSE_SIGMA = 2.5      # working pixels: the scale of a soft shadow's ramp
EDGE_FLOOR = 0.6             # least Canny high threshold, Lab units per pixel
EDGE_NOISE_FACTOR = 6.0      # Canny high threshold in medians of the border gradient
EDGE_LOW_RATIO = 0.4         # Canny low / high threshold
EDGE_GAP = 3                 # working pixels: gaps in the outline the background cannot pass
WATERSHED_GAIN = 4.0         # step 5: grey levels per Lab unit of the flooded image ...
WATERSHED_ERODE = 4          # ... garment seeds this many working pixels inside the region ...
WATERSHED_MARGIN = 2         # ... background seeds beyond the shadow reach plus this
SHADOW_REACH = 0.06          # how far background grows into weak pixels, x the shorter side
HULL_FRACTION = 0.5          # a garment this much strong evidence (of its area) has a hull ...
HULL_RADIUS = 0.03           # ... the closing of its strong pixels by this x the shorter side ...
HULL_ZONE = 0.12             # ... and weak pixels this far outside it are shadow
SECOND_REGION_FRACTION = 0.1  # other regions kept: at least this fraction of the largest
SNAPPED_PIECE_FRACTION = 0.01  # ... and after step 6, which may cut a thin part off
MIN_AREA_FRACTION = 0.002    # a mask smaller than this fraction of the image: nothing found
SMALL_AREA_FRACTION = 0.05   # ... smaller than this: found, with a note to check it
MAX_AREA_FRACTION = 0.95     # a mask larger than this fraction: nothing told apart
SNAP_PIXEL_SIGMA = 0.7       # photo pixels: smoothing of the pixels re-decided ...
SNAP_SAMPLE_SIGMA = 1.0      # ... and of the colours g and o they are compared with
SNAP_EXTRA = 1               # narrow band half width: working-to-photo scale + this (>= 2)
SNAP_WIDE = 8                # photo pixels: the band where bleeding is removed
SNAP_MIN_CONTRAST = 4.0      # Lab units between g and o for a decision
SNAP_RESIDUAL = 0.25         # a mixture lies within this x |g - o| of the line from o to g ...
SNAP_MIN_RESIDUAL = 3.0      # ... or within this many Lab units
SNAP_BLEED_LIGHTNESS = 1.5   # bleeding keeps o's lightness within this many L* units
LIGHT_MIN_L = 70.0           # background L* of at least this is light
UNIFORM_MAX_NOISE = 4.0      # Lab units: border residual noise of a uniform background ...
UNIFORM_MIN_INLIERS = 0.6    # ... the fraction of the border that fits its surface ...
UNIFORM_MAX_RANGE = 25.0     # ... and L* between its lightest and darkest point
GRABCUT_MAX_SIDE = 320       # GrabCut runs at most at this size (longer side)
GRABCUT_ITERATIONS = 4


class GarmentMaskError(UserError, ValueError):
    """No usable mask for a photo; the message names the photo and what is wrong."""


@dataclass
class GarmentMask:
    """The mask of one product photo.

    mask: uint8 (H, W), 0 background / 255 garment, the size of the photo.
    background: the estimated background colour, RGB 0..255 (median over the border band).
    light_background: the background is light (L* >= LIGHT_MIN_L).
    uniform_background: the border fits a smooth background surface with little noise.
    notes: human-readable warnings about the result (e.g. the background is dark).
    """

    mask: np.ndarray
    background: Tuple[int, int, int]
    light_background: bool
    uniform_background: bool
    notes: List[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Helpers


def _to_lab(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 (H, W, 3) CIE Lab, L in 0..100, a/b about -128..127."""
    return cv2.cvtColor(image.astype(np.float32) * (1.0 / 255.0), cv2.COLOR_RGB2Lab)


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """bool (H, W) -> bool: True unless reachable from outside the image through False pixels.

    The background flood is 4-connected, so a thin 8-connected outline (Canny's) seals."""
    height, width = mask.shape
    canvas = np.zeros((height + 2, width + 2), np.uint8)
    canvas[1:-1, 1:-1] = mask
    cv2.floodFill(canvas, None, (0, 0), 2, flags=4)
    return canvas[1:-1, 1:-1] != 2


def _main_regions(mask: np.ndarray, min_area: float = 0.0,
                  fraction: float = SECOND_REGION_FRACTION) -> np.ndarray:
    """Keep the largest 8-connected region of a bool mask and those of at least ``fraction``
    of its area and ``min_area`` pixels."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        return np.zeros_like(mask, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = areas >= max(areas.max() * fraction, min_area)
    lookup = np.concatenate([[False], keep])
    return lookup[labels]


def _border_band(height: int, width: int) -> np.ndarray:
    band = max(2, int(round(BORDER_BAND * min(height, width))))
    inside = np.zeros((height, width), bool)
    inside[band:-band, band:-band] = True
    return ~inside


def _basis(ys: np.ndarray, xs: np.ndarray, height: int, width: int) -> np.ndarray:
    """Quadratic polynomial basis (N, 6) of pixel positions, coordinates scaled to [-1, 1]."""
    u = (xs.astype(np.float32) - (width - 1) / 2) / (width / 2)
    v = (ys.astype(np.float32) - (height - 1) / 2) / (height / 2)
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], -1)


@dataclass
class _Background:
    coefficients: np.ndarray   # float32 (6, 3): Lab surface over _basis
    noise: np.ndarray          # float32 (3,): robust residual standard deviation per channel
    inliers: float             # fraction of the sampled pixels that fit the surface

    def surface(self, height: int, width: int) -> np.ndarray:
        """float32 (H, W, 3) Lab background."""
        ys, xs = np.mgrid[0:height, 0:width]
        return (_basis(ys, xs, height, width) @ self.coefficients).astype(np.float32)


def _fit_background(lab: np.ndarray, where: np.ndarray, max_samples: int = 40000) -> _Background:
    """Robust quadratic surface through lab[where]: least squares, repeated without the
    pixels farther from the surface than the noise allows (the garment where it touches the
    frame, dust, a label)."""
    height, width = where.shape
    # Pixel noise from differences of horizontal neighbours: a smooth lighting falloff and
    # a garment crossing the band hardly change them (MAD / sqrt(2) for a difference).
    pairs = where[:, 1:] & where[:, :-1]
    steps = (lab[:, 1:] - lab[:, :-1])[pairs]
    pixel_noise = 1.4826 / np.sqrt(2) * np.median(np.abs(steps), 0) if len(steps) else np.zeros(3)
    cutoff = max(FIT_NOISE_FACTOR * float(np.linalg.norm(pixel_noise)), FIT_MIN_CUTOFF)

    ys, xs = np.nonzero(where)
    if len(ys) > max_samples:
        pick = np.linspace(0, len(ys) - 1, max_samples).astype(np.int64)
        ys, xs = ys[pick], xs[pick]
    samples = lab[ys, xs].astype(np.float64)
    basis = _basis(ys, xs, height, width).astype(np.float64)
    inliers = np.ones(len(samples), bool)
    coefficients = np.linalg.lstsq(basis, samples, rcond=None)[0]
    for _ in range(8):
        residual = np.linalg.norm(samples - basis @ coefficients, axis=1)
        # The first fits lean towards the outliers; the largest residuals go first.
        updated = residual < max(cutoff, float(np.quantile(residual[inliers], 0.8)))
        if updated.sum() < 12 or np.array_equal(updated, inliers):
            break
        inliers = updated
        coefficients = np.linalg.lstsq(basis[inliers], samples[inliers], rcond=None)[0]
    residual = samples[inliers] - basis[inliers] @ coefficients
    noise = 1.4826 * np.median(np.abs(residual - np.median(residual, 0)), 0)
    return _Background(coefficients.astype(np.float32), noise.astype(np.float32),
                       float(inliers.mean()))


def _resize_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool mask -> bool (height, width), boundary interpolated (coverage >= 0.5)."""
    if mask.shape == (height, width):
        return mask
    scaled = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return scaled >= 0.5


# ---------------------------------------------------------------------------------------------
# Steps


def _colour_gradient(lab: np.ndarray):
    """Largest rate of change of a Lab image and its direction (Di Zenzo's colour gradient:
    the leading eigenvector of the summed per-channel structure tensor).
    lab float32 (h, w, 3) -> (magnitude, gx, gy) float32 (h, w), Lab units per pixel; (gx, gy)
    points along the direction of change with length ``magnitude``."""
    # Sobel's 3x3 kernel is 8x the central difference.
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3) * (1.0 / 8.0)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3) * (1.0 / 8.0)
    xx = (gx * gx).sum(-1)
    yy = (gy * gy).sum(-1)
    xy = (gx * gy).sum(-1)
    root = np.sqrt((xx - yy) ** 2 + 4 * xy * xy)
    magnitude = np.sqrt(np.maximum(0.5 * (xx + yy + root), 0))
    angle = 0.5 * np.arctan2(2 * xy, xx - yy)
    return magnitude, magnitude * np.cos(angle), magnitude * np.sin(angle)


def _evidence(lab_fine: np.ndarray, lab_coarse: np.ndarray, background: _Background,
              band: np.ndarray, artefact_radius: int
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour and edge evidence (steps 2-3). lab_fine / lab_coarse: float32 (h, w, 3) Lab
    smoothed at EDGE_FINE_SIGMA / EDGE_COARSE_SIGMA; band: bool (h, w) border band;
    artefact_radius: ARTEFACT_RADIUS in working pixels.
    Returns (strong, weak, edges), bool (h, w) each: colour evidence, pixels that differ from
    the background only a little (soft shadows, pale garments), step edges."""
    height, width = lab_fine.shape[:2]
    difference = lab_fine - background.surface(height, width)
    lightness = difference[..., 0]
    chroma = np.hypot(difference[..., 1], difference[..., 2])
    t_l = max(COLOUR_FLOOR, NOISE_FACTOR * float(background.noise[0]))
    t_c = max(CHROMA_FLOOR, NOISE_FACTOR * float(np.hypot(background.noise[1],
                                                            background.noise[2])))
    # Excess over the thresholds (> 1: evidence); darkening counts against the shadow limit.
    excess = np.maximum(np.maximum(chroma / t_c, lightness / t_l),
                        -lightness / max(SHADOW_MAX_DARKENING, t_l))
    # JPEG ringing and chroma bleeding around a strong garment scale with its contrast: a
    # pixel must also reach a fraction of the strongest evidence nearby.
    nearby = _disc(artefact_radius)
    strong = (excess > 1.0) & (excess >= COLOUR_RELATIVE * cv2.dilate(excess, nearby))
    t_w = max(WEAK_FLOOR, NOISE_FACTOR * float(np.linalg.norm(background.noise)))
    weak = ~strong & ((lightness * lightness + chroma * chroma) > t_w * t_w)
    # Where the colour evidence is strong it outlines the garment by itself; edges there are
    # the garment's pattern or compression artefacts around it.
    near_strong = cv2.dilate((excess >= STRONG_EXCESS).astype(np.uint8), nearby) > 0

    # Step strength: a step of height d blurred to width s has a peak gradient d / (sqrt(2 pi) s),
    # so the gradient at the fine scale exceeds the one at the coarse scale by a large margin
    # at a garment's outline (a sharp step) and hardly at all across a soft shadow (a ramp wider
    # than the coarse scale).
    fine, gx, gy = _colour_gradient(lab_fine)
    coarse = _colour_gradient(lab_coarse)[0]
    step = np.maximum(fine - coarse, 0)
    gain = step / np.maximum(fine, 1e-6)
    # Noise: the fine gradient's median over the border band (Rayleigh: median ~1.18 sigma).
    high = max(EDGE_FLOOR, EDGE_NOISE_FACTOR * float(np.median(fine[band])))
    quantum = 16.0    # Canny wants int16 derivatives: 1/16 Lab unit per pixel resolution
    dx = np.clip(np.round(gx * gain * quantum), -32767, 32767).astype(np.int16)
    dy = np.clip(np.round(gy * gain * quantum), -32767, 32767).astype(np.int16)
    edges = cv2.Canny(dx, dy, EDGE_LOW_RATIO * high * quantum, high * quantum,
                      L2gradient=True) > 0
    # Chroma bleeding and chroma block edges are what lies near strong evidence; a step in
    # lightness there (a pale part of the garment against the backdrop) is kept.
    lum_x = cv2.Sobel(lab_fine[..., 0], cv2.CV_32F, 1, 0, ksize=3) * (1.0 / 8.0)
    lum_y = cv2.Sobel(lab_fine[..., 0], cv2.CV_32F, 0, 1, ksize=3) * (1.0 / 8.0)
    near_strong &= np.sqrt(lum_x * lum_x + lum_y * lum_y) < LUMA_SHARE * fine
    return strong, weak, edges & ~near_strong


def _region(strong: np.ndarray, weak: np.ndarray, edges: np.ndarray, shadow_reach: int,
            min_area: float) -> np.ndarray:
    """Step 4. strong, weak, edges: bool (h, w) -> bool (h, w) garment region; regions
    smaller than ``min_area`` pixels are dropped."""
    candidate = strong | weak | edges
    candidate = cv2.morphologyEx(candidate.astype(np.uint8), cv2.MORPH_CLOSE, _disc(1)) > 0
    filled = _fill_holes(candidate)
    # A faint outline (a pale stripe's against the backdrop) breaks up into pieces; the
    # background must not leak through the gaps between them.
    barrier = cv2.morphologyEx((strong | edges).astype(np.uint8), cv2.MORPH_CLOSE,
                               _disc(EDGE_GAP))
    passable = (weak & (barrier == 0)).astype(np.uint8)
    outside = (~filled).astype(np.uint8)
    # 4-connected growth: a 1-pixel 8-connected edge stops it.
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for _ in range(shadow_reach):
        grown = cv2.dilate(outside, cross) & passable
        if not (grown > outside).any():
            break
        outside |= grown
    if strong.sum() >= HULL_FRACTION * filled.sum():
        # A garment that is mostly strong evidence: weak pixels outside its hull (the closing
        # of the strong pixels, which bridges pale stripes and narrow gaps) are shadow, and the
        # background takes them however wide the shadow is.
        short = min(strong.shape)
        hull = cv2.morphologyEx(strong.astype(np.uint8), cv2.MORPH_CLOSE,
                                _disc(max(1, int(round(HULL_RADIUS * short)))))
        hull = _fill_holes(hull > 0)
        zone = cv2.dilate(hull.astype(np.uint8), _disc(max(1, int(round(HULL_ZONE * short)))))
        zone = (zone > 0) & ~hull & (passable > 0)
        count, labels = cv2.connectedComponents(outside | zone.astype(np.uint8), connectivity=4)
        reached = np.zeros(count, bool)
        reached[labels[outside > 0]] = True
        outside = reached[labels].astype(np.uint8)
    return _main_regions(_fill_holes(filled & (outside == 0)), min_area)


def _watershed(lab: np.ndarray, surface: np.ndarray, region: np.ndarray, weak: np.ndarray,
               reach: int, min_area: float) -> np.ndarray:
    """Step 5: re-decide the outline's neighbourhood by flooding from both sides. lab, surface:
    float32 (h, w, 3) Lab of the photo and of the background; region, weak: bool (h, w).

    Garment seeds are the region a few pixels in, background seeds every pixel beyond the
    reach of the background's growth and every pixel outside the region that differs from the
    background by less than a weak pixel does. OpenCV's watershed floods the rest from both
    in order of the colour step between neighbours, so a pixel goes to the side it is joined
    to by the smaller steps: the end of a pale stripe to the rest of its stripe inside the
    garment (no step), not to the backdrop across its outline (a step of a few Lab units);
    a soft shadow to the backdrop across its ramp, not to the garment across its outline."""
    steps = np.clip(128 + WATERSHED_GAIN * (lab - surface), 0, 255).astype(np.uint8)
    markers = np.zeros(region.shape, np.int32)
    background = ~(cv2.dilate(region.astype(np.uint8), _disc(reach + WATERSHED_MARGIN)) > 0)
    markers[background | (~region & ~weak)] = 2
    seeds = cv2.erode(region.astype(np.uint8), _disc(WATERSHED_ERODE)) > 0
    if not seeds.any() or not (markers == 2).any():
        return region       # a garment too thin for seeds inside it, or nothing around it
    markers[seeds] = 1
    cv2.watershed(np.ascontiguousarray(steps), markers)
    # -1 marks the pixels between the two floods; they keep their label of step 4.
    garment = (markers == 1) | ((markers == -1) & region)
    return _main_regions(_fill_holes(garment), min_area)


def _nearest(source: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For every pixel, ``values`` at the nearest pixel where ``source`` is True, and the
    distance to it. source: bool (h, w) with at least one True; values: (h, w, c)
    -> ((h, w, c), float32 (h, w))."""
    distance, labels = cv2.distanceTransformWithLabels((~source).astype(np.uint8), cv2.DIST_L2,
                                                       5, labelType=cv2.DIST_LABEL_PIXEL)
    # Labels number the source pixels in raster order, from 1.
    return values[source][labels - 1], distance


def _snap(lab: np.ndarray, sample_lab: np.ndarray, mask: np.ndarray, radius: int,
          remove_only: bool = False) -> np.ndarray:
    """Step 6: re-decide the pixels within ``radius`` of the outline. lab, sample_lab: float32
    (H, W, 3) Lab of the photo smoothed for the pixels and for the colours compared with;
    mask: bool (H, W) -> bool (H, W).

    Each pixel p is compared with the nearest pixel ``radius`` inside (its garment colour g)
    and the nearest pixel ``radius`` outside (its background colour o). When p lies close to
    the line from o to g it mixes them as p = a g + (1 - a) o with
    a = <p - o, g - o> / |g - o|^2, and it is garment when a >= 1/2. A pixel far off that line
    is a third colour (a stripe of another colour, or g was taken from a dot of a pattern) and
    keeps its label, as do pixels where g and o are too close to tell apart and pixels of a
    part too thin to have an inside of its own. With ``remove_only`` garment pixels are only
    taken away (compression bleeding around a strong garment)."""
    disc = _disc(radius)
    inner = cv2.erode(mask.astype(np.uint8), disc) > 0
    outer = cv2.dilate(mask.astype(np.uint8), disc) == 0
    band = ~inner & ~outer
    rows = np.nonzero(band.any(1))[0]
    cols = np.nonzero(band.any(0))[0]
    if len(rows) == 0:
        return mask
    pad = 2 * radius + 2
    top, bottom = max(0, rows[0] - pad), min(mask.shape[0], rows[-1] + pad + 1)
    left, right = max(0, cols[0] - pad), min(mask.shape[1], cols[-1] + pad + 1)
    crop = (slice(top, bottom), slice(left, right))
    inner_c, outer_c, band_c, lab_c = inner[crop], outer[crop], band[crop], lab[crop]
    if not inner_c.any() or not outer_c.any():
        return mask
    garment, garment_distance = _nearest(inner_c, sample_lab[crop])
    background = _nearest(outer_c, sample_lab[crop])[0][band_c]
    garment = garment[band_c]
    pixel = lab_c[band_c]
    axis = garment - background
    contrast = (axis * axis).sum(-1)
    position = ((pixel - background) * axis).sum(-1) / np.maximum(contrast, 1e-6)
    residual = pixel - background - position[:, None] * axis
    mixed = (residual * residual).sum(-1) <= np.maximum(SNAP_RESIDUAL ** 2 * contrast,
                                                        SNAP_MIN_RESIDUAL ** 2)
    decided = ((contrast >= SNAP_MIN_CONTRAST ** 2) & mixed
               & (garment_distance[band_c] <= 2 * radius + 1))
    labels = mask[crop][band_c]
    if remove_only:
        # Bleeding carries the garment's chroma, not its lightness (JPEG keeps lightness at
        # full resolution): a pixel darker or lighter than o is a pale part of the garment.
        same_lightness = np.abs(pixel[:, 0] - background[:, 0]) <= SNAP_BLEED_LIGHTNESS
        labels[decided & same_lightness & (position < 0.5)] = False
    else:
        labels[decided] = position[decided] >= 0.5
    result = mask.copy()
    view = result[crop]
    view[band_c] = labels
    return result


def _grabcut(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Step 7 at a reduced size. image uint8 (H, W, 3) RGB, mask bool -> bool (H, W)."""
    height, width = mask.shape
    scale = min(1.0, GRABCUT_MAX_SIDE / max(height, width))
    small_h, small_w = max(8, int(round(height * scale))), max(8, int(round(width * scale)))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small_mask = _resize_mask(mask, small_h, small_w).astype(np.uint8)
    band = max(2, int(round(0.015 * max(small_h, small_w))))
    sure_garment = cv2.erode(small_mask, _disc(band)) > 0
    maybe_background = cv2.dilate(small_mask, _disc(band)) > 0
    labels = np.full((small_h, small_w), cv2.GC_BGD, np.uint8)
    labels[maybe_background] = cv2.GC_PR_BGD
    labels[small_mask > 0] = cv2.GC_PR_FGD
    labels[sure_garment] = cv2.GC_FGD
    background_model = np.zeros((1, 65), np.float64)
    garment_model = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(small[:, :, ::-1]), labels, None, background_model,
                    garment_model, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return mask    # a degenerate model (one class without pixels): keep the input mask
    result = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    result = _main_regions(_fill_holes(result))
    return _resize_mask(result, height, width)


# ---------------------------------------------------------------------------------------------
# Public API


def mask_from_alpha(alpha: np.ndarray, size: Tuple[int, int], source: str,
                    grabcut: bool = False) -> GarmentMask:
    """The mask a cut-out's alpha channel gives (alpha > 127), checked as a computed one."""
    if alpha.shape != tuple(size):
        raise GarmentMaskError(f"{source}: its alpha channel is {alpha.shape[1]}x"
                               f"{alpha.shape[0]}, the image {size[1]}x{size[0]}")
    mask = alpha > 127
    area = float(mask.mean())
    if not MIN_AREA_FRACTION <= area <= MAX_AREA_FRACTION:
        raise GarmentMaskError(f"{source}: its alpha channel covers {100 * area:.1f}% of the "
                               f"image, which is not a garment's cut-out; pass a mask of your "
                               f"own")
    return GarmentMask(mask=np.where(mask, 255, 0).astype(np.uint8), background=(255, 255, 255),
                       light_background=True, uniform_background=True,
                       notes=[f"{source}: the mask is the image's alpha channel"] + [
                           f"{source}: --grabcut not used: a cut-out needs none"] * grabcut)


def compute_garment_mask(image: np.ndarray, grabcut: bool = False,
                         source: str = "<image>", alpha=None) -> GarmentMask:
    """Mask of the garment in a product photo.

    Args:
        image: uint8 (H, W, 3) RGB, any size (H, W >= 16).
        grabcut: refine with OpenCV's GrabCut (slower; see the module docstring).
        source: the photo's name for messages (a path, usually).
        alpha: the photo's alpha channel (``data.alpha.read_alpha``), uint8 (H, W), or None:
            when given, the mask is ``alpha > 127`` (``mask_from_alpha``; a note says so).

    Returns a GarmentMask whose ``mask`` is uint8 (H, W) with values 0 and 255.
    Raises GarmentMaskError (a ValueError) naming ``source`` when the array is not an
    (H, W, 3) uint8 image, when nothing distinguishes a garment from the background (empty
    mask), or when the mask would cover almost the whole image.
    """
    _check_photo(image, source)
    if alpha is not None:
        return mask_from_alpha(alpha, image.shape[:2], source, grabcut)
    work, scale = _working_copy(image, source)
    lab, band, border_fit, region = _garment_region(work, scale, grabcut)
    mask = _outline_at_full_size(image, region, scale)
    background, light, problems = _describe_backdrop(lab, band, border_fit)
    notes = _backdrop_notes(source, background, light, problems)
    notes += _check_area(float(mask.mean()), source, problems)
    return GarmentMask(mask=np.where(mask, 255, 0).astype(np.uint8), background=background,
                       light_background=light, uniform_background=not problems, notes=notes)


def _check_photo(image: np.ndarray, source: str) -> None:
    """A uint8 (H, W, 3) array of at least 16 x 16 pixels, or GarmentMaskError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        described = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
                     else type(image).__name__)
        raise GarmentMaskError(f"{source}: expected a uint8 (H, W, 3) RGB image, got {described}")
    height, width = image.shape[:2]
    if min(height, width) < 16:
        raise GarmentMaskError(f"{source}: image of {height}x{width} pixels is too small "
                               f"(at least 16x16)")


def _working_copy(image: np.ndarray, source: str) -> Tuple[np.ndarray, float]:
    """The photo shrunk to at most WORK_MAX_SIDE pixels long, and the factor it was shrunk by
    (1 when it was not)."""
    height, width = image.shape[:2]
    scale = max(1.0, max(height, width) / WORK_MAX_SIDE)
    if min(height, width) / scale < 16:
        raise GarmentMaskError(f"{source}: a {height}x{width} image is too elongated for a "
                               f"product photo (its short side would be "
                               f"{min(height, width) / scale:.1f} pixels at the "
                               f"{WORK_MAX_SIDE}-pixel working size); pass a mask of your own")
    if scale == 1.0:
        return image, scale
    work_h, work_w = int(round(height / scale)), int(round(width / scale))
    return cv2.resize(image, (work_w, work_h), interpolation=cv2.INTER_AREA), scale


def _garment_region(work: np.ndarray, scale: float, grabcut: bool):
    """Steps 1-5 (and 7 with ``grabcut``) on the working copy.

    Returns (lab, band, border_fit, region): the smoothed Lab image float32 (h, w, 3), the
    border band bool (h, w), the background fitted to the border alone, and the garment
    region bool (h, w)."""
    work_h, work_w = work.shape[:2]
    work_lab = _to_lab(work)
    lab = cv2.GaussianBlur(work_lab, (0, 0), EDGE_FINE_SIGMA)
    lab_coarse = cv2.GaussianBlur(work_lab, (0, 0), EDGE_COARSE_SIGMA)
    band = _border_band(work_h, work_w)
    min_area = MIN_AREA_FRACTION * work_h * work_w
    artefact_radius = int(np.ceil(ARTEFACT_RADIUS / scale))

    fit = border_fit = _fit_background(lab, band)
    shadow_reach = max(2, int(round(SHADOW_REACH * min(work_h, work_w))))
    evidence = _evidence(lab, lab_coarse, border_fit, band, artefact_radius)
    region = _region(*evidence, shadow_reach, min_area)
    if region.any():
        # Refit the background to everything well away from the first mask: the border alone
        # extrapolates a lighting falloff into the middle of the frame.
        away = cv2.dilate(region.astype(np.uint8), _disc(max(3, int(0.03 * min(work_h, work_w)))))
        if (away == 0).sum() > 100:
            fit = _fit_background(lab, away == 0)
            evidence = _evidence(lab, lab_coarse, fit, band, artefact_radius)
            region = _region(*evidence, shadow_reach, min_area)
    if region.any():
        region = _watershed(lab, fit.surface(work_h, work_w), region, evidence[1],
                            shadow_reach, min_area)
    if grabcut and region.any():
        region = _grabcut(work, region)
    return lab, band, border_fit, region


def _outline_at_full_size(image: np.ndarray, region: np.ndarray, scale: float) -> np.ndarray:
    """Step 6: the working-size ``region`` at the photo's size, each pixel near its outline
    decided again from the photo's colours -> bool (H, W)."""
    height, width = image.shape[:2]
    full_lab = _to_lab(image)
    pixel_lab = cv2.GaussianBlur(full_lab, (0, 0), SNAP_PIXEL_SIGMA)
    sample_lab = cv2.GaussianBlur(full_lab, (0, 0), SNAP_SAMPLE_SIGMA)
    mask = _resize_mask(region, height, width)
    if mask.any():
        if SNAP_WIDE > 0:
            mask = _snap(pixel_lab, sample_lab, mask, SNAP_WIDE, remove_only=True)
        mask = _snap(pixel_lab, sample_lab, mask, max(2, int(np.ceil(scale)) + SNAP_EXTRA))
        # The snap can cut a thin part (a sleeve at a faint shoulder) from the rest: pieces of
        # the region stay unless they are specks.
        mask = _main_regions(_fill_holes(mask), MIN_AREA_FRACTION * height * width,
                             fraction=SNAPPED_PIECE_FRACTION)
    return mask


def _describe_backdrop(lab: np.ndarray, band: np.ndarray, border_fit: _Background):
    """The background as the border shows it: (its median colour RGB 0..255, whether it is
    light, what keeps it from being uniform: a list of phrases, empty when it is)."""
    work_h, work_w = lab.shape[:2]
    median_lab = np.median(lab[band], 0).astype(np.float32)
    median_rgb = cv2.cvtColor(median_lab.reshape(1, 1, 3), cv2.COLOR_Lab2RGB).reshape(3)
    background = tuple(int(v) for v in np.clip(np.round(median_rgb * 255), 0, 255))
    light = float(median_lab[0]) >= LIGHT_MIN_L
    surface_l = border_fit.surface(work_h, work_w)[..., 0]
    problems = []
    if float(np.linalg.norm(border_fit.noise)) > UNIFORM_MAX_NOISE:
        problems.append(f"the border is textured or noisy (residual "
                        f"{np.linalg.norm(border_fit.noise):.1f} Lab units)")
    if border_fit.inliers < UNIFORM_MIN_INLIERS:
        problems.append(f"{100 * (1 - border_fit.inliers):.0f}% of the image border differs from "
                        f"the backdrop (the garment or objects reach the frame)")
    if float(surface_l.max() - surface_l.min()) > UNIFORM_MAX_RANGE:
        problems.append(f"the backdrop's lightness varies by "
                        f"{surface_l.max() - surface_l.min():.0f} L* units across the frame")
    return background, light, problems


MASK_ADVICE = "the mask may be poor: check it, or pass your own with --garment_mask"


def _backdrop_notes(source: str, background, light: bool, problems: List[str]) -> List[str]:
    """Notes on a backdrop that is not what the method expects (light and uniform)."""
    notes = []
    if not light:
        notes.append(f"{source}: the background (RGB {background}) is not light; this method "
                     f"expects product photos on a near-white background; {MASK_ADVICE}")
    if problems:
        notes.append(f"{source}: the background is not uniform: {'; '.join(problems)}; "
                     f"{MASK_ADVICE}")
    return notes


def _check_area(area: float, source: str, problems: List[str]) -> List[str]:
    """GarmentMaskError for a mask covering almost none or almost all of the photo (``area``,
    a fraction); a note for a small one."""
    context = "".join(f"; {problem}" for problem in problems)
    if area < MIN_AREA_FRACTION:
        raise GarmentMaskError(f"{source}: no garment found (nothing differs from the "
                               f"background){context}; pass a mask of your own")
    if area > MAX_AREA_FRACTION:
        raise GarmentMaskError(f"{source}: the mask would cover {100 * area:.0f}% of the image: "
                               f"nothing distinguishes a garment from the background{context}; "
                               f"pass a mask of your own")
    if area < SMALL_AREA_FRACTION:
        # A product photo shows its garment large; a small mask is most often a print or a
        # logo found on a garment whose outline was not (a pale garment in a noisy photo).
        return [f"{source}: the mask covers only {100 * area:.1f}% of the image, less than a "
                f"product photo's garment does; {MASK_ADVICE}"]
    return []


def garment_mask_from_file(path: str, grabcut: bool = False, photo: np.ndarray = None,
                           max_pixels: int = None) -> GarmentMask:
    """Read a product photo (data.files.read_rgb: DatasetError for unreadable or truncated
    files; ``photo``: its uint8 (H, W, 3) RGB pixels when they are read already) and compute
    its mask, or take its alpha channel when it has one; GarmentMaskError names ``path``."""
    if photo is None:
        photo = read_rgb(path, max_pixels)
    return compute_garment_mask(photo, grabcut=grabcut, source=path,
                                alpha=read_alpha(path, max_pixels))
