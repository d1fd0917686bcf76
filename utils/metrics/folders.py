"""Scoring a folder of try-on images against the persons' own photos, and its summary table.

SSIM and LPIPS compare each try-on with its person's photo, which shows the same garment only for
paired pairs (``applicable_metrics`` drops them for unpaired ones); FID compares all try-ons with
the distinct person photos. Scores from random networks are marked as such in the result
(``random_weights``, ``comparable_to_published``) and in the table.
"""

from __future__ import annotations

import os
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from common.cli import unused_flags
from common.results import result_name as result_file_name  # the one naming rule
from data.files import read_pairs
from utils.metrics.fid import build_fid_inception, fid_from_features, inception_features
from utils.metrics.images import MetricsError, image_size, load_image
from utils.metrics.lpips import build_lpips, lpips_distance
from utils.metrics.ssim import SSIM_DEFINITION, SSIM_WINDOW_SIZE, ssim

METRIC_NAMES = ("ssim", "lpips", "fid")

# The VITON test protocol: FID is published on 2,032 try-ons against 2,032 photos.
PUBLISHED_FID_SAMPLE_COUNT = 2032
# The shortest side LPIPS's trunks take: their pooling leaves nothing of a smaller image.
LPIPS_MIN_SIDE = {"alex": 31, "vgg": 16}


def check_scoreable(metrics: Sequence[str], sizes: dict, persons: int,
                    lpips_net: str = "alex") -> None:
    """MetricsError, before any scoring, where ``sizes`` ({image: (H, W)} of the images
    scored) holds one too small for a metric (SSIM's 11x11 window, LPIPS's trunk), or where
    FID would have fewer than 2 try-ons or ``persons`` photos (a covariance of each set)."""
    needs = {"ssim": SSIM_WINDOW_SIZE, "lpips": LPIPS_MIN_SIDE.get(lpips_net, 1)}
    smallest = min(sizes, key=lambda name: min(sizes[name]), default=None)
    for name in (metric for metric in metrics if metric in needs and smallest is not None):
        if min(sizes[smallest]) < needs[name]:
            raise MetricsError(f"{name.upper()} needs images of at least {needs[name]} pixels "
                               f"a side; {smallest} is scored at {sizes[smallest][0]}x"
                               f"{sizes[smallest][1]} (leave {name} out of --metrics)")
    if "fid" in metrics and min(len(sizes), persons) < 2:
        raise MetricsError(f"FID needs at least 2 try-ons and 2 person photos (a covariance of "
                           f"each set); these pairs give {len(sizes)} and {persons} (leave fid "
                           f"out of --metrics)")


def metric_names(text: str) -> tuple[str, ...]:
    """The metrics a --metrics list names, in its order; MetricsError for an unknown name or an
    empty list."""
    metrics = tuple(name.strip() for name in text.split(",") if name.strip())
    if not metrics or set(metrics) - set(METRIC_NAMES):
        raise MetricsError(f"--metrics {text!r}: expected a comma-separated subset of "
                           f"{','.join(METRIC_NAMES)}")
    return metrics


def unused_score_flags(metrics: str | Sequence[str], why: str = "not in --metrics") -> list:
    """The rules (``common.cli.unused_flags``) of the score flags a list of metrics (--metrics,
    or what applies to the pairs) leaves doing nothing: FID's weights without FID, LPIPS's
    network and weights without LPIPS, random weights without either; ``why`` a metric is
    not scored."""
    names = metrics.split(",") if isinstance(metrics, str) else metrics
    asked = {name.strip() for name in names}
    return [(("fid_weights",), "fid" not in asked, f"the FID score, {why}"),
            (("lpips_net", "lpips_backbone_weights"), "lpips" not in asked,
             f"the LPIPS score, {why}"),
            (("allow_random_weights",), not asked & {"lpips", "fid"},
             f"the networks of LPIPS and FID, neither {why.removeprefix('not ')}")]


