"""Pieces every command line shares: comma-separated integer lists, and flags that were
removed, which answer with their replacement in one line instead of living on as aliases."""

import argparse
from typing import Mapping


def int_list(text: str) -> list[int]:
    """'64,128,256' -> [64, 128, 256]; argparse ``type`` for comma-separated integer lists."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return values


class _Refused(argparse.Action):
    """A flag this command does not take: using it is an error whose message says what to do
    instead."""

    def __init__(self, option_strings, dest, why: str, **kwargs):
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS,
                         help=argparse.SUPPRESS)
        self.why = why

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string}: {self.why}")


def refuse_flags(parser: argparse.ArgumentParser, reasons: Mapping[str, str]) -> None:
    """Make each flag of ``reasons`` ({'--amp': 'removed; use --precision fp32|bf16|fp16'})
    an error with that reason, hidden from ``--help``."""
    for flag, why in reasons.items():
        parser.add_argument(flag, action=_Refused, why=why, dest=f"refused_{flag.lstrip('-')}")


# Flags of earlier versions, and what replaced each.
REMOVED_FLAGS = {
    "--amp": "removed; use --precision fp32|bf16|fp16",
    "--allow_random_vgg": "removed; use --allow_random_weights",
    "--allow_random_metric_weights": "removed; use --allow_random_weights",
    "--save_epoch_freq": "removed; use --keep_epoch_every",
    "--schedule": "removed; the learning-rate schedule is the release's",
    "--max_pixels": "removed; use --max_megapixels",
}
