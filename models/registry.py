"""Architectures as data: the registry of builders, their flags and checks, the recognition of
released files, and the released families. This module holds only the mechanism; each
architecture registers itself at the end of its own module.

An architecture is a plain dict (what a checkpoint stores under ``arch``), for example::

    {"kind": "warp", "type": "pfafn", "input_nc": 3, "channels": [64, 128, 256, 256, 256],
     "fpn_dim": 256, "align_corners": True, "cost_volume": "auto"}
    {"kind": "gen", "type": "resunet", "input_nc": 7, "output_nc": 4, "num_downs": 5, "ngf": 64}

``kind`` says which part of the try-on it is ('warp' or 'gen'), ``type`` which registered
architecture, and every other key is a constructor argument. ``build_model(arch)`` fills in the
defaults, checks every value, builds the module and verifies that it records the complete dict
as ``module.arch`` (the engine saves it with the weights, so a checkpoint rebuilds its own
model, never the run's command line).

Adding an architecture: a module file in ``models/`` with its ``nn.Module`` (explicit
arguments, recorded as ``self.arch``) that ends with one ``register(Architecture(...))``:
defaults, value checks, command-line flags (``ArchFlag``), ``from_state`` and a description.
A released family (a warp and a generator published together) is one
``register_family(Family(...))`` beside it.

Discovery. ``register`` only records. The first lookup (``types_of``, ``architecture``,
``build_model``, ``recognise``, ``architecture_flags``, ``arch_from_flags``, ``families``...)
imports, with ``importlib.import_module``, every module of the ``models`` package that
``pkgutil.iter_modules`` lists and whose source has a line beginning with ``register(`` or
``register_family(``; that happens once per process. No other file names the modules, so a new
file is found with no other edit; importing a stage script imports none of them (a PF-AFN run
imports FS-VTON's and DM-VTON's code only when it first looks an architecture up). Code may
also call ``register`` at run time (a test's temporary module) and ``unregister`` after.
"""

import copy
import importlib
import math
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn as nn

from common.errors import UserError

KINDS = ("warp", "gen")
KIND_NAMES = {"warp": "warp", "gen": "generator"}
OPTIONAL_KEY = "num_batches_tracked"   # BatchNorm's step count: load_state_dict fills it in

# A value check: '' when the value is fine, else what is wrong with it ('is not ...').
Check = Callable[[Any], str]


class ArchitectureError(UserError, ValueError):
    """An architecture that cannot be built: an unknown name or argument, a bad value, a flag
    the chosen architecture does not take."""


@dataclass(frozen=True)
class ArchFlag:
    """A command-line flag an architecture declares. ``flag``: its name without dashes;
    ``arg``: the constructor argument it sets; ``type``: int, float, ``common.cli.int_list``
    or bool (a --x/--no-x switch); ``help``: what it is, without its default (each
    architecture has its own, which the parser adds); ``choices``: the allowed values, if any.
    A flag name means the same thing in every architecture that declares it."""

    flag: str
    arg: str
    type: Callable
    help: str
    choices: Optional[tuple] = None


@dataclass(frozen=True)
class Architecture:
    """One registered architecture.

    ``build``: the module class (or a function) taking ``input_nc`` and the other constructor
    arguments; ``defaults``: every argument but ``input_nc``, at the released model's values;
    ``checks``: a ``Check`` per argument of ``defaults``; ``from_state``: the arguments a plain
    state dict's shapes imply (``input_nc`` included), or None when its keys are not this
    architecture's; ``description``: one line for help texts and errors; ``flags``: the
    command-line flags that set its arguments; ``ignored_keys``: keys its released files carry
    that the module does not have (loaders drop them).

    ``refines``: the type of another architecture whose state dicts this one's are, told apart
    only by ``from_state`` (DCI-VTON's warp is PF-AFN's AFWM with a 16-channel condition):
    ``recognise`` asks it first. ``condition``: the person condition a warp takes in place
    of the stage's own, by name (``data.inputs.WARP_CONDITIONS``; None: the stage's), with
    ``condition_channels`` channels; ``garment_masked``: whether the warp takes the garment
    multiplied by its mask (PF-AFN's family) or the product photo as it is."""

    kind: str
    type: str
    build: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    checks: Mapping[str, Check]
    from_state: Callable[[Mapping[str, torch.Tensor]], Optional[dict]]
    description: str
    flags: tuple = ()
    ignored_keys: tuple = ()
    refines: Optional[str] = None
    condition: Optional[str] = None
    condition_channels: int = 0
    garment_masked: bool = True

    @property
    def label(self) -> str:
        """'mobile warp', 'resunet generator': how messages name it."""
        return f"{self.type} {KIND_NAMES[self.kind]}"


