"""The optimiser and its schedule: Adam over a stage's parameter groups, the learning-rate
factor of each epoch, and the phase switch of stages 3 and 4, as the release counts epochs."""

import argparse
from typing import Any, Mapping, Optional, Sequence

import torch

from utils.checkpoint import CheckpointError

ADAM_BETA2 = 0.999


def lr_factor(epoch: int, niter: int, niter_decay: int) -> float:
    """Learning-rate multiplier for 0-based ``epoch``: constant, then linear decay, as the
    released code counts (its epochs count from 1 and its rate drops by ``lr / niter_decay``
    at the end of every epoch ``E > niter``)::

        factor(e) = 1 - max(0, e - niter) / niter_decay

    full rate for epochs 0..niter (niter + 1 of them), the last epoch
    (e = niter + niter_decay - 1) at 1 / niter_decay; niter_decay = 0 keeps the full rate.
    """
    if niter_decay <= 0:
        return 1.0
    return max(0.0, 1.0 - max(0, epoch - niter) / niter_decay)


def in_first_phase(epoch: int, niter: int) -> bool:
    """Whether 0-based ``epoch`` belongs to "the first niter epochs" of stages 3 and 4.

    The release tests ``epoch < niter`` on its 1-based epoch, so its first phase is
    ``niter - 1`` epochs: ``e + 1 < niter``."""
    return epoch + 1 < niter


def check_groups(groups: Sequence[Mapping[str, Any]], trained_parameters: set[int],
                 trained: Sequence[str], stage, epoch: int) -> None:
    """Raise ``ValueError`` unless ``groups`` are distinct, named, non-empty groups of
    trainable parameters of the models ``stage`` trains (``trained_parameters``: their ids)."""
    where = f"{type(stage).__name__}.param_groups(epoch={epoch})"
    if not groups:
        raise ValueError(f"{where} returned no parameter groups")
    names = [group.get("name") for group in groups]
    if None in names or len(set(names)) != len(names):
        raise ValueError(f"{where}: every group needs a distinct 'name', got {names}")
    for group in groups:
        if "params" not in group or "lr" not in group:
            raise ValueError(f"{where}: group '{group['name']}' needs 'params' and 'lr'")
        params = list(group["params"])
        if not params:
            raise ValueError(f"{where}: group '{group['name']}' has no parameters")
        outside = [p for p in params if id(p) not in trained_parameters]
        if outside:
            raise ValueError(f"{where}: group '{group['name']}' holds {len(outside)} parameters "
                             f"that belong to no trained model {tuple(trained)}; they "
                             f"would never be saved")
        if not all(p.requires_grad for p in params):
            raise ValueError(f"{where}: group '{group['name']}' holds parameters with "
                             f"requires_grad=False")


def group_signature(groups: Sequence[Mapping[str, Any]]) -> tuple:
    return tuple((group["name"], tuple(id(p) for p in group["params"])) for group in groups)


def make_optimizer(groups: Sequence[Mapping[str, Any]], beta1: float) -> torch.optim.Adam:
    """Adam over ``groups``; each optimiser group keeps its ``name`` and ``base_lr``."""
    return torch.optim.Adam(
        [{"params": list(g["params"]), "lr": g["lr"], "name": g["name"], "base_lr": g["lr"]}
         for g in groups],
        betas=(beta1, ADAM_BETA2))


def set_learning_rates(optimizer: torch.optim.Optimizer, groups: Sequence[Mapping[str, Any]],
                        factor: float) -> dict[str, float]:
    rates = {}
    for own, group in zip(optimizer.param_groups, groups):
        own["base_lr"] = group["lr"]
        own["lr"] = group["lr"] * factor
        rates[own["name"]] = own["lr"]
    return rates


class EpochOptimiser:
    """Adam over the parameter groups ``stage.param_groups`` gives for each epoch, built anew
    (a fresh state) when they change, as in stage 3's second phase, at the epoch's rates.

    ``optimizer``: None before the first epoch; ``epoch``: the epoch it was built for;
    ``builds``: ``(epoch, group names)`` of every Adam ``start_epoch`` built; ``rates``: the
    learning rates by group name; ``parameters``: those it updates."""

    def __init__(self, stage, models: Mapping[str, torch.nn.Module], trained: Sequence[str],
                 cfg):
        self.stage, self.models, self.trained, self.cfg = stage, models, tuple(trained), cfg
        self.trained_ids = {id(p) for name in trained for p in models[name].parameters()}
        self.optimizer, self.signature, self.epoch = None, None, None
        self.builds: list[tuple[int, tuple[str, ...]]] = []
        self.rates: dict[str, float] = {}
        self.parameters: list[torch.nn.Parameter] = []

    def groups(self, epoch: int, niter: Optional[int] = None) -> list[dict[str, Any]]:
        """The parameter groups of ``epoch`` (under another ``niter`` than the run's where
        given)."""
        cfg = self.cfg if niter is None else argparse.Namespace(**{**vars(self.cfg),
                                                                   "niter": niter})
        groups = self.stage.param_groups(self.models, cfg, epoch)
        check_groups(groups, self.trained_ids, self.trained, self.stage, epoch)
        return groups

    def restore(self, epoch: int, state: Mapping, path, saved_niter: Optional[int] = None):
        """The Adam built for ``epoch``, with the ``state`` saved in the checkpoint ``path``.
        A run resumed with another --niter than ``saved_niter`` may put ``epoch`` in the other
        phase of stages 3 and 4: the Adam is the saved one, of the saved schedule's groups,
        and ``start_epoch`` then builds the new schedule's where they differ."""
        groups = self.groups(epoch)
        names = [group.get("name") for group in state.get("param_groups", [])]
        if ([group["name"] for group in groups] != names and isinstance(saved_niter, int)
                and saved_niter != self.cfg.niter):
            groups = self.groups(epoch, saved_niter)
        self._build(groups, epoch)
        try:
            self.optimizer.load_state_dict(state)
        except (ValueError, KeyError) as error:
            raise CheckpointError(f"--resume: the optimiser state in {path} does not fit the "
                                  f"parameter groups of epoch {epoch}: {error}") from error
        for group in self.optimizer.param_groups:   # the saved state holds the old --beta1
            group["betas"] = (self.cfg.beta1, group["betas"][1])

    def start_epoch(self, epoch: int) -> Optional[list[dict[str, Any]]]:
        """Ready ``epoch``: a fresh Adam when its groups differ from the current ones, and the
        schedule's learning rates. Returns the groups of a fresh Adam, else None."""
        groups = self.groups(epoch)
        fresh = self.optimizer is None or group_signature(groups) != self.signature
        if fresh:
            self._build(groups, epoch)
            self.builds.append((epoch, tuple(group["name"] for group in groups)))
        factor = lr_factor(epoch, self.cfg.niter, self.cfg.niter_decay)
        self.rates = set_learning_rates(self.optimizer, groups, factor)
        self.parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        return groups if fresh else None

    def _build(self, groups: Sequence[Mapping[str, Any]], epoch: int) -> None:
        self.optimizer = make_optimizer(groups, self.cfg.beta1)
        self.signature, self.epoch = group_signature(groups), epoch
