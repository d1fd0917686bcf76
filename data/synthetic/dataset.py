"""Writing a whole synthetic dataset: ``make_dataset`` lays out the folders of a layout, draws
every sample (in parallel when asked) with its own reproducible randomness, and writes the
pairs files."""

import multiprocessing
import os
from typing import List, NamedTuple, Sequence, Tuple

import numpy as np

from data.samples import CATEGORIES
from data.synthetic.dresscode import DRESSCODE_FOLDERS, dresscode_first_ids, write_dresscode_sample
from data.synthetic.person import draw_sample
from data.synthetic.photo import check_backdrop
from data.synthetic.regions import checked_categories
from data.synthetic.viton import TEST_FOLDERS, TRAIN_FOLDERS, write_test_sample, write_train_sample
from data.synthetic.vitonhd import vitonhd_folders, write_vitonhd_sample

LAYOUTS = ("viton", "vitonhd", "dresscode")
_CHUNK = 64                # samples per task of the worker pool


def sample_rng(seed: int, split: int, index: int,
               category: str = "upper_body") -> np.random.Generator:
    """Independent, reproducible randomness per (seed, split, sample, category). The upper
    body's stream is that of (seed, split, index), as before categories existed, so its files
    do not change; every layout draws the same person for the same (seed, split, index)."""
    if category == "upper_body":
        return np.random.default_rng((seed, split, index))
    return np.random.default_rng((seed, split, index, CATEGORIES.index(category)))


def _pairs_rng(seed, category):
    """The randomness of the unpaired test pairs (the upper body's as before categories)."""
    if category == "upper_body":
        return np.random.default_rng((seed, 2))
    return np.random.default_rng((seed, 2, CATEGORIES.index(category)))


def _derangement(count: int, rng: np.random.Generator) -> np.ndarray:
    """partner[i] != i for every i (when count > 1): one cycle through a random order."""
    order = rng.permutation(count)
    shift = np.roll(order, 1) if count > 1 else order
    partner = np.empty(count, dtype=np.int64)
    partner[order] = shift
    return partner


class _Plan(NamedTuple):
    """What a layout writes: its roots by name; the samples, as (root, category, split,
    count, option) with option the layout writer's extra argument; and the pairs files, as
    (path, person file names, garment file names)."""

    roots: dict
    samples: List[tuple]
    pair_files: List[Tuple[str, List[str], List[str]]]


def _pair_lines(ids, person_suffix, garment_suffix, partner=None):
    """Person and garment file names of a pairs file: each person with their own garment, or
    with that of person ``partner[i]``."""
    garments = ids if partner is None else [ids[j] for j in partner]
    return [i + person_suffix for i in ids], [g + garment_suffix for g in garments]


def _make_folders(root, folders):
    for folder in folders:
        os.makedirs(os.path.join(root, folder), exist_ok=True)


def _plan_viton(out, categories, num_train, num_test, seed) -> _Plan:
    """VITON_traindata and VITON_test per category (the upper body's directly in ``out``)."""
    plan = _Plan({}, [], [])
    for category in categories:
        base = out if category == "upper_body" else os.path.join(out, category)
        prefix = "" if category == "upper_body" else category + "_"
        train_root = os.path.join(base, "VITON_traindata")
        test_root = os.path.join(base, "VITON_test")
        _make_folders(train_root, TRAIN_FOLDERS)
        _make_folders(test_root, TEST_FOLDERS)
        plan.roots[prefix + "train"], plan.roots[prefix + "test"] = train_root, test_root
        plan.samples.append((train_root, category, 0, num_train, None))
        plan.samples.append((test_root, category, 1, num_test, None))
        if num_test:
            names = [f"{i:06d}" for i in range(num_test)]
            partner = _derangement(num_test, _pairs_rng(seed, category))
            plan.pair_files.append((os.path.join(test_root, "test_pairs_same.txt"),
                                    *_pair_lines(names, "_0.jpg", "_1.jpg")))
            plan.pair_files.append((os.path.join(test_root, "test_pairs.txt"),
                                    *_pair_lines(names, "_0.jpg", "_1.jpg", partner)))
    return plan


def _plan_vitonhd(out, num_train, num_test, seed, old_names) -> _Plan:
    """VITON-HD/{train,test} of the upper body, the pairs files beside them."""
    root = os.path.join(out, "VITON-HD")
    plan = _Plan({"root": root}, [], [])
    for split, split_name, count in ((0, "train", num_train), (1, "test", num_test)):
        split_root = os.path.join(root, split_name)
        _make_folders(split_root, vitonhd_folders(old_names).values())
        plan.roots[split_name] = split_root
        plan.samples.append((split_root, "upper_body", split, count, bool(old_names)))
    train_ids = [f"{i:05d}_00" for i in range(num_train)]
    test_ids = [f"{i:05d}_00" for i in range(num_test)]
    partner = _derangement(num_test, _pairs_rng(seed, "upper_body"))
    plan.pair_files.append((os.path.join(root, "train_pairs.txt"),
                            *_pair_lines(train_ids, ".jpg", ".jpg")))
    plan.pair_files.append((os.path.join(root, "test_pairs.txt"),
                            *_pair_lines(test_ids, ".jpg", ".jpg", partner)))
    return plan


