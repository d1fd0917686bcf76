"""Scan a dataset of any layout and report what is in it and what is wrong, without training.

    python -m data.check ROOT [--config FILE] [--dataset viton|vitonhd|dresscode]
        [--category upper_body,...] [--height 256 --width 192] [--label_scheme auto --neck skin]
        [--pose_format auto] [--iuv_channel b] [--densepose_dir DIR]

Samples are read at the size training reads them: ``--height/--width`` when given, else the
size of the training configuration ``--config`` (its data flags too: the layout, the category,
the label scheme...), else 256 x 192 (height x width, as everywhere in this project).

ROOT: for ``viton`` a training root (with train_img/), a test root (with test_img/), or a
folder holding VITON_traindata/ and/or VITON_test/; for ``vitonhd`` the top folder (train/,
test/, the pairs files); for ``dresscode`` the top folder (one folder per category). Every
file of every sample is read with the readers training uses (labels converted from the
layout's scheme, keypoints from its format); each problem names its file: a missing folder,
samples lacking files (the first few and the count), unreadable or truncated images, labels
outside the scheme, malformed keypoints, DensePose of the wrong size. Garments without a mask
file are counted (their masks are computed from the photos on first use and cached), not
computed here. The exit status is 0 when everything can be used, 1 otherwise.
"""

import argparse
import collections
import os
import sys
import time
from pathlib import Path

import numpy as np

from common.cli import HelpFormatter, given_on_command_line
from common.config_file import ConfigError, coerce, load_yaml
from common.errors import exit_on_user_error
from common.results import OutputError, check_unique_result_names
from data import viton
from data.alpha import shown_size
from data.datasets import (
    DataOptions,
    add_data_arguments,
    pair_samples,
    prepared_masks,
    read_person,
    train_samples,
    unused_iuv_channel,
)
from data.files import DatasetError, MissingFolder, read_image_bytes, read_rgb
from data.labels import NECK_TARGETS, SCHEME_NAMES, label_table
from data.pose import PoseFileError, load_json, parse_keypoints

MAX_LISTED = 10


def describe_scheme(scheme: str, neck: str = "skin") -> str:
    """One line naming a scheme conversion (``data.labels``), for the report."""
    if scheme == "viton":
        return "14-class scheme, read as it is"
    text = (f"converted from {SCHEME_NAMES[scheme]}, {len(label_table(scheme))} classes, to "
            f"the 14-class scheme")
    if scheme == "cihp":
        text += f", neck 10 -> {neck} {NECK_TARGETS[neck]}"
    return text


def _pose_format(path: str, pose_format: str, image_size) -> str:
    """What a keypoint file holds, e.g. "openpose pose_keypoints_2d BODY_25"."""
    try:
        return parse_keypoints(load_json(path), path, image_size, pose_format)[1]
    except PoseFileError:
        return "unreadable"


class _Report:
    """What the scanned samples hold."""

    def __init__(self):
        self.labels = collections.Counter()
        self.parts = collections.Counter()
        self.formats = collections.Counter()
        self.densepose_files = collections.Counter()
        self.sizes = collections.Counter()
        self.missing_points = []
        self.without_densepose = 0
        self.masks = collections.Counter()
        self.garments_seen = set()

    def add_garment(self, garment, masks) -> None:
        """Read a garment's photo and its mask file or cached mask, once per garment; masks to
        be computed are counted, not computed."""
        if garment.image in self.garments_seen:
            return
        self.garments_seen.add(garment.image)
        photo = read_rgb(garment.image, masks.max_pixels)
        if garment.mask is not None:
            masks.read(garment, photo)
            self.masks["mask files"] += 1
        elif masks.is_cached(garment):
            masks.read(garment, photo)
            self.masks["computed, cached"] += 1
        else:
            self.masks["to compute on first use"] += 1

    def add_person(self, person, item: dict, formats) -> None:
        """Count a person's photo size and, when ``item`` holds them, its labels, DensePose
        parts and keypoints."""
        size = shown_size(read_image_bytes(person.image))   # the header only, turned (EXIF)
        self.sizes[f"{size[0]} x {size[1]}"] += 1
        if "label" not in item:
            return
        self.labels.update(np.unique(item["label"].numpy()).tolist())
        self.parts.update(np.unique(item["densepose"].numpy()).tolist())
        keypoints = item["keypoints"]
        visible = int(((keypoints[:, 0] > 1) & (keypoints[:, 1] > 1)).sum())
        self.missing_points.append(18 - visible)
        self.formats[_pose_format(person.pose, formats.pose_format, size)] += 1
        if person.densepose is None:
            self.without_densepose += 1
        else:
            self.densepose_files[os.path.splitext(person.densepose)[1]] += 1

    def print(self, formats, height: int, width: int, out) -> None:
        if self.labels:
            print(f"  parsing labels, {describe_scheme(formats.label_scheme, formats.neck)}: "
                  f"present {sorted(self.labels)} (samples containing each: "
                  f"{dict(sorted(self.labels.items()))})", file=out)
            if self.densepose_files:
                channel = (f", I read from channel {formats.iuv_channel} of IUV PNGs"
                           if ".png" in self.densepose_files else "")
                print(f"  DensePose parts present: {sorted(self.parts)} (files: "
                      f"{dict(self.densepose_files)}{channel})", file=out)
            if self.without_densepose:
                print(f"  {self.without_densepose} samples without DensePose part indices: the "
                      f"parser-based stages use the replacement of data/inputs.py (give part "
                      f"indices with --densepose_dir)", file=out)
            print(f"  keypoint files: {dict(self.formats)}; keypoints not drawn per sample: "
                  f"mean {np.mean(self.missing_points):.1f}, max {max(self.missing_points)}",
                  file=out)
        print(f"  garment masks: {dict(self.masks)}", file=out)
        print(f"  photo sizes (height x width): {dict(self.sizes)}; served at "
              f"{height} x {width}", file=out)


