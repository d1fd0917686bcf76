"""What each pixel of a drawn person can be: the regions it is drawn with, the three parsing
schemes written from them (VITON's 14 classes, CIHP, ATR), the DensePose parts, and which
regions are the target garment of each category.

"Left" and "right" are the person's own: a person facing the camera has their right side on
the image's left.
"""

from typing import Sequence, Tuple, Union

import numpy as np

from data.samples import CATEGORIES

# Parsing labels (ACGPN scheme) and DensePose I values drawn here.
LABEL = dict(background=0, hair=1, clothes=4, left_shoe=5, right_shoe=6, noise=7, pants=8,
             left_leg=9, right_leg=10, left_arm=11, face=12, right_arm=13)
PART = dict(torso=2, right_hand=3, left_hand=4, left_foot=5, right_foot=6, upper_leg_right=7,
            upper_leg_left=8, lower_leg_right=11, lower_leg_left=12, upper_arm_left=15,
            upper_arm_right=16, lower_arm_left=19, lower_arm_right=20, head_right=23,
            head_left=24)

# The regions the person is drawn with, finer than any parsing scheme: the neck is its own
# region and the garments keep their kind. "noise" is the part of an upper-body target that
# some parsers give a class of its own (ACGPN's 7, merged into 4 before use); "upper_clothes"
# is the target of the upper body and the kept top of the lower body.
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

# Region -> class of each written scheme: VITON's neck is face (12), pants and skirts are 8, a
# dress is 4; CIHP's neck is torso skin (10); ATR's neck is face (11). The noise region is
# upper clothes outside the 14-class scheme: CIHP and ATR have no class that a converter
# would merge into the garment.
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
    """{region name: class} -> uint8 (256,) table indexed by region value."""
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
    check_category(category)
    mask = np.zeros(regions.shape, bool)
    for name in TARGET_REGIONS[category]:
        mask |= regions == REGION[name]
    return mask


def check_category(category: str) -> None:
    """Raises ValueError unless ``category`` is one of CATEGORIES."""
    if category not in CATEGORIES:
        raise ValueError(f"category={category!r}: expected one of {', '.join(CATEGORIES)}")


def checked_categories(categories: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    """One category or several -> a tuple of distinct CATEGORIES in CATEGORIES' order (the
    order DressCode numbers them in, whatever the order asked); ValueError on an empty,
    unknown or repeated category."""
    if isinstance(categories, str):
        categories = (categories,)
    categories = tuple(categories)
    if not categories:
        raise ValueError("categories: at least one of " + ", ".join(CATEGORIES))
    for category in categories:
        check_category(category)
    if len(set(categories)) != len(categories):
        raise ValueError(f"categories={categories}: each at most once")
    return tuple(c for c in CATEGORIES if c in categories)
