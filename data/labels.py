"""Human parsing in other label schemes -> the 14-class scheme PF-AFN trains with.

Target scheme (ACGPN's, PF-AFN's ``train_label``): 0 background, 1 hair, 4 upper clothes,
5 left shoe, 6 right shoe, 7 "noise" (merged into 4 before use, data.inputs.merge_noise_label),
8 pants, 9 left leg, 10 right leg, 11 left arm, 12 face, 13 right arm; 2 and 3 are unused by
PF-AFN's masks (2 receives ATR's bag, so a bag is neither garment, skin nor preserved clothes).

Source schemes:
    lip   LIP, 20 classes (SCHP's LIP weights): 0 background, 1 hat, 2 hair, 3 glove,
          4 sunglasses, 5 upper clothes, 6 dress, 7 coat, 8 socks, 9 pants, 10 jumpsuits,
          11 scarf, 12 skirt, 13 face, 14 left arm, 15 right arm, 16 left leg, 17 right leg,
          18 left shoe, 19 right shoe.
    cihp  CIHP, 20 classes (CIHP_PGN, VITON-HD's image-parse): LIP's numbering, except 10
          is torso skin, i.e. the neck in try-on photos.
    atr   ATR, 18 classes (SCHP's ATR weights, DressCode's label_maps): 0 background, 1 hat,
          2 hair, 3 sunglasses, 4 upper clothes, 5 skirt, 6 pants, 7 dress, 8 belt,
          9 left shoe, 10 right shoe, 11 face, 12 left leg, 13 right leg, 14 left arm,
          15 right arm, 16 bag, 17 scarf.
    viton the 14-class scheme itself (identity, values 0..13).

SCHP's third set of weights, Pascal-Person-Part (7 body-part classes, no clothes), cannot
give these classes and is not accepted.

A conversion is a table ``{source_label: target_label}`` and one function applying any table
(``convert_labels``). The tables collapse skirt into pants and dress into upper clothes: right
for upper-body try-on, not for lower-body or dress try-on.
"""

from typing import Mapping, Optional

import numpy as np

from common.errors import UserError
from data.files import DatasetError, decode_index_image, single_channel

NUM_LABELS = 14          # the 14-class scheme, values 0..13 (2 and 3 unused by PF-AFN)
LABEL_SCHEMES = ("viton", "lip", "cihp", "atr")
NECK_CHOICES = ("skin", "face", "garment", "background")

NOISE = 7           # target class merged into upper clothes before use
CIHP_NECK = 10      # CIHP's torso-skin class: the neck in try-on photos

NECK = 3            # the 14-class scheme's unused 3 holds the neck: skin the generator repaints
# CIHP's neck for each ``neck``: skin -> 3, neither garment nor background, skin the generator
# may repaint for another neckline, like the arms (data.inputs); face -> 12, preserved, as
# LIP-trained parsers label VITON's necks; garment -> 7, merged into upper clothes (LIP's
# table's label 10); background -> 0.
NECK_TARGETS = {"skin": NECK, "face": 12, "garment": NOISE, "background": 0}
NECK_HELP = ("what CIHP's neck (label 10) becomes: skin (3, neck skin the generator may "
             "repaint), face (12, kept as it is), garment (7, merged into upper clothes) or "
             "background (0)")

VITON_TO_VITON = {label: label for label in range(14)}

# LIP 20 -> 14 (the table used with SCHP to make ACGPN-style data). Glove, socks, jumpsuits
# and scarf have no class of their own: they become noise, merged into upper clothes later.
LIP_TO_VITON = {
    0: 0,    # background
    1: 1,    # hat -> hair
    2: 1,    # hair
    3: NOISE,  # glove
    4: 12,   # sunglasses -> face
    5: 4,    # upper clothes
    6: 4,    # dress -> upper clothes
    7: 4,    # coat -> upper clothes
    8: NOISE,  # socks
    9: 8,    # pants
    10: NOISE,  # jumpsuits
    11: NOISE,  # scarf
    12: 8,   # skirt -> pants
    13: 12,  # face
    14: 11,  # left arm
    15: 13,  # right arm
    16: 9,   # left leg
    17: 10,  # right leg
    18: 5,   # left shoe
    19: 6,   # right shoe
}

# ATR 18 -> 14, DM-VTON's table for DressCode. Its scarf -> 11 (left arm) is kept as that
# table has it.
ATR_TO_VITON = {
    0: 0,    # background
    1: 1,    # hat -> hair
    2: 1,    # hair
    3: 12,   # sunglasses -> face
    4: 4,    # upper clothes
    5: 8,    # skirt -> pants
    6: 8,    # pants
    7: 4,    # dress -> upper clothes
    8: 8,    # belt -> pants
    9: 5,    # left shoe
    10: 6,   # right shoe
    11: 12,  # face
    12: 9,   # left leg
    13: 10,  # right leg
    14: 11,  # left arm
    15: 13,  # right arm
    16: 2,   # bag -> 2, a class no mask of PF-AFN uses
    17: 11,  # scarf
}

SCHEME_NAMES = {"viton": "14-class VITON", "lip": "LIP", "cihp": "CIHP", "atr": "ATR"}


class LabelError(UserError, ValueError):
    """Label values a conversion table does not cover; the message names the source."""


def cihp_table(neck: str = "skin") -> dict:
    """CIHP 20 -> 14: LIP's table with label 10 (torso skin / neck) sent to ``NECK_TARGETS[neck]``
    (default "skin": 12; see label_table)."""
    if neck not in NECK_TARGETS:
        raise ValueError(f"neck={neck!r}: expected one of {', '.join(NECK_CHOICES)}")
    table = dict(LIP_TO_VITON)
    table[CIHP_NECK] = NECK_TARGETS[neck]
    return table


