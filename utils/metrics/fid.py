"""FID: the Frechet distance, feature statistics, and the Inception network of the features.

Protocol: **FID** as pytorch-fid computes it: images in [0, 1] resized bilinearly to 299x299 by
the network, the 2,048-d pool3 features of the TF-ported Inception (``pt_inception-2015-12-05``),
sample mean and covariance (``np.cov``, n - 1), and the Frechet distance
``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

The network is pytorch-fid's ``InceptionV3([3])`` (pytorch-fid 0.3.0): built here from the
library's own blocks (``fid_inception_v3``'s architecture) and the forward of its
``InceptionV3``, because the library's constructor downloads its weights. Weights per
``utils/weights.py``: ``pt_inception-2015-12-05-6726825d.pth`` from ``--fid_weights`` or the
hub cache, random only with ``allow_random_weights``.
"""

from __future__ import annotations

import os
import warnings
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from utils.metrics.images import to_unit_range
from utils.weights import (
    RANDOM_WEIGHTS_SEED,
    WeightsFileError,
    announce_random_weights,
    hash_mismatch,
    read_weights_file,
    resolve_weights_file,
    warn_unpublished,
)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_INPUT_SIZE = (299, 299)


# --------------------------------------------------------------------------------------------
# Frechet distance


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2): pytorch-fid's implementation.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``, with the matrix square
    root from ``scipy.linalg.sqrtm`` (about 20 s for 2,048-d on two CPU cores).
    Args: mu (D,), sigma (D, D).
    """
    from pytorch_fid.fid_score import calculate_frechet_distance

    with warnings.catch_warnings():
        # scipy >= 1.16 deprecates the ``disp`` argument pytorch-fid 0.3.0 passes to sqrtm.
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(calculate_frechet_distance(*(np.asarray(value, np.float64)
                                                  for value in (mu1, sigma1, mu2, sigma2))))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (D,) and covariance (D, D) of (N, D) features, as pytorch-fid (``np.cov``,
    n - 1)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets (N1, D) and (N2, D).

    Same value as ``frechet_distance(*feature_statistics(f1), *feature_statistics(f2))``, computed
    without the D x D square root. With centred features A (N1, D), B (N2, D),
    S1 = A^T A / (N1 - 1) and S2 = B^T B / (N2 - 1); the non-zero eigenvalues of S1 S2 are those of
    (A B^T)(A B^T)^T / ((N1 - 1)(N2 - 1)), so
    Tr((S1 S2)^(1/2)) = ||A B^T||_* / sqrt((N1 - 1)(N2 - 1))
    (nuclear norm: the sum of singular values). Exact, real, and fast for N << D, where
    ``sqrtm`` of the singular product is slow and needs pytorch-fid's diagonal offset. When
    N1 * N2 > D * D the (N1, N2) cross matrix would outgrow the covariances, and pytorch-fid's own
    ``frechet_distance`` on the statistics is used instead.
    """
    features1 = np.asarray(features1, np.float64)
    features2 = np.asarray(features2, np.float64)
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(f"FID needs two (N, D) feature sets of equal D, got {features1.shape} "
                         f"and {features2.shape}")
    count1, count2 = len(features1), len(features2)
    if min(count1, count2) < 2:
        raise ValueError(f"FID needs at least 2 samples per set for a covariance, got {count1} "
                         f"and {count2}")
    dim = features1.shape[1]
    if count1 * count2 > dim * dim:
        return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    mean1, mean2 = features1.mean(axis=0), features2.mean(axis=0)
    centred1, centred2 = features1 - mean1, features2 - mean2
    trace1 = (centred1 ** 2).sum() / (count1 - 1)
    trace2 = (centred2 ** 2).sum() / (count2 - 1)
    cross = centred1 @ centred2.T
    trace_sqrt_product = (np.linalg.svd(cross, compute_uv=False).sum()
                          / np.sqrt((count1 - 1) * (count2 - 1)))
    mean_term = float(((mean1 - mean2) ** 2).sum())
    return float(mean_term + trace1 + trace2 - 2.0 * trace_sqrt_product)


# --------------------------------------------------------------------------------------------
# FID Inception


def _fid_inception_architecture() -> torch.nn.Module:
    """The FID Inception layout of pytorch-fid's ``fid_inception_v3``, without its download."""
    from pytorch_fid import inception as fid_inception

    network = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    network.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
    network.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
    network.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
    network.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
    network.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
    network.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
    network.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
    network.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
    network.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
    return network


