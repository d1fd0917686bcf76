"""Pieces every command line shares: help texts that state each default once, comma-separated
integer lists, flags given where they do nothing, and flags that were removed, which answer
with their replacement in one line instead of living on as aliases."""

import argparse
import sys
from typing import Iterable, Mapping, Optional, Sequence


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help texts that state each default once, as the parser holds it: ``(default: X)`` is
    added to a flag whose default is a value; a flag whose default is None says in its own
    words what happens when it is not given, and switches (off by default) say nothing."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and action.default not in ([], "") and "%(default)" not in text):
            text += " (default: " + shown_default(action.default).replace("%", "%%") + ")"
        return text


def shown_default(value) -> str:
    """A default as a user types it: lists comma-separated, switches true/false."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def int_list(text: str) -> list[int]:
    """'64,128,256' -> [64, 128, 256]; argparse ``type`` for comma-separated integer lists."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return values


def positive_limit(text: str) -> float:
    """argparse ``type`` of a size limit, above 0 and at most 1e12: NaN, inf and 1e300 passed a
    plain ``> 0`` check and failed where the limit was first used."""
    try:
        if 0 < float(text) <= 1e12:      # False for NaN
            return float(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a number above 0 and at most 1e12, got {text!r}")


def given_on_command_line(parser: argparse.ArgumentParser,
                          argv: Optional[Sequence[str]]) -> set[str]:
    """The destinations of the flags ``argv`` gives, whatever their values (not defaults, not
    a config file); ``--help`` (or a prefix) is left to the real parse, which shows defaults."""
    argv = [arg for arg in (sys.argv[1:] if argv is None else argv)
            if arg != "-h" and not (len(arg) > 2 and "--help".startswith(arg))]
    saved = ([(action, action.default) for action in parser._actions], dict(parser._defaults))
    try:
        for action in parser._actions:
            action.default = argparse.SUPPRESS
        parser._defaults.clear()
        return set(vars(parser.parse_known_args(argv)[0]))
    finally:
        for action, default in saved[0]:
            action.default = default
        parser._defaults.update(saved[1])


def unused_flags(given: set[str], rules: Iterable[tuple[Sequence[str], bool, str]]) -> str:
    """The one check of flags given where they do nothing: ``rules`` are (destinations, whether
    they do nothing here, what they are for); the first broken's message, or ''."""
    for flags, unused, what in rules:
        named = [f"--{flag}" for flag in flags if flag in given]
        if named and unused:
            return f"{', '.join(named)}: for {what}"
    return ""


# The destination of a refused flag: REFUSED_PREFIX + its name.
REFUSED_PREFIX = "refused_"


class _Refused(argparse.Action):
    """A flag this command does not take: using it is an error whose message says what to do
    instead."""

    def __init__(self, option_strings, dest, why: str, **kwargs):
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS)
        self.why = why

    def __call__(self, parser, namespace, values, option_string=None):
        # One line, not the whole usage: the flag exists in the user's memory, not here.
        parser.exit(2, f"error: {option_string}: {self.why}\n")


def refuse_flags(parser: argparse.ArgumentParser, reasons: Mapping[str, str]) -> None:
    """Make each flag of ``reasons`` ({'--amp': 'removed; use --precision fp32|bf16|fp16'})
    an error with that reason, hidden from ``--help``. A flag the parser has already (taken,
    or refused before) is left as it is."""
    for flag, why in reasons.items():
        if flag in parser._option_string_actions:
            continue
        parser.add_argument(flag, action=_Refused, why=why, dest=REFUSED_PREFIX + flag.lstrip("-"))


# Flags of earlier versions, and what replaced each.
REMOVED_FLAGS = {
    "--amp": "removed; use --precision fp32|bf16|fp16",
    "--allow_random_vgg": "removed; use --allow_random_weights",
    "--allow_random_metric_weights": "removed; use --allow_random_weights",
    "--save_epoch_freq": "removed; use --keep_epoch_every",
    "--schedule": "removed; the learning-rate schedule is the release's",
    "--max_pixels": "removed; use --max_megapixels",
}
