"""Score a folder of try-on images: paired SSIM, LPIPS, and FID against the persons' photos.

    python scripts/evaluate.py --results_dir results/pf --dataroot VITON_test \\
        --pairs VITON_test/test_pairs_same.txt --metrics ssim,lpips --out scores.json

Try-on images are ``{person_stem}__{cloth_stem}.png`` in --results_dir; the persons' photos are
found in --dataroot by its layout (``--dataset``: VITON's test_img/, VITON-HD's test/image/,
DressCode's images/). The protocol and the weight rules are in ``utils/metrics/folders.py``:
pretrained backbones come from the torch hub cache or from --fid_weights /
--lpips_backbone_weights, never from the network.
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter, given_on_command_line, unused_flags  # noqa: E402
from common.devices import pick_device  # noqa: E402
from common.errors import UserError, exit_on_user_error  # noqa: E402
from common.results import (  # noqa: E402
    check_unique_result_names,
    output_file,
    write_json_output,
)
from data.datasets import DataOptions, add_data_arguments, pair_samples  # noqa: E402
from data.files import DatasetError, person_id, read_pairs, read_text, resolve_path  # noqa: E402
from data.fitted_pairs import category_unused  # noqa: E402
from utils.inference.model import memory_named  # noqa: E402
from utils.metrics.folders import (  # noqa: E402
    METRIC_NAMES,
    applicable_metrics,
    evaluate_folders,
    format_table,
    metric_names,
    unused_score_flags,
)
from utils.metrics.images import MetricsError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--results_dir", required=True,
                        help="folder of try-on images named {person_stem}__{cloth_stem}.png")
    parser.add_argument("--dataroot", required=True,
                        help="the test data test.py read (its layout: --dataset)")
    parser.add_argument("--pairs", required=True,
                        help="paired (for SSIM/LPIPS), unpaired (for FID), or a pairs file, one "
                             "'person.jpg cloth.jpg' per line (a name inside --dataroot, or a "
                             "path)")
    add_data_arguments(parser, parsing=False, masks=(),
                       no_masks="for computing garment masks, which scoring does not read")
    parser.add_argument("--metrics", default=",".join(METRIC_NAMES),
                        help="comma-separated subset of ssim,lpips,fid")
    parser.add_argument("--device", default="cpu",
                        help="torch device for LPIPS and Inception, e.g. cpu or cuda:0")
    parser.add_argument("--batch_size", type=int, default=16,
                        help="images per forward pass; it bounds the memory scoring takes (about "
                             "5 GB in batches of 16 at 1024x768, SSIM in float64)")
    parser.add_argument("--lpips_net", default="alex", choices=["alex", "vgg"],
                        help="LPIPS trunk network")
    parser.add_argument("--fid_weights", default=None,
                        help="path to pt_inception-2015-12-05-6726825d.pth; when not given, "
                             "the torch hub cache")
    parser.add_argument("--lpips_backbone_weights", default=None,
                        help="path to alexnet-owt-7be5be79.pth (or vgg16-397923af.pth with "
                             "--lpips_net vgg); when not given, the torch hub cache")
    parser.add_argument("--allow_random_weights", action="store_true",
                        help="use random backbones where a weight file is missing: for tests "
                             "and demos only, the scores are not comparable to published "
                             "numbers")
    parser.add_argument("--out", default=None,
                        help="write the scores (with per-pair values) to this JSON file (.json)")
    args = parser.parse_args(argv)
    args.given_flags = given_on_command_line(parser, argv)
    unused = unused_flags(args.given_flags, [
        category_unused(args.dataset), *unused_score_flags(args.metrics)])
    if unused:
        parser.error(unused)
    try:
        args.metrics = metric_names(args.metrics)
    except MetricsError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    with exit_on_user_error():
        return score(args)


def _is_scores_file(path: str) -> bool:
    """Whether the file at ``path`` is scores this command wrote (replaced by a new run):
    a JSON object with their keys."""
    try:
        scores = json.loads(read_text(path, "a scores file", limit=64 << 20))
    except (DatasetError, ValueError):
        return False
    return isinstance(scores, dict) and "num_pairs" in scores


def score(args) -> dict:
    if args.batch_size < 1:
        raise UserError(f"--batch_size {args.batch_size}: must be at least 1")
    device = pick_device(args.device)   # an unknown device is one line, before any scoring
    if args.out is None:
        return _score_within_memory(args, device)
    # A folder, the pairs file, a non-JSON name: refused at once; folders made for --out are
    # removed again when scoring fails.
    if Path(args.out).suffix.lower() != ".json":
        raise UserError(f"--out {args.out}: the scores are JSON; give a .json file name")
    pairs_file = resolve_path(args.dataroot, args.pairs)
    with output_file(args.out, "--out",
                     (pairs_file,) if os.path.isfile(pairs_file) else ()) as out:
        if out.is_file() and not _is_scores_file(str(out)):
            raise UserError(f"--out {args.out}: exists and is not a scores file this command "
                            f"wrote (a keypoints .json?); give another file name")
        scores = _score_within_memory(args, device)
        write_json_output(out, scores, "--out")
    print(f"scores written to {out}")
    return scores


def _score_within_memory(args, device) -> dict:
    """``_score``; running out of memory is one line saying to lower --batch_size."""
    with memory_named(f"the scoring in batches of {args.batch_size}",
                      "lower --batch_size, or score on another --device"):
        return _score(args, device)


def _score(args, device) -> dict:
    if args.dataset == "viton" and args.pairs not in ("paired", "unpaired"):
        # Scoring needs only the persons' photos: a VITON root with test_img/ will do.
        names = read_pairs(resolve_path(args.dataroot, args.pairs))
        pairs = [(os.path.abspath(os.path.join(args.dataroot, "test_img", person)), cloth)
                 for person, cloth in names]
        paired = all(person_id(person) == person_id(cloth) for person, cloth in names)
    else:
        samples = pair_samples(DataOptions.from_config(args), args.dataroot, args.pairs)
        pairs = [(os.path.abspath(sample.person.image), sample.garment.image)
                 for sample in samples]
        paired = all(sample.person.id == sample.garment.id for sample in samples)
    metrics = applicable_metrics(args.metrics, paired, getattr(args, "given_flags", ()))
    check_unique_result_names(pairs)
    # evaluate_folders reads every image's header (format, pixel limit) before decoding any.
    max_pixels = DataOptions.from_config(args).max_pixels
    scores = evaluate_folders(args.results_dir, args.dataroot, pairs, metrics=metrics,
                              device=device, batch_size=args.batch_size,
                              fid_weights=args.fid_weights,
                              lpips_backbone_weights=args.lpips_backbone_weights,
                              allow_random_weights=args.allow_random_weights,
                              lpips_net=args.lpips_net, max_pixels=max_pixels)
    print(format_table(scores))
    return scores


if __name__ == "__main__":
    main()