def _plan_dresscode(out, categories, num_train, num_test, seed) -> _Plan:
    """DressCode/{category}: training ids first, then the test ids, disjoint across
    categories."""
    root = os.path.join(out, "DressCode")
    plan = _Plan({"root": root}, [], [])
    firsts = dresscode_first_ids(categories, num_train + num_test)
    for category in categories:
        first = firsts[category]
        category_root = os.path.join(root, category)
        _make_folders(category_root, DRESSCODE_FOLDERS)
        plan.roots[category] = category_root
        plan.samples.append((category_root, category, 0, num_train, first))
        plan.samples.append((category_root, category, 1, num_test, first + num_train))
        train = [f"{first + i:06d}" for i in range(num_train)]
        test = [f"{first + num_train + i:06d}" for i in range(num_test)]
        partner = _derangement(num_test, _pairs_rng(seed, category))
        for name, ids, pairing in (("train_pairs.txt", train, None),
                                   ("test_pairs_paired.txt", test, None),
                                   ("test_pairs_unpaired.txt", test, partner)):
            plan.pair_files.append((os.path.join(category_root, name),
                                    *_pair_lines(ids, "_0.jpg", "_1.jpg", pairing)))
    return plan


def _generate(task):
    """Draw and write the samples start..stop-1 of one split; a task of the worker pool."""
    layout, root, category, split, seed, start, stop, height, width, option, backdrop = task
    for index in range(start, stop):
        sample = draw_sample(sample_rng(seed, split, index, category), height, width,
                             category=category, backdrop=backdrop)
        if layout == "viton":
            name = f"{index:06d}"
            if split == 0:
                write_train_sample(root, name, sample)
            else:
                write_test_sample(root, name, sample)
        elif layout == "vitonhd":
            write_vitonhd_sample(root, f"{index:05d}_00", sample, old_names=option)
        else:
            write_dresscode_sample(root, f"{option + index:06d}", sample)   # option: first id
    return stop - start


def _run(tasks, workers):
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_generate, tasks):
                pass
    else:
        for task in tasks:
            _generate(task)


def make_dataset(out: str, num_train: int, num_test: int, seed: int = 0, height: int = 256,
                 width: int = 192, workers: int = 1, layout: str = "viton",
                 categories: Sequence[str] = ("upper_body",), old_names: bool = False,
                 backdrop: str = "studio") -> dict:
    """Write a synthetic dataset in ``layout`` with ``num_train`` training and ``num_test`` test
    samples per category. Returns the roots written, by name.

    layout "viton": ``out/VITON_traindata`` and ``out/VITON_test`` (with test_pairs.txt,
        unpaired, and test_pairs_same.txt, paired) for the upper body; the same two folders
        under ``out/lower_body/`` and ``out/dresses/`` for the other categories. Labels in the
        14-class scheme. Roots: "train", "test" (upper body), "lower_body_train",
        "lower_body_test", "dresses_train", "dresses_test".
    layout "vitonhd" (upper body only): ``out/VITON-HD/{train,test}/`` with image, cloth,
        cloth-mask, image-parse-v3 (CIHP palette PNG), openpose_json (BODY_25), openpose_img,
        image-densepose (a rendering); ``train_pairs.txt`` (own garment) and ``test_pairs.txt``
        (another's) in ``out/VITON-HD``. ``old_names``: image-parse, openpose-json,
        openpose-img. Roots: "root", "train", "test".
    layout "dresscode": ``out/DressCode/{category}/`` with images, keypoints, label_maps (ATR
        grey PNG), skeletons, dense, and train_pairs.txt, test_pairs_paired.txt,
        test_pairs_unpaired.txt; ids of 6 digits, disjoint across categories, training ids
        first. Roots: "root" and one per category.

    ``backdrop`` (``BACKDROPS``): studio, a light neutral backdrop whose brightness varies a
    little, as in VITON; tinted, a brightness and colour cast drawn per photo.

    The same (seed, split, index, category) draws the same person in every layout and with
    either backdrop.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    categories = checked_categories(categories)
    if layout == "vitonhd" and categories != ("upper_body",):
        raise ValueError("the VITON-HD layout holds upper-body garments only "
                         f"(asked for {', '.join(categories)})")
    if num_train < 0 or num_test < 0:
        raise ValueError("num_train and num_test must be >= 0")
    check_backdrop(backdrop)
    if layout == "viton":
        plan = _plan_viton(out, categories, num_train, num_test, seed)
    elif layout == "vitonhd":
        plan = _plan_vitonhd(out, num_train, num_test, seed, old_names)
    else:
        plan = _plan_dresscode(out, categories, num_train, num_test, seed)
    _run([(layout, root, category, split, seed, start, min(start + _CHUNK, count), height, width,
           option, backdrop)
          for root, category, split, count, option in plan.samples
          for start in range(0, count, _CHUNK)], workers)
    for path, persons, garments in plan.pair_files:
        if persons:
            with open(path, "w") as handle:
                handle.writelines(f"{p} {g}\n" for p, g in zip(persons, garments))
    return plan.roots
