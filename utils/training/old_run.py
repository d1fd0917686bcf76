"""The run already in a run folder, kept as it was until the new run has saved a checkpoint.

``--overwrite`` sets the old run's files aside (``.replaced/`` in the folder) once the new run is
built, and deletes them when the new run writes its first checkpoint; a run that stops before
(a damaged image, a loss that is not finite) puts them back. It refuses to start when a
checkpoint it reads (``--*_checkpoint``) is one of the files it would delete. A ``.replaced/``
left by a process killed before the new run saved is put back by the next run on the folder
(``put_back_killed``); one left after it saved is refused by every run, with what to do. No
other file of the folder is touched. A ``--resume`` writes the flags
it is given into ``config.yaml`` at its first save: one killed before left them there, for a
plain ``--resume`` to take."""

import argparse
import shutil
from pathlib import Path

from common.run_folder import SET_ASIDE, killed_overwrite, saved_checkpoints
from options.config import ConfigError, write_config


def old_run_files(run_dir: Path) -> list[Path]:
    """The files of the run in ``run_dir`` that an --overwrite replaces."""
    patterns = ("train.log", "config.yaml", "samples/step_*.png",
                "tensorboard/events.out.tfevents.*")
    return saved_checkpoints(run_dir) + [path for pattern in patterns
                                         for path in run_dir.glob(pattern)]


class OldRun:
    """The run in ``run_dir`` that ``cfg`` (--overwrite or --resume) replaces or continues;
    ``main``: whether this process writes the folder (rank 0)."""

    def __init__(self, run_dir: Path, cfg: argparse.Namespace, main: bool):
        self.run_dir, self.overwrite, self.main = run_dir, cfg.overwrite, main
        self.resumed = cfg if cfg.resume else None
        self.held, self.saved = run_dir / SET_ASIDE, False
        if self.held.exists():   # put_back_killed left it: the new run had saved
            saved = ", ".join(sorted(path.name for path in saved_checkpoints(run_dir)))
            raise ConfigError(f"{self.held} holds the run that an --overwrite replaced, and "
                              f"{run_dir} the new run's {saved or 'files'}, saved before its "
                              f"process was killed: delete {self.held} to keep the new run "
                              f"(--resume continues it)")
        if cfg.overwrite:
            replaced = {path.resolve() for path in old_run_files(run_dir)}
            for key, value in sorted(vars(cfg).items()):
                if key.endswith("_checkpoint") and value and Path(value).resolve() in replaced:
                    raise ConfigError(f"--overwrite would delete {value}, which --{key} reads: "
                                      f"copy it out of {run_dir} first, or choose another --name")

    def set_aside(self) -> None:
        """--overwrite: the old run's files go into ``.replaced/``."""
        if self.overwrite and self.main:
            for path in old_run_files(self.run_dir):
                target = self.held / path.relative_to(self.run_dir)
                target.parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)

    def saved_one(self) -> None:
        """The new run has written a checkpoint: the old one goes (a resumed run's flags go
        into config.yaml)."""
        if not self.saved and self.main:
            if self.overwrite:
                shutil.rmtree(self.held, ignore_errors=True)
            if self.resumed is not None:
                write_config(self.resumed, self.run_dir / "config.yaml")
        self.saved = True

    def put_back(self) -> None:
        """The new run stopped before it saved: the old run is as it was."""
        if self.saved or not self.main:
            return
        if self.overwrite and self.held.is_dir():
            _put_back(self.run_dir)


def _put_back(run_dir: Path) -> None:
    """The files set aside in ``run_dir/.replaced`` go back in place of the new run's."""
    held = run_dir / SET_ASIDE
    for path in old_run_files(run_dir):
        path.unlink()
    for path in sorted(held.rglob("*")):
        if path.is_file():
            target = run_dir / path.relative_to(held)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
    shutil.rmtree(held)


def put_back_killed(run_dir: Path, main: bool, new_log: str) -> str:
    """A ``.replaced/`` that an --overwrite killed before its new run saved left in ``run_dir``
    holds the only saved run there: rank 0 (``main``) puts it back, as the new run would have
    had it stopped otherwise, dropping the new run's log (``new_log``) and outputs. Returns
    what was done, to log ('' where there was nothing to do)."""
    held = run_dir / SET_ASIDE
    if not killed_overwrite(run_dir):
        return ""
    if main:
        _put_back(run_dir)
        (run_dir / new_log).unlink(missing_ok=True)
    return (f"{held}: an --overwrite whose process was killed before it saved had set the run "
            f"in {run_dir} aside; it is back in place")
