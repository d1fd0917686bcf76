"""Fused Triton kernels for the local correlation cost volume, forward and backward.

Same definition as ``models/correlation.py``:

    out[b, k, y, x] = (1/C) sum_c first[b, c, y, x] * second[b, c, y+dy, x+dx],
    k = (dy+d)*(2d+1) + (dx+d), second zero outside the image.

One launch computes the whole volume without materialising shifted copies; the backward computes
both input gradients in one launch:

    grad_first[b, c, p]  = (1/C) sum_k g[b, k, p] * second[b, c, p + o_k]
    grad_second[b, c, q] = (1/C) sum_k g[b, k, q - o_k] * first[b, c, q - o_k]

where ``o_k`` is the displacement (dy, dx) of channel k and out-of-image terms are zero.
Inputs are (B, C, H, W) contiguous float32 or float64 on a CUDA device; with the environment
variable ``TRITON_INTERPRET=1`` set before import, the kernels also run on CPU tensors (slowly),
which is how the tests check them without a GPU.
"""

import torch
import triton
import triton.language as tl

BLOCK_PIXELS = 64
BLOCK_CHANNELS = 32


@triton.jit
def _correlation_forward_kernel(first_ptr, second_ptr, out_ptr, channels, height, width, scale,
                                D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
                                USE_FP64: tl.constexpr):
    # Program (pixel block, displacement k, batch b).
    pixel_block = tl.program_id(0)
    k = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    side = 2 * D + 1
    dy = k // side - D
    dx = k % side - D
    plane = height * width

    pixels = pixel_block * BLOCK_P + tl.arange(0, BLOCK_P)
    inside = pixels < plane
    y = pixels // width
    x = pixels % width
    yy = y + dy
    xx = x + dx
    valid = inside & (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
    shifted = yy * width + xx

    base = b * channels * plane
    if USE_FP64:
        acc = tl.zeros((BLOCK_P,), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_P,), dtype=tl.float32)
    for c0 in range(0, channels, BLOCK_C):
        chans = c0 + tl.arange(0, BLOCK_C)
        chan_ok = chans < channels
        rows = base + chans[:, None].to(tl.int64) * plane
        f = tl.load(first_ptr + rows + pixels[None, :],
                    mask=chan_ok[:, None] & inside[None, :], other=0.0)
        s = tl.load(second_ptr + rows + shifted[None, :],
                    mask=chan_ok[:, None] & valid[None, :], other=0.0)
        acc += tl.sum(f * s, axis=0)

    out_offset = (b * side * side + k) * plane + pixels
    tl.store(out_ptr + out_offset, acc * scale, mask=inside)


@triton.jit
def _correlation_backward_kernel(first_ptr, second_ptr, grad_ptr, grad_first_ptr,
                                 grad_second_ptr, channels, height, width, scale,
                                 D: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
                                 USE_FP64: tl.constexpr):
    # Program (pixel block, channel block, batch b); loops over the (2D+1)^2 displacements.
    pixel_block = tl.program_id(0)
    chan_block = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    side = 2 * D + 1
    plane = height * width

    pixels = pixel_block * BLOCK_P + tl.arange(0, BLOCK_P)
    inside = pixels < plane
    y = pixels // width
    x = pixels % width
    chans = chan_block * BLOCK_C + tl.arange(0, BLOCK_C)
    chan_ok = chans < channels
    rows = b * channels * plane + chans[:, None].to(tl.int64) * plane
    grad_base = b * side * side * plane

    if USE_FP64:
        acc_first = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float64)
        acc_second = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float64)
    else:
        acc_first = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
        acc_second = tl.zeros((BLOCK_C, BLOCK_P), dtype=tl.float32)
    for k in range(0, side * side):
        dy = k // side - D
        dx = k % side - D
        # grad_first: this pixel's gradient times second at the displaced pixel.
        yy = y + dy
        xx = x + dx
        forward_ok = inside & (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        g_here = tl.load(grad_ptr + grad_base + k * plane + pixels, mask=inside, other=0.0)
        s = tl.load(second_ptr + rows + (yy * width + xx)[None, :],
                    mask=chan_ok[:, None] & forward_ok[None, :], other=0.0)
        acc_first += g_here[None, :] * s
        # grad_second: the pixel this one is displaced from contributes its gradient times first.
        ys = y - dy
        xs = x - dx
        back_ok = inside & (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
        source = ys * width + xs
        g_there = tl.load(grad_ptr + grad_base + k * plane + source, mask=back_ok, other=0.0)
        f = tl.load(first_ptr + rows + source[None, :],
                    mask=chan_ok[:, None] & back_ok[None, :], other=0.0)
        acc_second += g_there[None, :] * f

    store_mask = chan_ok[:, None] & inside[None, :]
    offsets = rows + pixels[None, :]
    tl.store(grad_first_ptr + offsets, acc_first * scale, mask=store_mask)
    tl.store(grad_second_ptr + offsets, acc_second * scale, mask=store_mask)


def _check(first: torch.Tensor, second: torch.Tensor) -> None:
    if first.dtype not in (torch.float32, torch.float64) or second.dtype != first.dtype:
        raise TypeError(f"triton correlation takes two float32 or float64 tensors, "
                        f"got {first.dtype} and {second.dtype}")
    if first.shape != second.shape or first.dim() != 4:
        raise ValueError(f"triton correlation needs two (B, C, H, W) tensors of one shape, "
                         f"got {tuple(first.shape)} and {tuple(second.shape)}")


class TritonCorrelation(torch.autograd.Function):
    """Cost volume (B, (2d+1)^2, H, W) of ``first`` and ``second`` (B, C, H, W) with fused
    Triton forward and backward kernels."""

    @staticmethod
    def forward(ctx, first, second, max_displacement):
        _check(first, second)
        first, second = first.contiguous(), second.contiguous()
        batch, channels, height, width = first.shape
        side = 2 * max_displacement + 1
        out = first.new_empty(batch, side * side, height, width)
        grid = (triton.cdiv(height * width, BLOCK_PIXELS), side * side, batch)
        _correlation_forward_kernel[grid](
            first, second, out, channels, height, width, 1.0 / channels,
            D=max_displacement, BLOCK_P=BLOCK_PIXELS, BLOCK_C=BLOCK_CHANNELS,
            USE_FP64=first.dtype == torch.float64)
        ctx.max_displacement = max_displacement
        ctx.save_for_backward(first, second)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        first, second = ctx.saved_tensors
        grad_out = grad_out.contiguous().to(first.dtype)
        batch, channels, height, width = first.shape
        grad_first = torch.empty_like(first)
        grad_second = torch.empty_like(second)
        grid = (triton.cdiv(height * width, BLOCK_PIXELS), triton.cdiv(channels, BLOCK_CHANNELS),
                batch)
        _correlation_backward_kernel[grid](
            first, second, grad_out, grad_first, grad_second, channels, height, width,
            1.0 / channels, D=ctx.max_displacement, BLOCK_P=BLOCK_PIXELS,
            BLOCK_C=BLOCK_CHANNELS, USE_FP64=first.dtype == torch.float64)
        return grad_first, grad_second, None


def triton_correlation(first: torch.Tensor, second: torch.Tensor,
                       max_displacement: int = 3) -> torch.Tensor:
    """Cost volume of ``first`` and ``second`` (B, C, H, W), float32/float64, by Triton kernels."""
    return TritonCorrelation.apply(first, second, max_displacement)
