"""Architectures as data: one registry of builders, and the recognition of released files.

An architecture is a plain dict (what a checkpoint stores under ``arch``), for example::

    {"kind": "warp", "type": "pfafn", "input_nc": 3, "channels": [64, 128, 256, 256, 256],
     "fpn_dim": 256, "align_corners": True, "cost_volume": "auto"}
    {"kind": "gen", "type": "resunet", "input_nc": 7, "output_nc": 4, "num_downs": 5, "ngf": 64}

``kind`` says which part of the try-on it is ('warp' or 'gen'), ``type`` which registered
architecture, and every other key is a constructor argument. ``build_model(arch)`` fills in the
defaults, builds the module and records the complete dict as ``module.arch`` (the engine saves
it with the weights, so a checkpoint rebuilds its own model, never the run's command line).

A released file is a plain state dict; ``recognise(state, kind)`` finds the registered
architecture whose keys and shapes it fits exactly, with the constructor arguments its shapes
imply, or says which architecture is closest and which keys do not fit.

Adding a family member: a module file with its ``nn.Module`` (taking explicit arguments and
recording them as ``self.arch``), then one ``register(Architecture(...))`` below with its
defaults and ``from_state``.
"""

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn as nn

from models.afwm import AFWM, RELEASE_CHANNELS, RELEASE_FPN_DIM, RELEASE_HEAD_CHANNELS
from models.fast import unwrap
from models.fsvton import STYLE_GRID, StyleAFWM
from models.generator import ResUnetGenerator
from models.mobile import DMVTON_FPN_DIM, MobileAFWM, MobileUNet

KINDS = ("warp", "gen")

# Keys the released training checkpoints carry by accident (the four fixed second-order
# filters of the warp loss); a loader ignores them.
RELEASE_EXTRA_KEYS = ("aflow_net.weight",)


@dataclass(frozen=True)
class Architecture:
    """One registered architecture.

    ``build``: the module class (or a function) taking the constructor arguments;
    ``defaults``: every argument but ``input_nc``, at the values of the released model;
    ``from_state``: the arguments a plain state dict's shapes imply (``input_nc`` included), or
    None when its keys are not this architecture's; ``description``: for help texts and errors.
    """

    kind: str
    type: str
    build: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    from_state: Callable[[Mapping[str, torch.Tensor]], Optional[dict]]
    description: str = ""


REGISTRY: dict[tuple[str, str], Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    key = (architecture.kind, architecture.type)
    if architecture.kind not in KINDS:
        raise ValueError(f"architecture kind must be one of {KINDS}, got {architecture.kind!r}")
    if key in REGISTRY:
        raise ValueError(f"architecture {key} is registered already")
    REGISTRY[key] = architecture
    return architecture


def types_of(kind: str) -> tuple[str, ...]:
    """The registered architecture names of ``kind`` ('warp' or 'gen')."""
    return tuple(name for k, name in REGISTRY if k == kind)


def architecture(arch: Mapping[str, Any]) -> Architecture:
    """The registry entry of an architecture dict; ``ValueError`` naming the choices."""
    kind, name = arch.get("kind"), arch.get("type")
    if (kind, name) not in REGISTRY:
        raise ValueError(f"unknown architecture kind={kind!r} type={name!r}; registered: "
                         + ", ".join(f"{k}/{t}" for k, t in REGISTRY))
    return REGISTRY[(kind, name)]


def _wrong_value(value: Any, default: Any) -> str:
    """What is wrong with an architecture argument of the default's type ('' when nothing):
    a flag is a bool, a count a positive int, a list a list of positive ints."""
    if isinstance(default, bool):
        return "" if isinstance(value, bool) else "is not true or false"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return "" if ok else "is not a positive whole number"
    if isinstance(default, float):
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and value > 0)
        return "" if ok else "is not a positive number"
    if isinstance(default, (list, tuple)):
        ok = (isinstance(value, (list, tuple)) and len(value) > 0
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
        return "" if ok else "is not a list of positive whole numbers"
    if isinstance(default, str):
        return "" if isinstance(value, str) else "is not a name"
    return ""


def complete_arch(arch: Mapping[str, Any]) -> dict:
    """``arch`` with every constructor argument filled in from the defaults, checked: an
    unknown key or a missing ``input_nc`` is a ``ValueError``."""
    spec = architecture(arch)
    given = {k: v for k, v in arch.items() if k not in ("kind", "type")}
    unknown = sorted(set(given) - set(spec.defaults) - {"input_nc"})
    if unknown:
        raise ValueError(f"architecture {spec.kind}/{spec.type} has no argument(s) "
                         f"{', '.join(unknown)}; it takes input_nc, {', '.join(spec.defaults)}")
    if "input_nc" not in given:
        raise ValueError(f"architecture {spec.kind}/{spec.type} needs input_nc")
    for name, value in given.items():
        # input_nc has no default: it is a count, as the int stands for
        problem = _wrong_value(value, spec.defaults.get(name, 1))
        if problem:
            raise ValueError(f"architecture {spec.kind}/{spec.type}: {name} = {value!r} "
                             f"{problem}")
    args = {"input_nc": given.pop("input_nc"), **copy.deepcopy(dict(spec.defaults)), **given}
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}
    return {"kind": spec.kind, "type": spec.type, **args}