@dataclass(frozen=True)
class Family:
    """A released warp and generator pair: ``name`` (test.py's ``--arch``), the ``warp`` and
    ``gen`` architecture types, ``rounding`` (its test script rounds images to 8 bits; PF-AFN's
    truncates) and a one-line ``description``."""

    name: str
    warp: str
    gen: str
    rounding: bool
    description: str


_ARCHITECTURES: dict[tuple[str, str], Architecture] = {}
_FAMILIES: dict[str, Family] = {}
_discovered = False
_REGISTERS = re.compile(r"^register(_family)?\(", re.MULTILINE)


def register(spec: Architecture) -> Architecture:
    """Record ``spec``; a repeated (kind, type), an argument without a check, a flag setting an
    unknown argument or meaning something else than the same flag elsewhere is a ValueError."""
    key = (spec.kind, spec.type)
    if spec.kind not in KINDS:
        raise ValueError(f"architecture kind must be one of {KINDS}, got {spec.kind!r}")
    if key in _ARCHITECTURES:
        raise ValueError(f"architecture {spec.label} is registered already")
    unchecked = sorted(set(spec.defaults) - set(spec.checks))
    if unchecked:
        raise ValueError(f"architecture {spec.label}: no check for {', '.join(unchecked)}")
    for flag in spec.flags:
        if flag.arg not in spec.defaults:
            raise ValueError(f"architecture {spec.label}: --{flag.flag} sets {flag.arg!r}, "
                             f"which is not one of its arguments")
        for other in _ARCHITECTURES.values():
            same = [f for f in other.flags if f.flag == flag.flag]
            if same and same[0] != flag:
                raise ValueError(f"--{flag.flag} of the {spec.label} differs from the one of "
                                 f"the {other.label}: a flag has one meaning")
    _ARCHITECTURES[key] = spec
    return spec


def register_family(family: Family) -> Family:
    if family.name in _FAMILIES:
        raise ValueError(f"family {family.name!r} is registered already")
    _FAMILIES[family.name] = family
    return family


def unregister(kind: str, type: str) -> None:
    """Forget a registered architecture (a test's, registered at run time)."""
    _ARCHITECTURES.pop((kind, type), None)


def _discover() -> None:
    """Import, once, every module of this package that registers something (module docstring)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(__package__)
    try:
        for info in pkgutil.iter_modules(package.__path__):
            source = Path(info.module_finder.path) / f"{info.name}.py"
            if (f"{__package__}.{info.name}" != __name__ and source.is_file()
                    and _REGISTERS.search(source.read_text(encoding="utf-8"))):
                importlib.import_module(f"{__package__}.{info.name}")
    except BaseException:
        _discovered = False
        raise


def _registered() -> dict[tuple[str, str], Architecture]:
    _discover()
    return _ARCHITECTURES


def types_of(kind: str) -> tuple[str, ...]:
    """The registered architecture names of ``kind`` ('warp' or 'gen'), PF-AFN's first."""
    return tuple(name for k, name in _registered() if k == kind)


def find(kind: str, type: str) -> Architecture:
    """The registered architecture; ``ArchitectureError`` naming the choices."""
    registered = _registered()
    if (kind, type) not in registered:
        raise ArchitectureError(f"unknown {KIND_NAMES.get(kind, kind)} architecture {type!r}; "
                                f"registered: {', '.join(types_of(kind)) or 'none'}")
    return registered[(kind, type)]


def architecture(arch: Mapping[str, Any]) -> Architecture:
    """The registry entry of an architecture dict (its ``kind`` and ``type``)."""
    if arch.get("kind") not in KINDS:
        raise ArchitectureError(f"unknown architecture kind {arch.get('kind')!r}; expected one "
                                f"of {', '.join(KINDS)}")
    return find(arch["kind"], arch.get("type"))


def families() -> dict[str, Family]:
    """The registered released families by name, PF-AFN's first."""
    _discover()
    for family in _FAMILIES.values():
        find("warp", family.warp), find("gen", family.gen)
    return dict(_FAMILIES)


def family_of(warp_type: str, gen_type: str) -> Optional[Family]:
    """The family whose warp and generator these are, or None."""
    return next((family for family in families().values()
                 if (family.warp, family.gen) == (warp_type, gen_type)), None)


