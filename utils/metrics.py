"""Try-on quality metrics: paired SSIM and LPIPS, and FID against the persons' own photos.

Protocol (PF-AFN and the VITON papers it compares with):

- **SSIM** on RGB images scaled to [0, 1] (data range 1), Gaussian window 11 taps, sigma 1.5,
  K1 = 0.01, K2 = 0.03, population (not sample) variances, averaged over the valid part of the map
  (the window never leaves the image) and over the three channels. This is Wang et al.'s SSIM as
  computed by ``pytorch_msssim.ssim`` and by ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)``; the two agree
  to float precision (3e-10 measured on 256x192 images). The zero-padded, same-size variant of
  the ``pytorch-ssim`` package, which some try-on papers used, also scores the padded border and
  can read about 0.02 higher; scores from the two are not interchangeable.
- **LPIPS** v0.1 from the ``lpips`` package, AlexNet trunk by default, on images in [-1, 1].
- **FID** as pytorch-fid computes it: images in [0, 1] resized bilinearly to 299x299 by the
  network, the 2,048-d pool3 features of the TF-ported Inception (``pt_inception-2015-12-05``),
  sample mean and covariance (``np.cov``, n - 1), and the Frechet distance
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

Weights. The linear LPIPS layers ship inside the ``lpips`` package. The two ImageNet backbones do
not and cannot be downloaded here, so they are read from a file the caller names or from the
torch hub cache (``$TORCH_HOME/hub/checkpoints``, where torchvision and pytorch-fid keep them).
Nothing is ever downloaded: a missing file raises ``MissingWeightsError`` naming the file, the
folder and the flag. Random backbones are used only with ``allow_random_weights=True``; they are
announced on stderr and recorded in the scores, which are then not comparable to published ones.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import Iterable, Optional, Sequence
from unittest import mock

import numpy as np

import torch
from PIL import Image

from common.errors import UserError
from data.files import read_pairs  # noqa: F401  (re-exported: one reader for pairs files)

METRIC_NAMES = ("ssim", "lpips", "fid")

SSIM_WINDOW_SIZE = 11
SSIM_WINDOW_SIGMA = 1.5
SSIM_K = (0.01, 0.03)

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_FEATURE_DIM = 2048
LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}

# The VITON test protocol: FID is published on 2,032 try-ons against 2,032 photos.
PUBLISHED_FID_SAMPLE_COUNT = 2032

RANDOM_WEIGHTS_SEED = 0


class MetricsError(UserError, RuntimeError):
    """Inputs the metrics cannot use: a missing or unreadable image, mismatched sizes, bad pairs."""


class MissingWeightsError(UserError, FileNotFoundError):
    """A pretrained backbone file needed by a metric is not on this machine."""


class WeightsFileError(UserError, RuntimeError):
    """A backbone file exists but is not the expected one (unreadable, wrong keys, wrong hash)."""


# --------------------------------------------------------------------------------------------
# Image conventions


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1].

    Args:
        images: (N, 3, H, W) or (3, H, W); ``uint8`` in [0, 255], or floating point in [-1, 1]
            (the project's image convention).
    Returns:
        (N, 3, H, W) float32 in [0, 1].
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"expected uint8 or floating-point images, got {images.dtype}")
    low, high = float(images.min()), float(images.max())
    # A little slack for the generator's tanh and float round-off; anything beyond is another
    # convention (e.g. [0, 255] floats) and would give meaningless scores.
    if low < -1.0 - 1e-3 or high > 1.0 + 1e-3:
        raise ValueError(f"floating-point images must lie in [-1, 1]; got values in [{low:.4g}, {high:.4g}]")
    return ((images.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def load_image(path: str | os.PathLike, size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Read an image file as a (3, H, W) uint8 RGB tensor.

    ``size`` = (H, W): when given and different from the file's size, the image is resized
    bilinearly (PIL, which low-pass filters when shrinking), as if it had been saved at that size.
    """
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size is not None and (image.height, image.width) != tuple(size):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8).copy()
    except OSError as error:
        raise MetricsError(f"cannot read image {path}: {error}") from error
    return torch.from_numpy(array).permute(2, 0, 1)


# --------------------------------------------------------------------------------------------
# SSIM


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
        raise ValueError(f"SSIM needs images of equal shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = to_unit_range(pred).double(), to_unit_range(target).double()
    height, width = pred.shape[-2:]
    if min(height, width) < SSIM_WINDOW_SIZE:
        # pytorch_msssim would skip the smoothing along a short side with only a warning.
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE}, got {height}x{width}")
    return msssim_ssim(pred, target, data_range=1.0, size_average=False, win=_ssim_window(pred.shape[1]), K=SSIM_K)