def build_model(arch: Mapping[str, Any]) -> nn.Module:
    """The module ``arch`` describes, with freshly initialised weights. Every registered module
    records its architecture as ``module.arch`` (equal to ``complete_arch(arch)``)."""
    full = complete_arch(arch)
    spec = architecture(full)
    model = spec.build(**{k: v for k, v in full.items() if k not in ("kind", "type")})
    if getattr(model, "arch", None) != full:
        raise RuntimeError(f"{type(model).__name__} records arch {getattr(model, 'arch', None)}, "
                           f"not the {full} it was built from")
    return model


def saved_arch(model: nn.Module) -> dict:
    """What a checkpoint records of ``model`` (a registered module, possibly wrapped): its
    architecture dict."""
    return copy.deepcopy(unwrap(model).arch)


# ---------------------------------------------------------------------------------------------
# Recognising plain state dicts


def _expected_shapes(arch: Mapping[str, Any]) -> dict[str, tuple]:
    """Key -> shape of the state dict of ``arch``, from a model built on the meta device."""
    with torch.device("meta"):
        model = build_model(arch)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _plain(state: Mapping[str, torch.Tensor]) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items() if k not in RELEASE_EXTRA_KEYS}


@dataclass
class Recognition:
    """What ``recognise`` found: ``arch`` (None when nothing fits), else the ``closest``
    architecture name with the keys that do not fit it (``missing``, ``unexpected``,
    ``mismatched`` as 'key (file shape, model shape)')."""

    arch: Optional[dict]
    closest: Optional[str] = None
    matching: int = 0
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)


def recognise(state: Mapping[str, torch.Tensor], kind: str) -> Recognition:
    """The registered ``kind`` architecture that ``state`` (a plain state dict) fits exactly."""
    shapes = _plain(state)
    best = None
    for (k, name), spec in REGISTRY.items():
        if k != kind:
            continue
        try:
            args = spec.from_state(state)
        except (KeyError, IndexError, ValueError):
            args = None
        arch = {"kind": kind, "type": name, **(args or {"input_nc": 3})}
        try:
            expected = _expected_shapes(arch)
        except (TypeError, ValueError, RuntimeError):
            continue
        missing = sorted(expected.keys() - shapes.keys())
        unexpected = sorted(shapes.keys() - expected.keys())
        mismatched = [f"{key} (file {shapes[key]}, model {expected[key]})"
                      for key in sorted(expected.keys() & shapes.keys())
                      if shapes[key] != expected[key]]
        if args is not None and not (missing or unexpected or mismatched):
            return Recognition(arch=complete_arch(arch), closest=name,
                               matching=len(expected))
        candidate = Recognition(arch=None, closest=name,
                                matching=len(expected.keys() & shapes.keys()) - len(mismatched),
                                missing=missing, unexpected=unexpected, mismatched=mismatched)
        if best is None or candidate.matching > best.matching:
            best = candidate
    return best or Recognition(arch=None)


# ---------------------------------------------------------------------------------------------
# PF-AFN's architectures