def applicable_metrics(requested: str | Sequence[str], paired: bool,
                       given: Iterable[str] = ()) -> tuple[str, ...]:
    """The requested metrics that apply to the pairs, saying which are dropped and why: SSIM
    and LPIPS compare each try-on with the person's own photo, which shows the same garment
    only when the pairs are paired. Raises MetricsError when nothing is left, or when a flag
    of ``given`` (those on the command line) serves only a dropped metric."""
    metrics = metric_names(requested) if isinstance(requested, str) else tuple(requested)
    if paired:
        return metrics
    dropped = [name for name in metrics if name in ("ssim", "lpips")]
    if dropped:
        print(f"not scoring {', '.join(dropped)}: the pairs are unpaired (another garment than "
              f"the photo's), so the photo is no reference for them; paired pairs score them")
    kept = tuple(name for name in metrics if name not in ("ssim", "lpips"))
    if not kept:
        raise MetricsError("nothing to score: unpaired pairs have FID only (--metrics fid)")
    unused = unused_flags(set(given), unused_score_flags(kept, "not scored on unpaired pairs"))
    if unused:
        raise MetricsError(unused)
    return kept


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def evaluate_folders(results_dir: str | os.PathLike, reference_dir: str | os.PathLike,
                     pairs: str | os.PathLike | Sequence[tuple[str, str]],
                     metrics: Sequence[str] = METRIC_NAMES, device: str | torch.device = "cpu",
                     batch_size: int = 16, fid_weights: Optional[str | os.PathLike] = None,
                     lpips_backbone_weights: Optional[str | os.PathLike] = None,
                     allow_random_weights: bool = False, lpips_net: str = "alex",
                     max_pixels: Optional[int] = None) -> dict:
    """Score a folder of try-on images against the persons' own photos.

    Args:
        results_dir: holds ``{person_stem}__{cloth_stem}.png`` for every pair.
        reference_dir: holds the person photos named as in the pairs (``<dataroot>/test_img``).
        pairs: a pairs-file path, or a list of (person, cloth) file names.
        metrics: any of 'ssim', 'lpips', 'fid'.
        max_pixels: the largest image read (``--max_megapixels``; default the reader's).
    Sizes: each result is scored at its own size, its photo resized to it (bilinear, PIL) when
    of another size of its aspect ratio; FID takes a photo once, at its first result's size.
    SSIM and LPIPS compare each result with its own person's photo (meaningful for the paired
    protocol, ``test_pairs_same.txt``). FID compares all results of the pairs with the distinct
    person photos of the pairs (for ``test_pairs.txt`` on VITON: 2,032 against all of test_img).
    Returns:
        a JSON-ready dict: the mean scores under 'ssim' / 'lpips' / 'fid', 'per_pair' scores,
        counts, 'image_size' [H, W] (None when the results differ in size), 'image_sizes'
        {'HxW': results of that size}, 'weights' (source of each backbone),
        'comparable_to_published' (False when a backbone is random) and 'warnings'.
    """
    metrics = tuple(metrics)
    if not metrics or set(metrics) - set(METRIC_NAMES):
        raise ValueError(f"metrics must be a non-empty subset of {METRIC_NAMES}, got {metrics}")
    results_dir, reference_dir = Path(results_dir), Path(reference_dir)
    pairs, result_paths = _checked_inputs(results_dir, reference_dir, pairs)
    read = partial(load_image, max_pixels=max_pixels)
    sizes, size_of, resized = _checked_sizes(result_paths, reference_dir, pairs, max_pixels,
                                             metrics, lpips_net)
    lpips_model = (build_lpips(lpips_net, lpips_backbone_weights, allow_random_weights, device)
                   if "lpips" in metrics else None)
    inception = (build_fid_inception(fid_weights, allow_random_weights, device)
                 if "fid" in metrics else None)
    per_pair, result_features = _score_pairs(result_paths, reference_dir, pairs, metrics,
                                             sizes, lpips_model, inception, batch_size, read)
    counts = Counter(f"{height}x{width}" for height, width in sizes)
    scores = {"num_pairs": len(pairs), "image_size": list(sizes[0]) if len(counts) == 1 else None,
              "image_sizes": dict(counts), "metrics": list(metrics),
              "ssim_definition": SSIM_DEFINITION, "weights": {}, "warnings": []}
    for name in ("ssim", "lpips"):
        if name in metrics:
            scores[name] = float(np.mean([entry[name] for entry in per_pair]))
    if lpips_model is not None:
        scores["weights"]["lpips"] = f"{lpips_net}: {lpips_model.weights_source}"
    if inception is not None:
        scores.update(_fid_scores(inception, result_features, reference_dir, size_of,
                                  batch_size, scores["warnings"], read))
        scores["weights"]["fid"] = inception.weights_source
    scores["num_resized_references"] = len(resized)
    if resized:
        scores["warnings"].append(f"{scores['num_resized_references']} reference photo(s) "
                                  f"resized (bilinear) to their results' size")
    _note_random_weights(scores, lpips_model, inception)
    scores["per_pair"] = per_pair
    return scores


