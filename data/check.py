"""Scan a VITON-layout dataset and report what is in it and what is wrong, without training.

    python -m data.check ROOT [--height 256 --width 192]

ROOT is a training root (with train_img/), a test root (with test_img/), or a folder holding
VITON_traindata/ and/or VITON_test/. Every sample is read as training would read it; the
exit status is 0 when everything can be used, 1 otherwise.
"""

import argparse
import collections
import json
import os
import sys
import time

import numpy as np
from PIL import Image

from data.viton import (DatasetError, VitonTestDataset, VitonTrainDataset, find_pairs_files,
                        person_id)

MAX_LISTED = 10


def _roots(root: str) -> list:
    """(kind, path) of each dataset found at ``root``."""
    found = []
    if os.path.isdir(os.path.join(root, "train_img")):
        found.append(("train", root))
    if os.path.isdir(os.path.join(root, "test_img")):
        found.append(("test", root))
    for name, kind in (("VITON_traindata", "train"), ("VITON_test", "test")):
        path = os.path.join(root, name)
        if os.path.isdir(path):
            found.append((kind, path))
    return found


def _pose_format(path: str) -> str:
    try:
        with open(path) as handle:
            people = json.load(handle).get("people", [])
    except (OSError, ValueError, AttributeError):
        return "unreadable"
    if not people:
        return "no person"
    person = people[0]
    key = "pose_keypoints_2d" if "pose_keypoints_2d" in person else "pose_keypoints"
    count = len(np.asarray(person.get(key, [])).reshape(-1)) // 3
    return f"{key} x{count}"


def _scan(dataset, describe, out) -> int:
    """Read every item; print errors; return the number of failing items."""
    failures = []
    start = time.perf_counter()
    for index in range(len(dataset)):
        try:
            item = dataset[index]
        except DatasetError as error:
            failures.append(str(error))
            continue
        describe(index, item)
    seconds = time.perf_counter() - start
    print(f"  read {len(dataset)} items in {seconds:.1f} s; {len(failures)} failed", file=out)
    for message in failures[:MAX_LISTED]:
        print(f"  ERROR {message}", file=out)
    if len(failures) > MAX_LISTED:
        print(f"  ... and {len(failures) - MAX_LISTED} more errors", file=out)
    return len(failures)


def check_train(root: str, height: int, width: int, out=None) -> int:
    out = out or sys.stdout  # looked up per call: sys.stdout may be replaced
    print(f"training set {root}", file=out)
    try:
        dataset = VitonTrainDataset(root, height, width)
    except DatasetError as error:
        print(f"  ERROR {error}", file=out)
        return 1
    source = dataset.pairs_file or "train_img/ listing"
    print(f"  {len(dataset)} samples (pairs from {source})", file=out)
    labels = collections.Counter()
    parts = collections.Counter()
    formats = collections.Counter()
    sizes = collections.Counter()
    missing_points = []

    def describe(index, item):
        sample = dataset.samples[index]
        labels.update(np.unique(item["label"].numpy()).tolist())
        parts.update(np.unique(item["densepose"].numpy()).tolist())
        formats[_pose_format(sample["pose"])] += 1
        visible = int(((item["keypoints"][:, 0] > 1) & (item["keypoints"][:, 1] > 1)).sum())
        missing_points.append(18 - visible)
        with Image.open(sample["image"]) as photo:   # reads the header only
            sizes["{}x{}".format(*photo.size)] += 1

    failed = _scan(dataset, describe, out)
    if labels:
        print(f"  parsing labels present: {sorted(labels)} (samples containing each: "
              f"{dict(sorted(labels.items()))})", file=out)
        print(f"  DensePose parts present: {sorted(parts)}", file=out)
        print(f"  keypoint files: {dict(formats)}; keypoints not drawn per sample: "
              f"mean {np.mean(missing_points):.1f}, max {max(missing_points)}", file=out)
        print(f"  photo sizes (WxH): {dict(sizes)}; served at {width}x{height}", file=out)
    return 1 if failed else 0


def check_test(root: str, height: int, width: int, out=None) -> int:
    out = out or sys.stdout  # looked up per call: sys.stdout may be replaced
    print(f"test set {root}", file=out)
    pairs_files = find_pairs_files(root)
    if not pairs_files:
        print(f"  ERROR {root}: no pairs file (*pairs*.txt)", file=out)
        return 1
    status = 0
    for name in pairs_files:
        try:
            dataset = VitonTestDataset(root, name, height, width)
        except DatasetError as error:
            print(f"  {name}: ERROR {error}", file=out)
            status = 1
            continue
        paired = sum(1 for p, c in dataset.pairs if person_id(p) == person_id(c))
        print(f"  {name}: {len(dataset)} pairs, {paired} paired (own garment), "
              f"{len(dataset) - paired} unpaired", file=out)
        if _scan(dataset, lambda index, item: None, out):
            status = 1
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check a VITON-layout dataset.")
    parser.add_argument("root", help="training root, test root, or a folder holding "
                                     "VITON_traindata/ and VITON_test/")
    parser.add_argument("--height", type=int, default=256, help="size samples are served at")
    parser.add_argument("--width", type=int, default=192, help="size samples are served at")
    args = parser.parse_args(argv)
    roots = _roots(args.root)
    if not roots:
        print(f"ERROR {args.root}: no train_img/, test_img/, VITON_traindata/ or VITON_test/ "
              f"found", file=sys.stdout)
        return 1
    status = 0
    for kind, path in roots:
        check = check_train if kind == "train" else check_test
        status |= check(path, args.height, args.width)
    print("OK" if status == 0 else "PROBLEMS FOUND")
    return status


if __name__ == "__main__":
    sys.exit(main())
