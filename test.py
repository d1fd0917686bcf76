"""Try-on images from a person photo and a garment alone (the parser-free student).

A test folder, every pair of a pairs file::

    python test.py --dataroot VITON_test --pairs test_pairs.txt \\
        --warp_checkpoint checkpoints/PFAFN/warp_model_final.pth \\
        --gen_checkpoint checkpoints/PFAFN/gen_model_final.pth --results_dir results/demo

writes one PNG per pair, ``{person_stem}__{cloth_stem}.png``, at the person photo's resolution;
``--save_grid`` adds person | garment | warped garment | try-on strips under ``grids/``. A
folder without ``test_edge/`` gets its garment masks computed from the product photos.

One pair of your own photos, of any size and aspect ratio::

    python test.py --person me.jpg --garment shirt.jpg --checkpoint final.pth --output me_shirt.png

The person photo is fitted to the model's 3:4 frame (``--fit pad``: centred, padded on the
short side with the median colour of the photo's border; ``--fit crop``: the centred 3:4
window) and the try-on is mapped back, so the output has the photo's exact size. The garment
mask is computed from the product photo unless ``--garment_mask`` gives one.

Checkpoints may be the released PF-AFN files (plain state dicts) or this project's stage-4
checkpoint (``--checkpoint`` gives both parts from one file). ``--eval`` scores the results.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from common.cli import (
    REMOVED_FLAGS,
    HelpFormatter,
    given_on_command_line,
    refuse_flags,
    unused_flags,
)
from common.devices import pick_device
from common.errors import exit_on_user_error
from common.images import on_white, to_uint8
from common.results import (
    OutputError,
    check_output_file,
    check_unique_result_names,
    data_folders,
    output_file,
    output_folder,
    result_name,
    write_json_output,
    write_output,
    write_result,
)
from data.alpha import read_alpha
from data.datasets import DataOptions, add_data_arguments, default_mask_cache
from data.files import check_photo_size, read_gray, read_rgb
from data.fitted_pairs import category_unused, make_fitted_pairs_dataset, read_photo, to_photo
from data.photo_fit import FIT_MODES
from utils.inference.loading import add_model_arguments, check_model_arguments, load_model_from_args
from utils.inference.model import memory_named
from utils.inference.photos import garment_mask_for, tryon_photos

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def build_parser() -> argparse.ArgumentParser:
    """test.py's flags: a test folder or one pair, the model, how to run it, the scores."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    folder = p.add_argument_group("a test folder")
    folder.add_argument("--dataroot", default=None,
                        help="the test data: a VITON_test folder (test_img/, test_clothes/ or "
                             "test_color/, optionally test_edge/), or the top folder of "
                             "VITON-HD or DressCode (--dataset)")
    folder.add_argument("--pairs", default="unpaired",
                        help="unpaired (each person with another garment: VITON's and "
                             "VITON-HD's test_pairs.txt, DressCode's test_pairs_unpaired.txt), "
                             "paired (own garments), or a pairs file, one 'person.jpg "
                             "cloth.jpg' per line (a name inside --dataroot, or a path)")
    folder.add_argument("--results_dir", default=None, help="folder for the try-on PNGs")
    folder.add_argument("--save_size", default="photo", choices=["photo", "model"],
                        help="size of the saved try-ons: the person photo's (enlarged from the "
                             "model's frame when the photo is bigger) or the model's")
    add_data_arguments(folder, parsing=False)
    single = p.add_argument_group("one pair of photos")
    single.add_argument("--person", default=None, help="photo of the person, any size")
    single.add_argument("--garment", default=None,
                        help="product photo of the garment (on a light, plain background)")
    single.add_argument("--garment_mask", default=None,
                        help="mask of the garment, the size of --garment (white = garment on "
                             "black; a photo or an inverted mask is refused); when not given, "
                             "computed from the product photo")
    single.add_argument("--output", default=None,
                        help="try-on image to write (PNG or JPEG), the size of --person")
    p.add_argument("--fit", default="pad", choices=FIT_MODES,
                   help="how a person photo of another aspect ratio than the model's frame is "
                        "fitted to it (both modes; garments are always padded): pad (centred, "
                        "with the photo's border colour) or crop (centred); the try-on is "
                        "mapped back to the photo")
    add_model_arguments(p.add_argument_group("model"))
    p.add_argument("--batch_size", type=int, default=8, help="pairs per forward pass")
    p.add_argument("--workers", type=int, default=2, help="data loading processes (0: none)")
    p.add_argument("--save_grid", action="store_true",
                   help="also save person | garment | warped garment | try-on strips")
    metrics = p.add_argument_group("scores (test folders)")
    metrics.add_argument("--eval", action="store_true",
                         help="score the results (SSIM and LPIPS on paired pairs, FID on all)")
    metrics.add_argument("--metrics", default="ssim,lpips,fid", help="metrics for --eval")
    metrics.add_argument("--fid_weights", default=None, help="local FID Inception weights file")
    metrics.add_argument("--lpips_backbone_weights", default=None,
                         help="local LPIPS backbone (AlexNet) weights file")
    metrics.add_argument("--allow_random_weights", action="store_true",
                         help="metrics with random network weights (tests and demos only)")
    refuse_flags(p, {flag: why for flag, why in REMOVED_FLAGS.items()
                     if flag in ("--amp", "--max_pixels", "--allow_random_metric_weights")})
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """The checked flags: one of the two modes, complete, and values that can run."""
    p = build_parser()
    args = p.parse_args(argv)
    args.given_flags = given_on_command_line(p, argv)
    _check_mode(p, args, args.given_flags)
    check_model_arguments(p, args)
    if args.batch_size < 1:
        p.error("--batch_size must be at least 1")
    if args.workers < 0:
        p.error("--workers must be 0 or more")
    return args


