"""A run folder taken by one training run at a time: ``run.lock`` in it, held with ``flock``.
The lock is the kernel's, not the file's: it ends with the process however that ends (a crash,
SIGKILL, power), so the file of a dead run is taken over, and the log says whose it was. A
second run on a folder whose run is alive is refused before it writes anything."""

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from common.errors import UserError

try:
    import fcntl
except ImportError:          # Windows: no flock; runs there are not guarded
    fcntl = None

LOCK_NAME = "run.lock"


class RunFolderBusy(UserError):
    """The run folder is held by another live run."""


def _open_locked(path: Path) -> Optional[int]:
    """A descriptor of ``path`` holding its exclusive lock, or None when another process
    holds it. The file may be unlinked by its previous holder between our open and our lock:
    the lock is then on a name no one else sees, so it is taken again on the new file."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)


def _holder(path: Path) -> str:
    """What the lock file says of the run that wrote it ('pid 123 on host since ...')."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200] or "unknown"
    except OSError:
        return "unknown"


@contextmanager
def run_folder_lock(run_dir: Path, enabled: bool = True, what: str = "training run",
                    advice: str = "choose another --name") -> Iterator[str]:
    """Hold ``run_dir``/run.lock for the enclosed code; yields a note for the run's log ('' unless
    a lock left by a dead run was taken over). ``enabled`` False (ranks other than 0, which share
    rank 0's run) does nothing. Raises RunFolderBusy naming the folder and the live ``what``."""
    if not enabled or fcntl is None:
        yield ""
        return
    path = Path(run_dir) / LOCK_NAME
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        descriptor = _open_locked(path)
    except OSError as error:
        raise RunFolderBusy(f"{run_dir}: cannot create {LOCK_NAME} "
                            f"({error.strerror or error})") from None
    if descriptor is None:
        raise RunFolderBusy(f"{run_dir} is in use by another {what} ({_holder(path)}); "
                            f"wait for it to end, or {advice}")
    previous = os.read(descriptor, 200).decode("utf-8", "replace").strip()
    note = (f"took over {LOCK_NAME} left by a run that is no longer alive ({previous})"
            if previous else "")
    stamp = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%F %T')}"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, stamp.encode("utf-8"), 0)
    try:
        yield note
    finally:
        # Unlinked while still locked: a run waiting on this file then sees another inode.
        try:
            path.unlink()
        except OSError:
            pass
        os.close(descriptor)