def _scan(samples, options: DataOptions, formats, masks, size: tuple, parser_inputs: bool,
          out) -> int:
    """Read every file of ``samples``; print what they hold and every error; return the number
    of failing samples."""
    (height, width), report = size, _Report()
    failures = []
    start = time.perf_counter()
    for sample in samples:
        try:
            item = read_person(sample.person, formats, height, width, parser_inputs,
                               options.max_pixels)
            report.add_garment(sample.garment, masks)
        except DatasetError as error:
            failures.append(str(error))
            continue
        report.add_person(sample.person, item, formats)
    seconds = time.perf_counter() - start
    print(f"  read {len(samples)} samples in {seconds:.1f} s; {len(failures)} failed", file=out)
    for message in failures[:MAX_LISTED]:
        print(f"  ERROR {message}", file=out)
    if len(failures) > MAX_LISTED:
        print(f"  ... and {len(failures) - MAX_LISTED} more errors", file=out)
    report.print(formats, height, width, out)
    return len(failures)


def _check(title: str, make_samples, options, height, width, parser_inputs, out,
           results: str = "") -> int:
    """``results``: the pairs are tested, whose results test.py refuses to name alike."""
    print(title, file=out)
    problems: list = []
    try:
        samples = make_samples(problems)
    except DatasetError as error:
        print(f"  ERROR {error}", file=out)
        return 1
    if results:
        try:
            check_unique_result_names([(sample.person.image, sample.garment.image)
                                       for sample in samples], results)
        except OutputError as error:
            problems.append(str(error))
    for message in problems:          # samples lacking files; the others are still read
        print(f"  ERROR {message}", file=out)
    try:   # flags that would do nothing here are refused, as training refuses them
        formats, masks = options.formats(), prepared_masks(options, samples)
    except DatasetError as error:
        print(f"  ERROR {error}", file=out)
        return 1
    paired = sum(1 for sample in samples if sample.person.id == sample.garment.id)
    categories = collections.Counter(sample.person.category for sample in samples)
    print(f"  {len(samples)} samples, {paired} with their own garment; categories "
          f"{dict(categories)}", file=out)
    unused = parser_inputs and unused_iuv_channel(options, samples)
    if unused:
        print(f"  NOTE {unused}", file=out)
    failed = _scan(samples, options, formats, masks, (height, width), parser_inputs, out)
    return 1 if failed or problems else 0


def check_train(root: str, options: DataOptions, height: int, width: int, out=None) -> int:
    out = out or sys.stdout  # looked up per call: sys.stdout may be replaced
    return _check(f"training set {root} ({options.dataset} layout)",
                  lambda problems: train_samples(options, root, problems), options, height,
                  width, True, out)


