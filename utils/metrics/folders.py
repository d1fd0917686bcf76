"""Scoring a folder of try-on images against the persons' own photos, and its summary table.

SSIM and LPIPS compare each try-on with its person's photo, which shows the same garment only for
paired pairs (``applicable_metrics`` drops them for unpaired ones); FID compares all try-ons with
the distinct person photos. Scores from random networks are marked as such in the result
(``random_weights``, ``comparable_to_published``) and in the table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from data.files import read_pairs
from utils.metrics.fid import build_fid_inception, fid_from_features, inception_features
from utils.metrics.images import MetricsError, image_size, load_image
from utils.metrics.lpips import build_lpips, lpips_distance
from utils.metrics.ssim import SSIM_DEFINITION, ssim
from utils.results import result_name as result_file_name  # the one naming rule

METRIC_NAMES = ("ssim", "lpips", "fid")

# The VITON test protocol: FID is published on 2,032 try-ons against 2,032 photos.
PUBLISHED_FID_SAMPLE_COUNT = 2032


def applicable_metrics(requested: str | Sequence[str], paired: bool) -> tuple[str, ...]:
    """The requested metrics that apply to the pairs, saying which are dropped and why: SSIM
    and LPIPS compare each try-on with the person's own photo, which shows the same garment
    only when the pairs are paired. Raises MetricsError when nothing is left."""
    if isinstance(requested, str):
        requested = [name.strip() for name in requested.split(",") if name.strip()]
    metrics = tuple(requested)
    if paired:
        return metrics
    dropped = [name for name in metrics if name in ("ssim", "lpips")]
    if dropped:
        print(f"not scoring {', '.join(dropped)}: the pairs are unpaired (another garment than "
              f"the photo's), so the photo is no reference for them; paired pairs score them")
    kept = tuple(name for name in metrics if name not in ("ssim", "lpips"))
    if not kept:
        raise MetricsError("nothing to score: unpaired pairs have FID only (--metrics fid)")
    return kept


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def evaluate_folders(results_dir: str | os.PathLike, reference_dir: str | os.PathLike,
                     pairs: str | os.PathLike | Sequence[tuple[str, str]],
                     metrics: Sequence[str] = METRIC_NAMES, device: str | torch.device = "cpu",
                     batch_size: int = 16, fid_weights: Optional[str | os.PathLike] = None,
                     lpips_backbone_weights: Optional[str | os.PathLike] = None,
                     allow_random_weights: bool = False, lpips_net: str = "alex") -> dict:
    """Score a folder of try-on images against the persons' own photos.

    Args:
        results_dir: holds ``{person_stem}__{cloth_stem}.png`` for every pair.
        reference_dir: holds the person photos named as in the pairs (``<dataroot>/test_img``).
        pairs: a pairs-file path, or a list of (person, cloth) file names.
        metrics: any of 'ssim', 'lpips', 'fid'.
    Sizes: all results must share one size; a reference photo of another size (but of their
    aspect ratio) is resized to it (bilinear, PIL) before every metric, FID included, so both
    sets reach the Inception network through the same resolution.
    SSIM and LPIPS compare each result with its own person's photo (meaningful for the paired
    protocol, ``test_pairs_same.txt``). FID compares all results of the pairs with the distinct
    person photos of the pairs (for ``test_pairs.txt`` on VITON: 2,032 against all of test_img).
    Returns:
        a JSON-ready dict: the mean scores under 'ssim' / 'lpips' / 'fid', 'per_pair' scores,
        counts, 'image_size' [H, W], 'weights' (source of each backbone),
        'comparable_to_published' (False when a backbone is random) and 'warnings'.
    """
    metrics = tuple(metrics)
    unknown = sorted(set(metrics) - set(METRIC_NAMES))
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {METRIC_NAMES}, got {metrics}")
    results_dir, reference_dir = Path(results_dir), Path(reference_dir)
    pairs, result_paths = _checked_inputs(results_dir, reference_dir, pairs)
    image_size = _common_image_size(result_paths)
    people = sorted({person for person, _ in pairs})
    _check_aspect(reference_dir, people, image_size)
    lpips_model = inception = None
    if "lpips" in metrics:
        lpips_model = build_lpips(lpips_net, lpips_backbone_weights, allow_random_weights, device)
    if "fid" in metrics:
        inception = build_fid_inception(fid_weights, allow_random_weights, device)
    per_pair, result_features = _score_pairs(result_paths, reference_dir, pairs, metrics,
                                             image_size, lpips_model, inception, batch_size)
    scores = {"num_pairs": len(pairs), "image_size": list(image_size), "metrics": list(metrics),
              "ssim_definition": SSIM_DEFINITION, "weights": {}, "warnings": []}
    for name in ("ssim", "lpips"):
        if name in metrics:
            scores[name] = float(np.mean([entry[name] for entry in per_pair]))
    if lpips_model is not None:
        scores["weights"]["lpips"] = f"{lpips_net}: {lpips_model.weights_source}"
    if inception is not None:
        scores.update(_fid_scores(inception, result_features, reference_dir, people, image_size,
                                  batch_size, scores["warnings"]))
        scores["weights"]["fid"] = inception.weights_source
    resized = [person for person in people if _image_size(reference_dir / person) != image_size]
    scores["num_resized_references"] = len(resized)
    if resized:
        scores["warnings"].append(f"{len(resized)} reference photo(s) resized (bilinear) to the "
                                  f"results' size {image_size[0]}x{image_size[1]}")
    _note_random_weights(scores, lpips_model, inception)
    scores["per_pair"] = per_pair
    return scores


def _note_random_weights(scores: dict, lpips_model, inception) -> None:
    """Record in ``scores`` which backbones run on random weights, and warn of them."""
    random_models = [name for name, model in (("lpips", lpips_model), ("fid", inception))
                     if model is not None and not model.pretrained]
    scores["random_weights"] = random_models
    scores["comparable_to_published"] = not random_models
    if random_models:
        scores["warnings"].append(f"RANDOM WEIGHTS for {', '.join(random_models)}: these scores "
                                  f"are NOT comparable to published numbers")


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
    missing = [str(path) for path in result_paths if not path.is_file()]
    if missing:
        raise MetricsError(f"{len(missing)} try-on image(s) missing from {results_dir}, "
                           f"e.g. {missing[:3]}")
    missing = sorted({person for person, _ in pairs if not (reference_dir / person).is_file()})
    if missing:
        raise MetricsError(f"{len(missing)} person photo(s) missing from {reference_dir}, "
                           f"e.g. {missing[:3]}")
    return pairs, result_paths


def _score_pairs(result_paths, reference_dir, pairs, metrics, image_size, lpips_model,
                 inception, batch_size) -> tuple[list[dict], list[np.ndarray]]:
    """Per-pair SSIM and LPIPS of each result against its person's photo, and the results'
    Inception features (when FID is asked for), in batches."""
    per_pair = [{"result": path.name, "reference": person}
                for path, (person, _) in zip(result_paths, pairs)]
    result_features = []
    for batch_indices in _batches(range(len(pairs)), batch_size):
        results = torch.stack([load_image(result_paths[index]) for index in batch_indices])
        if "ssim" in metrics or "lpips" in metrics:
            references = torch.stack([load_image(reference_dir / pairs[index][0], size=image_size)
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


def _fid_scores(inception, result_features, reference_dir, people, image_size, batch_size,
                warnings: list) -> dict:
    """FID of the results' features against the distinct person photos', with the counts; a
    warning when fewer than the published protocol's samples went in."""
    reference_features = []
    for batch_people in _batches(people, batch_size):
        references = torch.stack([load_image(reference_dir / person, size=image_size)
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


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header by the project's one image reader."""
    return image_size(path)


def _check_aspect(reference_dir: Path, people: Sequence[str], size: tuple[int, int]) -> None:
    """Photos are resized to the try-ons' ``size``: one of another aspect ratio would be
    distorted, an error naming it."""
    for person in people:
        height, width = _image_size(reference_dir / person)
        if abs(height * size[1] - width * size[0]) > 0.01 * height * size[1]:
            raise MetricsError(f"{reference_dir / person} is {height}x{width} and the try-ons "
                               f"{size[0]}x{size[1]}, another aspect ratio: score try-ons at "
                               f"the photos' size (test.py --save_size photo)")


def _common_image_size(paths: Sequence[Path]) -> tuple[int, int]:
    """The one (H, W) shared by all ``paths``; an error naming an odd one out otherwise."""
    first = _image_size(paths[0])
    for path in paths[1:]:
        size = _image_size(path)
        if size != first:
            raise MetricsError(f"try-on images differ in size: {paths[0]} is "
                               f"{first[0]}x{first[1]}, {path} is {size[0]}x{size[1]}")
    return first


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
    height, width = scores["image_size"]
    lines.append(f"pairs: {scores['num_pairs']}, image size {height}x{width}")
    for name, source in scores["weights"].items():
        lines.append(f"{name} weights: {source}")
    for warning in scores["warnings"]:
        lines.append(f"WARNING: {warning}")
    if not scores["comparable_to_published"]:
        lines.append("NOT COMPARABLE TO PUBLISHED NUMBERS (random weights)")
    return "\n".join(lines)