def _ssim_window(channels: int) -> torch.Tensor:
    """The 1-D Gaussian (11 taps, sigma 1.5) as pytorch_msssim wants it, (C, 1, 1, 11).

    pytorch_msssim would normalise its own window in float32, so that a window sum off 1 by ~1e-7
    leaves SSIM of flat images off by ~1e-5; this one is normalised in float64.
    """
    offsets = torch.arange(SSIM_WINDOW_SIZE, dtype=torch.float64) - SSIM_WINDOW_SIZE // 2
    weights = torch.exp(-offsets ** 2 / (2 * SSIM_WINDOW_SIGMA ** 2))
    return (weights / weights.sum()).view(1, 1, 1, -1).repeat(channels, 1, 1, 1)


# --------------------------------------------------------------------------------------------
# Frechet distance


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2): pytorch-fid's implementation.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``, with the matrix square
    root from ``scipy.linalg.sqrtm`` (about 20 s for 2,048-d on two CPU cores).
    Args: mu (D,), sigma (D, D).
    """
    from pytorch_fid.fid_score import calculate_frechet_distance

    with warnings.catch_warnings():
        # scipy >= 1.16 deprecates the ``disp`` argument pytorch-fid 0.3.0 passes to sqrtm.
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(calculate_frechet_distance(np.asarray(mu1, np.float64), np.asarray(sigma1, np.float64),
                                                np.asarray(mu2, np.float64), np.asarray(sigma2, np.float64)))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (D,) and covariance (D, D) of (N, D) features, as pytorch-fid (``np.cov``, n - 1)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Frechet distance between the Gaussians fitted to two feature sets (N1, D) and (N2, D).

    Same value as ``frechet_distance(*feature_statistics(f1), *feature_statistics(f2))``, computed
    without the D x D square root. With centred features A (N1, D), B (N2, D),
    S1 = A^T A / (N1 - 1) and S2 = B^T B / (N2 - 1); the non-zero eigenvalues of S1 S2 are those of
    (A B^T)(A B^T)^T / ((N1 - 1)(N2 - 1)), so Tr((S1 S2)^(1/2)) = ||A B^T||_* / sqrt((N1 - 1)(N2 - 1))
    (nuclear norm: the sum of singular values). Exact, real, and fast for N << D, where
    ``sqrtm`` of the singular product is slow and needs pytorch-fid's diagonal offset. When
    N1 * N2 > D * D the (N1, N2) cross matrix would outgrow the covariances, and pytorch-fid's own
    ``frechet_distance`` on the statistics is used instead.
    """
    features1 = np.asarray(features1, np.float64)
    features2 = np.asarray(features2, np.float64)
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(f"FID needs two (N, D) feature sets of equal D, got {features1.shape} and {features2.shape}")
    count1, count2 = len(features1), len(features2)
    if min(count1, count2) < 2:
        raise ValueError(f"FID needs at least 2 samples per set for a covariance, got {count1} and {count2}")
    dim = features1.shape[1]
    if count1 * count2 > dim * dim:
        return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    mean1, mean2 = features1.mean(axis=0), features2.mean(axis=0)
    centred1, centred2 = features1 - mean1, features2 - mean2
    trace1 = (centred1 ** 2).sum() / (count1 - 1)
    trace2 = (centred2 ** 2).sum() / (count2 - 1)
    cross = centred1 @ centred2.T
    trace_sqrt_product = np.linalg.svd(cross, compute_uv=False).sum() / np.sqrt((count1 - 1) * (count2 - 1))
    mean_term = float(((mean1 - mean2) ** 2).sum())
    return float(mean_term + trace1 + trace2 - 2.0 * trace_sqrt_product)


# --------------------------------------------------------------------------------------------
# Weight files


def hub_checkpoint_dir() -> Path:
    """Where torchvision and pytorch-fid cache downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights_file(path: Optional[str | os.PathLike], file_name: str, flag: str, purpose: str,
                         allow_random_weights: bool) -> Optional[Path]:
    """Find a backbone file: the named ``path``, else ``file_name`` in the hub cache.

    Returns the path, or None when no file exists and ``allow_random_weights`` is set.
    Raises ``MissingWeightsError`` (naming the file, the folder and the flag) otherwise; a named
    path that does not exist is always an error, even with ``allow_random_weights``.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"{purpose}: weights file given with {flag} not found: {path} "
                                      f"(expected a copy of {file_name})")
        return path
    cached = hub_checkpoint_dir() / file_name
    if cached.is_file():
        return cached
    if allow_random_weights:
        return None
    raise MissingWeightsError(
        f"{purpose}: pretrained weights {file_name} not found, and this machine does not download them. "
        f"Copy {file_name} into {cached.parent}/ (the torch hub cache), or pass its path with {flag} PATH. "
        f"(--allow_random_weights / allow_random_weights=True runs with random weights, for tests only: "
        f"such scores are not comparable to published ones.)")