def check_pairs(root: str, options: DataOptions, pairs: str, height: int, width: int,
                out=None) -> int:
    """The pairs as test.py reads them; where the split has the persons' parsing (and the
    rest of the parser-based inputs), those too, as validation of stages 1-3 reads them."""
    out = out or sys.stdout
    parsing, without = True, ""
    try:
        pair_samples(options, root, pairs, parser_inputs=True, problems=[])
    except MissingFolder as error:
        try:    # a folder of the parsing (not one every pair needs, reported below)
            pair_samples(options, root, pairs, parser_inputs=False, problems=[])
            parsing, without = False, f"; without the persons' parsing ({error}): for " \
                                      f"test.py and stage 4's validation only"
        except DatasetError:
            pass
    except DatasetError:
        pass    # reported below, the parsing read as validation reads it
    return _check(f"test pairs '{pairs}' of {root} ({options.dataset} layout{without})",
                  lambda problems: pair_samples(options, root, pairs, parser_inputs=parsing,
                                                problems=problems),
                  options, height, width, parsing, out, f"the {pairs} pairs")


def _viton_roots(root: str) -> list:
    """(kind, path) of each VITON-layout dataset found at ``root``."""
    found = []
    if viton.is_train_root(root):
        found.append(("train", root))
    if viton.is_test_root(root):
        found.append(("test", root))
    for name, kind in (("VITON_traindata", "train"), ("VITON_test", "test")):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            found.append((kind, path))
    return found


def _viton_pairs_files(root: str) -> list:
    names = sorted(name for name in os.listdir(root) if name.endswith(".txt") and "pairs" in name)
    return names or ["paired"]


def config_values(parser, path: str) -> dict:
    """The values of ``path`` (a training configuration) for this command's own flags, read and
    checked by the one config reader (``common/config_file.py``); the file's other keys are
    training's, not checked here."""
    content = load_yaml(Path(path))
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of flag names to values")
    own = {action.dest: action for action in parser._actions
           if action.dest not in ("root", "config", "help")}
    return {key: coerce(own[key], value, f"--config: {path}: key '{key}'")
            for key, value in content.items() if key in own}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a dataset of any layout: every file "
                                                 "read as training and test.py read it.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("root", help="the dataset (see the module help for each --dataset)")
    parser.add_argument("--config", action="append", metavar="FILE",
                        help="a training configuration (YAML): the dataset is checked at its "
                             "--height/--width and with its data flags; several apply in "
                             "order; the command line overrides them")
    parser.add_argument("--height", type=int, default=None,
                        help="height samples are served at; when not given, the --config "
                             "file's, else 256")
    parser.add_argument("--width", type=int, default=None,
                        help="width samples are served at; when not given, the --config "
                             "file's, else 192")
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    if args.config:
        with exit_on_user_error():
            for path in args.config:
                parser.set_defaults(**config_values(parser, path))
        args = parser.parse_args(argv)
    if args.rebuild_masks and "rebuild_masks" in given_on_command_line(parser, argv):
        parser.error("--rebuild_masks: the check computes no garment mask (it counts the masks "
                     "to compute); give it to the training or test command")
    args.rebuild_masks = False   # a training configuration's: the check deletes no cached mask
    args.height = 256 if args.height is None else args.height
    args.width = 192 if args.width is None else args.width
    for key in ("height", "width"):
        value = getattr(args, key)
        if not 16 <= value <= 4096:   # a frame of 40000 pixels ran out of memory, a traceback
            parser.error(f"--{key} {value}: samples are served at 16 to 4096 pixels")
    with exit_on_user_error():
        return _check_root(args)


def _check_root(args) -> int:
    try:
        options = DataOptions.from_config(args)
    except DatasetError as error:
        print(f"ERROR {error}")
        return 1
    status = 0
    if args.dataset == "viton":
        roots = _viton_roots(args.root)
        if not roots:
            print(f"ERROR {args.root}: no train_img/, test_img/, VITON_traindata/ or "
                  f"VITON_test/ found")
            return 1
        for kind, path in roots:
            if kind == "train":
                status |= check_train(path, options, args.height, args.width)
            else:
                for name in _viton_pairs_files(path):
                    status |= check_pairs(path, options, name, args.height, args.width)
    else:
        if not os.path.isdir(args.root):
            print(f"ERROR {args.root}: dataset folder not found")
            return 1
        status |= check_train(args.root, options, args.height, args.width)
        for pairs in ("paired", "unpaired"):
            status |= check_pairs(args.root, options, pairs, args.height, args.width)
    print("OK" if status == 0 else "PROBLEMS FOUND")
    return status


if __name__ == "__main__":
    sys.exit(main())
