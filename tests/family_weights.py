"""Random weights for FS-VTON's, DM-VTON's and DCI-VTON's networks, written in exactly the
containers their authors released, for the tests that load them and for the golden outputs in
tests/golden/.

    python -m tests.family_weights --family fsvton --out DIR [--seed 0]

- FS-VTON (``PFAFN_warp_epoch_101.pth``, ``PFAFN_gen_epoch_101.pth``): plain state dicts in
  PyTorch 1.1's legacy (pre-zip) serialization, every storage tagged ``cuda:0`` (saved from a
  GPU), the warp with the training-time key ``aflow_net.weight``.
- DM-VTON (``dmvton_pf_warp.pt``, ``dmvton_pf_gen.pt``): ``{'epoch', 'best_fid', 'model',
  'optimizer'}`` in the zip serialization, ``cuda:0`` tags, ``best_fid`` a NumPy float64 pickled
  under NumPy 1.x's name ``numpy.core.multiarray.scalar``; the warp's five smoothing
  convolutions per extractor are aliases of one.
- DCI-VTON (``warp_viton.pth``, its warp only): PF-AFN's AFWM with a 16-channel condition, a
  plain state dict in the zip serialization of its PyTorch 1.11, ``cuda:0`` tags, with the
  training-time key ``aflow_net.weight``.

The values are drawn from ``torch.Generator().manual_seed(seed)`` in the state dict's key order:
convolutions and linear layers N(0, 2 / fan_in) times the gains below (chosen so that the
try-ons are neither flat nor saturated: random networks of these depths otherwise fade or
explode), biases N(0, 0.02), BatchNorm weight U(0.8, 1.2), bias N(0, 0.1), running mean
N(0, 0.1), running variance U(0.5, 1.5); the same seed gives the same bytes.
"""

import argparse
import contextlib
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from models.registry import build_model

SECOND_ORDER = torch.tensor([[[0, 0, 0], [1, -2, 1], [0, 0, 0]],
                             [[0, 1, 0], [0, -2, 0], [0, 1, 0]],
                             [[1, 0, 0], [0, -2, 0], [0, 0, 1]],
                             [[0, 0, 1], [0, -2, 0], [1, 0, 0]]], dtype=torch.float32)[:, None]

# Multipliers of the N(0, 2 / fan_in) draw, by key suffix or part of a key.
GAINS = {
    "fsvton": {".block.": 0.5, "cond_style.0.weight": 3.0, "image_style.0.weight": 3.0,
               "netF.": 0.3, "netRefine.": 0.5, "model.model.6.weight": 1.0},
    "dmvton": {"smooth_layers": 0.5, "lateral_layers": 0.7, "top_layer": 0.7,
               "netMain.": 0.5, "netRefine.": 0.5, "conv_last.weight": 0.2},
    "dcivton": {".block.": 0.5, "netMain.": 0.5, "netRefine.": 0.5},
}
# The style projections' biases: FS-VTON initialises them to 1 (scales around one).
STYLE_BIAS = ("mlp_class_std.linear.bias", 1.0)


def family_models(family: str):
    """Their parser-free warp and generator (registry architectures), built empty; DCI-VTON
    released a warp alone."""
    if family == "dcivton":
        return (build_model({"kind": "warp", "type": "dcivton", "input_nc": 16}),)
    if family == "fsvton":
        return (build_model({"kind": "warp", "type": "fsvton", "input_nc": 3}),
                build_model({"kind": "gen", "type": "resunet", "input_nc": 7}))
    return (build_model({"kind": "warp", "type": "mobile", "input_nc": 3}),
            build_model({"kind": "gen", "type": "mobile", "input_nc": 7}))


def _gain(family: str, key: str) -> float:
    return next((gain for part, gain in GAINS[family].items() if part in key), 1.0)


