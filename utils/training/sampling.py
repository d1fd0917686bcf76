"""The data order and the random state of a run, as pure functions of the seed, the rank, the
epoch and the step, so that a resumed run repeats an uninterrupted one bit for bit."""

import atexit
import multiprocessing
import multiprocessing.util  # noqa: F401  (registers multiprocessing's exit handler first)
import random
import signal
from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from options.config import ConfigError


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (shuffled; its order of epoch ``e`` is a pure function of
    ``(seed, e)``, split across ranks) that can start part-way through the epoch:
    ``start_index`` samples of this rank's share are skipped."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=False)
        self.start_index = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.start_index:])

    def __len__(self) -> int:
        return self.num_samples - self.start_index


def check_resumable(saved: Mapping[str, int], world_size: int, batch_size: int,
                    steps_per_epoch: int, path) -> None:
    """Raise ``ConfigError`` unless the position ``saved`` in the checkpoint ``path``
    (``step_in_epoch``, ``world_size``, ``batch_size``, ``steps_per_epoch``) can be continued
    in the same data order with this configuration."""
    if saved["step_in_epoch"] and (saved["world_size"], saved["batch_size"]) != (world_size,
                                                                                 batch_size):
        raise ConfigError(
            f"--resume: {path} stopped mid-epoch with {saved['world_size']} process(es) x batch "
            f"{saved['batch_size']}; its data order can only be continued with the same (now "
            f"{world_size} x {batch_size})")
    if saved["steps_per_epoch"] != steps_per_epoch:
        raise ConfigError(f"--resume: {path} had {saved['steps_per_epoch']} steps per epoch, "
                          f"this configuration has {steps_per_epoch} (the dataset size, batch "
                          f"size or process count changed)")


def epoch_loader(dataset: Dataset, sampler: ResumableSampler, epoch: int, first_step: int,
                 batch_size: int, workers: int, seed: int, pin_memory: bool) -> DataLoader:
    """The batches of ``epoch``'s data order from its step ``first_step`` on (an incomplete
    last batch dropped). ``seed`` (the run's seed + rank) and the epoch seed the workers'
    random state; a dataset's ``set_epoch`` is called first."""
    sampler.set_epoch(epoch)
    sampler.start_index = first_step * batch_size
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, drop_last=True, worker_init_fn=seed_worker,
                      generator=torch.Generator().manual_seed(derived_seed(seed, epoch, 1)))


def derived_seed(*parts: int) -> int:
    """A 32-bit seed that is a pure function of ``parts`` (non-negative ints), different
    tuples giving unrelated seeds."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; pass that on to random and NumPy.
    # A SIGTERM to the process group (scancel) is for the main process, which saves first
    # (_end_workers_at_exit ends the workers then).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def _end_workers_at_exit() -> None:
    """Kill the loader workers still alive when the process exits: those of an epoch that an
    error ended (a damaged file), which the error's traceback keeps from being shut down.
    multiprocessing's own exit handler ends daemonic children with a SIGTERM, which
    ``seed_worker`` has them ignore, and then waited for them forever. torch's SIGCHLD
    handler, which would report each as a crash, is set aside first."""
    workers = [child for child in multiprocessing.active_children() if child.daemon]
    if workers and hasattr(signal, "SIGCHLD"):
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in workers:
        child.kill()


# Registered after multiprocessing's own exit handler, so run before it.
atexit.register(_end_workers_at_exit)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in batch):
        return type(batch)(to_device(value, device) for value in batch)
    return batch