def _sha256_prefix_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_weights_file(path: Path, file_name: str, check_hash: bool, mismatch_is_error: bool = True) -> dict:
    """Load a backbone state dict safely.

    With ``check_hash``, compare the file's sha256 with the prefix its published name carries
    (``alexnet-owt-7be5be79.pth``), so that scores stay comparable: a mismatch raises
    ``WeightsFileError``, or only warns when ``mismatch_is_error`` is False.
    """
    if check_hash:
        expected = file_name.rsplit("-", 1)[-1].split(".")[0]
        actual = _sha256_prefix_of(path)
        if not actual.startswith(expected):
            message = (f"{path}: sha256 {actual[:8]}... does not match {file_name} (expected prefix {expected}); "
                       f"this is not the published file")
            if mismatch_is_error:
                raise WeightsFileError(message)
            warnings.warn(message + ": scores may not be comparable to published ones", stacklevel=3)
            print(f"WARNING: {message}", file=sys.stderr, flush=True)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise WeightsFileError(f"cannot read weights file {path}: {error}") from error
    if not isinstance(state, dict):
        raise WeightsFileError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def announce_random_weights(what: str) -> None:
    """Say loudly, on stderr, that a metric runs on random weights."""
    line = "!" * 78
    print(f"{line}\n!! RANDOM WEIGHTS: {what}.\n!! Scores from it are NOT comparable to published numbers "
          f"(tests and demos only).\n{line}", file=sys.stderr, flush=True)


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


def build_fid_inception(weights: Optional[str | os.PathLike] = None, allow_random_weights: bool = False,
                        device: str | torch.device = "cpu", check_hash: bool = True) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3`` returning pool3 features, weights per the module's rules.

    Call the result on (N, 3, H, W) images in [0, 1] (any size: it resizes to 299x299 bilinearly
    and rescales to [-1, 1] itself); it returns ``[features]`` with features (N, 2048, 1, 1).
    The returned module carries ``pretrained`` (bool) and ``weights_source`` (str).
    """
    from pytorch_fid import inception as fid_inception

    path = resolve_weights_file(weights, FID_WEIGHTS_FILE, "--fid_weights", "FID Inception network",
                                allow_random_weights)
    if path is None:
        announce_random_weights("FID Inception network")
        state = _random_fid_inception_state()
    else:
        # torchvision verifies its files' name-borne hashes on download, pytorch-fid does not; so a
        # mismatch on the Inception file only warns (the strict key and shape check still applies).
        state = read_weights_file(path, FID_WEIGHTS_FILE, check_hash, mismatch_is_error=False)

    # pytorch-fid 0.3.0 fetches its weights by URL inside fid_inception_v3; hand it the state dict
    # read above instead, so the network is exactly the library's and nothing is downloaded.
    def provide_state(url, *args, **kwargs):
        return state

    try:
        with mock.patch.object(fid_inception, "load_state_dict_from_url", provide_state):
            model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[FID_FEATURE_DIM]])
    except RuntimeError as error:  # load_state_dict: missing/unexpected keys or shape mismatch
        raise WeightsFileError(f"{path}: not the FID Inception weights {FID_WEIGHTS_FILE}: {error}") from error
    model.pretrained = path is not None
    model.weights_source = str(path) if path is not None else f"RANDOM (seed {RANDOM_WEIGHTS_SEED})"
    return model.to(device).eval()


@torch.no_grad()
def inception_features(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Pool3 features (N, 2048) float64 of images (N, 3, H, W), uint8 or in [-1, 1]."""
    device = next(model.parameters()).device
    features = []
    for start in range(0, len(images), batch_size):
        batch = to_unit_range(images[start:start + batch_size]).to(device)
        pooled = model(batch)[0]
        features.append(pooled.flatten(1).double().cpu().numpy())
    return np.concatenate(features, axis=0)


# --------------------------------------------------------------------------------------------
# LPIPS


