"""SSIM, as the VITON try-on papers report it.

Protocol: **SSIM** on RGB images scaled to [0, 1] (data range 1), Gaussian window 11 taps,
sigma 1.5, K1 = 0.01, K2 = 0.03, population (not sample) variances, averaged over the valid part
of the map (the window never leaves the image) and over the three channels. This is Wang et al.'s
SSIM as computed by ``pytorch_msssim.ssim`` and by ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)``; the two agree
to float precision (3e-10 measured on 256x192 images). The zero-padded, same-size variant of
the ``pytorch-ssim`` package, which some try-on papers used, also scores the padded border and
can read about 0.02 higher; scores from the two are not interchangeable.
"""

from __future__ import annotations

import torch

from utils.metrics.images import to_unit_range

SSIM_WINDOW_SIZE = 11
SSIM_WINDOW_SIGMA = 1.5
SSIM_K = (0.01, 0.03)
# Recorded with every score, so that a reader knows which of the variants above it is.
SSIM_DEFINITION = (f"Gaussian window {SSIM_WINDOW_SIZE}, sigma {SSIM_WINDOW_SIGMA}, data range 1, "
                   f"K {SSIM_K}, valid region, RGB mean (pytorch_msssim)")


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (see the module docstring for the exact definition).

    Args:
        pred, target: (N, 3, H, W) or (3, H, W), both ``uint8`` in [0, 255] or floating point in
            [-1, 1]; same shape, H and W at least 11.
    Returns:
        (N,) float64 SSIM, 1 for identical images.
    """
    from pytorch_msssim import ssim as msssim_ssim

    if pred.shape != target.shape:
        raise ValueError(f"SSIM needs images of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    pred, target = to_unit_range(pred).double(), to_unit_range(target).double()
    height, width = pred.shape[-2:]
    if min(height, width) < SSIM_WINDOW_SIZE:
        # pytorch_msssim would skip the smoothing along a short side with only a warning.
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE}, "
                         f"got {height}x{width}")
    return msssim_ssim(pred, target, data_range=1.0, size_average=False,
                       win=_ssim_window(pred.shape[1]), K=SSIM_K)


def _ssim_window(channels: int) -> torch.Tensor:
    """The 1-D Gaussian (11 taps, sigma 1.5) as pytorch_msssim wants it, (C, 1, 1, 11).

    pytorch_msssim would normalise its own window in float32, so that a window sum off 1 by ~1e-7
    leaves SSIM of flat images off by ~1e-5; this one is normalised in float64.
    """
    offsets = torch.arange(SSIM_WINDOW_SIZE, dtype=torch.float64) - SSIM_WINDOW_SIZE // 2
    weights = torch.exp(-offsets ** 2 / (2 * SSIM_WINDOW_SIGMA ** 2))
    return (weights / weights.sum()).view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
