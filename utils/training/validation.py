"""Validation during training: the paper's metrics on held-out pairs, and which score is best.

Each stage says what it is scored on (``Stage.validation_outputs``): the warp stages (1, 3) the
warped garment against the garment region the person wears (paired pairs: SSIM, LPIPS), the
generator stages (2, 4) the try-on against the person's photo (paired: SSIM, LPIPS) and, for
unpaired pairs, FID between the try-ons and the persons' photos. Stage 2 is scored on the
teacher's try-on as the tutor makes it, stage 4 on the parser-free try-on as test.py makes it.

Images are scored as test.py would save them (quantised to 8 bits the release's way) but at
the working size, with the metric networks of ``utils/metrics/`` (real weights, or random
only with ``--allow_random_weights``). Under DDP every process scores its share of the
pairs and the per-image scores and features are gathered, so no process waits on another for
longer than its own share.
"""

import math
import time
from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset

from common.errors import UserError
from common.images import quantise  # as test.py's PNGs hold the try-ons
from options.config import ConfigError
from utils.training.distributed import DistributedContext, any_rank
from utils.training.sampling import seed_worker, to_device

METRIC_DIRECTIONS = {"ssim": "max", "lpips": "min", "fid": "min"}
PAIR_CHOICES = ("auto", "paired", "unpaired", "both")


def quantise_photo(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) photos in [-1, 1] (x / 127.5 - 1 of their 8-bit values) -> those values."""
    return ((images.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def is_better(metric: str, value: float, best: Optional[float]) -> bool:
    if best is None or not math.isfinite(best):
        return math.isfinite(value)
    return value > best if METRIC_DIRECTIONS[metric] == "max" else value < best


@dataclass
class BestScore:
    """The best validation score so far: ``metric``, ``value`` and the ``step`` it came at."""

    metric: str
    value: Optional[float] = None
    step: Optional[int] = None

    def update(self, value: float, step: int) -> bool:
        """Keep ``value``, scored at ``step``, if it is better; whether it was."""
        if not is_better(self.metric, value, self.value):
            return False
        self.value, self.step = value, step
        return True

    def as_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "step": self.step}

    @classmethod
    def from_dict(cls, data: Optional[Mapping], metric: str) -> "BestScore":
        if not data or data.get("metric") != metric:
            return cls(metric)
        return cls(metric, data.get("value"), data.get("step"))


def _gather(values: list, context: DistributedContext) -> list:
    """Every process's list, concatenated in rank order (just ``values`` in one process)."""
    if not context.distributed:
        return values
    gathered = [None] * context.world_size
    dist.all_gather_object(gathered, values)
    return [value for part in gathered for value in part]