def _lpips_package_linear_weights(net: str) -> Path:
    import lpips

    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"


def build_lpips(net: str = "alex", backbone_weights: Optional[str | os.PathLike] = None,
                allow_random_weights: bool = False, device: str | torch.device = "cpu",
                check_hash: bool = True) -> torch.nn.Module:
    """LPIPS v0.1 (``lpips.LPIPS``) with the package's linear layers and an ImageNet trunk.

    ``net``: 'alex' (the usual choice for reported LPIPS) or 'vgg'. The trunk comes from
    ``backbone_weights`` or the hub cache (torchvision's ``alexnet-owt-7be5be79.pth`` /
    ``vgg16-397923af.pth``); random only with ``allow_random_weights``. Call the result on two
    (N, 3, H, W) batches in [-1, 1]; it returns (N, 1, 1, 1) distances. The returned module carries
    ``pretrained`` (bool) and ``weights_source`` (str).
    """
    import lpips

    if net not in LPIPS_BACKBONE_FILES:
        raise ValueError(f"LPIPS trunk must be one of {sorted(LPIPS_BACKBONE_FILES)}, got {net!r}")
    file_name = LPIPS_BACKBONE_FILES[net]
    path = resolve_weights_file(backbone_weights, file_name, "--lpips_backbone_weights",
                                f"LPIPS {net} trunk", allow_random_weights)
    backbone_state = None if path is None else read_weights_file(path, file_name, check_hash)

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        # torchvision warns that lpips 0.1.4 still passes ``pretrained=``; harmless here.
        warnings.simplefilter("ignore", UserWarning)
        # pnet_rand=True builds the trunk without torchvision's download; pretrained=False leaves
        # the linear layers to be loaded (and checked) below rather than with strict=False.
        model = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False)

    linear_path = _lpips_package_linear_weights(net)
    linear_state = torch.load(linear_path, map_location="cpu", weights_only=True)
    # ``lins.k`` is a second name for ``link``: the same parameters, listed twice in state_dict().
    expected_linear = {key for key in model.state_dict() if key.startswith("lin") and not key.startswith("lins.")}
    if set(linear_state) != expected_linear:
        raise WeightsFileError(f"{linear_path}: LPIPS linear layers do not match: found {sorted(linear_state)}, "
                               f"expected {sorted(expected_linear)}")
    model.load_state_dict(linear_state, strict=False)

    if backbone_state is None:
        announce_random_weights(f"LPIPS {net} trunk")
    else:
        # lpips splits torchvision's ``features`` into slices but keeps the layer indices:
        # ``slice2.3.weight`` is torchvision's ``features.3.weight``.
        trunk_state = {}
        for key, value in model.net.state_dict().items():
            source_key = "features." + key.split(".", 1)[1]
            if source_key not in backbone_state:
                raise WeightsFileError(f"{path}: not torchvision {net} weights ({file_name}): missing {source_key}")
            if backbone_state[source_key].shape != value.shape:
                raise WeightsFileError(f"{path}: {source_key} has shape {tuple(backbone_state[source_key].shape)}, "
                                       f"expected {tuple(value.shape)}")
            trunk_state[key] = backbone_state[source_key]
        model.net.load_state_dict(trunk_state, strict=True)
    model.requires_grad_(False)
    model.pretrained = path is not None
    model.weights_source = str(path) if path is not None else f"RANDOM (seed {RANDOM_WEIGHTS_SEED})"
    return model.to(device).eval()


