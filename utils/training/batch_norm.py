"""BatchNorm running statistics: recomputed for the current weights (``--bn_recalibration``),
and kept from one pass while following another (stage 4's ``--bn_statistics photos``).

During training a BatchNorm layer keeps a momentum-0.1 average of its batches' statistics, so
its running statistics mix the last few dozen steps' weights; at a high learning rate those
weights move enough that the evaluation-mode network differs from the one that was trained,
and a validation score swings from one check to the next. Recalibrating replaces them by the
plain average over a fixed set of training batches under the current weights.
"""

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn


def batch_norms(models: Iterable[nn.Module]) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``models`` that keep running statistics."""
    return [module for model in models for module in model.modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)
            and module.track_running_stats]


@contextmanager
def recalibrating(norms: list[nn.modules.batchnorm._BatchNorm]) -> Iterator[None]:
    """Inside the block, train-mode forward passes build ``norms``' running statistics afresh
    as the plain average of the batches seen (momentum None); their momentum is restored after.
    Layers in evaluation mode are left alone by PyTorch, as everywhere."""
    saved = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    try:
        yield
    finally:
        for norm, momentum in zip(norms, saved):
            norm.momentum = momentum


@contextmanager
def running_statistics_frozen(model: nn.Module) -> Iterator[None]:
    """Train-mode BatchNorms of ``model`` normalise by the batch but leave their running
    statistics and batch count as they are inside the block (the count matters to a
    cumulative average, ``recalibrating``)."""
    norms = batch_norms([model])
    saved = [(norm.momentum, norm.num_batches_tracked.clone()) for norm in norms]
    for norm in norms:
        norm.momentum = 0.0
    try:
        yield
    finally:
        for norm, (momentum, count) in zip(norms, saved):
            norm.momentum = momentum
            norm.num_batches_tracked.copy_(count)


def track_running_statistics(model: nn.Module, inputs: torch.Tensor) -> None:
    """One no-grad train-mode pass of ``model`` on ``inputs``: its BatchNorm running
    statistics move towards those of ``inputs`` (nothing else changes)."""
    with torch.no_grad():
        model(inputs)