def label_table(scheme: str, neck: str = "skin") -> dict:
    """The ``{source_label: target_label}`` table of ``scheme`` (one of LABEL_SCHEMES).

    ``neck`` only matters for "cihp", whose label 10 is the neck (torso skin):
      "skin" (default) -> 3, neck skin the generator may repaint (not garment the warp must
          cover, not background);
      "face" -> 12, preserved with the face, as VITON's own parsing has necks;
      "garment" -> 7 (noise), merged into upper clothes later, as LIP's table treats its 10;
      "background" -> 0.
    """
    if neck not in NECK_TARGETS:
        raise ValueError(f"neck={neck!r}: expected one of {', '.join(NECK_CHOICES)}")
    if scheme == "viton":
        return dict(VITON_TO_VITON)
    if scheme == "lip":
        return dict(LIP_TO_VITON)
    if scheme == "cihp":
        return cihp_table(neck)
    if scheme == "atr":
        return dict(ATR_TO_VITON)
    raise ValueError(f"label scheme {scheme!r}: expected one of {', '.join(LABEL_SCHEMES)}")


def lookup_table(table: Mapping[int, int]) -> np.ndarray:
    """A table as a uint8 (256,) lookup array indexed by source label; 255 marks the labels
    the table lacks (no target may be 255)."""
    lut = np.full(256, 255, dtype=np.uint8)
    for source, target in table.items():
        if not (0 <= int(source) <= 255 and 0 <= int(target) <= 254):
            raise ValueError(f"table entry {source} -> {target} outside 0..255 -> 0..254")
        lut[int(source)] = int(target)
    return lut


def convert_labels(labels: np.ndarray, table: Mapping[int, int],
                   source: str = "<labels>") -> np.ndarray:
    """Map every label through ``table``.

    Args:
        labels: integer array of any shape, source-scheme labels.
        table: ``{source_label: target_label}``, sources in 0..255, targets in 0..254.
        source: what the labels came from (a file name), for the error message.

    Returns:
        uint8 array of the same shape with the target labels.

    Raises:
        LabelError naming ``source`` and the values the table lacks.
    """
    labels = np.asarray(labels)
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise LabelError(f"{source}: labels of dtype {labels.dtype}; expected integers")
    lut = lookup_table(table)
    if labels.size == 0:
        return labels.astype(np.uint8)
    if labels.dtype == np.uint8 or (int(labels.min()) >= 0 and int(labels.max()) <= 255):
        converted = lut[labels]
        # 255 is no table's target (lookup_table), so it marks exactly the unknown labels.
        if not (converted == 255).any():
            return converted
    unknown = [int(v) for v in np.unique(labels) if not (0 <= v <= 255 and lut[int(v)] != 255)]
    raise LabelError(f"{source}: label values {unknown[:8]} are not in the table "
                     f"(it maps {sorted(int(k) for k in table)})")


def read_label(path: str, max_pixels: Optional[int] = None) -> np.ndarray:
    """Parsing labels of the 14-class scheme -> uint8 (h, w) with values 0..13.

    Grey images hold the class index; palette images hold it as the palette index; RGB images
    are accepted only when the three channels agree (decode_index_image). Labels of other
    schemes: data.labels.read_label_map.
    """
    array, mode = decode_index_image(path, max_pixels)
    return _check_labels(single_channel(array, mode, path, "label image"), path)


def _scaled(values: list) -> str:
    """A hint for labels an image tool widened to 16 bits (each value times 257)."""
    return ("; 8-bit labels widened to 16 bits (times 257)? save them as 8-bit"
            if values and all(value % 257 == 0 for value in values) else "")


def _check_labels(array: np.ndarray, path: str) -> np.ndarray:
    if array.ndim != 2:
        raise DatasetError(f"{path}: label image has shape {array.shape}; expected (H, W)")
    if int(array.max()) >= NUM_LABELS or int(array.min()) < 0:
        bad = np.unique(array[(array >= NUM_LABELS) | (array < 0)])[:8].tolist()
        raise DatasetError(f"{path}: label values {bad} outside the parsing scheme 0..13"
                           + _scaled(bad))
    return array.astype(np.uint8, copy=False)


def read_label_map(path: str, scheme: str = "viton", neck: str = "skin",
                   max_pixels: Optional[int] = None) -> np.ndarray:
    """A parsing image of ``scheme`` -> uint8 (h, w) labels of the 14-class scheme (0..13).

    Grey PNGs hold the class index; palette PNGs hold it as the palette index (SCHP and
    VITON-HD's image-parse are palette images: their colours are not read); RGB images are
    accepted when their three channels agree. Values are checked against the source scheme's range
    (0..19 for LIP and CIHP, 0..17 for ATR, 0..13 for "viton"), then converted.

    Raises:
        DatasetError naming the file: unreadable, more than one channel, values outside the
        source scheme.
    """
    if neck not in NECK_TARGETS:
        raise ValueError(f"neck={neck!r}: expected one of {', '.join(NECK_CHOICES)}")
    if scheme == "viton":
        return read_label(path, max_pixels)
    table = label_table(scheme, neck)
    array, mode = decode_index_image(path, max_pixels)
    array = single_channel(array, mode, path, "label image")
    count = len(table)
    if int(array.max()) >= count:
        bad = np.unique(array[array >= count])[:8].tolist()
        raise DatasetError(f"{path}: label values {bad} outside the {SCHEME_NAMES[scheme]} "
                           f"scheme 0..{count - 1} (label scheme {scheme!r})" + _scaled(bad))
    try:
        return convert_labels(array, table, path)
    except LabelError as error:
        raise DatasetError(str(error)) from None