class Validator:
    """Scores a stage's models on ``--val_root`` (see the module docstring).

    ``metrics()`` lists the scores it produces; ``run(models)`` returns ``{'ssim': ...,
    'lpips': ..., 'fid': ...}`` (those that apply) plus ``seconds`` and ``pairs``."""

    def __init__(self, stage, cfg, context: DistributedContext):
        from data.datasets import DataOptions
        from data.pairs import make_pairs_dataset

        self.stage, self.cfg, self.context = stage, cfg, context
        self.kind = stage.validation_kind
        if self.kind not in ("warp", "tryon"):
            raise ConfigError(f"--val_root: stage {stage.name} has no validation")
        wanted = cfg.val_pairs if cfg.val_pairs != "auto" else (
            "paired" if self.kind == "warp" else "both")
        if self.kind == "warp" and wanted != "paired":
            raise ConfigError(f"--val_pairs {cfg.val_pairs}: stage {stage.name} scores the warped "
                             f"garment against the worn garment, which only paired pairs have")
        kinds = ("paired", "unpaired") if wanted == "both" else (wanted,)
        # Weights of a score not computed here: said (train_all.sh gives each stage the same).
        self.unused = "".join(f"; --{flag} not used: no {name} here" for flag, pairs, name in (
            ("lpips_backbone_weights", "paired", "LPIPS"), ("fid_weights", "unpaired", "FID"))
            if getattr(cfg, flag) and pairs not in kinds)
        options = DataOptions.from_config(cfg)
        self.datasets = {}
        for pairs in kinds:
            dataset = make_pairs_dataset(options, cfg.val_root, pairs, cfg.height, cfg.width,
                                         parser_inputs=stage.validation_needs_parser)
            count = min(cfg.val_max_pairs or len(dataset), len(dataset))
            # Evenly spread over the list, so that every category and part of it is scored.
            indices = np.unique(np.linspace(0, len(dataset) - 1, count).round().astype(int))
            self.datasets[pairs] = Subset(dataset, indices.tolist())
        # Each process reads its share now: a damaged file stops them all before the first step.
        failed = None
        try:
            for dataset in self.datasets.values():
                for _ in self._loader(dataset):
                    pass
        except UserError as error:
            failed = error
        if any_rank(failed is not None, context):
            raise failed or UserError("--val_root: a file is damaged (another process names it)")
        self._lpips = None
        self._inception = None
        self._reference_features = None
        # The metric networks are built now: a missing weight file stops the run before it
        # trains, not at its first validation.
        self._metric_networks(context.device)

    def metrics(self) -> tuple[str, ...]:
        names = []
        if "paired" in self.datasets:
            names += ["ssim", "lpips"]
        if "unpaired" in self.datasets:
            names.append("fid")
        return tuple(names)

    def best_metric(self, requested: str) -> str:
        """The score ``--best_metric`` names; 'auto': FID when unpaired pairs are scored, else
        SSIM."""
        metrics = self.metrics()
        metric = ("fid" if "fid" in metrics else "ssim") if requested == "auto" else requested
        if metric not in metrics:
            raise ConfigError(f"--best_metric {metric}: stage {self.stage.name} validated on "
                              f"{self.cfg.val_pairs} pairs gives {', '.join(metrics)}")
        return metric

    def describe(self, best: BestScore) -> str:
        """The log line announcing validation and ``best.pth`` at the start of a run."""
        cfg = self.cfg
        so_far = f" (so far {best.value:.4g} at step {best.step})" if best.value is not None else ""
        return (f"validation on {cfg.val_root}: {', '.join(self.metrics())} every "
                f"{cfg.val_every} {cfg.val_unit}(s) and at the end; best.pth keeps the best "
                f"{best.metric}{so_far}{self.unused}")

    def report(self, step: int, scores: Mapping, best: BestScore, improved: bool) -> str:
        """The log line of one validation's ``scores``."""
        random = self.random_weights
        return (f"validation at step {step} ({scores['pairs']} pairs, {scores['seconds']:.1f} "
                f"s): " + " ".join(f"{name} {scores[name]:.4g}" for name in self.metrics())
                + f" | best {best.metric} {best.value:.4g} at step {best.step}"
                + (" (new best)" if improved else "")
                + (f" [RANDOM {', '.join(random)} weights: not comparable to published scores]"
                   if random else ""))

    def _loader(self, dataset) -> DataLoader:
        share = Subset(dataset, list(range(self.context.rank, len(dataset),
                                           self.context.world_size)))
        return DataLoader(share, batch_size=self.cfg.val_batch_size or self.cfg.batch_size,
                          shuffle=False, num_workers=self.cfg.workers, worker_init_fn=seed_worker)

    def _metric_networks(self, device) -> None:
        from utils.metrics import build_fid_inception, build_lpips

        cfg = self.cfg
        if "paired" in self.datasets and self._lpips is None:
            self._lpips = build_lpips("alex", cfg.lpips_backbone_weights,
                                      cfg.allow_random_weights, device)
        if "unpaired" in self.datasets and self._inception is None:
            self._inception = build_fid_inception(cfg.fid_weights,
                                                   cfg.allow_random_weights, device)

    @property
    def random_weights(self) -> list[str]:
        return [name for name, model in (("lpips", self._lpips), ("fid", self._inception))
                if model is not None and not model.pretrained]

    def run(self, models: Mapping[str, torch.nn.Module], device: torch.device) -> dict:
        """The scores of ``models`` (unwrapped), run in eval mode; each model's mode is
        restored afterwards."""
        modes = {name: model.training for name, model in models.items()}
        for model in models.values():
            model.eval()
        try:
            return self._scores(models, device)
        finally:
            for name, model in models.items():
                model.train(modes[name])

    @torch.no_grad()
    def _scores(self, models: Mapping[str, torch.nn.Module], device: torch.device) -> dict:
        from utils.metrics import fid_from_features, inception_features, lpips_distance, ssim

        start = time.perf_counter()
        scores: dict = {}
        if "paired" in self.datasets:
            ssims, lpipses = [], []
            for batch in self._loader(self.datasets["paired"]):
                batch = to_device(batch, device)
                prediction, target = self.stage.validation_outputs(models, batch, self.cfg)
                prediction, target = quantise(prediction), quantise_photo(target)
                ssims += ssim(prediction, target).tolist()
                lpipses += lpips_distance(self._lpips, prediction, target).tolist()
            scores["ssim"] = float(np.mean(_gather(ssims, self.context)))
            scores["lpips"] = float(np.mean(_gather(lpipses, self.context)))
        if "unpaired" in self.datasets:
            features, references = [], []
            for batch in self._loader(self.datasets["unpaired"]):
                batch = to_device(batch, device)
                prediction, _ = self.stage.validation_outputs(models, batch, self.cfg)
                features += list(inception_features(self._inception, quantise(prediction)))
                if self._reference_features is None:
                    references += list(inception_features(self._inception,
                                                          quantise_photo(batch["image"])))
            if self._reference_features is None:
                # The persons' photos do not change: their features are computed once.
                self._reference_features = np.stack(_gather(references, self.context))
            scores["fid"] = fid_from_features(np.stack(_gather(features, self.context)),
                                              self._reference_features)
        scores["seconds"] = time.perf_counter() - start
        scores["pairs"] = sum(len(dataset) for dataset in self.datasets.values())
        return scores

