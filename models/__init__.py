"""PF-AFN models: the cost volume, the warping module, the Res-UNet generator, the losses and
the try-on composition. ``build_warp``/``build_generator`` construct them from a configuration
(the sizes stored with every checkpoint); the classes themselves take explicit arguments."""

from models.afwm import AFWM, RELEASE_CHANNELS, RELEASE_FPN_DIM, WarpLevel, WarpOutput
from models.generator import ResUnetGenerator

# Input channels of each model in PF-AFN.
PB_WARP_INPUT = 45   # face, other clothes, DensePose one-hot (25), pose (18)
PF_WARP_INPUT = 3    # the (tutor) person image
PB_GEN_INPUT = 8     # preserved region, warped garment, warped edge, arm mask
PF_GEN_INPUT = 7     # person, warped garment, warped edge

ARCH_KEYS = ("warp_channels", "fpn_dim", "ngf", "align_corners")
RELEASE_ARCH = {"warp_channels": list(RELEASE_CHANNELS), "fpn_dim": RELEASE_FPN_DIM, "ngf": 64,
                "align_corners": True}


def _get(cfg, key):
    return cfg[key] if isinstance(cfg, dict) else getattr(cfg, key)


def build_warp(cfg, input_nc: int) -> AFWM:
    """AFWM with the sizes in ``cfg`` (an argparse namespace or dict with ARCH_KEYS)."""
    return AFWM(input_nc, channels=tuple(_get(cfg, "warp_channels")),
                fpn_dim=_get(cfg, "fpn_dim"), align_corners=bool(_get(cfg, "align_corners")))


def build_generator(cfg, input_nc: int) -> ResUnetGenerator:
    return ResUnetGenerator(input_nc, output_nc=4, num_downs=5, ngf=_get(cfg, "ngf"))


__all__ = ["AFWM", "WarpLevel", "WarpOutput", "ResUnetGenerator", "build_warp",
           "build_generator", "ARCH_KEYS", "RELEASE_ARCH", "PB_WARP_INPUT", "PF_WARP_INPUT",
           "PB_GEN_INPUT", "PF_GEN_INPUT"]