@torch.no_grad()
def randomise(model: torch.nn.Module, family: str, generator: torch.Generator) -> None:
    """Fill every tensor of ``model`` in place (module docstring), aliases once."""
    seen = set()
    for key, tensor in model.state_dict(keep_vars=True).items():
        if tensor.data_ptr() in seen or not tensor.is_floating_point():
            continue
        seen.add(tensor.data_ptr())
        shape = tensor.shape
        if key.endswith(STYLE_BIAS[0]):
            value = STYLE_BIAS[1] + 0.1 * torch.randn(shape, generator=generator)
        elif key.endswith("running_mean"):
            value = 0.1 * torch.randn(shape, generator=generator)
        elif key.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif tensor.dim() == 1 and ".bn" not in key and _is_batchnorm(model, key):
            value = (0.8 + 0.4 * torch.rand(shape, generator=generator) if key.endswith("weight")
                     else 0.1 * torch.randn(shape, generator=generator))
        elif key.endswith("bias") or tensor.dim() < 2:
            value = 0.02 * torch.randn(shape, generator=generator)
        else:
            fan_in = shape[1] * math.prod(shape[2:]) if tensor.dim() > 1 else shape[0]
            if key.endswith("weight_orig") or "mlp_class_std" in key:
                fan_in = shape[1]
            value = torch.randn(shape, generator=generator) * math.sqrt(2.0 / fan_in)
            value = value * _gain(family, key)
            if isinstance(_module_of(model, key), torch.nn.ConvTranspose2d):
                value = value * math.sqrt(shape[0] / max(shape[1], 1))
            if key.endswith(".weight") and _is_modulated(model, key):
                # Modulated weights are scaled by sqrt(2 / fan_in) at run time: store N(0, 1).
                value = torch.randn(shape, generator=generator)
        tensor.copy_(value)


def _module_of(model, key):
    module = model
    for part in key.split(".")[:-1]:
        module = getattr(module, part)
    return module


def _is_batchnorm(model, key) -> bool:
    return isinstance(_module_of(model, key), torch.nn.BatchNorm2d)


def _is_modulated(model, key) -> bool:
    return type(_module_of(model, key)).__name__ == "ModulatedConv2d"


@contextlib.contextmanager
def _cuda_tags():
    """Storages written as if they lay on cuda:0, as the released files' do."""
    original = torch.serialization.location_tag
    torch.serialization.location_tag = lambda storage: "cuda:0"
    try:
        yield
    finally:
        torch.serialization.location_tag = original


@contextlib.contextmanager
def _numpy1_names():
    """NumPy scalars pickled under NumPy 1.x's module name ``numpy.core.multiarray`` (the
    released files were written with NumPy 1.x; NumPy 2 writes ``numpy._core.multiarray``)."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    original = scalar.__module__
    scalar.__module__ = "numpy.core.multiarray"
    try:
        yield
    finally:
        scalar.__module__ = original


def _with_flow_filters(state: dict) -> dict:
    """``state`` with the training-time filters just before the first ``aflow_net.`` key."""
    items = list(state.items())
    cut = next(i for i, (k, _) in enumerate(items) if k.startswith("aflow_net."))
    return dict(items[:cut] + [("aflow_net.weight", SECOND_ORDER.clone())] + items[cut:])


def write_family_weights(family: str, out: str | Path, seed: int = 0) -> tuple[Path, ...]:
    """(warp file, generator file) of ``family`` in ``out``, in its released containers
    (DCI-VTON: the warp file alone)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = family_models(family)
    generator = torch.Generator().manual_seed(seed)
    for model in models:
        randomise(model, family, generator)
    if family == "dcivton":
        path = out / "warp_viton.pth"
        with _cuda_tags():
            torch.save(_with_flow_filters(dict(models[0].state_dict())), path)
        return (path,)
    warp, gen = models
    warp_state = dict(warp.state_dict())
    if family == "fsvton":
        # The training-time filters sit after cond_FPN's last key, as in the released file.
        items = list(warp_state.items())
        cut = next(i for i, (k, _) in enumerate(items) if k.startswith("aflow_net."))
        warp_state = dict(items[:cut] + [("aflow_net.weight", SECOND_ORDER.clone())]
                          + items[cut:])
        paths = out / "PFAFN_warp_epoch_101.pth", out / "PFAFN_gen_epoch_101.pth"
        with _cuda_tags():
            torch.save(warp_state, paths[0], _use_new_zipfile_serialization=False)
            torch.save(gen.state_dict(), paths[1], _use_new_zipfile_serialization=False)
        return paths
    paths = out / "dmvton_pf_warp.pt", out / "dmvton_pf_gen.pt"
    items = list(warp_state.items())
    cut = next(i for i, (k, _) in enumerate(items) if k.startswith("aflow_net."))
    warp_state = dict(items[:cut] + [("aflow_net.weight", SECOND_ORDER.clone())] + items[cut:])
    for path, state in zip(paths, (warp_state, gen.state_dict())):
        payload = {"epoch": 100, "best_fid": np.float64(28.2), "model": state,
                   "optimizer": {"state": {}, "param_groups": []}}
        with _cuda_tags(), _numpy1_names(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # numpy.core's shim
            torch.save(payload, path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True, choices=sorted(GAINS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_family_weights(args.family, args.out, args.seed):
        print(path)


if __name__ == "__main__":
    main()