def _note_random_weights(scores: dict, lpips_model, inception) -> None:
    """Record in ``scores`` which backbones run on random weights, or on a file that is not
    the published one (the FID Inception's is checked by its sha256), and warn of them."""
    random_models = [name for name, model in (("lpips", lpips_model), ("fid", inception))
                     if model is not None and not model.pretrained]
    unpublished = getattr(inception, "unpublished", None)
    scores["random_weights"] = random_models
    scores["comparable_to_published"] = not random_models and not unpublished
    if random_models:
        scores["warnings"].append(f"RANDOM WEIGHTS for {', '.join(random_models)}: these scores "
                                  f"are NOT comparable to published numbers")
    if unpublished:
        scores["warnings"].append(f"fid: {unpublished}: its scores are NOT comparable to "
                                  f"published numbers")


def _is_file(path: Path) -> bool:
    """``path.is_file()``; a MetricsError naming the folder where it may not be looked into
    (no permission), which ``is_file`` raises as a PermissionError."""
    try:
        return path.is_file()
    except OSError as error:
        raise MetricsError(f"{path.parent}: cannot look into the folder "
                           f"({error.strerror or error})") from None


def _checked_inputs(results_dir: Path, reference_dir: Path, pairs) -> tuple[list, list[Path]]:
    """(pairs, result paths): both folders exist, and every result and person photo is there."""
    for folder, what in ((results_dir, "results"), (reference_dir, "reference photos")):
        if not folder.is_dir():
            raise MetricsError(f"{what} folder not found: {folder}")
    pairs = (read_pairs(pairs) if isinstance(pairs, (str, os.PathLike))
             else [tuple(pair) for pair in pairs])
    if not pairs:
        raise MetricsError("no pairs to evaluate")
    result_paths = [results_dir / result_file_name(person, cloth) for person, cloth in pairs]
    missing = [str(path) for path in result_paths if not _is_file(path)]
    if missing:
        raise MetricsError(f"{len(missing)} try-on image(s) missing from {results_dir}, "
                           f"e.g. {missing[:3]}")
    missing = sorted({person for person, _ in pairs if not _is_file(reference_dir / person)})
    if missing:
        raise MetricsError(f"{len(missing)} person photo(s) missing from {reference_dir}, "
                           f"e.g. {missing[:3]}")
    return pairs, result_paths


def _checked_sizes(result_paths, reference_dir: Path, pairs, max_pixels: Optional[int],
                   metrics: Sequence[str], lpips_net: str) -> tuple[list, dict, set]:
    """(each result's (H, W), each person's size to score the photo at: its first result's,
    the people whose photo is resized); a photo of another aspect ratio than a try-on of it,
    and images the ``metrics`` cannot score (``check_scoreable``), are errors naming them."""
    sizes = [image_size(path, max_pixels) for path in result_paths]
    size_of = {}
    for (person, _), size in zip(pairs, sizes):
        size_of.setdefault(person, size)
    scored = sorted({(person, size) for (person, _), size in zip(pairs, sizes)})
    photo_sizes = {person: image_size(reference_dir / person, max_pixels) for person in size_of}
    for person, size in scored:
        check_aspect(reference_dir / person, photo_sizes[person], size)
    check_scoreable(metrics, dict(zip(map(str, result_paths), sizes)), len(size_of), lpips_net)
    return sizes, size_of, {person for person, size in scored if photo_sizes[person] != size}


def _by_size(items: Sequence, sizes: Sequence[tuple[int, int]], batch_size: int):
    """(size, batch of ``items``) in batches of one size each."""
    groups = {}
    for item, size in zip(items, sizes):
        groups.setdefault(size, []).append(item)
    return [(size, batch) for size, group in groups.items()
            for batch in _batches(group, batch_size)]


