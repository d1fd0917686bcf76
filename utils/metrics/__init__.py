"""Try-on quality metrics: paired SSIM and LPIPS, and FID against the persons' own photos.

The protocol is PF-AFN's and that of the VITON papers it compares with; each module states its
part of it:

- ``images.py``: the image conventions (uint8 or [-1, 1] in, [0, 1] for the metrics), reading
  image files, ``MetricsError``.
- ``ssim.py``: SSIM (Gaussian window, valid region; pytorch_msssim).
- ``lpips.py``: LPIPS v0.1, AlexNet trunk by default.
- ``fid.py``: the Frechet distance and pytorch-fid's FID Inception, built without its download.
- ``folders.py``: scoring a folder of try-ons against the persons' photos, the summary table.

Weights follow ``utils/weights.py``: the linear LPIPS layers ship inside the ``lpips`` package;
the two ImageNet backbones come from a file the caller names or from the torch hub cache, and are
never downloaded. Random backbones only with ``allow_random_weights``; they are announced on
stderr and recorded in the scores, which are then not comparable to published ones.

The network metrics are importable from here (``from utils.metrics import ssim``); scoring a
folder is ``utils.metrics.folders``, imported by the tools that score folders, not by training.
"""

from utils.metrics.fid import (
                               FID_WEIGHTS_FILE,
                               FIDInception,
                               build_fid_inception,
                               feature_statistics,
                               fid_from_features,
                               frechet_distance,
                               inception_features,
)
from utils.metrics.images import MetricsError, load_image, to_unit_range
from utils.metrics.lpips import LPIPS_BACKBONE_FILES, build_lpips, lpips_distance
from utils.metrics.ssim import SSIM_DEFINITION, ssim
from utils.weights import MissingWeightsError, WeightsFileError, resolve_weights_file

__all__ = [
    "FID_WEIGHTS_FILE", "FIDInception", "LPIPS_BACKBONE_FILES", "MetricsError",
    "MissingWeightsError", "SSIM_DEFINITION", "WeightsFileError", "build_fid_inception",
    "build_lpips", "feature_statistics", "fid_from_features", "frechet_distance",
    "inception_features", "load_image", "lpips_distance", "resolve_weights_file", "ssim",
    "to_unit_range",
]
