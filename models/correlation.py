"""Local correlation cost volume of the appearance-flow network.

For features ``first`` and ``second`` of shape (B, C, H, W) and a maximum displacement ``d``
(3 in PF-AFN), the volume has ``(2d+1)**2`` channels (49), ordered y-major:

    out[b, (dy+d)*(2d+1) + (dx+d), y, x] = mean_c first[b, c, y, x] * second[b, c, y+dy, x+dx]

with ``second`` zero-padded outside the image. It is a mean over channels, not a sum. The release
computed this with a cupy kernel; here it is plain PyTorch, so it runs on CPU and CUDA with
autograd, and always in float32 (under autocast the inputs are promoted).
"""

import torch
import torch.nn.functional as F

MAX_DISPLACEMENT = 3


def local_correlation(first: torch.Tensor, second: torch.Tensor,
                      max_displacement: int = MAX_DISPLACEMENT) -> torch.Tensor:
    """Cost volume between ``first`` (B, C, H, W) and ``second`` (B, C, H, W).

    Returns (B, (2*max_displacement+1)**2, H, W) in float32 (float64 if an input is float64).
    """
    if first.shape != second.shape or first.dim() != 4:
        raise ValueError(f"correlation needs two (B, C, H, W) tensors of one shape, "
                         f"got {tuple(first.shape)} and {tuple(second.shape)}")
    dtype = torch.promote_types(torch.promote_types(first.dtype, second.dtype), torch.float32)
    with torch.autocast(device_type=first.device.type, enabled=False):
        return _shift_loop(first.to(dtype), second.to(dtype), max_displacement)


def _shift_loop(first: torch.Tensor, second: torch.Tensor, d: int) -> torch.Tensor:
    # One product per displacement; the shifted windows are views of one padded tensor, so
    # autograd keeps no extra copies of ``second``.
    height, width = first.shape[-2:]
    padded = F.pad(second, (d, d, d, d))
    scale = 1.0 / first.shape[1]
    planes = []
    for dy in range(2 * d + 1):
        for dx in range(2 * d + 1):
            window = padded[:, :, dy:dy + height, dx:dx + width]
            planes.append(torch.einsum("bchw,bchw->bhw", first, window) * scale)
    return torch.stack(planes, dim=1)
