"""From a batch of the datasets to the inputs of the models: every mask, computed once.

Each quantity of PF-AFN's training (spec §1, §3) is one named, batched function of tensors
that runs on the tensors' device without host synchronisation. ``TryOnInputs`` moves a batch
to the device once and exposes each quantity as a cached property, so the stage scripts read
``inputs.face_mask`` instead of recomputing it.

Label scheme (after ``merge_noise_label``): 0 background, 1 hair, 4 upper clothes, 5/6 shoes,
8 pants, 9/10 legs, 11/13 arms, 12 face. DensePose I: 3/4 hands, 15..22 arms.
"""

from functools import cached_property
from typing import Mapping, Optional

import torch

from data.pose import POSE_RADIUS, render_pose_maps

NOISE_LABEL = 7
UPPER_CLOTHES_LABEL = 4
FACE_LABELS = (1, 12)               # hair, face
OTHER_CLOTHES_LABELS = (5, 6, 8, 9, 10)  # shoes, pants, legs
ARM_LABELS = (11, 13)
HAND_PARTS = (3, 4)
ARM_PARTS = tuple(range(15, 23))    # upper and lower arms, front and back
NUM_DENSEPOSE_PARTS = 25


def _channel(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) -> (B, 1, H, W)."""
    return x.unsqueeze(1) if x.dim() == 3 else x


def _in(values: torch.Tensor, classes) -> torch.Tensor:
    """(B, 1, H, W) float mask of ``values`` in ``classes``."""
    values = _channel(values)
    mask = values == classes[0]
    for c in classes[1:]:
        mask = mask | (values == c)
    return mask.to(torch.float32)


def merge_noise_label(label: torch.Tensor) -> torch.Tensor:
    """Parsing labels with class 7 ("noise") merged into 4 (upper clothes); same shape/dtype."""
    return torch.where(label == NOISE_LABEL, torch.full_like(label, UPPER_CLOTHES_LABEL), label)


def person_clothes_edge(label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: the garment worn in the photo (label 4 of merged labels)."""
    return _in(label, (UPPER_CLOTHES_LABEL,))