# Flags of a test folder only, and of its scores only: given elsewhere, they are refused.
FOLDER_FLAGS = ("pairs", "results_dir", "save_size", "dataset", "category", "mask_cache",
                "rebuild_masks", "batch_size", "workers")
SCORE_FLAGS = ("metrics", "fid_weights", "lpips_backbone_weights", "allow_random_weights")


def _check_mode(p: argparse.ArgumentParser, args: argparse.Namespace, given: set[str]) -> None:
    """Either a test folder with --results_dir, or one complete pair with an image --output;
    ``given``: the flags on the command line."""
    single_flags = [f for f in ("person", "garment", "garment_mask", "output")
                    if getattr(args, f)]
    if single_flags and args.dataroot:
        p.error("give either --dataroot (a test folder) or --person/--garment (one pair), "
                "not both")
    if single_flags:
        lacking = [f"--{f}" for f in ("person", "garment", "output") if not getattr(args, f)]
        if lacking:
            p.error(f"one pair needs --person, --garment and --output; missing "
                    f"{', '.join(lacking)}")
        if args.eval:
            p.error("--eval scores a test folder (--dataroot); one pair has no reference set")
        if Path(args.output).suffix.lower() not in IMAGE_SUFFIXES:
            p.error(f"--output {args.output}: give an image file name ending in "
                    f"{', '.join(IMAGE_SUFFIXES)}")
    elif not args.dataroot:
        p.error("give --dataroot DIR --results_dir DIR (a test folder) or --person PHOTO "
                "--garment PHOTO --output FILE (one pair)")
    elif not args.results_dir:
        p.error("--results_dir is required with --dataroot")
    # the metrics load only to score
    from utils.metrics.folders import MetricsError, metric_names, unused_score_flags
    unused = unused_flags(given, [
        (FOLDER_FLAGS + SCORE_FLAGS, bool(single_flags),
         "a test folder (--dataroot), not one pair"),
        (SCORE_FLAGS, not args.eval, "the scores, which --eval asks"),
        category_unused(args.dataset),
        (("grabcut",), bool(args.garment_mask),
         "a garment mask computed from the product photo, which --garment_mask replaces"),
        *unused_score_flags(args.metrics)])
    if unused:
        p.error(unused)
    try:   # a misspelt metric stops the run before any try-on is written
        args.metrics = metric_names(args.metrics)
    except MetricsError as error:
        p.error(str(error))


def _grid_strip(person, garment, edge, out, index):
    """person | garment | warped garment | try-on for sample ``index``; garments on white, as
    product photos are shown."""
    return torch.cat([person[index].float().cpu(),
                      on_white(garment[index], edge[index]).float().cpu(),
                      on_white(out.warped[index].float(), out.warped_edge[index]).cpu(),
                      out.tryon[index].float().cpu()], dim=2)


