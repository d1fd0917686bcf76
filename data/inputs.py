"""From a batch of the datasets to the inputs of the models: every mask, computed once.

Each quantity of PF-AFN's training (spec §1, §3) is a named, batched function of tensors, run
on their device without host synchronisation; ``TryOnInputs`` moves a batch there once and
caches each quantity as a property, so the stage scripts read ``inputs.face_mask``.

Label scheme (after ``merge_noise_label``): 0 background, 1 hair, 3 neck (from CIHP's torso
skin, data.labels), 4 upper clothes, 5/6 shoes, 8 pants (and skirts), 9/10 legs, 11/13 arms,
12 face. DensePose I: 3/4 hands, 7..14 legs, 15..22 arms.

Garment categories (DATASETS.md §6), per sample (``batch['category']``, an index into
``CATEGORIES``; absent = upper body). What is the garment region, what is preserved as "other
clothes" and which skin the generator may repaint follow the category:

=============  ==================  ==============================  ===========================
category       garment region      other clothes (preserved)       skin (repainted)
=============  ==================  ==============================  ===========================
upper_body     4 upper clothes     5, 6 shoes, 8 pants, 9/10 legs  arms (DensePose 15..22),
                                                                   neck
lower_body     8 pants / skirt     4 upper clothes, shoes, arms,   legs (DensePose 7..14)
                                   neck
dresses        4 and 8 (a dress    5, 6 shoes                      arms and legs (7..22), neck
               parses as either)
=============  ==================  ==============================  ===========================

The upper-body row is the release's. Face and hair (1, 12) are always preserved, and so are
the hands (arm pixels that DensePose calls hands).

Without DensePose (``batch['has_densepose']`` False: VITON-HD ships only a colour rendering of
it), the documented replacement: the teacher condition's 25 DensePose channels are zero, the
hands are the arm pixels within reach of the wrist keypoints (a disc of ``HAND_REACH`` forearm
lengths around each wrist), and the skin mask is the parsing's arms and/or legs. It keeps the
45-channel condition (checkpoints stay interchangeable) and puts no garment shape in it.
"""

from functools import cached_property, lru_cache
from typing import Mapping, Optional

import torch

from data.dcivton import AGNOSTIC_FOLDER, DENSEPOSE_FOLDER, dcivton_condition
from data.files import DatasetError
from data.pose import POSE_RADIUS, render_pose_maps
from data.samples import CATEGORIES  # noqa: F401  (the order of the tables below)

NOISE_LABEL = 7
UPPER_CLOTHES_LABEL = 4
NUM_LABELS = 14
FACE_LABELS = (1, 12)                    # hair, face
ARM_LABELS = (11, 13)
LEG_LABELS = (9, 10)
NECK_LABEL = 3
HAND_PARTS = (3, 4)
LEG_PARTS = tuple(range(7, 15))          # upper and lower legs, front and back
ARM_PARTS = tuple(range(15, 23))         # upper and lower arms, front and back
NUM_DENSEPOSE_PARTS = 25

# Per category (in CATEGORIES order): labels of the garment region, of the preserved "other
# clothes", parts and labels of the skin the generator may repaint.
GARMENT_LABELS = ((UPPER_CLOTHES_LABEL,), (8,), (UPPER_CLOTHES_LABEL, 8))
OTHER_CLOTHES_LABELS = ((5, 6, 8, 9, 10), (UPPER_CLOTHES_LABEL, 5, 6, 11, 13, NECK_LABEL),
                        (5, 6))
SKIN_PARTS = (ARM_PARTS, LEG_PARTS, LEG_PARTS + ARM_PARTS)
SKIN_LABELS = (ARM_LABELS + (NECK_LABEL,), LEG_LABELS,
               LEG_LABELS + ARM_LABELS + (NECK_LABEL,))

# COCO-18 keypoints of the hand replacement: (wrist, elbow) of each side.
WRISTS = ((4, 3), (7, 6))
HAND_REACH = 0.5                 # hand disc radius, in forearm lengths
HAND_REACH_FALLBACK = 0.06       # ... in image heights when the elbow is not seen


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