@torch.no_grad()
def lpips_distance(model: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS (N,) float64 between (N, 3, H, W) batches, uint8 or in [-1, 1]; 0 if identical."""
    if pred.shape != target.shape:
        raise ValueError(f"LPIPS needs images of equal shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    device = next(model.parameters()).device
    pred = to_unit_range(pred).to(device) * 2.0 - 1.0
    target = to_unit_range(target).to(device) * 2.0 - 1.0
    return model(pred, target).flatten().double().cpu()


# --------------------------------------------------------------------------------------------
# Folders


def resolve_pairs(dataroot: str | os.PathLike, pairs: str | os.PathLike) -> Path:
    """A pairs file given as an absolute path, or as a name inside ``dataroot``."""
    pairs = Path(pairs)
    return pairs if pairs.is_absolute() else Path(dataroot) / pairs


def applicable_metrics(requested: str | Sequence[str], paired: bool) -> tuple[str, ...]:
    """The requested metrics that apply to the pairs, saying which are dropped and why: SSIM
    and LPIPS compare each try-on with the person's own photo, which shows the same garment
    only when the pairs are paired. Raises MetricsError when nothing is left."""
    if isinstance(requested, str):
        requested = [name.strip() for name in requested.split(",") if name.strip()]
    metrics = tuple(requested)
    if paired:
        return metrics
    dropped = [name for name in metrics if name in ("ssim", "lpips")]
    if dropped:
        print(f"not scoring {', '.join(dropped)}: the pairs are unpaired (another garment than "
              f"the photo's), so the photo is no reference for them; paired pairs score them")
    kept = tuple(name for name in metrics if name not in ("ssim", "lpips"))
    if not kept:
        raise MetricsError("nothing to score: unpaired pairs have FID only (--metrics fid)")
    return kept


def result_file_name(person: str, cloth: str) -> str:
    """Name of the try-on image of ``person`` wearing ``cloth``: ``{person_stem}__{cloth_stem}.png``."""
    return f"{Path(person).stem}__{Path(cloth).stem}.png"


def _batches(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def evaluate_folders(results_dir: str | os.PathLike, reference_dir: str | os.PathLike,
                     pairs: str | os.PathLike | Sequence[tuple[str, str]],
                     metrics: Sequence[str] = METRIC_NAMES, device: str | torch.device = "cpu",
                     batch_size: int = 16, fid_weights: Optional[str | os.PathLike] = None,
                     lpips_backbone_weights: Optional[str | os.PathLike] = None,
                     allow_random_weights: bool = False, lpips_net: str = "alex") -> dict:
    """Score a folder of try-on images against the persons' own photos.

    Args:
        results_dir: holds ``{person_stem}__{cloth_stem}.png`` for every pair.
        reference_dir: holds the person photos named as in the pairs (``<dataroot>/test_img``).
        pairs: a pairs-file path, or a list of (person, cloth) file names.
        metrics: any of 'ssim', 'lpips', 'fid'.
    Sizes: all results must share one size; a reference photo of another size is resized to it
    (bilinear, PIL) before every metric, FID included, so both sets reach the Inception network
    through the same resolution.
    SSIM and LPIPS compare each result with its own person's photo (meaningful for the paired
    protocol, ``test_pairs_same.txt``). FID compares all results of the pairs with the distinct
    person photos of the pairs (for ``test_pairs.txt`` on VITON: 2,032 against all of test_img).
    Returns:
        a JSON-ready dict: the mean scores under 'ssim' / 'lpips' / 'fid', 'per_pair' scores,
        counts, 'image_size' [H, W], 'weights' (source of each backbone),
        'comparable_to_published' (False when a backbone is random) and 'warnings'.
    """
    metrics = tuple(metrics)
    unknown = sorted(set(metrics) - set(METRIC_NAMES))
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of {METRIC_NAMES}, got {metrics}")
    results_dir, reference_dir = Path(results_dir), Path(reference_dir)
    for folder, what in ((results_dir, "results"), (reference_dir, "reference photos")):
        if not folder.is_dir():
            raise MetricsError(f"{what} folder not found: {folder}")
    pairs = read_pairs(pairs) if isinstance(pairs, (str, os.PathLike)) else [tuple(pair) for pair in pairs]
    if not pairs:
        raise MetricsError("no pairs to evaluate")

    result_paths = [results_dir / result_file_name(person, cloth) for person, cloth in pairs]
    missing = [str(path) for path in result_paths if not path.is_file()]
    if missing:
        raise MetricsError(f"{len(missing)} try-on image(s) missing from {results_dir}, e.g. {missing[:3]}")
    missing = sorted({person for person, _ in pairs if not (reference_dir / person).is_file()})
    if missing:
        raise MetricsError(f"{len(missing)} person photo(s) missing from {reference_dir}, e.g. {missing[:3]}")
    image_size = _common_image_size(result_paths)
    people = sorted({person for person, _ in pairs})
    resized_references = [person for person in people if _image_size(reference_dir / person) != image_size]

    lpips_model = None
    if "lpips" in metrics:
        lpips_model = build_lpips(lpips_net, lpips_backbone_weights, allow_random_weights, device)
    inception = None
    if "fid" in metrics:
        inception = build_fid_inception(fid_weights, allow_random_weights, device)

    per_pair = [{"result": path.name, "reference": person} for path, (person, _) in zip(result_paths, pairs)]
    result_features = []
    for batch_indices in _batches(range(len(pairs)), batch_size):
        results = torch.stack([load_image(result_paths[index]) for index in batch_indices])
        if "ssim" in metrics or "lpips" in metrics:
            references = torch.stack([load_image(reference_dir / pairs[index][0], size=image_size)
                                      for index in batch_indices])
            if "ssim" in metrics:
                for index, value in zip(batch_indices, ssim(results, references).tolist()):
                    per_pair[index]["ssim"] = value
            if "lpips" in metrics:
                for index, value in zip(batch_indices, lpips_distance(lpips_model, results, references).tolist()):
                    per_pair[index]["lpips"] = value
        if inception is not None:
            result_features.append(inception_features(inception, results, batch_size))

    scores = {"num_pairs": len(pairs), "image_size": list(image_size), "metrics": list(metrics),
              "ssim_definition": (f"Gaussian window {SSIM_WINDOW_SIZE}, sigma {SSIM_WINDOW_SIGMA}, data range 1, "
                                  f"K {SSIM_K}, valid region, RGB mean (pytorch_msssim)"),
              "weights": {}, "warnings": []}
    for name in ("ssim", "lpips"):
        if name in metrics:
            scores[name] = float(np.mean([entry[name] for entry in per_pair]))
    if lpips_model is not None:
        scores["weights"]["lpips"] = f"{lpips_net}: {lpips_model.weights_source}"

    if inception is not None:
        reference_features = []
        for batch_people in _batches(people, batch_size):
            references = torch.stack([load_image(reference_dir / person, size=image_size) for person in batch_people])
            reference_features.append(inception_features(inception, references, batch_size))
        result_features = np.concatenate(result_features, axis=0)
        reference_features = np.concatenate(reference_features, axis=0)
        scores["fid"] = fid_from_features(result_features, reference_features)
        scores["fid_num_results"] = len(result_features)
        scores["fid_num_references"] = len(reference_features)
        scores["weights"]["fid"] = inception.weights_source
        smallest = min(len(result_features), len(reference_features))
        if smallest < PUBLISHED_FID_SAMPLE_COUNT:
            scores["warnings"].append(
                f"FID from {len(result_features)} results and {len(reference_features)} photos: FID is biased by "
                f"sample count; published VITON figures use {PUBLISHED_FID_SAMPLE_COUNT} of each")

    scores["num_resized_references"] = len(resized_references)
    if resized_references:
        scores["warnings"].append(f"{len(resized_references)} reference photo(s) resized (bilinear) to the "
                                  f"results' size {image_size[0]}x{image_size[1]}")
    random_models = [name for name, model in (("lpips", lpips_model), ("fid", inception))
                     if model is not None and not model.pretrained]
    scores["random_weights"] = random_models
    scores["comparable_to_published"] = not random_models
    if random_models:
        scores["warnings"].append(f"RANDOM WEIGHTS for {', '.join(random_models)}: these scores are NOT "
                                  f"comparable to published numbers")
    scores["per_pair"] = per_pair
    return scores


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, read from its header."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except OSError as error:
        raise MetricsError(f"cannot read image {path}: {error}") from error


def _common_image_size(paths: Sequence[Path]) -> tuple[int, int]:
    """The one (H, W) shared by all ``paths``; an error naming an odd one out otherwise."""
    first = _image_size(paths[0])
    for path in paths[1:]:
        size = _image_size(path)
        if size != first:
            raise MetricsError(f"try-on images differ in size: {paths[0]} is {first[0]}x{first[1]}, "
                               f"{path} is {size[0]}x{size[1]}")
    return first


def format_table(scores: dict) -> str:
    """A short human-readable summary of ``evaluate_folders``'s result."""
    lines = [f"{'metric':<8} {'value':>10}  notes"]
    notes = {"ssim": "higher is better", "lpips": "lower is better",
             "fid": f"lower is better; {scores.get('fid_num_results')} results vs "
                    f"{scores.get('fid_num_references')} photos"}
    for name in METRIC_NAMES:
        if name in scores:
            random_mark = "  [RANDOM WEIGHTS]" if name in scores["random_weights"] else ""
            lines.append(f"{name:<8} {scores[name]:>10.4f}  {notes[name]}{random_mark}")
    lines.append(f"pairs: {scores['num_pairs']}, image size {scores['image_size'][0]}x{scores['image_size'][1]}")
    for name, source in scores["weights"].items():
        lines.append(f"{name} weights: {source}")
    for warning in scores["warnings"]:
        lines.append(f"WARNING: {warning}")
    if not scores["comparable_to_published"]:
        lines.append("NOT COMPARABLE TO PUBLISHED NUMBERS (random weights)")
    return "\n".join(lines)
