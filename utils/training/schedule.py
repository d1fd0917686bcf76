"""The optimiser and its schedule: Adam over a stage's parameter groups, the learning-rate
factor of each epoch, and the phase switch of stages 3 and 4, as the release counts epochs."""

from typing import Any, Mapping, Sequence

import torch

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
