"""Pre-warped garments from any warp module of the zoo: the warp runs at its own size, its flow
is upsampled to the working size, and the garment (border padding) and its mask (zero padding)
are sampled there, as DCI-VTON's test loop does for its diffusion model's inputs.

    warper = load_prewarp_model("warp_viton.pth", device="cpu")
    out = warper(batch)              # a batch of data.prewarp.PrewarpDataset
    out.garment, out.mask            # (B, 3, H, W) in [-1, 1], (B, 1, H, W) in [0, 1]
"""

from dataclasses import dataclass
from typing import Mapping, NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from data.dcivton import dcivton_condition
from data.inputs import TryOnInputs, pose_radius_for
from models import PB_WARP_INPUT, PF_WARP_INPUT
from models.flow import sample
from models.registry import ArchitectureError, architecture, build_model, find, with_overrides
from utils.checkpoint import (
    CheckpointError,
    check_declared_shapes,
    checkpoint_arch,
    load_state,
    read_checkpoint,
    state_dict_from,
    trained_size,
)

# The size every released warp of the family was trained at.
RELEASE_WARP_SIZE = (256, 192)


class Prewarp(NamedTuple):
    """``garment`` (B, 3, H, W) in [-1, 1] and ``mask`` (B, 1, H, W) in [0, 1], warped."""

    garment: torch.Tensor
    mask: torch.Tensor


def condition_kind(warp: nn.Module, source: str = "the warp") -> str:
    """Which condition (``data.prewarp.CONDITIONS``) a warp module takes: the one its
    architecture names, else by its input channels (3: the photo, 45: parser-based).
    ``source`` names the file in errors."""
    spec = architecture(warp.arch)
    if spec.condition:
        return spec.condition
    by_channels = {PF_WARP_INPUT: "photo", PB_WARP_INPUT: "parser_based"}
    if warp.arch["input_nc"] not in by_channels:
        raise CheckpointError(f"{source}: a {spec.label} of {warp.arch['input_nc']} input "
                              f"channels takes no condition this project reads (3: a "
                              f"parser-free student, {PB_WARP_INPUT}: a parser-based teacher)")
    return by_channels[warp.arch["input_nc"]]


def load_warp(path: str, arch_type: Optional[str] = None,
              flag: str = "--warp_checkpoint") -> nn.Module:
    """The warp module of ``path`` (a project checkpoint of any stage with a warp, or a released
    plain state dict, recognised from its keys), built and loaded strictly. ``arch_type``
    names the architecture of a plain state dict instead of recognising it."""
    data = read_checkpoint(path, flag)
    state = state_dict_from(data, "warp", path, flag)
    if arch_type is None or "format" in data:
        arch = checkpoint_arch(data, "warp", path, flag, "warp")
        if arch_type not in (None, arch["type"]):   # a checkpoint records its architecture
            raise CheckpointError(f"--arch {arch_type}: {path} holds a {arch['type']} warp")
    else:
        try:
            args = find("warp", arch_type).from_state(state)
        except ArchitectureError as error:
            raise CheckpointError(f"--arch: {error}") from None
        except (KeyError, IndexError, ValueError):
            args = None
        if args is None:
            raise CheckpointError(f"{flag}: {path} is not a {arch_type} warp (its keys and "
                                  f"shapes are another architecture's)")
        arch = {"kind": "warp", "type": arch_type, **args}
    arch = with_overrides(arch, {"cost_volume": "auto"})
    check_declared_shapes(state, arch, "warp", path, flag)    # before gigabytes are allocated
    model = build_model(arch)
    load_state(model, state, f"{flag}: {path}")
    # The (h, w) a checkpoint of this project was trained at; a released file's is the family's.
    model.trained_size = trained_size(data) or RELEASE_WARP_SIZE
    return model.eval()


def downsized(x: torch.Tensor, size: tuple[int, int], nearest: bool = False) -> torch.Tensor:
    """``x`` at ``size`` with F.interpolate (bilinear, align_corners False, no antialiasing, as
    DCI-VTON's loop; nearest for masks and labels)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if nearest:
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@dataclass
class PrewarpModel:
    """A warp module ready to pre-warp batches of ``data.prewarp.PrewarpDataset``:
    ``condition`` its kind, ``warp_size`` the (h, w) it runs at, ``garment_masked`` whether it
    takes the garment multiplied by its mask."""

    warp: nn.Module
    condition: str
    warp_size: tuple[int, int]
    garment_masked: bool
    device: torch.device

    def warp_condition(self, batch: Mapping) -> torch.Tensor:
        """The (B, C, h, w) condition of ``batch`` at the warp's size, on the device."""
        if self.condition == "dcivton":
            groups = batch["parse_agnostic"].to(self.device).unsqueeze(1).float()
            groups = downsized(groups, self.warp_size, nearest=True).squeeze(1).long()
            rendering = downsized(batch["densepose_rendering"].to(self.device), self.warp_size)
            return dcivton_condition(groups, rendering)
        if self.condition == "photo":
            return batch["image"].to(self.device)
        # The person's maps are at the warp's size; the garment plays no part in the condition.
        person = {key: value for key, value in batch.items() if key not in ("garment",
                                                                           "garment_mask")}
        image = batch["image"]
        person.update(garment=torch.zeros_like(image), garment_edge=torch.zeros_like(image[:, :1]))
        inputs = TryOnInputs.from_batch(person, self.device, pose_radius_for(self.warp_size[0]))
        return inputs.pb_condition

    @torch.inference_mode()
    def __call__(self, batch: Mapping) -> Prewarp:
        garment = batch["garment"].to(self.device)
        mask = batch["garment_mask"].to(self.device)
        if self.garment_masked:
            garment = garment * mask
        cond = self.warp_condition(batch)
        small_garment = downsized(garment, self.warp_size)
        flow = self.warp(cond, small_garment).flow
        align_corners = self.warp.arch["align_corners"]
        if tuple(flow.shape[-2:]) != tuple(garment.shape[-2:]):
            flow = F.interpolate(flow, size=garment.shape[-2:], mode="bilinear",
                                 align_corners=align_corners)
        return Prewarp(garment=sample(garment, flow, "border", align_corners),
                       mask=sample(mask, flow, "zeros", align_corners))


def load_prewarp_model(path: str, device: torch.device | str = "cpu",
                       arch_type: Optional[str] = None,
                       warp_size: Optional[tuple[int, int]] = None) -> PrewarpModel:
    """The warp of ``path`` (``load_warp``) on ``device``, with its condition kind, run at
    ``warp_size`` (when not given: the size it was trained at)."""
    warp = load_warp(path, arch_type).to(device)
    spec = architecture(warp.arch)
    warp_size = warp_size or warp.trained_size
    return PrewarpModel(warp=warp, condition=condition_kind(warp, f"--warp_checkpoint {path}"),
                        warp_size=tuple(warp_size),
                        garment_masked=spec.garment_masked, device=torch.device(device))
