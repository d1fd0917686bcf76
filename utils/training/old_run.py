"""The run already in a run folder, kept as it was until the new run has taken its first step.

``--overwrite`` sets the old run's files aside (``.replaced/`` in the folder) once the new run is
built, and deletes them after its first step; a run that stops before (a damaged image, a loss
that is not finite) puts them back. It refuses to start when a checkpoint it reads
(``--*_checkpoint``) is one of the files it would delete. ``--resume`` rewrites ``config.yaml``
with the flags it is given; a resume that stops before its first step puts the old one back, so
that a plain ``--resume`` does not keep a flag that failed. No other file of the folder is
touched."""

import argparse
import shutil
from pathlib import Path

from common.atomic import write_atomic
from options.config import ConfigError
from utils.checkpoint import CHECKPOINT_NAMES

SET_ASIDE = ".replaced"


def old_run_files(run_dir: Path) -> list[Path]:
    """The files of the run in ``run_dir`` that an --overwrite replaces."""
    patterns = [f"{name}.pth" for name in CHECKPOINT_NAMES] + [
        "train.log", "config.yaml", "samples/step_*.png", "tensorboard/events.out.tfevents.*"]
    return [path for pattern in patterns for path in run_dir.glob(pattern)]


class OldRun:
    """The run in ``run_dir`` that ``cfg`` (--overwrite or --resume) replaces or continues;
    ``main``: whether this process writes the folder (rank 0)."""

    def __init__(self, run_dir: Path, cfg: argparse.Namespace, main: bool):
        self.run_dir, self.overwrite, self.main = run_dir, cfg.overwrite, main
        self.held = run_dir / SET_ASIDE
        config = run_dir / "config.yaml"
        self.config = config.read_text() if cfg.resume and config.is_file() else None
        if cfg.overwrite:
            replaced = {path.resolve() for path in old_run_files(run_dir)}
            for key, value in sorted(vars(cfg).items()):
                if key.endswith("_checkpoint") and value and Path(value).resolve() in replaced:
                    raise ConfigError(f"--overwrite would delete {value}, which --{key} reads: "
                                      f"copy it out of {run_dir} first, or choose another --name")

    def set_aside(self) -> None:
        """--overwrite: the old run's files go into ``.replaced/`` (where an earlier attempt
        that never took a step left them, its own files go)."""
        if not (self.overwrite and self.main):
            return
        keep = not self.held.is_dir()
        for path in old_run_files(self.run_dir):
            if not keep:
                path.unlink()
                continue
            target = self.held / path.relative_to(self.run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)

    def drop(self) -> None:
        """The new run has taken its first step: the old one goes."""
        if self.overwrite and self.main:
            shutil.rmtree(self.held, ignore_errors=True)

    def put_back(self) -> None:
        """The new run stopped before its first step: the old run is as it was."""
        if not self.main:
            return
        if self.overwrite and self.held.is_dir():
            for path in old_run_files(self.run_dir):
                path.unlink()
            for path in sorted(self.held.rglob("*")):
                if path.is_file():
                    path.replace(self.run_dir / path.relative_to(self.held))
            shutil.rmtree(self.held)
        elif self.config is not None:
            write_atomic(self.run_dir / "config.yaml",
                         lambda temporary: Path(temporary).write_text(self.config))
