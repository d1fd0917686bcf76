"""Networks of the flow-based try-on family, pure tensors in and out: the cost volume, the warp
modules, the generators, the losses, the try-on composition and the tutor. ``models.registry``
turns an architecture dict into a module, finds the modules that register architectures and
recognises released state dicts; the classes take explicit arguments and never read the
command line."""

from models.afwm import AFWM, RELEASE_CHANNELS, RELEASE_FPN_DIM, WarpLevel, WarpOutput
from models.generator import ResUnetGenerator
from models.registry import build_model, complete_arch, recognise, saved_arch, unwrap

# Input channels of each model in PF-AFN.
PB_WARP_INPUT = 45   # face, other clothes, DensePose one-hot (25), pose (18)
PF_WARP_INPUT = 3    # the (tutor) person image
PB_GEN_INPUT = 8     # preserved region, warped garment, warped edge, arm mask
PF_GEN_INPUT = 7     # person, warped garment, warped edge

# The warp modules halve the size five times: a working height and width divide by 2**5.
SIZE_MULTIPLE = 32
# Above this side a try-on or a training step needs tens of GB.
MAX_SIDE = 4096

__all__ = ["AFWM", "WarpLevel", "WarpOutput", "ResUnetGenerator", "RELEASE_CHANNELS",
           "RELEASE_FPN_DIM", "build_model", "complete_arch", "recognise", "saved_arch",
           "unwrap", "PB_WARP_INPUT", "PF_WARP_INPUT", "PB_GEN_INPUT", "PF_GEN_INPUT",
           "SIZE_MULTIPLE", "MAX_SIDE"]