def _encoder_pyramid_args(state: Mapping[str, torch.Tensor]) -> dict:
    """input_nc, channels, fpn_dim and head_channels of a warp module built on PF-AFN's
    feature encoders and refine pyramids."""
    levels = sum(1 for k in state if k.startswith("image_features.encoders.")
                 and k.endswith(".0.block.2.weight"))
    return {"input_nc": int(state["cond_features.encoders.0.0.block.2.weight"].shape[1]),
            "channels": [int(state[f"image_features.encoders.{i}.0.block.2.weight"].shape[0])
                         for i in range(levels)],
            "fpn_dim": int(state["image_FPN.smooth.0.weight"].shape[0]),
            "head_channels": head_channels(state, "aflow_net.netRefine.0")}


def _afwm_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    if "aflow_net.netMain.0.0.weight" not in state:
        return None
    return _encoder_pyramid_args(state)


def head_channels(state: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    """The hidden widths of a flow head (``models.afwm.flow_head``) stored under ``prefix``."""
    widths, index = [], 0
    while f"{prefix}.{index + 2}.weight" in state:
        widths.append(int(state[f"{prefix}.{index}.weight"].shape[0]))
        index += 2
    return widths


def _resunet_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    first = state.get("model.model.0.weight")
    if first is None:
        return None
    # Each U-Net level nests one 'model.model.<index>.' deeper; the innermost has no submodule.
    depth = max(k.count(".model.") for k in state if k.startswith("model."))
    return {"input_nc": int(first.shape[1]), "ngf": int(first.shape[0]), "num_downs": depth,
            "output_nc": 4}


register(Architecture(
    kind="warp", type="pfafn", build=AFWM,
    defaults={"channels": list(RELEASE_CHANNELS), "fpn_dim": RELEASE_FPN_DIM,
              "align_corners": True, "cost_volume": "auto",
              "head_channels": list(RELEASE_HEAD_CHANNELS)},
    from_state=_afwm_from_state,
    description="PF-AFN's AFWM: feature pyramids, local cost volume, AFlowNet"))

register(Architecture(
    kind="gen", type="resunet", build=ResUnetGenerator,
    defaults={"output_nc": 4, "num_downs": 5, "ngf": 64},
    from_state=_resunet_from_state,
    description="PF-AFN's Res-UNet generator"))


# ---------------------------------------------------------------------------------------------
# FS-VTON's and DM-VTON's architectures


def _fsvton_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    if "aflow_net.netStyle.0.conv0.weight" not in state:
        return None
    args = _encoder_pyramid_args(state)
    args["style_grid"] = list(state["aflow_net.cond_style.0.weight"].shape[-2:])
    return args


def _mobile_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    first = state.get("image_mobile.first_layer.0.weight")
    if first is None:
        return None
    return {"input_nc": int(state["cond_mobile.first_layer.0.weight"].shape[1]),
            "fpn_dim": int(state["image_mobile.top_layer.weight"].shape[0]),
            "width_mult": int(first.shape[0]) / 32,
            "head_channels": head_channels(state, "aflow_net.netRefine.0")}


def _mobile_unet_from_state(state: Mapping[str, torch.Tensor]) -> Optional[dict]:
    first = state.get("backbone.features.0.0.weight")
    if first is None or "conv_last.weight" not in state:
        return None
    return {"input_nc": int(first.shape[1]), "output_nc": int(state["conv_last.weight"].shape[0])}


register(Architecture(
    kind="warp", type="fsvton", build=StyleAFWM,
    defaults={"channels": list(RELEASE_CHANNELS), "fpn_dim": RELEASE_FPN_DIM,
              "align_corners": True, "head_channels": list(RELEASE_HEAD_CHANNELS),
              "style_grid": list(STYLE_GRID)},
    from_state=_fsvton_from_state,
    description="FS-VTON's style-based flow: PF-AFN's pyramids, modulated-conv flow heads"))

register(Architecture(
    kind="warp", type="mobile", build=MobileAFWM,
    defaults={"fpn_dim": DMVTON_FPN_DIM, "width_mult": 1.0, "align_corners": True,
              "cost_volume": "auto", "head_channels": list(RELEASE_HEAD_CHANNELS)},
    from_state=_mobile_from_state,
    description="DM-VTON's MobileNetV2 feature pyramids on PF-AFN's AFlowNet"))

register(Architecture(
    kind="gen", type="mobile", build=MobileUNet, defaults={"output_nc": 4},
    from_state=_mobile_unet_from_state,
    description="DM-VTON's MobileNetV2 U-Net generator"))
