"""Writing files so that a crash or kill never leaves a partial one under the final name."""

import os
import tempfile
from pathlib import Path
from typing import Callable


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
