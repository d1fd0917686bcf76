"""The person's photo, painted from the region map: a studio backdrop, skin, hair, trousers
and shoes in flat colours, the worn garments' pixels, and eyes and mouth on the face."""

import cv2
import numpy as np

from data.synthetic.drawing import SCALE, SHIFT, ellipse, fixed, random_colour
from data.synthetic.regions import REGION

_SKIN_REGIONS = ("face", "neck", "left_arm", "right_arm", "left_leg", "right_leg")


# How the backdrop varies from photo to photo (make_dataset's ``backdrop``).
BACKDROPS = ("studio", "tinted")


def check_backdrop(kind: str) -> None:
    """Raises ValueError unless ``kind`` is one of BACKDROPS."""
    if kind not in BACKDROPS:
        raise ValueError(f"backdrop={kind!r}: expected one of {', '.join(BACKDROPS)}")


def _backdrop(rng, height, width, kind):
    """uint8 (H, W, 3): a light backdrop with a faint vertical gradient.

    studio: one light, neutral studio backdrop, as in VITON's photos, whose brightness varies
    by a few levels from photo to photo. tinted: a brightness and a colour cast drawn per photo
    (levels 205..248, each channel +-8 around it), which nothing can learn: the parser-based
    teacher never sees the backdrop (it is outside every preserved region) and its students
    learn from its try-ons, so a try-on's backdrop differs from the photo's by the cast.
    """
    check_backdrop(kind)
    if kind == "studio":
        base = rng.uniform(234, 246) + rng.uniform(-1.5, 1.5, 3)
        shade = rng.uniform(-6, 6)
    else:
        base = rng.uniform(205, 248) + rng.uniform(-8, 8, 3)
        shade = rng.uniform(-10, 10)
    t = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    scene = np.broadcast_to(base + shade * t, (height, width, 3))
    return np.ascontiguousarray(np.clip(scene, 0, 255).astype(np.uint8))


def _region_palette(rng):
    """uint8 (256, 3): the colour of each region value (skin, hair, trousers, shoes; black
    for the rest, which is painted otherwise)."""
    skin = np.array([rng.uniform(120, 235), 0, 0])
    skin[1] = skin[0] * rng.uniform(0.7, 0.85)
    skin[2] = skin[1] * rng.uniform(0.75, 0.9)
    palette = np.zeros((256, 3), np.uint8)
    palette[[REGION[name] for name in _SKIN_REGIONS]] = skin.astype(np.uint8)
    palette[REGION["hair"]] = random_colour(rng, 10, 140)
    palette[REGION["pants"]] = random_colour(rng, 15, 200)
    shoes = random_colour(rng, 10, 120)
    palette[REGION["left_shoe"]] = shoes
    palette[REGION["right_shoe"]] = shoes
    return palette


def _paint_face_features(image, regions, keypoints, unit):
    """Eyes at the eye keypoints and a mouth below the nose (in place), only on the skin of
    the head so the labels stay true."""
    face_pixels = (regions == REGION["face"]) | (regions == REGION["neck"])
    features = np.zeros_like(regions)
    for index in (14, 15):
        if keypoints[index, 2] > 0:
            cv2.circle(features, tuple(fixed(keypoints[index, :2])), int(round(2 * unit * SCALE)),
                       1, -1, cv2.LINE_8, SHIFT)
    if keypoints[0, 2] > 0:
        mouth = keypoints[0, :2] + np.array([0, 7 * unit])
        ellipse(features, mouth, np.array([4, 1.5]) * unit, 0, 1)
    image[(features == 1) & face_pixels] = (40, 25, 25)


def paint_photo(rng, regions, target, worn, keypoints, kept=None, backdrop="studio"):
    """uint8 (H, W, 3) RGB photo of the region map uint8 (H, W).

    Args:
        target: bool (H, W) the target garment's pixels, painted from ``worn`` uint8
            (H, W, 3), the product seen through its map.
        keypoints: (18, 3) COCO-18, where the eyes and mouth go.
        kept: (mask bool (H, W), image uint8 (H, W, 3)), a garment the person keeps on (the
            lower body's top), painted likewise; or None.
    """
    height, width = regions.shape
    scene = _backdrop(rng, height, width, backdrop)
    image = _region_palette(rng)[regions]
    background = regions == REGION["background"]
    image = np.where(background[..., None], scene, image)
    if kept is not None:
        image = np.where(kept[0][..., None], kept[1], image)
    image = np.where(target[..., None], worn, image)
    _paint_face_features(image, regions, keypoints, unit=height / 256.0)
    return image