# ---------------------------------------------------------------------------------------------
# Value checks, for the ``checks`` of a registration


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# No layer of these networks is wider than this: a larger width is a typo or a file that
# claims more than it holds (a model of it would need tens of GB before any check).
MAX_WIDTH = 2048


def positive_int(value: Any) -> str:
    """A width or count: a whole number in [1, MAX_WIDTH]."""
    if not (_is_int(value) and value > 0):
        return "is not a positive whole number"
    return "" if value <= MAX_WIDTH else f"is larger than {MAX_WIDTH}"


def int_at_most(limit: int) -> Check:
    """A whole number in [1, ``limit``] (a count of levels, say)."""
    def check(value: Any) -> str:
        problem = positive_int(value)
        return problem or ("" if value <= limit else f"is larger than {limit}")
    return check


def positive_number(value: Any) -> str:
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and value > 0)
    return "" if ok else "is not a positive number"


def is_bool(value: Any) -> str:
    return "" if isinstance(value, bool) else "is not true or false"


def is_name(value: Any) -> str:
    return "" if isinstance(value, str) else "is not a name"


def at_most(limit: float) -> Check:
    """A positive number no larger than ``limit``."""
    def check(value: Any) -> str:
        problem = positive_number(value)
        return problem or ("" if value <= limit else f"is not in (0, {limit:g}]")
    return check


def width_list(count: Optional[int] = None) -> Check:
    """A non-empty list of positive whole numbers (``count`` of them, if given)."""
    def check(value: Any) -> str:
        ok = (isinstance(value, (list, tuple)) and len(value) > 0
              and all(_is_int(v) and v > 0 for v in value))
        if not ok:
            return "is not a list of positive whole numbers"
        if max(value) > MAX_WIDTH:
            return f"has a width larger than {MAX_WIDTH}"
        if count is not None and len(value) != count:
            return f"is not {count} widths (one per level)"
        return ""
    return check


# ---------------------------------------------------------------------------------------------
# Architecture dicts


def complete_arch(arch: Mapping[str, Any]) -> dict:
    """``arch`` with every constructor argument filled in from the defaults and every value
    checked: an unknown key, a missing ``input_nc`` or a bad value is an ``ArchitectureError``."""
    spec = architecture(arch)
    given = {k: v for k, v in arch.items() if k not in ("kind", "type")}
    unknown = sorted(set(given) - set(spec.defaults) - {"input_nc"})
    if unknown:
        raise ArchitectureError(f"architecture {spec.kind}/{spec.type} has no argument(s) "
                                f"{', '.join(unknown)}; it takes input_nc, "
                                f"{', '.join(spec.defaults)}")
    if "input_nc" not in given:
        raise ArchitectureError(f"architecture {spec.kind}/{spec.type} needs input_nc")
    for key, value in given.items():
        problem = (positive_int if key == "input_nc" else spec.checks[key])(value)
        if problem:
            raise ArchitectureError(f"architecture {spec.kind}/{spec.type}: {key} = {value!r} "
                                    f"{problem}")
    args = {"input_nc": given.pop("input_nc"), **copy.deepcopy(dict(spec.defaults)), **given}
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}
    return {"kind": spec.kind, "type": spec.type, **args}


