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

Everything the rest of the project uses is importable from here (``from utils.metrics import
evaluate_folders``).
"""

from data.files import read_pairs  # one reader for pairs files
from utils.metrics.fid import (FID_WEIGHTS_FILE, FIDInception, build_fid_inception, feature_statistics,
                               fid_from_features, frechet_distance, inception_features)
from utils.metrics.folders import (METRIC_NAMES, PUBLISHED_FID_SAMPLE_COUNT, applicable_metrics, evaluate_folders,
                                   format_table, resolve_pairs, result_file_name)
from utils.metrics.images import MetricsError, load_image, to_unit_range
from utils.metrics.lpips import LPIPS_BACKBONE_FILES, build_lpips, lpips_distance
from utils.metrics.ssim import SSIM_DEFINITION, ssim
from utils.weights import MissingWeightsError, WeightsFileError, resolve_weights_file

__all__ = [
    "FID_WEIGHTS_FILE", "FIDInception", "LPIPS_BACKBONE_FILES", "METRIC_NAMES", "MetricsError", "MissingWeightsError",
    "PUBLISHED_FID_SAMPLE_COUNT", "SSIM_DEFINITION", "WeightsFileError", "applicable_metrics", "build_fid_inception",
    "build_lpips", "evaluate_folders", "feature_statistics", "fid_from_features", "format_table", "frechet_distance",
    "inception_features", "load_image", "lpips_distance", "read_pairs", "resolve_pairs", "resolve_weights_file",
    "result_file_name", "ssim", "to_unit_range",
]
