"""Flow fields as sampling grids, and the sampling the warp module is built on.

A flow here is what the release calls ``last_flow``: a (B, 2, H, W) field of absolute sampling
positions in normalised coordinates (channel 0 = x, channel 1 = y, both in [-1, 1] across the
image), so warping an image is one ``grid_sample``. The released weights were trained on
PyTorch 1.1, whose grid_sample behaved as ``align_corners=True``; that is the default here, and
``align_corners`` is an explicit argument everywhere so a model trained otherwise can say so.
"""

import torch
import torch.nn.functional as F

# Second-order difference filters applied to each flow component (valid convolution):
# [1, -2, 1] horizontally, vertically and along both diagonals.
SECOND_ORDER_FILTERS = torch.tensor([
    [[0, 0, 0], [1, -2, 1], [0, 0, 0]],
    [[0, 1, 0], [0, -2, 0], [0, 1, 0]],
    [[1, 0, 0], [0, -2, 0], [0, 0, 1]],
    [[0, 0, 1], [0, -2, 0], [1, 0, 0]],
], dtype=torch.float32).unsqueeze(1)


def offset_to_grid(offset: torch.Tensor, align_corners: bool = True) -> torch.Tensor:
    """Pixel offsets (B, 2, H, W) -> absolute normalised sampling grid (B, 2, H, W).

    With align_corners=True: ``x_n = (x + dx) / ((W - 1) / 2) - 1`` (the release's
    ``apply_offset``); with False the pixel-centre convention ``(2 (x + dx) + 1) / W - 1``.
    """
    # Positions are computed in at least float32: from a bf16 offset (a convolution's output
    # under autocast) they would be a third of a pixel apart at 192 wide.
    offset = offset.to(torch.promote_types(offset.dtype, torch.float32))
    height, width = offset.shape[-2:]
    ys = torch.arange(height, device=offset.device, dtype=offset.dtype).view(1, height, 1)
    xs = torch.arange(width, device=offset.device, dtype=offset.dtype).view(1, 1, width)
    x = xs + offset[:, 0]
    y = ys + offset[:, 1]
    if align_corners:
        x = x / ((width - 1.0) / 2.0) - 1.0
        y = y / ((height - 1.0) / 2.0) - 1.0
    else:
        x = (2.0 * x + 1.0) / width - 1.0
        y = (2.0 * y + 1.0) / height - 1.0
    return torch.stack([x, y], dim=1)


def sample(image: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border",
           align_corners: bool = True) -> torch.Tensor:
    """Bilinear ``grid_sample`` of ``image`` (B, C, h, w) at ``flow`` (B, 2, H, W) -> (B, C, H, W),
    in the wider dtype of the two and at least float32 (a bf16 grid under autocast would move
    every sample by up to a third of a pixel); the result has that dtype."""
    dtype = torch.promote_types(torch.promote_types(image.dtype, flow.dtype), torch.float32)
    image, grid = image.to(dtype), flow.permute(0, 2, 3, 1).to(dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=align_corners)


def upsample_flow(flow: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 upsampling of a normalised flow (align_corners=False, as in the release)."""
    return F.interpolate(flow, scale_factor=2, mode="bilinear", align_corners=False)


def identity_flow(batch: int, height: int, width: int, device=None, dtype=torch.float32,
                  align_corners: bool = True) -> torch.Tensor:
    """The flow that samples every pixel at its own position."""
    zeros = torch.zeros(batch, 2, height, width, device=device, dtype=dtype)
    return offset_to_grid(zeros, align_corners)


def second_order_differences(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 2, H, W) flow -> second differences of x and of y, each (B, 4, H-2, W-2)."""
    # One grouped convolution applies the four filters to both components (group 0: x,
    # group 1: y): one call instead of two, the same products.
    weight = SECOND_ORDER_FILTERS.to(device=flow.device, dtype=flow.dtype).repeat(2, 1, 1, 1)
    differences = F.conv2d(flow, weight, groups=2)
    return differences[:, :4], differences[:, 4:]



def downsample_to_level(x: torch.Tensor, level: int, num_levels: int) -> torch.Tensor:
    """Bilinear downsampling by ``0.5 ** (num_levels - 1 - level)`` (level 0 = coarsest)."""
    scale = 0.5 ** (num_levels - 1 - level)
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
