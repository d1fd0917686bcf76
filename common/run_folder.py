"""The saved files of a training run's folder, by name: its checkpoints, and where
``--overwrite`` keeps the run it replaces until the new one saves
(``utils/training/old_run.py``)."""

from pathlib import Path

CHECKPOINT_NAMES = ("latest", "best", "final", "epoch_*")   # a run folder's {name}.pth
SET_ASIDE = ".replaced"


def saved_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoints of a run in ``run_dir`` (``CHECKPOINT_NAMES``)."""
    return [path for name in CHECKPOINT_NAMES for path in Path(run_dir).glob(f"{name}.pth")]


def killed_overwrite(run_dir: Path) -> bool:
    """Whether ``run_dir/.replaced`` holds the only saved run of ``run_dir``: that of an
    --overwrite whose process was killed before its new run saved (the next run puts it back)."""
    return (Path(run_dir) / SET_ASIDE).is_dir() and not saved_checkpoints(run_dir)
