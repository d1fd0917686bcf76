"""Pictures of appearance flows: a displacement field on the colour wheel.

Hue is the direction in which a pixel fetches its garment colour (red: from the right, then
through yellow, green, cyan, blue and magenta counter-clockwise), saturation the length of the
displacement, value 1: a pixel sampling its own position is white. ``flow_to_color`` scales the
lengths by the largest one in each image unless ``max_magnitude`` is given.
"""

import math
from typing import Optional

import torch

from models.flow import identity_flow


def flow_displacement(flow: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
    """Sampling grid (B, 2, H, W) in normalised coordinates -> displacement (B, 2, H, W) in
    pixels (x, y): where each pixel samples, relative to its own position."""
    batch, _, height, width = flow.shape
    identity = identity_flow(batch, height, width, flow.device, flow.dtype, align_corners)
    if align_corners:
        scale = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], device=flow.device,
                             dtype=flow.dtype)
    else:
        scale = torch.tensor([width / 2.0, height / 2.0], device=flow.device, dtype=flow.dtype)
    return (flow - identity) * scale.view(1, 2, 1, 1)


def flow_magnitude(flow: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
    """Mean displacement length in pixels of a sampling grid (B, 2, H, W) -> scalar tensor."""
    return torch.linalg.vector_norm(flow_displacement(flow.detach().float(), align_corners),
                                    dim=1).mean()


def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor,
                value: torch.Tensor) -> torch.Tensor:
    """(B, H, W) hue in [0, 1) (a turn), saturation and value in [0, 1] -> (B, 3, H, W)."""
    # Each channel is value * (1 - saturation * clamp(k-distance, 0, 1)), the piecewise-linear
    # form of the HSV cone: k = (n + 6 hue) mod 6 with n = 5, 3, 1 for red, green, blue.
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + hue * 6.0, 6.0)
        ramp = torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
        channels.append(value * (1.0 - saturation * ramp))
    return torch.stack(channels, dim=1)


def flow_to_color(flow: torch.Tensor, align_corners: bool = True,
                  max_magnitude: Optional[float] = None) -> torch.Tensor:
    """Sampling grid (B, 2, H, W) -> colour-wheel picture (B, 3, H, W) in [0, 1]."""
    displacement = flow_displacement(flow.detach().float(), align_corners)
    dx, dy = displacement[:, 0], displacement[:, 1]
    magnitude = torch.sqrt(dx * dx + dy * dy)
    if max_magnitude is None:
        scale = magnitude.flatten(1).amax(1).clamp(min=1e-6).view(-1, 1, 1)
    else:
        scale = torch.full_like(magnitude[:, :1, :1], max(float(max_magnitude), 1e-6))
    # Image y grows downwards; negate it so that the angle is counter-clockwise on screen.
    hue = torch.remainder(torch.atan2(-dy, dx) / (2 * math.pi), 1.0)
    saturation = (magnitude / scale).clamp(0.0, 1.0)
    return _hsv_to_rgb(hue, saturation, torch.ones_like(hue))