@lru_cache(maxsize=None)
def _table(rows, size: int, device) -> torch.Tensor:
    """(len(rows), size) bool lookup table: row k holds True at the values of rows[k]. Built
    once per device: a copy to the GPU at every step would wait for the host."""
    table = torch.zeros(len(rows), size, dtype=torch.bool)
    for k, values in enumerate(rows):
        table[k, list(values)] = True
    return table.to(device)


def _by_category(values: torch.Tensor, rows, size: int,
                 category: Optional[torch.Tensor]) -> torch.Tensor:
    """(B, 1, H, W) float mask of each sample's ``values`` in its category's row."""
    values = _channel(values).long()
    if category is None:
        return _in(values, rows[0])
    table = _table(rows, size, values.device)
    return table[category.long().view(-1, 1, 1, 1), values].to(torch.float32)


def merge_noise_label(label: torch.Tensor) -> torch.Tensor:
    """Parsing labels with class 7 ("noise") merged into 4 (upper clothes); same shape/dtype."""
    return torch.where(label == NOISE_LABEL, torch.full_like(label, UPPER_CLOTHES_LABEL), label)


def person_clothes_edge(label: torch.Tensor,
                        category: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: the garment worn in the photo, of each sample's category (label 4
    of merged labels for the upper body; ``category`` (B,) None = upper body)."""
    return _by_category(label, GARMENT_LABELS, NUM_LABELS, category)


def face_mask(label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: hair and face (labels 1, 12)."""
    return _in(label, FACE_LABELS)


def other_clothes_mask(label: torch.Tensor,
                       category: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: what the category's try-on keeps as it is (upper body: shoes,
    pants and legs, labels 5, 6, 8, 9, 10)."""
    return _by_category(label, OTHER_CLOTHES_LABELS, NUM_LABELS, category)


def arm_mask(label: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: both arms, hands included (labels 11, 13)."""
    return _in(label, ARM_LABELS)


