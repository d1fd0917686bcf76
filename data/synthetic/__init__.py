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

The person is drawn as regions (``REGION``), finer than any parsing scheme; each scheme is a
table from the regions (``scheme_labels``). The photo's target-garment pixels are exactly the
region of the target (``garment_region``); DensePose part indices follow the body parts, and
the 18 COCO keypoints are the skeleton the body was drawn from.

This package is the test oracle of the dataset readers (data.datasets and the layouts): it
writes their files without using them.

Modules, from the bottom:
    regions     the region vocabulary, the parsing schemes, DensePose parts, target regions
    drawing     sub-pixel drawing primitives and random colours
    garments    product images: outlines, fabric patterns, fitting points (``Garment``)
    warping     smooth fields and backward maps of a worn garment, their flow
    body        the skeleton (torso frame, limbs, head) and its keypoints
    fitting     a top, dress or lower garment fitted to a body
    photo       painting the photo from the region map
    person      ``draw_sample``: pose, regions and DensePose, keypoints, photo, labels
    renderings  skeleton and DensePose pictures
    writing     image, JSON and palette-PNG files
    viton, vitonhd, dresscode   one sample's files in each layout
    dataset     ``make_dataset``: folders, samples, pairs files
"""

from data.samples import CATEGORIES
from data.synthetic.dataset import LAYOUTS, make_dataset, sample_rng
from data.synthetic.drawing import SCALE, SHIFT
from data.synthetic.dresscode import (
                                      DRESSCODE_FIRST_ID,
                                      DRESSCODE_FOLDERS,
                                      DRESSCODE_KEYPOINT_HEIGHT,
                                      DRESSCODE_KEYPOINT_WIDTH,
                                      DRESSCODE_MISSING,
                                      densepose_uv,
                                      dresscode_first_ids,
                                      dresscode_keypoints,
                                      write_dresscode_sample,
)
from data.synthetic.garments import Garment, draw_garment
from data.synthetic.person import draw_sample
from data.synthetic.photo import BACKDROPS
from data.synthetic.regions import (
                                      ATR,
                                      CIHP,
                                      LABEL,
                                      PART,
                                      REGION,
                                      SCHEMES,
                                      TARGET_REGIONS,
                                      garment_region,
                                      scheme_labels,
)
from data.synthetic.renderings import draw_skeleton, render_densepose
from data.synthetic.viton import TEST_FOLDERS, TRAIN_FOLDERS, write_test_sample, write_train_sample
from data.synthetic.vitonhd import (
                                      VITONHD_FOLDERS,
                                      VITONHD_OLD_FOLDERS,
                                      body25_keypoints,
                                      vitonhd_folders,
                                      write_vitonhd_sample,
)
from data.synthetic.warping import blended_garment_map, garment_map, map_to_flow, smooth_field
from data.synthetic.writing import PARSE_PALETTE

__all__ = [
    "ATR", "BACKDROPS", "CATEGORIES", "CIHP", "DRESSCODE_FIRST_ID", "DRESSCODE_FOLDERS",
    "DRESSCODE_KEYPOINT_HEIGHT", "DRESSCODE_KEYPOINT_WIDTH", "DRESSCODE_MISSING", "LABEL",
    "LAYOUTS", "PARSE_PALETTE", "PART", "REGION", "SCALE", "SCHEMES", "SHIFT", "TARGET_REGIONS",
    "TEST_FOLDERS", "TRAIN_FOLDERS", "VITONHD_FOLDERS", "VITONHD_OLD_FOLDERS", "Garment",
    "blended_garment_map", "body25_keypoints", "densepose_uv", "draw_garment",
    "draw_sample", "draw_skeleton", "dresscode_first_ids", "dresscode_keypoints", "garment_map",
    "garment_region", "make_dataset", "map_to_flow", "render_densepose", "sample_rng",
    "scheme_labels", "smooth_field", "vitonhd_folders", "write_dresscode_sample",
    "write_test_sample", "write_train_sample", "write_vitonhd_sample",
]
