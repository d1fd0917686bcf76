"""One process or many: the device, the process group, what the ranks agree on (averages,
flags, a stop request by signal), and DDP's wrappers.

A plain ``python train_x.py`` is one process (rank 0 of 1). Under ``torchrun`` the environment
holds ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; each process then joins a process group
(NCCL on CUDA, gloo on CPU) and uses ``cuda:LOCAL_RANK``, with DDP and SyncBatchNorm, even
when it is the only one (``torchrun --nproc_per_node 1`` runs the multi-GPU code on one GPU).
"""

import os
import signal
import threading
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn

from common.devices import pick_device
from common.errors import UserError


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its
    node, the ``device`` it computes on, and whether this module created the process group
    (and so must destroy it)."""
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool = False
    launched: bool = False      # started by torchrun (a process group, however many ranks)

    @property
    def is_main(self) -> bool:
        """Rank 0 writes files, logs and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.launched or self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device_choice: str = "auto") -> DistributedContext:
    """Read the torchrun environment (absent: a single process), pick the device and, when
    there are several processes, join the process group."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        device = pick_device(device_choice, 0)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return DistributedContext(rank=0, world_size=1, local_rank=0, device=device)
    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    device = pick_device(device_choice, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = False
    if not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group(backend="nccl", init_method="env://", rank=rank,
                                    world_size=world_size, device_id=device)
        else:
            dist.init_process_group(backend="gloo", init_method="env://", rank=rank,
                                    world_size=world_size)
        owns_group = True
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank,
                              device=device, owns_group=owns_group, launched=True)


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group if ``init_distributed`` created it."""
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: DistributedContext) -> None:
    if context.distributed:
        if context.device.type == "cuda":
            dist.barrier(device_ids=[context.device.index])
        else:
            dist.barrier()


def mean_over_ranks(values: Mapping[str, torch.Tensor],
                    context: DistributedContext) -> dict[str, float]:
    """Average scalar tensors over all ranks (one all_reduce for all of them) -> floats.

    Every rank must call this with the same keys in the same order."""
    if not values:
        return {}
    keys = list(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    stacked = stacked.to(context.device)
    if context.distributed:
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked = stacked / context.world_size
    return dict(zip(keys, stacked.tolist()))


def all_ranks(flag, context: DistributedContext) -> bool:
    """Whether ``flag`` (a bool or a one-element tensor) holds on every rank."""
    return bool(_reduce(flag, context, dist.ReduceOp.MIN))


def any_rank(flag, context: DistributedContext) -> bool:
    """Whether ``flag`` holds on at least one rank: the same answer on every rank."""
    return bool(_reduce(flag, context, dist.ReduceOp.MAX))


def _reduce(value, context: DistributedContext, op) -> float:
    if not context.distributed:
        return float(value)
    value = torch.as_tensor(value, dtype=torch.float32, device=context.device).reshape(1)
    dist.all_reduce(value, op=op)
    return value.item()


def wrap_for_training(models: Mapping[str, nn.Module], trained: Sequence[str],
                      context: DistributedContext,
                      find_unused_parameters: bool = False) -> tuple[dict, dict]:
    """(plain, wrapped) model dicts. When distributed, each trained model is wrapped in DDP,
    after turning its BatchNorms into SyncBatchNorm on CUDA (SyncBatchNorm has no CPU kernel);
    frozen models run as they are on every rank."""
    plain, wrapped = dict(models), dict(models)
    if not context.distributed:
        return plain, wrapped
    device = context.device
    for name in trained:
        if device.type == "cuda":
            plain[name] = nn.SyncBatchNorm.convert_sync_batchnorm(plain[name])
        wrapped[name] = nn.parallel.DistributedDataParallel(
            plain[name], device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters)
    return plain, wrapped


def peak_memory_mib(device: torch.device) -> float:
    """The most memory this process has held: CUDA's allocator peak on a GPU, the peak resident
    set on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # KiB on Linux


def set_tf32(enabled: bool, device: torch.device) -> None:
    """Allow (or forbid) TF32 in CUDA convolutions and matrix products (the ``allow_tf32``
    switches, which torch.compile reads); on a CPU a ``UserError``."""
    if enabled and device.type != "cuda":
        raise UserError("--tf32: TF32 is a mode of CUDA GPUs, and this run is on the CPU")
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled


class StopRequest:
    """SIGINT/SIGTERM ask the training loop to save and stop after the current step (a SIGINT
    after that interrupts at once). The handlers are installed by ``with``, in the main thread
    only; ``signum`` is the first signal this process received, ``agreed`` every rank's."""

    def __init__(self, announce: bool = True):
        self.requested = False
        self.signum = None
        self._previous = {}
        self.announce = announce   # say so on stderr (one rank of many)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested and self.announce:   # at once: the step may take a while
            again = " (Ctrl-C again stops at once)" if signum == signal.SIGINT else ""
            os.write(2, f"\n{signal.Signals(signum).name}: stopping after the step under way, "
                        f"with a save{again}\n".encode())
        self.requested, self.signum = True, self.signum or signal.Signals(signum)

    def agreed(self, context: DistributedContext) -> bool:
        """Whether any rank received a signal; each rank then takes the highest signal number
        received, so that all log and exit alike (one collective)."""
        received = int(_reduce(self.signum or 0, context, dist.ReduceOp.MAX))
        if received:
            self.requested, self.signum = True, signal.Signals(received)
        return self.requested

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False