def hand_mask(densepose: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: DensePose hands (I = 3, 4)."""
    return _in(densepose, HAND_PARTS)


def dense_preserve_mask(densepose: torch.Tensor,
                        category: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: DensePose's skin of the category (upper body: the arms, I =
    15..22)."""
    return _by_category(densepose, SKIN_PARTS, NUM_DENSEPOSE_PARTS, category)


def parsing_skin_mask(label: torch.Tensor,
                      category: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: the parsing's skin of the category (arms and/or legs), the
    replacement of ``dense_preserve_mask`` without DensePose."""
    return _by_category(label, SKIN_LABELS, NUM_LABELS, category)


def wrist_hand_mask(arms: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) {0, 1}: arm pixels within ``HAND_REACH`` forearm lengths of a seen wrist
    (``HAND_REACH_FALLBACK`` image heights when its elbow is not seen), the replacement of
    the DensePose hands. ``keypoints`` (B, 18, 2 or 3) in pixels."""
    height, width = arms.shape[-2:]
    xy = keypoints[..., :2].to(torch.float32)
    seen = (xy[..., 0] > 1) & (xy[..., 1] > 1)                                  # (B, 18)
    ys = torch.arange(height, device=arms.device, dtype=torch.float32).view(1, height, 1)
    xs = torch.arange(width, device=arms.device, dtype=torch.float32).view(1, 1, width)
    near = torch.zeros_like(arms, dtype=torch.bool)[:, 0]
    for wrist, elbow in WRISTS:
        forearm = torch.linalg.vector_norm(xy[:, wrist] - xy[:, elbow], dim=-1)
        radius = torch.where(seen[:, elbow], HAND_REACH * forearm,
                             torch.full_like(forearm, HAND_REACH_FALLBACK * height))
        distance2 = (xs - xy[:, wrist, 0].view(-1, 1, 1)) ** 2 + (
            ys - xy[:, wrist, 1].view(-1, 1, 1)) ** 2
        near = near | ((distance2 <= radius.view(-1, 1, 1) ** 2)
                       & seen[:, wrist].view(-1, 1, 1))
    return arms * near.unsqueeze(1).to(arms.dtype)


def densepose_onehot(densepose: torch.Tensor) -> torch.Tensor:
    """(B, H, W) or (B, 1, H, W) part indices 0..24 -> (B, 25, H, W) float one-hot."""
    index = _channel(densepose).long()
    onehot = torch.zeros(index.shape[0], NUM_DENSEPOSE_PARTS, *index.shape[2:],
                         device=index.device, dtype=torch.float32)
    return onehot.scatter_(1, index, 1.0)


def pose_maps(keypoints: torch.Tensor, height: int, width: int,
              radius: int = POSE_RADIUS) -> torch.Tensor:
    """(B, 18, 3) keypoints in pixels -> (B, 18, H, W) in {-1, +1}; see
    data.pose.render_pose_maps."""
    return render_pose_maps(keypoints, height, width, radius)


def pose_radius_for(height: int) -> int:
    """Half side of the pose squares at a working height: the release's 5 at 256, scaled."""
    return max(1, round(POSE_RADIUS * height / 256))


def mask_garment(garment: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
    """Garment (B, 3, H, W) with everything outside its edge mask (B, 1, H, W) set to 0."""
    return garment * edge


def parser_based_condition(face: torch.Tensor, other_clothes: torch.Tensor,
                           densepose_channels: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """The teacher's 45-channel condition: cat(face 1, other clothes 1, DensePose 25, pose 18)."""
    return torch.cat([face, other_clothes, densepose_channels, pose], 1)


def preserve_region(image: torch.Tensor, face: torch.Tensor, other_clothes: torch.Tensor,
                    hand: torch.Tensor) -> torch.Tensor:
    """The photo where it must be kept as is: image x (face + other clothes + hands). The
    masks are disjoint for the upper body (the release's sum); the union keeps them 0/1
    where a category's other clothes include the arms."""
    return image * (face + other_clothes + hand).clamp(max=1.0)


def arms_outside(dense_preserve: torch.Tensor, garment_region: torch.Tensor) -> torch.Tensor:
    """DensePose skin not covered by a garment region (B, 1, H, W) in [0, 1]:
    dense_preserve x (1 - region). Stage 2 passes person_clothes_edge, the tutor a warped edge."""
    return dense_preserve * (1 - garment_region)


class TryOnInputs:
    """One batch on one device, with each model input computed at most once.

    Build with ``TryOnInputs.from_batch(batch, device)``. A test batch (image, garment,
    garment_edge only) works too; asking it for a parser-based quantity raises a KeyError
    naming the missing batch entry.

    Fields: image (B, 3, H, W) in [-1, 1]; garment, unpaired_garment (B, 3, H, W) masked by
    their edges; garment_edge, unpaired_garment_edge (B, 1, H, W) {0, 1}; label (B, H, W)
    int64 merged; densepose (B, H, W) int64; keypoints (B, 18, 3); category (B,) int64
    (absent: upper body); has_densepose (B,) bool (absent: True).
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
    def from_batch(cls, batch: Mapping, device=None,
                   pose_radius: int = POSE_RADIUS) -> "TryOnInputs":
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
    def category(self) -> Optional[torch.Tensor]:
        """(B,) int64 index into CATEGORIES, or None (every sample upper body)."""
        return self._tensor("category").long().view(-1) if "category" in self._batch else None

    @cached_property
    def has_densepose(self) -> Optional[torch.Tensor]:
        """(B,) bool, or None (every sample has DensePose)."""
        if "has_densepose" not in self._batch:
            return None
        return self._tensor("has_densepose").bool().view(-1)

    def _with_densepose(self, from_densepose, replacement) -> torch.Tensor:
        """Per sample: ``from_densepose()`` where DensePose exists, else ``replacement()``."""
        if self.has_densepose is None:
            return from_densepose()
        present = self.has_densepose.view(-1, 1, 1, 1)
        return torch.where(present, from_densepose(), replacement())

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
        return person_clothes_edge(self.label, self.category)

    @cached_property
    def person_clothes(self) -> torch.Tensor:
        """The warp's target: the photo inside the worn garment, 0 elsewhere."""
        return self.image * self.person_clothes_edge

    @cached_property
    def face_mask(self) -> torch.Tensor:
        return face_mask(self.label)

    @cached_property
    def other_clothes_mask(self) -> torch.Tensor:
        return other_clothes_mask(self.label, self.category)

    @cached_property
    def arm_mask(self) -> torch.Tensor:
        return arm_mask(self.label)

    @cached_property
    def hand_mask(self) -> torch.Tensor:
        return self._with_densepose(lambda: hand_mask(self.densepose),
                                    lambda: wrist_hand_mask(self.arm_mask, self.keypoints))

    @cached_property
    def hand(self) -> torch.Tensor:
        """Hands that the parsing also calls arm: arm_mask x hand_mask."""
        return self.arm_mask * self.hand_mask

    @cached_property
    def dense_preserve_mask(self) -> torch.Tensor:
        return self._with_densepose(
            lambda: dense_preserve_mask(self.densepose, self.category),
            lambda: parsing_skin_mask(self.label, self.category))

    @cached_property
    def preserve_region(self) -> torch.Tensor:
        return preserve_region(self.image, self.face_mask, self.other_clothes_mask, self.hand)

    @cached_property
    def densepose_onehot(self) -> torch.Tensor:
        onehot = densepose_onehot(self.densepose)
        if self.has_densepose is None:
            return onehot
        return onehot * self.has_densepose.view(-1, 1, 1, 1).to(onehot.dtype)

    @cached_property
    def pose(self) -> torch.Tensor:
        return pose_maps(self.keypoints, self.height, self.width, self.pose_radius)

    @cached_property
    def pb_condition(self) -> torch.Tensor:
        """(B, 45, H, W) parser-based condition of the teacher warp."""
        return parser_based_condition(self.face_mask, self.other_clothes_mask,
                                      self.densepose_onehot, self.pose)

    @cached_property
    def dcivton_condition(self) -> torch.Tensor:
        """(B, 16, H, W) DCI-VTON's warp condition: its parse-agnostic label groups (one-hot)
        and the DensePose rendering (``data/dcivton.py``)."""
        if "parse_agnostic" not in self._batch:
            raise DatasetError(f"the warp takes DCI-VTON's condition, not in the data: VITON-HD's "
                               f"{AGNOSTIC_FOLDER}/ and {DENSEPOSE_FOLDER}/, a file per person")
        return dcivton_condition(self._tensor("parse_agnostic"),
                                 self._tensor("densepose_rendering"))

    def warp_condition(self, name: Optional[str] = None) -> torch.Tensor:
        """The parser-based condition a warp declares by name (``WARP_CONDITIONS``; None: the
        teacher's 45 channels)."""
        if name not in WARP_CONDITIONS:
            raise KeyError(f"unknown warp condition {name!r}; known: "
                           f"{', '.join(str(n) for n in WARP_CONDITIONS)}")
        return getattr(self, WARP_CONDITIONS[name])

    @cached_property
    def product_garment(self) -> torch.Tensor:
        """The garment photo as read, not multiplied by its mask (B, 3, H, W)."""
        return self._tensor("garment")

    def warp_target(self, garment_masked: bool = True) -> torch.Tensor:
        """What the warped garment should look like: the worn garment, and outside it what
        the warp's garment input shows outside the garment (0 for a masked garment, the white
        of a product photo for an unmasked one, as DCI-VTON trains)."""
        if garment_masked:
            return self.person_clothes
        return self.person_clothes + (1 - self.person_clothes_edge)


# Warp conditions by the name a warp architecture declares (``models.registry.Architecture``),
# as the ``TryOnInputs`` property that computes them.
WARP_CONDITIONS = {None: "pb_condition", "dcivton": "dcivton_condition"}