def _score_pairs(result_paths, reference_dir, pairs, metrics, sizes, lpips_model,
                 inception, batch_size, read) -> tuple[list[dict], list[np.ndarray]]:
    """Per-pair SSIM and LPIPS of each result against its person's photo, and the results'
    Inception features (when FID is asked for), in batches of one size; ``read``: the image
    reader (``load_image`` with the pixel limit)."""
    per_pair = [{"result": path.name, "reference": person}
                for path, (person, _) in zip(result_paths, pairs)]
    result_features = []
    for size, batch_indices in _by_size(range(len(pairs)), sizes, batch_size):
        results = torch.stack([read(result_paths[index]) for index in batch_indices])
        if "ssim" in metrics or "lpips" in metrics:
            references = torch.stack([read(reference_dir / pairs[index][0], size=size)
                                      for index in batch_indices])
            if "ssim" in metrics:
                for index, value in zip(batch_indices, ssim(results, references).tolist()):
                    per_pair[index]["ssim"] = value
            if "lpips" in metrics:
                distances = lpips_distance(lpips_model, results, references).tolist()
                for index, value in zip(batch_indices, distances):
                    per_pair[index]["lpips"] = value
        if inception is not None:
            result_features.append(inception_features(inception, results, batch_size))
    return per_pair, result_features


def _fid_scores(inception, result_features, reference_dir, size_of: dict, batch_size,
                warnings: list, read) -> dict:
    """FID of the results' features against the distinct person photos' (each at ``size_of``
    it), with the counts; a warning when fewer than the published protocol's samples went in."""
    reference_features = []
    people = sorted(size_of)
    for size, batch_people in _by_size(people, [size_of[p] for p in people], batch_size):
        references = torch.stack([read(reference_dir / person, size=size)
                                  for person in batch_people])
        reference_features.append(inception_features(inception, references, batch_size))
    result_features = np.concatenate(result_features, axis=0)
    reference_features = np.concatenate(reference_features, axis=0)
    smallest = min(len(result_features), len(reference_features))
    if smallest < PUBLISHED_FID_SAMPLE_COUNT:
        warnings.append(f"FID from {len(result_features)} results and {len(reference_features)} "
                        f"photos: FID is biased by sample count; published VITON figures use "
                        f"{PUBLISHED_FID_SAMPLE_COUNT} of each")
    return {"fid": fid_from_features(result_features, reference_features),
            "fid_num_results": len(result_features),
            "fid_num_references": len(reference_features)}


def check_aspect(photo: Path, photo_size: tuple[int, int], size: tuple[int, int]) -> None:
    """A photo is resized to its try-on's ``size``: one of another aspect ratio would be
    distorted, an error naming it."""
    height, width = photo_size
    if abs(height * size[1] - width * size[0]) > 0.01 * height * size[1]:
        raise MetricsError(f"{photo} is {height}x{width} and its try-on {size[0]}x{size[1]}, "
                           f"another aspect ratio: score try-ons at the photos' size (test.py "
                           f"--save_size photo, its default)")


def format_table(scores: dict) -> str:
    """A short human-readable summary of ``evaluate_folders``'s result."""
    lines = [f"{'metric':<8} {'value':>10}  notes"]
    notes = {"ssim": "higher is better", "lpips": "lower is better",
             "fid": f"lower is better; {scores.get('fid_num_results')} results vs "
                    f"{scores.get('fid_num_references')} photos"}
    for name in METRIC_NAMES:
        if name in scores:
            random_mark = "  [RANDOM WEIGHTS]" if name in scores["random_weights"] else ""
            lines.append(f"{name:<8} {scores[name]:>10.4f}  {notes[name]}{random_mark}")
    sizes = ", ".join(f"{size} ({count})" if len(scores["image_sizes"]) > 1 else size
                      for size, count in scores["image_sizes"].items())
    lines.append(f"pairs: {scores['num_pairs']}, image size {sizes}")
    for name, source in scores["weights"].items():
        lines.append(f"{name} weights: {source}")
    for warning in scores["warnings"]:
        lines.append(f"WARNING: {warning}")
    if not scores["comparable_to_published"]:
        why = "random weights" if scores["random_weights"] else "weights not the published ones"
        lines.append(f"NOT COMPARABLE TO PUBLISHED NUMBERS ({why})")
    return "\n".join(lines)
