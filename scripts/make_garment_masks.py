"""Write a garment mask for every product photo of a folder (see data/garment_mask.py).

    python scripts/make_garment_masks.py --images VITON_test/test_clothes --out VITON_test/test_edge

Each mask takes its photo's file name (``000001_1.jpg`` -> ``OUT/000001_1.jpg``), as VITON's
``*_edge/`` folders do: single channel, 0 background / 255 garment; JPEG masks are written at
quality 100 and checked to threshold back (at 127) to the same mask. A photo that cannot be read
or shows no garment is reported by name and skipped; the others are still written, and the
exit status is then 1. Notes about a photo (a background that is not light or not uniform,
where the mask may be poor) are printed with its name. Files are written to a temporary name
and renamed, so an interrupted run leaves no partial mask.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter  # noqa: E402
from common.errors import exit_on_user_error  # noqa: E402
from common.results import check_output_folder  # noqa: E402
from data.datasets import add_max_megapixels_argument  # noqa: E402
from data.files import IMAGE_EXTENSIONS, DatasetError  # noqa: E402
from data.garment_mask import GarmentMaskError, garment_mask_from_file  # noqa: E402
from data.mask_files import write_mask  # noqa: E402


def list_images(folder: str) -> list:
    """Names of the photos in ``folder`` (by extension), sorted."""
    return sorted(name for name in os.listdir(folder)
                  if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
                  and os.path.isfile(os.path.join(folder, name)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--images", required=True,
                        help="folder of product photos (garments on a light background)")
    parser.add_argument("--out", required=True,
                        help="folder for the masks, created if missing; same file names as the "
                             "photos")
    parser.add_argument("--grabcut", action="store_true",
                        help="refine each mask with OpenCV's GrabCut (slower)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace masks already in --out (without it they are kept)")
    add_max_megapixels_argument(parser)
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if not os.path.isdir(args.images):
            raise DatasetError(f"--images {args.images}: not a folder")
        names = list_images(args.images)
        if not names:
            raise DatasetError(f"--images {args.images}: no photos "
                               f"({', '.join(IMAGE_EXTENSIONS)})")
        # Masks take the photos' file names: a folder that is (or, through a link, resolves
        # to) the photos' own would overwrite every photo.
        check_output_folder(args.out, "--out", inputs=(args.images,))
        return write_masks(args, names)


def write_masks(args, names: list) -> int:

    start = time.perf_counter()
    written, kept, failed = 0, 0, []
    # A mask the folder holds under another extension is the garment's mask (the datasets find
    # masks by stem): it is kept, or replaced in place, never joined by a second one.
    present = ({os.path.splitext(name)[0]: name for name in list_images(args.out)}
               if os.path.isdir(args.out) else {})
    for name in names:
        target = os.path.join(args.out, present.get(os.path.splitext(name)[0], name))
        if os.path.exists(target) and not args.overwrite:
            kept += 1
            continue
        try:
            result = garment_mask_from_file(os.path.join(args.images, name), grabcut=args.grabcut,
                                            max_pixels=int(args.max_megapixels * 1e6))
            write_mask(target, result.mask)
        except (DatasetError, GarmentMaskError, OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            failed.append(name)
            continue
        for note in result.notes:
            print(f"note: {note}")
        written += 1

    seconds = time.perf_counter() - start
    done = written + len(failed)
    print(f"wrote {written} masks to {args.out} in {seconds:.1f} s "
          f"({1000 * seconds / max(done, 1):.0f} ms per photo)"
          + (f"; kept {kept} existing (--overwrite replaces them)" if kept else "")
          + (f"; {len(failed)} failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