def generate(args) -> dict:
    """Every pair of a test folder -> one PNG each in ``--results_dir``; a folder it created
    is removed again when the run stops before writing anything in it."""
    with output_folder(args.results_dir, "--results_dir",
                       inputs=data_folders(args.dataroot)) as results:
        return _generate(args, results)


def _generate(args, results: Path) -> dict:
    if args.save_grid and (results / "grids").exists() and not (results / "grids").is_dir():
        raise OutputError(f"--save_grid: {results / 'grids'} is a file, where the grids go")
    device = pick_device(args.device)
    model = load_model_from_args(args, device)
    height, width = model.height, model.width
    options = DataOptions.from_config(args)
    dataset = make_fitted_pairs_dataset(options, args.dataroot, args.pairs, height, width,
                                        args.fit)
    check_unique_result_names([(pair.person.image, pair.garment.image) for pair in dataset.pairs])
    if args.eval:
        check_scoring(args, dataset.pairs, (height, width))
    if dataset.computes_masks:
        computed = sum(1 for pair in dataset.pairs if pair.garment.mask is None)
        refined = " (those computed refined with GrabCut)" if args.grabcut else ""
        print(f"{computed} of {len(dataset)} pairs have no garment mask file: the masks are "
              f"computed from the product photos (a cut-out's alpha channel where one has "
              f"it){refined} and cached in "
              f"{options.mask_cache or default_mask_cache()}")
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=False,
                        num_workers=args.workers, pin_memory=device.type == "cuda")
    written = resized = 0
    start = time.perf_counter()
    for batch in tqdm(loader, desc="try-on", unit="batch", disable=not sys.stderr.isatty()):
        person, garment, edge = batch["image"], batch["garment"], batch["garment_edge"]
        with memory_named(f"the model on batches of {args.batch_size} at {height}x{width}",
                          "lower --batch_size, or give a smaller frame (--height/--width), or "
                          "another --device"):
            out = model(person, garment, edge)
        for i, (person_name, cloth_name) in enumerate(zip(batch["person_name"],
                                                          batch["cloth_name"])):
            original = (int(batch["original_size"][0][i]), int(batch["original_size"][1][i]))
            tryon = to_uint8(out.tryon[i].float(), model.rounding)
            if args.save_size == "photo" and original != (height, width):
                tryon = to_photo(tryon, original, args.fit, batch["person_path"][i],
                                 options.max_pixels)
                resized += 1
            write_result(results, person_name, cloth_name, tryon)
            if args.save_grid:
                write_output(results / "grids" / result_name(person_name, cloth_name),
                             to_uint8(_grid_strip(person, garment, edge, out, i)), "--save_grid")
            written += 1
    seconds = time.perf_counter() - start
    print(f"wrote {written} try-on images to {results} ({written / max(seconds, 1e-9):.1f} "
          f"images/s on {device}, {height}x{width})")
    if resized:
        print(f"{resized} try-ons were mapped from the model's {height}x{width} frame back to "
              f"their photos' size (--fit {args.fit}); scores of them compare resized try-ons "
              f"with the photos (--save_size model keeps the model's size, as low-resolution "
              f"results are usually scored)")
    # The metrics find each result by the names of its pair and the reference photo by path.
    pairs = [(pair.person.image, pair.garment.image) for pair in dataset.pairs]
    paired = all(pair.person.id == pair.garment.id for pair in dataset.pairs)
    return {"images": written, "seconds": seconds, "pairs": pairs, "paired": paired}


def tryon_pair(args) -> dict:
    """One person photo and one product photo -> ``--output`` at the person photo's size; the
    folders made for it are removed again if the try-on fails."""
    inputs = (args.person, args.garment, args.garment_mask)
    with output_file(args.output, "--output", inputs) as output:
        return _tryon_pair(args, output, inputs)


