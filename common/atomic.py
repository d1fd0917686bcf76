"""Writing files so that a crash or kill never leaves a partial one under the final name."""

import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterable


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file over ``path``.

    The temporary file lies in ``path``'s folder (so the rename is atomic) and keeps its
    suffix (some writers choose the format by it); it gets the permissions a file made with
    ``open()`` would have, not mkstemp's owner-only ones. On any failure it is removed and
    ``path`` is left as it was. Missing folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp",
                                         dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """``data`` to ``path``, atomically (``write_atomic``)."""
    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    write_atomic(path, write)


# ``write_atomic``'s temporary names: ".{stem}." + mkstemp's 8 random characters + the suffix.
_TEMPORARY_PART = r"[a-z0-9_]{8}"


def remove_stale_temporaries(folder: str | os.PathLike, stems: Iterable[str],
                             suffix: str = ".pth") -> list[Path]:
    """Delete the temporary files that ``write_atomic`` left in ``folder`` when a process was
    killed mid-write, for files named ``{stem}{suffix}`` (a stem may hold ``*``, e.g.
    'epoch_*'). Call it only when no other process writes there. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    patterns = [re.compile(r"\." + re.escape(stem).replace(r"\*", r"[^.]*") + r"\."
                           + _TEMPORARY_PART + re.escape(suffix) + "$") for stem in stems]
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and any(p.fullmatch(entry.name) for p in patterns):
            entry.unlink()
            removed.append(entry)
    return removed