def with_overrides(arch: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """``arch`` with those ``overrides`` it takes replaced (e.g. ``{'cost_volume': 'rows'}``:
    an architecture without a cost volume ignores it), checked again."""
    return complete_arch({**arch, **{k: v for k, v in overrides.items()
                                     if k in architecture(arch).defaults}})


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


class ModuleWrapper(nn.Module):
    """A module around ``self.model`` that changes how it runs, not what it is (e.g.
    ``models.fast.ChannelsLast``): ``unwrap`` looks through it."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module under its wrappers: DDP (``.module``), torch.compile (``._orig_mod``) and
    ``ModuleWrapper`` (``.model``)."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, ModuleWrapper):
            model = model.model
        else:
            return model


def saved_arch(model: nn.Module) -> dict:
    """What a checkpoint records of ``model`` (a registered module, possibly wrapped): its
    architecture dict."""
    return copy.deepcopy(unwrap(model).arch)


def ignored_keys(model: nn.Module) -> tuple[str, ...]:
    """The keys released files of ``model``'s architecture carry that it does not have."""
    arch = getattr(unwrap(model), "arch", None)
    return architecture(arch).ignored_keys if isinstance(arch, Mapping) else ()


# ---------------------------------------------------------------------------------------------
# Command-line flags


def architecture_flags(kind: str) -> list[tuple[ArchFlag, dict[str, Any]]]:
    """Every flag a registered architecture of ``kind`` declares, once per flag name, with
    ``{architecture type: its default}`` for the architectures that take it."""
    found: dict[str, tuple[ArchFlag, dict[str, Any]]] = {}
    for (k, type_name), spec in _registered().items():
        if k != kind:
            continue
        for flag in spec.flags:
            first = found.setdefault(flag.flag, (flag, {}))
            if first[0] != flag:      # register() refuses this; a changed flag would slip by
                raise ValueError(f"--{flag.flag} has two meanings in {kind} architectures")
            first[1][type_name] = copy.deepcopy(spec.defaults[flag.arg])
    return list(found.values())


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def arch_from_flags(kind: str, type: str, input_nc: int, values: Mapping[str, Any]) -> dict:
    """The complete, checked architecture dict of ``type`` with ``input_nc`` input channels and
    the flags ``values`` gives ({flag name: value}; None or absent: the architecture's
    default). A flag of another ``kind`` architecture given to ``type``, or a bad value, is an
    ``ArchitectureError`` naming the flag."""
    spec = find(kind, type)
    own = {flag.flag: flag for flag in spec.flags}
    of_kind = {flag.flag for flag, _ in architecture_flags(kind)}
    given = {key: value for key, value in values.items()
             if key in of_kind and value is not None}
    args = {}
    for key, value in given.items():
        if key not in own:
            takes = ", ".join(f"--{flag}" for flag in own) or "no flags"
            raise ArchitectureError(f"--{key} is not a flag of the {spec.label} "
                                    f"({spec.description}); it takes {takes}")
        flag = own[key]
        value = list(value) if isinstance(value, tuple) else value
        problem = spec.checks[flag.arg](value)
        if not problem and flag.choices is not None and value not in flag.choices:
            problem = f"is not one of {', '.join(_shown(c) for c in flag.choices)}"
        if problem:
            raise ArchitectureError(f"--{key} {_shown(value)} {problem} (the {spec.label})")
        args[flag.arg] = value
    return complete_arch({"kind": kind, "type": type, "input_nc": input_nc, **args})


# ---------------------------------------------------------------------------------------------
# Recognising plain state dicts


def aliases(model: nn.Module) -> dict[str, str]:
    """Key -> an earlier key of the same tensor, for the state-dict keys of a module used in
    several places (DM-VTON's smooth layers), which a file saved without them still fits."""
    first, found = {}, {}
    for key, value in model.state_dict(keep_vars=True).items():
        if first.setdefault(id(value), key) != key:
            found[key] = first[id(value)]
    return found


def _expected_shapes(arch: Mapping[str, Any]) -> tuple[dict[str, tuple], dict[str, str]]:
    """Key -> shape of the state dict of ``arch``, and its ``aliases``, from a model built on
    the meta device."""
    with torch.device("meta"):
        model = build_model(arch)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}, aliases(model)


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
    """The registered ``kind`` architecture that ``state`` (a plain state dict) fits exactly;
    an architecture that ``refines`` another is asked before it."""
    best = None
    candidates = sorted(((type_name, spec) for (k, type_name), spec in _registered().items()
                         if k == kind), key=lambda item: item[1].refines is None)
    for type_name, spec in candidates:
        shapes = {key: tuple(v.shape) for key, v in state.items()
                  if key not in spec.ignored_keys}
        try:
            args = spec.from_state(state)
        except (KeyError, IndexError, ValueError):
            args = None
        arch = {"kind": kind, "type": type_name, **(args or {"input_nc": 3})}
        try:
            expected, aliased = _expected_shapes(arch)
        except (TypeError, ValueError, RuntimeError):
            continue
        missing = sorted(k for k in expected.keys() - shapes.keys()
                         if not k.endswith(OPTIONAL_KEY) and aliased.get(k) not in shapes)
        unexpected = sorted(shapes.keys() - expected.keys())
        mismatched = [f"{key} (file {shapes[key]}, model {expected[key]})"
                      for key in sorted(expected.keys() & shapes.keys())
                      if shapes[key] != expected[key]]
        if args is not None and not (missing or unexpected or mismatched):
            return Recognition(arch=complete_arch(arch), closest=type_name,
                               matching=len(expected))
        if spec.refines:
            continue        # its keys are those of the architecture it refines, named instead
        candidate = Recognition(arch=None, closest=type_name,
                                matching=len(expected.keys() & shapes.keys()) - len(mismatched),
                                missing=missing, unexpected=unexpected, mismatched=mismatched)
        if best is None or candidate.matching > best.matching:
            best = candidate
    return best or Recognition(arch=None)
