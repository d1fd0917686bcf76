"""Where try-on results go: their names and their writing, in one place (test.py, the
baselines, the web page and the metrics that find them again).

A result is the image of a person wearing a garment, ``{person_stem}__{cloth_stem}.png``
(e.g. ``000066_0__017575_1.png``), written atomically so that an interrupted run never leaves
a half-written image under that name.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from common.atomic import write_bytes_atomic
from common.errors import UserError
from common.images import write_image

RESULT_SUFFIX = ".png"


class OutputError(UserError):
    """An output location that cannot be written, or would overwrite an input."""


def result_name(person: str, cloth: str) -> str:
    """The file name of ``person`` wearing ``cloth`` (file names or paths):
    ``{person_stem}__{cloth_stem}.png``."""
    return f"{Path(person).stem}__{Path(cloth).stem}{RESULT_SUFFIX}"


def check_unique_result_names(pairs, flag: str = "--pairs") -> None:
    """Refuse, before any work, ``pairs`` ((person, cloth) names or paths) of which two would
    write the same result name (``a/000000_0.jpg`` and ``b/000000_0.jpg``, or ``x.jpg`` and
    ``x.png``, with one garment): one image would overwrite the other and a score would read
    the wrong one; or that lists one pair twice, which a score would count twice. Raises
    ``OutputError`` naming the pairs."""
    seen = {}
    for person, cloth in pairs:
        name = result_name(person, cloth)
        if seen.get(name) == (str(person), str(cloth)):
            raise OutputError(f"{flag}: the pair ({person}, {cloth}) is listed twice; a score "
                              f"would count it twice (list each pair once)")
        if name in seen:
            first = seen[name]
            raise OutputError(f"{flag}: the pairs ({first[0]}, {first[1]}) and ({person}, "
                              f"{cloth}) would both write {name}; give the photos distinct "
                              f"names (results are named by file stems)")
        seen[name] = (str(person), str(cloth))


def write_output(path: str | os.PathLike, image: np.ndarray, flag: str) -> Path:
    """Write a uint8 image to ``path`` atomically; a failure (disk full, permissions changed
    since the check) is an ``OutputError`` naming ``flag`` and nothing is left at ``path``."""
    try:
        write_image(path, image)
    except OSError as error:
        raise OutputError(f"{flag}: cannot write {path} ({error.strerror or error})") from None
    return Path(path)


def write_json_output(path: str | os.PathLike, data, flag: str) -> Path:
    """Write ``data`` as JSON to ``path`` atomically; a failure is an ``OutputError`` naming
    ``flag``, and a file there before is left as it was."""
    try:
        write_bytes_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
    except OSError as error:
        raise OutputError(f"{flag}: cannot write {path} ({error.strerror or error})") from None
    return Path(path)


def write_result(folder: str | os.PathLike, person: str, cloth: str, image: np.ndarray,
                 flag: str = "--results_dir") -> Path:
    """Write the uint8 (h, w, 3) try-on of ``person`` in ``cloth`` into ``folder``; returns
    its path."""
    return write_output(Path(folder) / result_name(person, cloth), image, flag)


def resolved(path: str | os.PathLike, flag: str | None = None) -> Path:
    """``path`` with its symlinks resolved; a loop of links is an ``OutputError`` naming the
    path (and ``flag``, the output flag it was given to; None for an input)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError) as error:   # Python 3.11 raises RuntimeError for a loop
        raise OutputError(f"{flag + ': ' if flag else ''}{path} cannot be resolved "
                          f"({error})") from None


def check_output_folder(folder: str | os.PathLike, flag: str,
                        inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Create ``folder`` (the value of ``flag``) if needed and check, before any work, that
    files can be written there and that it is not one of ``inputs`` or inside one (paths
    compared with symlinks resolved). Raises ``OutputError`` naming the flag."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {folder}: exists and is not a folder")
    real = resolved(folder, flag)
    for given in inputs:
        source = resolved(given)
        if real == source or source in real.parents:
            raise OutputError(f"{flag} {folder}: is the input folder {given} or inside it; "
                              f"choose a folder of its own, so that no input is overwritten")
    _writable_folder(folder, f"{flag} {folder}", "the folder")
    return folder


def data_folders(root: str | os.PathLike, depth: int = 2) -> tuple[Path, ...]:
    """``root`` and the folders in it, ``depth`` levels down: the inputs of a dataset, whose
    folders may be links to others elsewhere (``check_output_folder``'s ``inputs``)."""
    found, level = [Path(root)], [Path(root)]
    for _ in range(depth):
        level = [entry for folder in level for entry in _entries(folder) if entry.is_dir()]
        found += level
    return tuple(found)


def _entries(folder: Path) -> list[Path]:
    """The entries of ``folder``; none where it cannot be listed (lost+found, a file)."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


@contextlib.contextmanager
def _unmade_on_error(folder: str | os.PathLike) -> Iterator[None]:
    """The folders on the way to ``folder`` (itself included) that the work in the block
    creates are removed again, innermost first, when it stops (an error, Ctrl-C) before
    writing anything in them."""
    new = [path for path in (Path(folder), *Path(folder).parents) if not os.path.lexists(path)]
    try:
        yield
    except BaseException:
        for path in new:   # rmdir removes only an empty folder; one never made is no matter
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


@contextlib.contextmanager
def output_folder(folder: str | os.PathLike, flag: str,
                  inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """``check_output_folder``'s folder for the work that writes in it: the folders it
    created are removed again when that work stops before writing there."""
    with _unmade_on_error(folder):
        yield check_output_folder(folder, flag, inputs)


@contextlib.contextmanager
def output_file(path: str | os.PathLike, flag: str,
                inputs: tuple[str | os.PathLike, ...] = ()) -> Iterator[Path]:
    """``check_output_file``'s path for the work that writes it: the folders made for it are
    removed again when that work stops before writing there."""
    with _unmade_on_error(Path(path).parent):
        yield check_output_file(path, flag, inputs)


def _writable_folder(folder: Path, what: str, shown: str) -> None:
    """Create ``folder`` if needed (``shown`` in the message when it cannot be) and probe it
    for writing; an ``OutputError`` starting with ``what`` otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{what}: cannot create {shown} ({error.strerror or error})") from None
    _probe_writable(folder, what)


def _probe_writable(folder: Path, what: str) -> None:
    """Create and delete a file in ``folder``: permissions, read-only file systems and quotas
    all show, whoever runs the program (``os.access`` says yes to root)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_test."):
            pass
    except OSError as error:
        raise OutputError(f"{what}: cannot write in the folder ({error.strerror or error})") \
            from None


def check_output_file(path: str | os.PathLike, flag: str,
                      inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Check, before any work, that ``path`` (the value of ``flag``) can be written as a file
    and is none of ``inputs`` (symlinks resolved). Raises ``OutputError`` naming the flag."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file name")
    real = resolved(path, flag)
    for given in inputs:
        if given is not None and resolved(given) == real:
            raise OutputError(f"{flag} {path}: is the input {given}; writing it would destroy "
                              f"the input, give another file name")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{flag} {path}: {parent} is not a folder")
    _writable_folder(parent, f"{flag} {path}", str(parent))
    return path
