"""Score garment masks against true masks: intersection over union per photo, mean and worst.

    python scripts/eval_garment_masks.py --images photos/ --true true_masks/ [--masks masks/]

Photos, masks and true masks are matched by file stem (``0001.jpg`` <-> ``0001.png``). Masks
are read from --masks, as scripts/make_garment_masks.py writes them; without --masks they are
computed here as scripts/make_garment_masks.py would (data/garment_mask.py: a PNG's alpha
channel when it has one, unless --ignore_alpha; --grabcut to refine; a photo where none is
found scores 0). A mask or true mask is garment where it is > 127. A photo lacking a mask or a
true mask is reported and counts as a failure (exit status 1).
``python -m tests.product_photos --out DIR`` writes photos with true masks (DIR/images, DIR/true)
to try it (``--alpha``: as cut-outs).
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter  # noqa: E402
from common.errors import exit_on_user_error  # noqa: E402
from data.alpha import read_alpha  # noqa: E402
from data.datasets import add_max_megapixels_argument  # noqa: E402
from data.files import IMAGE_EXTENSIONS, DatasetError, read_gray, read_rgb  # noqa: E402
from data.garment_mask import GarmentMaskError, compute_garment_mask  # noqa: E402


def stems(folder: str) -> dict:
    """stem -> file name for the images of ``folder``; two files of one stem are an error
    (photos and masks are matched by stem)."""
    if not os.path.isdir(folder):
        raise DatasetError(f"{folder}: not a folder")
    found = {}
    for name in sorted(os.listdir(folder)):
        if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
            stem = os.path.splitext(name)[0]
            if stem in found:
                raise DatasetError(f"{folder}: {found[stem]} and {name} share the stem {stem}, "
                                   f"by which photos and masks are matched; keep one")
            found[stem] = name
    return found


def iou(mask: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape (1.0 when both are empty)."""
    union = np.logical_or(mask, true).sum()
    return float(np.logical_and(mask, true).sum() / union) if union else 1.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--images", required=True,
                        help="folder of product photos: the stems scored")
    parser.add_argument("--true", required=True, help="folder of true masks (> 127 = garment)")
    parser.add_argument("--masks", default=None,
                        help="folder of masks to score; when not given, they are computed here")
    parser.add_argument("--grabcut", action="store_true",
                        help="when computing masks, refine them with GrabCut")
    parser.add_argument("--ignore_alpha", action="store_true",
                        help="when computing masks, leave a PNG's alpha channel unused")
    parser.add_argument("--show", type=int, default=10, help="list this many of the worst photos")
    add_max_megapixels_argument(parser)
    args = parser.parse_args(argv)
    with exit_on_user_error():
        return evaluate(args)


def evaluate(args) -> int:
    photos = stems(args.images)
    truths = stems(args.true)
    masks = stems(args.masks) if args.masks else None
    if not photos:
        raise DatasetError(f"--images {args.images}: no photos")

    scores, problems, from_alpha = [], [], 0
    limit = int(args.max_megapixels * 1e6)
    start = time.perf_counter()
    for stem, name in photos.items():
        try:
            if stem not in truths:
                raise DatasetError(f"{stem}: no true mask in {args.true}")
            true = read_gray(os.path.join(args.true, truths[stem]), limit) > 127
            if masks is None:
                path = os.path.join(args.images, name)
                alpha = None if args.ignore_alpha else read_alpha(path, limit)
                from_alpha += alpha is not None
                try:
                    mask = compute_garment_mask(read_rgb(path, limit), grabcut=args.grabcut,
                                                source=path, alpha=alpha).mask > 127
                except GarmentMaskError as error:
                    # No mask is a wrong mask: it scores 0, not a gap in the mean.
                    print(f"error: {error}", file=sys.stderr)
                    mask = np.zeros_like(true)
            elif stem not in masks:
                raise DatasetError(f"{stem}: no mask in {args.masks}")
            else:
                mask = read_gray(os.path.join(args.masks, masks[stem]), limit) > 127
            if mask.shape != true.shape:
                raise DatasetError(f"{stem}: mask of {mask.shape[0]}x{mask.shape[1]} pixels, true "
                                   f"mask of {true.shape[0]}x{true.shape[1]}")
        except DatasetError as error:
            problems.append(str(error))
            continue
        scores.append((iou(mask, true), stem))
    seconds = time.perf_counter() - start

    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if scores:
        values = np.array([value for value, _ in scores])
        for value, stem in sorted(scores)[:args.show]:
            print(f"  {stem}: IoU {value:.4f}")
        print(f"{len(values)} photos: mean IoU {values.mean():.4f}, worst {values.min():.4f}, "
              f"median {np.median(values):.4f}, below 0.95: {int((values < 0.95).sum())}"
              + (f" ({1000 * seconds / len(photos):.0f} ms per photo; {from_alpha} masks from an "
                 f"alpha channel)" if masks is None else ""))
    if problems:
        print(f"{len(problems)} photos not scored", file=sys.stderr)
    return 1 if problems or not scores else 0


if __name__ == "__main__":
    sys.exit(main())
