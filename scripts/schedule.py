"""Print the schedule a stage trains with: per epoch, the learning-rate factor, the learning
rates and what changes at the phase boundary (stage 3's optimised parts, stage 4's skin
weights), as the training scripts compute them. Without ``--all`` long schedules keep the
epochs around every switch (the phase, the start of the decay) and name the runs between them.

    python scripts/schedule.py                       # the four stages, their default schedules
    python scripts/schedule.py --stage pf_warp --niter 2 --niter_decay 1
"""

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.cli import HelpFormatter  # noqa: E402
from train_pb_gen import ParserBasedGenerator  # noqa: E402
from train_pb_warp import ParserBasedWarp  # noqa: E402
from train_pf_gen import EARLY_SKIN_WEIGHTS, LATE_SKIN_WEIGHTS, ParserFreeGenerator  # noqa: E402
from train_pf_warp import ParserFreeWarp  # noqa: E402
from utils.training.earlier_stages import WARP_LR_RATIO  # noqa: E402
from utils.training.schedule import in_first_phase, lr_factor  # noqa: E402


def _stage_row(stage, phases):
    """(lr, warp lr ratio or None, niter, niter_decay, (first phase, after)) of a stage."""
    ratio = WARP_LR_RATIO if set(stage.trained) == {"warp", "gen"} else None
    defaults = stage.defaults
    return defaults["lr"], ratio, defaults["niter"], defaults["niter_decay"], phases


def _skin(weights):
    return f"skin {weights[0]:g} / {weights[1]:g}"


STAGES = {
    "pb_warp": _stage_row(ParserBasedWarp, None),
    "pb_gen": _stage_row(ParserBasedGenerator, None),
    "pf_warp": _stage_row(ParserFreeWarp, ("new parts only", "all parameters")),
    "pf_gen": _stage_row(ParserFreeGenerator, (_skin(EARLY_SKIN_WEIGHTS),
                                               _skin(LATE_SKIN_WEIGHTS))),
}


def rows(stage: str, niter: int, niter_decay: int, lr: float) -> list[tuple]:
    """Per epoch: (the printed line, the learning-rate factor, the phase's name or '')."""
    _, ratio, _, _, phases = STAGES[stage]
    lines = []
    for epoch in range(niter + niter_decay):
        factor = lr_factor(epoch, niter, niter_decay)
        rates = f"lr {lr * factor:.3g}" + (f", warp {ratio * lr * factor:.3g}" if ratio else "")
        phase = ""
        if phases:
            phase = phases[0] if in_first_phase(epoch, niter) else phases[1]
        lines.append((f"  epoch {epoch:>3} (release's {epoch + 1:>3}): factor {factor:.4f}  "
                      f"{rates}  {phase}", factor, phase))
    return lines


def switches(lines: list) -> set:
    """The epochs where the phase changes or the learning rate starts to fall, with the epoch
    before each, and the first and last three: the rows a short listing keeps."""
    kept = {0, 1, 2, len(lines) - 3, len(lines) - 2, len(lines) - 1}
    for epoch in range(1, len(lines)):
        before, now = lines[epoch - 1], lines[epoch]
        if now[2] != before[2] or (now[1] < 1 <= before[1]):
            kept |= {epoch - 1, epoch}
    return {epoch for epoch in kept if 0 <= epoch < len(lines)}


def short_listing(lines: list) -> list[str]:
    """The rows of ``switches``; each run of rows between them as one line saying what they do
    (the same rate, or a linear fall between the rows around them)."""
    kept = sorted(switches(lines))
    out = []
    for index, epoch in enumerate(kept):
        out.append(lines[epoch][0])
        following = kept[index + 1] if index + 1 < len(kept) else epoch + 1
        if following > epoch + 1:
            first, last = epoch + 1, following - 1
            factor = lines[first][1]
            what = (f"factor {factor:.4f}, as epoch {epoch}" if lines[last][1] == factor
                    else f"factor falling linearly from {factor:.4f} to {lines[last][1]:.4f}")
            out.append(f"  epochs {first}-{last}: {what}, phase unchanged")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--stage", choices=sorted(STAGES), default=None,
                        help="one stage; all four when not given")
    parser.add_argument("--niter", type=int, default=None,
                        help="epochs at the full rate; the stage's when not given")
    parser.add_argument("--niter_decay", type=int, default=None,
                        help="epochs of linear decay; the stage's when not given")
    parser.add_argument("--lr", type=float, default=None,
                        help="base learning rate; the stage's when not given")
    parser.add_argument("--all", action="store_true",
                        help="print every epoch, not only the first and last three and the "
                             "epochs around each switch of phase or learning rate")
    args = parser.parse_args(argv)
    for flag in ("niter", "niter_decay"):   # as training refuses them
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            parser.error(f"--{flag} must be 0 or more, got {getattr(args, flag)}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    for stage in ([args.stage] if args.stage else list(STAGES)):
        lr, _, niter, niter_decay, _ = STAGES[stage]
        niter = niter if args.niter is None else args.niter
        niter_decay = niter_decay if args.niter_decay is None else args.niter_decay
        lines = rows(stage, niter, niter_decay, lr if args.lr is None else args.lr)
        print(f"{stage}: {niter} + {niter_decay} epochs")
        if args.all or len(lines) <= 8:
            print("\n".join(line for line, *_ in lines))
        else:
            print("\n".join(short_listing(lines)))


if __name__ == "__main__":
    main()
