"""BatchNorm running statistics recomputed for the current weights (``--bn_recalibration``).

During training a BatchNorm layer keeps a momentum-0.1 average of its batches' statistics, so
its running statistics mix the last few dozen steps' weights; at a high learning rate those
weights move enough that the evaluation-mode network differs from the one that was trained,
and a validation score swings from one check to the next. Recalibrating replaces them by the
plain average over a fixed set of training batches under the current weights.
"""

from contextlib import contextmanager
from typing import Iterable, Iterator

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
