"""A tiny stage for exercising the training engine without the VITON data or the real models.

Imported by tests/test_engine.py, and run as a script under torchrun by the DDP test::

    torchrun --standalone --nproc_per_node 2 tests/fake_stage.py --device cpu ... --dump_dir D

With ``--dump_dir``, every rank writes its final weights to ``D/rank{R}.pt`` so a test can
check that the ranks agree.
"""

import os
import signal
import subprocess
import sys

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from utils.training.engine import run
from utils.training.stage import Stage, StepResult


class FakeDataset(Dataset):
    """``size`` items: 'person' (3, H, W) in [-1, 1], 'mask' (1, H, W) in {0, 1}, 'id'.
    Items are a pure function of (index, epoch), as the real dataset's are."""

    def __init__(self, size: int, height: int, width: int):
        self.size, self.height, self.width = size, height, width
        self.epoch = 0
        self.epochs_seen = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        if os.environ.get("FAKE_DAMAGED_INDEX") == str(index):
            from data.files import DatasetError
            raise DatasetError(f"sample {index}: damaged")
        generator = torch.Generator().manual_seed(1000 * index + self.epoch)
        person = torch.rand(3, self.height, self.width, generator=generator) * 2 - 1
        return {"person": person, "mask": (person[:1] > 0).float(), "id": f"{index:06d}"}


class TinyNet(nn.Module):
    """Conv -> BatchNorm -> ReLU -> Dropout -> Conv: BN and dropout make resuming non-trivial."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels),
                                  nn.ReLU(), nn.Dropout(0.3))
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.tail(self.head(x)))


class FakeStage(Stage):
    """Trains 'net' to reconstruct the person image next to a frozen 'teacher'. With
    ``--partial_epochs N`` only ``net.tail`` is optimised for the first N epochs (like stage 3's
    partial phase)."""
    name = "fake"
    trained = ("net",)
    defaults = {"lr": 1e-2, "niter": 1, "niter_decay": 1}
    validation_kind = "tryon"

    def __init__(self, dataset_size: int = 6):
        self.dataset_size = dataset_size
        self.dataset = None

    def add_arguments(self, parser):
        parser.add_argument("--partial_epochs", type=int, default=0,
                            help="epochs during which only net.tail is optimised")
        parser.add_argument("--dump_dir", type=str, default=None,
                            help="write each rank's final weights to DUMP_DIR/rank{R}.pt")

    def make_dataset(self, cfg):
        self.dataset = FakeDataset(self.dataset_size, cfg.height, cfg.width)
        return self.dataset

    def build_models(self, cfg, device):
        teacher = TinyNet().to(device).eval().requires_grad_(False)
        return {"net": TinyNet().to(device), "teacher": teacher}

    def param_groups(self, models, cfg, epoch):
        if epoch < cfg.partial_epochs:
            return [{"name": "net_tail", "params": list(models["net"].tail.parameters()),
                     "lr": cfg.lr}]
        return [{"name": "net", "params": list(models["net"].parameters()), "lr": cfg.lr}]

    def validation_outputs(self, models, batch, cfg):
        return models["net"](batch["image"]), batch["image"]

    def losses(self, models, batch, context):
        if os.environ.get("FAKE_SIGTERM_AT") == f"{os.environ.get('RANK', '0')}:{context.step}":
            os.kill(os.getpid(), signal.SIGTERM)      # "RANK:STEP": that rank, during that step
        if os.environ.get("FAKE_SIGTERM_GROUP_AT") == str(context.step):
            # The process group, loader workers too, from another process (as scancel): a
            # worker quits quietly only when the signal comes from its parent.
            subprocess.run(["kill", "-TERM", "--", f"-{os.getpgid(0)}"], check=False)
        person = batch["person"]
        output = models["net"](person)
        with torch.no_grad():
            teacher = models["teacher"](person)
        l1 = F.l1_loss(output, person)
        agree = F.mse_loss(output, teacher)
        images = ({"person": person, "output": output, "mask": batch["mask"]}
                  if context.want_images else {})
        return StepResult(total=l1 + 0.1 * agree,
                          terms={"l1": l1.detach(), "agree": agree.detach()}, images=images)


if __name__ == "__main__":
    stage = FakeStage(dataset_size=int(os.environ.get("FAKE_DATASET_SIZE", "8")))
    if os.environ.get("FAKE_AS_SCRIPT"):    # as train_*.py run: a user error is one line
        from utils.training.engine import main
        result = main(stage)
    else:
        result = run(stage)
    if result.config.dump_dir:
        os.makedirs(result.config.dump_dir, exist_ok=True)
        torch.save({"step": result.step, "terms": result.terms, "best": result.best,
                    "stopped_by": int(result.stopped_by or 0),
                    "validation": result.validation,
                    "net": result.models["net"].state_dict()},
                   os.path.join(result.config.dump_dir, f"rank{result.rank}.pt"))
