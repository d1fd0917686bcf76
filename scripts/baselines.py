"""Simple try-on baselines, written like test.py's results so scripts/evaluate.py scores them.

``paste``: the garment, unwarped, pasted over the person where its product-image mask is:
``tryon = garment * edge + person * (1 - edge)``. A try-on method should beat it easily.

    python scripts/baselines.py --dataroot VITON_test --pairs test_pairs_same.txt \\
        --results_dir results/paste
"""

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.cli import HelpFormatter, given_on_command_line, unused_flags  # noqa: E402
from common.errors import exit_on_user_error  # noqa: E402
from common.images import to_uint8  # noqa: E402
from common.results import (  # noqa: E402
    check_unique_result_names,
    data_folders,
    output_folder,
    write_result,
)
from data.datasets import DataOptions, add_data_arguments  # noqa: E402
from data.fitted_pairs import category_unused, make_fitted_pairs_dataset, to_photo  # noqa: E402
from data.photo_fit import FIT_MODES  # noqa: E402


def paste(person: torch.Tensor, garment: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
    return garment * edge + person * (1 - edge)


BASELINES = {"paste": paste}


# The working size's bounds: a person is drawn at 16 pixels, and 4096 is past every dataset.
MIN_SIDE, MAX_SIDE = 16, 4096


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--dataroot", required=True, help="the test data (its layout: --dataset)")
    p.add_argument("--pairs", default="paired",
                   help="paired, unpaired, or a pairs file (a name inside --dataroot, or a path)")
    add_data_arguments(p, parsing=False)
    p.add_argument("--results_dir", required=True, help="folder for the PNGs")
    p.add_argument("--method", default="paste", choices=sorted(BASELINES), help="the baseline")
    p.add_argument("--height", type=int, default=256, help="working height")
    p.add_argument("--width", type=int, default=192, help="working width")
    p.add_argument("--fit", default="pad", choices=FIT_MODES,
                   help="how person photos of another aspect ratio are fitted, as test.py does")
    args = p.parse_args(argv)
    unused = unused_flags(given_on_command_line(p, argv), [category_unused(args.dataset)])
    if unused:
        p.error(unused)
    for flag in ("height", "width"):
        if not MIN_SIDE <= getattr(args, flag) <= MAX_SIDE:
            p.error(f"--{flag} {getattr(args, flag)}: expected {MIN_SIDE} to {MAX_SIDE} pixels")
    with exit_on_user_error():
        write_baseline(args)


def write_baseline(args) -> None:
    with output_folder(args.results_dir, "--results_dir",
                       inputs=data_folders(args.dataroot)) as results:
        options = DataOptions.from_config(args)
        dataset = make_fitted_pairs_dataset(options, args.dataroot, args.pairs, args.height,
                                            args.width, args.fit)
        check_unique_result_names([(pair.person.image, pair.garment.image)
                                   for pair in dataset.pairs])
        method = BASELINES[args.method]
        count = 0
        for batch in DataLoader(dataset, batch_size=16, num_workers=0):
            out = method(batch["image"], batch["garment"], batch["garment_edge"])
            for i, (person, cloth) in enumerate(zip(batch["person_name"], batch["cloth_name"])):
                size = (int(batch["original_size"][0][i]), int(batch["original_size"][1][i]))
                image = to_uint8(out[i])
                if size != (args.height, args.width):
                    image = to_photo(image, size, args.fit, batch["person_path"][i],
                                     options.max_pixels)
                write_result(results, person, cloth, image)
                count += 1
        print(f"wrote {count} '{args.method}' images to {results}")


if __name__ == "__main__":
    main()
