"""LPIPS: the network and the per-image distance.

Protocol: **LPIPS** v0.1 from the ``lpips`` package, AlexNet trunk by default, on images in
[-1, 1].

Weights. The linear LPIPS layers ship inside the ``lpips`` package and are checked key by key.
The ImageNet trunk does not ship with it; it is torchvision's ``alexnet-owt-7be5be79.pth`` (or
``vgg16-397923af.pth``), found and read per ``utils/weights.py`` (``--lpips_backbone_weights`` or
the hub cache, sha256 checked, random only with ``allow_random_weights``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional

import torch

from utils.metrics.images import to_unit_range
from utils.weights import (
    RANDOM_WEIGHTS_SEED,
    WeightsFileError,
    announce_random_weights,
    read_weights_file,
    resolve_weights_file,
)

LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


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
    expected_linear = {key for key in model.state_dict()
                       if key.startswith("lin") and not key.startswith("lins.")}
    if set(linear_state) != expected_linear:
        raise WeightsFileError(f"{linear_path}: LPIPS linear layers do not match: found "
                               f"{sorted(linear_state)}, expected {sorted(expected_linear)}")
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
                raise WeightsFileError(f"{path}: not torchvision {net} weights ({file_name}): "
                                       f"missing {source_key}")
            if backbone_state[source_key].shape != value.shape:
                raise WeightsFileError(f"{path}: {source_key} has shape "
                                       f"{tuple(backbone_state[source_key].shape)}, "
                                       f"expected {tuple(value.shape)}")
            trunk_state[key] = backbone_state[source_key]
        model.net.load_state_dict(trunk_state, strict=True)
    model.requires_grad_(False)
    model.pretrained = path is not None
    model.weights_source = str(path) if path is not None else f"RANDOM (seed {RANDOM_WEIGHTS_SEED})"
    return model.to(device).eval()


@torch.no_grad()
def lpips_distance(model: torch.nn.Module, pred: torch.Tensor,
                   target: torch.Tensor) -> torch.Tensor:
    """Per-image LPIPS (N,) float64 between (N, 3, H, W) batches, uint8 or in [-1, 1]; 0 if
    identical."""
    if pred.shape != target.shape:
        raise ValueError(f"LPIPS needs images of equal shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    device = next(model.parameters()).device
    pred = to_unit_range(pred).to(device) * 2.0 - 1.0
    target = to_unit_range(target).to(device) * 2.0 - 1.0
    return model(pred, target).flatten().double().cpu()
