"""Narrow parser-free models at 64x64 and their stage-4 checkpoints, for the tests of
test.py, the export, the web page and the layouts."""

import torch

from models import AFWM, ResUnetGenerator
from utils.checkpoint import CHECKPOINT_FORMAT, save_atomic

SMALL_ARCH = {"warp_channels": [8, 16, 16, 16, 16], "fpn_dim": 16, "ngf": 8,
              "align_corners": True, "height": 64, "width": 64}


def small_models(seed=0):
    """AFWM(3) and ResUnetGenerator(7) of SMALL_ARCH's widths, random, in eval mode."""
    torch.manual_seed(seed)
    warp = AFWM(3, channels=SMALL_ARCH["warp_channels"], fpn_dim=SMALL_ARCH["fpn_dim"]).eval()
    gen = ResUnetGenerator(7, ngf=SMALL_ARCH["ngf"]).eval()
    return warp, gen


def stage4_checkpoint(path, warp, gen, stage="pf_gen"):
    """Write ``warp`` and ``gen`` as this project's checkpoint of ``stage`` at SMALL_ARCH."""
    save_atomic({"format": CHECKPOINT_FORMAT, "stage": stage,
                 "model": {"warp": warp.state_dict(), "gen": gen.state_dict()},
                 "config": dict(SMALL_ARCH)}, path)
    return path