def _tryon_pair(args, output: Path, inputs: tuple) -> dict:
    grid_path = output.with_name(f"{output.stem}_grid.png")
    if args.save_grid:
        check_output_file(grid_path, "--save_grid", inputs)
    limit = DataOptions.from_config(args).max_pixels
    person_photo = read_photo(args.person, limit)
    check_photo_size(person_photo, args.person)     # before the model is loaded
    garment_photo = read_rgb(args.garment, limit)
    user_mask = read_gray(args.garment_mask, limit) if args.garment_mask else None
    alpha = None if user_mask is not None else read_alpha(args.garment, limit)
    mask, notes = garment_mask_for(
        garment_photo, user_mask, args.grabcut, garment_name=f"garment photo {args.garment}",
        mask_name=f"--garment_mask {args.garment_mask}", alpha=alpha)
    for note in notes:
        print(f"{note}; pass --garment_mask to use your own" if note.startswith("garment mask")
              else f"note: {note}")
    device = pick_device(args.device)
    model = load_model_from_args(args, device)
    with memory_named(f"the model at {model.height}x{model.width}"):
        result = tryon_photos(model, person_photo, garment_photo, mask, args.fit)
    write_output(output, result.tryon, "--output")
    print(f"wrote {output} ({result.tryon.shape[0]}x{result.tryon.shape[1]}; model frame "
          f"{model.height}x{model.width}, --fit {args.fit}, {result.seconds:.2f} s on {device})")
    if args.save_grid:
        strip = np.concatenate([result.frame[key] for key in
                                ("person", "garment", "warped_garment", "tryon")], axis=1)
        write_output(grid_path, strip, "--save_grid")
        print(f"wrote {grid_path} (person | garment | warped garment | try-on)")
    return {"output": str(output), "seconds": result.seconds}


def check_scoring(args, pairs: list, model_size: tuple[int, int]) -> None:
    """Stop before any try-on is written when ``--eval`` cannot score the ``pairs``: try-ons
    too small for a metric or too few for FID, or networks that cannot be built from the
    weights on this machine: a missing file, or one that is damaged or not the published one
    (FID's Inception; LPIPS's trunk, scored on paired pairs only). ``args.metrics`` becomes the
    metrics that apply to the pairs."""
    from utils.metrics.fid import FID_WEIGHTS_FILE, build_fid_inception
    from utils.metrics.folders import applicable_metrics, check_aspect, check_scoreable
    from utils.metrics.images import image_size
    from utils.metrics.lpips import LPIPS_BACKBONE_FILES, build_lpips
    from utils.weights import resolve_weights_file
    args.metrics = applicable_metrics(args.metrics, all(pair.person.id == pair.garment.id
                                                        for pair in pairs),
                                      getattr(args, "given_flags", ()))
    limit = DataOptions.from_config(args).max_pixels
    photos = {pair.person.image: image_size(pair.person.image, limit) for pair in pairs}
    if args.save_size == "model":   # each photo is scored resized to the model's size
        for photo, size in photos.items():
            check_aspect(Path(photo), size, model_size)
    check_scoreable(args.metrics, {
        result_name(pair.person.image, pair.garment.image):
        model_size if args.save_size == "model" else photos[pair.person.image] for pair in pairs},
        len(photos))
    if "fid" in args.metrics and resolve_weights_file(
            args.fid_weights, FID_WEIGHTS_FILE, "--fid_weights", "FID Inception network",
            args.allow_random_weights, random_opt_in="--allow_random_weights"):
        # Its hash is checked (a warning) when the scores are computed, not twice.
        build_fid_inception(args.fid_weights, check_hash=False)
    if "lpips" in args.metrics and resolve_weights_file(
            args.lpips_backbone_weights, LPIPS_BACKBONE_FILES["alex"],
            "--lpips_backbone_weights", "LPIPS alex trunk", args.allow_random_weights,
            random_opt_in="--allow_random_weights"):
        build_lpips("alex", args.lpips_backbone_weights)


def evaluate(args, done: dict) -> None:
    """Score the folder just written (``--eval``) and write ``scores.json`` beside it."""
    from utils.metrics.folders import applicable_metrics, evaluate_folders, format_table
    metrics = applicable_metrics(args.metrics, done["paired"])
    scores = evaluate_folders(
        args.results_dir, args.dataroot,
        [(os.path.abspath(person), cloth) for person, cloth in done["pairs"]],
        metrics=metrics, device=pick_device(args.device), fid_weights=args.fid_weights,
        lpips_backbone_weights=args.lpips_backbone_weights,
        allow_random_weights=args.allow_random_weights,
        max_pixels=DataOptions.from_config(args).max_pixels)
    print(format_table(scores))
    out = write_json_output(Path(args.results_dir) / "scores.json", scores, "--results_dir")
    print(f"scores written to {out}")


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        if args.person:
            tryon_pair(args)
            return
        done = generate(args)
        if args.eval:
            evaluate(args, done)


if __name__ == "__main__":
    main()
