"""Res-UNet try-on generator.

A U-Net of ``num_downs`` blocks whose every level carries two residual blocks on the way down
and (except the outermost) two on the way up. Attribute names follow the released checkpoints
(``model.model.0.weight`` is the outermost down-convolution).
"""

from typing import Mapping, Optional

import torch
import torch.nn as nn

from models.registry import ArchFlag, Architecture, int_at_most, positive_int, register


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return self.relu(self.block(x) + x)


class ResUnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down path, the inner submodule, up path; non-outermost levels return
    ``cat(x, block(x))``."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False,
                 innermost: bool = False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        down = [nn.Conv2d(input_nc, inner_nc, 3, stride=2, padding=1, bias=False)]
        if not (outermost or innermost):
            down.append(nn.BatchNorm2d(inner_nc))
        down += [nn.ReLU(inplace=True), ResidualBlock(inner_nc), ResidualBlock(inner_nc)]

        up_in = inner_nc if innermost else 2 * inner_nc
        up = [nn.Upsample(scale_factor=2, mode="nearest"),
              nn.Conv2d(up_in, outer_nc, 3, 1, 1, bias=False)]
        if not outermost:
            up += [nn.BatchNorm2d(outer_nc), nn.ReLU(inplace=True),
                   ResidualBlock(outer_nc), ResidualBlock(outer_nc)]

        middle = [] if submodule is None else [submodule]
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class ResUnetGenerator(nn.Module):
    """Res-UNet: ``input_nc`` channels in, ``output_nc`` out (3 rendered-person logits + 1 mask
    logit in PF-AFN). Input height and width must be multiples of ``2**num_downs``."""

    cpu_memory_format = torch.channels_last   # the layout of the CPU convolutions

    def __init__(self, input_nc: int, output_nc: int = 4, num_downs: int = 5, ngf: int = 64):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"ResUnetGenerator needs num_downs >= 5, got {num_downs}")
        self.input_nc = input_nc
        self.stride = 2 ** num_downs
        # The constructor's arguments as ``models.registry`` describes an architecture.
        self.arch = {"kind": "gen", "type": "resunet", "input_nc": input_nc,
                     "output_nc": output_nc, "num_downs": num_downs, "ngf": ngf}
        block = ResUnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = ResUnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block)
        block = ResUnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block)
        block = ResUnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block)
        block = ResUnetSkipConnectionBlock(ngf, ngf * 2, submodule=block)
        self.model = ResUnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc,
                                                submodule=block, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.stride or width % self.stride:
            raise ValueError(f"ResUnetGenerator needs height and width divisible by "
                             f"{self.stride}, got {height}x{width}")
        if x.shape[1] != self.input_nc:
            raise ValueError(f"generator was built for {self.input_nc} input channels, "
                             f"got {x.shape[1]}")
        if x.is_cpu:
            # oneDNN's CPU convolutions run on NHWC without reordering at every call.
            x = x.contiguous(memory_format=self.cpu_memory_format)
        return self.model(x)


# ---------------------------------------------------------------------------------------------
# Registration


def _resunet_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    first = state.get("model.model.0.weight")
    if first is None:
        return None
    # Each U-Net level nests one 'model.model.<index>.' deeper; the innermost has no submodule.
    depth = max(k.count(".model.") for k in state if k.startswith("model."))
    return {"input_nc": int(first.shape[1]), "ngf": int(first.shape[0]), "num_downs": depth,
            "output_nc": 4}


# A 1024-high input halves to 4 rows after 8 levels; the innermost blocks are 8 x ngf wide.
MAX_DOWNS = 8
MAX_NGF = 256

register(Architecture(
    kind="gen", type="resunet", build=ResUnetGenerator,
    defaults={"output_nc": 4, "num_downs": 5, "ngf": 64},
    checks={"output_nc": positive_int, "num_downs": int_at_most(MAX_DOWNS),
            "ngf": int_at_most(MAX_NGF)},
    flags=(ArchFlag("ngf", "ngf", int, "width of the generator's first layer"),),
    from_state=_resunet_from_state,
    description="PF-AFN's Res-UNet generator"))
