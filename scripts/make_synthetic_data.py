"""Write a synthetic try-on dataset in the VITON, VITON-HD or DressCode layout (data/synthetic/).

    python scripts/make_synthetic_data.py --out data_synth --num_train 2000 --num_test 200 --seed 0
    python scripts/make_synthetic_data.py --out data_synth --layout dresscode \\
        --category upper_body,lower_body,dresses --num_train 200 --num_test 20
"""

import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from data.synthetic import BACKDROPS, CATEGORIES, LAYOUTS, make_dataset  # noqa: E402

# The folders each layout writes under --out.
DATASET_FOLDERS = {"viton": ("VITON_traindata", "VITON_test", "lower_body", "dresses"),
                   "vitonhd": ("VITON-HD",), "dresscode": ("DressCode",)}
# Left in each of those folders: --overwrite replaces only folders that hold it.
MARKER = ".synthetic"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=HelpFormatter)
    parser.add_argument("--out", required=True,
                        help="output folder; the layout's folders go inside (VITON_traindata/ and "
                             "VITON_test/, VITON-HD/, or DressCode/)")
    parser.add_argument("--num_train", type=int, default=1000, help="training samples per category")
    parser.add_argument("--num_test", type=int, default=100,
                        help="test samples per category (pairs files list each once)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed; the same seed writes the same files")
    parser.add_argument("--height", type=int, default=256, help="image height")
    parser.add_argument("--width", type=int, default=192, help="image width")
    parser.add_argument("--workers", type=int, default=1, help="processes drawing in parallel")
    parser.add_argument("--layout", default="viton", choices=LAYOUTS,
                        help="viton: PF-AFN's VITON_traindata/VITON_test (14-class labels); "
                             "vitonhd: VITON-HD as distributed (CIHP labels, BODY_25 pose, upper "
                             "body only); dresscode: DressCode as distributed (ATR labels)")
    parser.add_argument("--category", default="upper_body",
                        help="garment categories, comma-separated: " + ", ".join(CATEGORIES) +
                             "; with --layout viton the upper body goes to OUT/, the others to "
                             "OUT/<category>/")
    parser.add_argument("--backdrop", default="studio", choices=BACKDROPS,
                        help="studio: one light neutral backdrop whose brightness varies a little "
                             "from photo to photo, as in VITON; tinted: a brightness and colour "
                             "cast per photo, which the parser-based teacher (it never sees the "
                             "backdrop) and so its students cannot learn")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the dataset folders that --out already holds, when this "
                             "tool wrote them (no other folder is ever deleted)")
    parser.add_argument("--old_names", action="store_true",
                        help="VITON-HD: the older folder names image-parse, openpose-json and "
                             "openpose-img instead of image-parse-v3, openpose_json, openpose_img")
    args = parser.parse_args(argv)
    if args.num_train < 0 or args.num_test < 0:
        parser.error("--num_train and --num_test must be >= 0")
    if args.height < 32 or args.width < 24:
        parser.error("--height/--width too small to draw a person (minimum 32x24)")
    categories = list(CATEGORIES) if args.category.strip() == "all" else [
        c.strip() for c in args.category.split(",") if c.strip()]
    unknown = [c for c in categories if c not in CATEGORIES]
    if not categories or unknown:
        parser.error(f"--category: expected a comma-separated list of {', '.join(CATEGORIES)}"
                     f" (got {args.category!r})")
    if len(set(categories)) != len(categories):
        parser.error(f"--category: {args.category!r} names a category twice")
    if args.layout == "vitonhd" and categories != ["upper_body"]:
        parser.error("--layout vitonhd holds upper-body garments only (--category upper_body)")
    if args.old_names and args.layout != "vitonhd":
        parser.error("--old_names applies to --layout vitonhd only")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out}: exists and is not a folder")
    held = [name for name in DATASET_FOLDERS[args.layout]
            if os.path.isdir(os.path.join(args.out, name))
            and os.listdir(os.path.join(args.out, name))]
    if held and not args.overwrite:
        parser.error(f"--out {args.out} already holds {', '.join(held)}; this tool writes its "
                     f"files there: choose another --out, or --overwrite to replace them")
    foreign = [name for name in held if not os.path.isfile(os.path.join(args.out, name, MARKER))]
    if foreign:
        parser.error(f"--overwrite: {', '.join(os.path.join(args.out, name) for name in foreign)} "
                     f"holds files this tool did not write (no {MARKER} inside), so it is not "
                     f"replaced: choose another --out, or remove it yourself")
    for name in held:
        shutil.rmtree(os.path.join(args.out, name))
    start = time.perf_counter()
    with exit_on_user_error():
        try:
            roots = make_dataset(args.out, args.num_train, args.num_test, args.seed,
                                 args.height, args.width, args.workers, layout=args.layout,
                                 categories=categories, old_names=args.old_names,
                                 backdrop=args.backdrop)
            for name in DATASET_FOLDERS[args.layout]:
                if os.path.isdir(os.path.join(args.out, name)):
                    open(os.path.join(args.out, name, MARKER), "w").close()
        except OSError as error:
            raise UserError(f"--out {args.out}: cannot write the dataset "
                            f"({error.strerror or error})") from None
    seconds = time.perf_counter() - start
    total = (args.num_train + args.num_test) * len(categories)
    where = ", ".join(f"{name}: {path}" for name, path in roots.items())
    print(f"wrote {args.num_train} training and {args.num_test} test samples per category "
          f"({', '.join(categories)}; {args.layout} layout) in {seconds:.1f} s "
          f"({total / max(seconds, 1e-9):.0f} samples/s); {where}")


if __name__ == "__main__":
    main()