class FIDInception(torch.nn.Module):
    """pytorch-fid's ``InceptionV3([3])``: the FID Inception up to pool3.

    Takes the layers of an FID Inception (``_fid_inception_architecture``, weights loaded) and
    groups them into the library's four blocks, so that the parameters carry the library's
    names (``blocks.0.0.conv.weight`` is ``Conv2d_1a_3x3.conv.weight``).
    Call it on (N, 3, H, W) images in [0, 1], any size; it returns ``[features]``, features
    (N, 2048, 1, 1).
    """

    def __init__(self, inception: torch.nn.Module):
        super().__init__()
        self.blocks = torch.nn.ModuleList([
            torch.nn.Sequential(inception.Conv2d_1a_3x3, inception.Conv2d_2a_3x3,
                                inception.Conv2d_2b_3x3,
                                torch.nn.MaxPool2d(kernel_size=3, stride=2)),
            torch.nn.Sequential(inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3,
                                torch.nn.MaxPool2d(kernel_size=3, stride=2)),
            torch.nn.Sequential(inception.Mixed_5b, inception.Mixed_5c, inception.Mixed_5d,
                                inception.Mixed_6a, inception.Mixed_6b, inception.Mixed_6c,
                                inception.Mixed_6d, inception.Mixed_6e),
            torch.nn.Sequential(inception.Mixed_7a, inception.Mixed_7b, inception.Mixed_7c,
                                torch.nn.AdaptiveAvgPool2d(output_size=(1, 1))),
        ])
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = F.interpolate(images, size=FID_INPUT_SIZE, mode="bilinear", align_corners=False)
        x = 2 * x - 1  # [0, 1] -> [-1, 1], the range the TF Inception was trained on
        for block in self.blocks:
            x = block(x)
        return [x]


def _random_fid_inception_state() -> dict:
    """A seeded random state dict for the FID Inception (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        network = _fid_inception_architecture()
        # In eval mode each BatchNorm is the identity (running mean 0, variance 1), so PyTorch's
        # default conv init would shrink the activations layer after layer and a fixed std would
        # blow them up; He init (variance 2 / fan_in before a ReLU) keeps pool3 features O(1).
        for module in network.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        return network.state_dict()


def build_fid_inception(weights: Optional[str | os.PathLike] = None,
                        allow_random_weights: bool = False, device: str | torch.device = "cpu",
                        check_hash: bool = True) -> FIDInception:
    """The FID Inception returning pool3 features (``FIDInception``), weights per the module's
    rules.

    The state dict is loaded strictly, as pytorch-fid loads its own: missing, unexpected or
    misshapen keys raise one line of ``WeightsFileError`` naming the file and one of each.
    The returned module carries ``pretrained`` (bool), ``weights_source`` (str) and
    ``unpublished``: what is wrong with a file whose sha256 is not the published one's (its
    scores are not comparable to published ones), else None.
    """
    path = resolve_weights_file(weights, FID_WEIGHTS_FILE, "--fid_weights", "FID Inception network",
                                allow_random_weights)
    unpublished = None
    if path is None:
        announce_random_weights("FID Inception network")
        state = _random_fid_inception_state()
    else:
        # torchvision verifies its files' name-borne hashes on download, pytorch-fid does not; so a
        # mismatch on the Inception file only warns (the strict key and shape check still applies).
        unpublished = hash_mismatch(path, FID_WEIGHTS_FILE) if check_hash else None
        if unpublished:
            warn_unpublished(unpublished)
        state = read_weights_file(path, FID_WEIGHTS_FILE, check_hash=False)
    inception = _fid_inception_architecture()
    own = inception.state_dict()
    wrong = {"missing": own.keys() - state.keys(), "unexpected": state.keys() - own.keys(),
             "misshapen": {key for key in own.keys() & state.keys()
                           if getattr(state[key], "shape", None) != own[key].shape}}
    if any(wrong.values()):   # one line, not load_state_dict's list of every key
        raise WeightsFileError(f"{path}: not the FID Inception weights {FID_WEIGHTS_FILE}: "
                               + "; ".join(f"{len(keys)} {what} key(s), e.g. {min(map(str, keys))}"
                                           for what, keys in wrong.items() if keys))
    inception.load_state_dict(state)
    model = FIDInception(inception)
    model.pretrained = path is not None
    model.unpublished = unpublished
    model.weights_source = str(path) if path is not None else f"RANDOM (seed {RANDOM_WEIGHTS_SEED})"
    return model.to(device).eval()


@torch.no_grad()
def inception_features(model: torch.nn.Module, images: torch.Tensor,
                       batch_size: int = 16) -> np.ndarray:
    """Pool3 features (N, 2048) float64 of images (N, 3, H, W), uint8 or in [-1, 1]."""
    device = next(model.parameters()).device
    features = []
    for start in range(0, len(images), batch_size):
        batch = to_unit_range(images[start:start + batch_size]).to(device)
        pooled = model(batch)[0]
        features.append(pooled.flatten(1).double().cpu().numpy())
    return np.concatenate(features, axis=0)