def face_mask(label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: hair and face (labels 1, 12)."""
    return _in(label, FACE_LABELS)


def other_clothes_mask(label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: shoes, pants and legs (labels 5, 6, 8, 9, 10)."""
    return _in(label, OTHER_CLOTHES_LABELS)


def arm_mask(label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: both arms, hands included (labels 11, 13)."""
    return _in(label, ARM_LABELS)


def hand_mask(densepose: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: DensePose hands (I = 3, 4)."""
    return _in(densepose, HAND_PARTS)


def dense_preserve_mask(densepose: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: DensePose arms (I = 15..22)."""
    densepose = _channel(densepose)
    return ((densepose >= ARM_PARTS[0]) & (densepose <= ARM_PARTS[-1])).to(torch.float32)


def densepose_onehot(densepose: torch.Tensor) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) part indices 0..24 -> (B, 25, H, W) float one-hot."""
    index = _channel(densepose).long()
    onehot = torch.zeros(index.shape[0], NUM_DENSEPOSE_PARTS, *index.shape[2:],
                         device=index.device, dtype=torch.float32)
    return onehot.scatter_(1, index, 1.0)


def pose_maps(keypoints: torch.Tensor, height: int, width: int,
              radius: int = POSE_RADIUS) -> torch.Tensor:
    """(B, 18, 3) keypoints in pixels -> (B, 18, H, W) in {-1, +1}; see data.pose.render_pose_maps."""
    return render_pose_maps(keypoints, height, width, radius)


def mask_garment(garment: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
    """Garment (B, 3, H, W) with everything outside its edge mask (B, 1, H, W) set to 0."""
    return garment * edge


def parser_based_condition(face: torch.Tensor, other_clothes: torch.Tensor,
                           densepose_channels: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """The teacher's 45-channel condition: cat(face 1, other clothes 1, DensePose 25, pose 18)."""
    return torch.cat([face, other_clothes, densepose_channels, pose], 1)


def preserve_region(image: torch.Tensor, face: torch.Tensor, other_clothes: torch.Tensor,
                    hand: torch.Tensor) -> torch.Tensor:
    """The photo where it must be kept as is: image x (face + other clothes + hands)."""
    return image * (face + other_clothes + hand)


def arms_outside(dense_preserve: torch.Tensor, garment_region: torch.Tensor) -> torch.Tensor:
    """DensePose arms not covered by a garment region (B, 1, H, W) in [0, 1]:
    dense_preserve x (1 - region). Stage 2 passes person_clothes_edge, the tutor a warped edge."""
    return dense_preserve * (1 - garment_region)


class TryOnInputs:
    """One batch on one device, with each model input computed at most once.

    Build with ``TryOnInputs.from_batch(batch, device)``. A test batch (image, garment,
    garment_edge only) works too; asking it for a parser-based quantity raises a KeyError
    naming the missing batch entry.

    Fields: image (B, 3, H, W) in [-1, 1]; garment, unpaired_garment (B, 3, H, W) masked by
    their edges; garment_edge, unpaired_garment_edge (B, 1, H, W) {0, 1}; label (B, H, W)
    int64 merged; densepose (B, H, W) int64; keypoints (B, 18, 3).
    """

    def __init__(self, batch: Mapping, device: Optional[torch.device] = None,
                 pose_radius: int = POSE_RADIUS):
        self._batch = batch
        self.pose_radius = pose_radius
        self.device = torch.device(device) if device is not None else batch["image"].device
        self.image = self._tensor("image")
        self.garment_edge = self._tensor("garment_edge")
        self.garment = mask_garment(self._tensor("garment"), self.garment_edge)

    @classmethod
    def from_batch(cls, batch: Mapping, device=None, pose_radius: int = POSE_RADIUS) -> "TryOnInputs":
        """``pose_radius``: half side of the pose squares (5 at 256x192, the release's)."""
        return cls(batch, device, pose_radius)

    def _tensor(self, key: str) -> torch.Tensor:
        if key not in self._batch:
            raise KeyError(f"the batch has no '{key}' (present: {sorted(self._batch)})")
        return self._batch[key].to(self.device, non_blocking=True)

    @property
    def height(self) -> int:
        return self.image.shape[-2]

    @property
    def width(self) -> int:
        return self.image.shape[-1]

    @cached_property
    def unpaired_garment_edge(self) -> torch.Tensor:
        return self._tensor("unpaired_garment_edge")

    @cached_property
    def unpaired_garment(self) -> torch.Tensor:
        return mask_garment(self._tensor("unpaired_garment"), self.unpaired_garment_edge)

    @cached_property
    def label(self) -> torch.Tensor:
        return merge_noise_label(self._tensor("label"))

    @cached_property
    def densepose(self) -> torch.Tensor:
        return self._tensor("densepose")

    @cached_property
    def keypoints(self) -> torch.Tensor:
        return self._tensor("keypoints")

    @cached_property
    def person_clothes_edge(self) -> torch.Tensor:
        return person_clothes_edge(self.label)

    @cached_property
    def person_clothes(self) -> torch.Tensor:
        """The warp's target: the photo inside the worn garment, 0 elsewhere."""
        return self.image * self.person_clothes_edge

    @cached_property
    def face_mask(self) -> torch.Tensor:
        return face_mask(self.label)

    @cached_property
    def other_clothes_mask(self) -> torch.Tensor:
        return other_clothes_mask(self.label)

    @cached_property
    def arm_mask(self) -> torch.Tensor:
        return arm_mask(self.label)

    @cached_property
    def hand_mask(self) -> torch.Tensor:
        return hand_mask(self.densepose)

    @cached_property
    def hand(self) -> torch.Tensor:
        """Hands that the parsing also calls arm: arm_mask x hand_mask."""
        return self.arm_mask * self.hand_mask

    @cached_property
    def dense_preserve_mask(self) -> torch.Tensor:
        return dense_preserve_mask(self.densepose)

    @cached_property
    def preserve_region(self) -> torch.Tensor:
        return preserve_region(self.image, self.face_mask, self.other_clothes_mask, self.hand)

    @cached_property
    def densepose_onehot(self) -> torch.Tensor:
        return densepose_onehot(self.densepose)

    @cached_property
    def pose(self) -> torch.Tensor:
        return pose_maps(self.keypoints, self.height, self.width, self.pose_radius)

    @cached_property
    def pb_condition(self) -> torch.Tensor:
        """(B, 45, H, W) parser-based condition of the teacher warp."""
        return parser_based_condition(self.face_mask, self.other_clothes_mask,
                                      self.densepose_onehot, self.pose)
