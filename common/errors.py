"""One base class for every error caused by what a user gave us (a flag, a config file, a
checkpoint, a dataset, a weights file), and the one place that turns it into a message.

Each layer raises its own subclass (``ConfigError``, ``DatasetError``, ``CheckpointError``,
``MissingWeightsError``...), whose message names the flag or file and what is wrong with it.
Every command-line entry point runs under ``exit_on_user_error``: such an error prints one line,
``error: <message>``, and exits with status 2 (as argparse does for a bad flag); anything else
is a bug and keeps its traceback.
"""

import os
import re
import sys
from contextlib import contextmanager

USER_ERROR_STATUS = 2


class UserError(Exception):
    """An input the program cannot use; the message says which and why, for the user."""


def user_error_message(error: BaseException) -> str:
    """The one line printed for ``error``: its message, newlines kept as they are (a
    configuration may list several problems)."""
    return f"error: {error}"


def missing(path, what: str = "folder") -> str:
    """'missing ``what``' for a ``path`` that is not there, or, where a link stands in its
    place, that the link leads nowhere (a loop, or a target that is gone)."""
    if os.path.islink(path):
        return f"a link that leads to no {what} (a loop, or its target is gone)"
    return f"missing {what}"


def load_problem(error: Exception) -> str:
    """One line for what ``torch.load`` refused (its own messages run to many lines, with
    advice to load untrusted files unsafely)."""
    text = str(error)
    if "Weights only load failed" in text and "GLOBAL" in text:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        return ("it pickles objects other than tensors and numbers"
                + (f" ({found.group(1)})" if found else "") + ", which could run code when "
                "loaded; it is refused")
    first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else ""   # a sentence
    detail = f" ({first[:160]})" if len(first) > 12 and "Weights only" not in first else ""
    return (f"not a PyTorch checkpoint, or a damaged one, or one pickling more than tensors "
            f"and numbers{detail}; it is refused")


@contextmanager
def exit_on_user_error():
    """Run the enclosed code; a ``UserError`` ends the process with its message on stderr and
    exit status 2 instead of a traceback. A character the console cannot encode (a non-ASCII
    file name under an ASCII locale) prints as an escape, as on stderr, instead of ending it."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        yield
    except UserError as error:
        print(user_error_message(error), file=sys.stderr, flush=True)
        raise SystemExit(USER_ERROR_STATUS) from None
