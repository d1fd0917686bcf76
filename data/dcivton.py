"""DCI-VTON's warp inputs, read from VITON-HD as distributed, as its dataset class reads them.

Its condition is 16 channels: HR-VITON's 13 groups of the CIHP labels of
``image-parse-agnostic-v3.2/{stem}.png`` as a one-hot map, then the ``image-densepose/{stem}.jpg``
colour rendering in [-1, 1]. Every image is decoded by Pillow and resized with Pillow's filters
(bilinear for photos, garments and the rendering, nearest for label maps and masks), as
torchvision's ``Resize`` does for its dataset class; garment masks are thresholded at 128 after
resizing. Shapes: labels (H, W) int64 group indices 0..12; rendering, garment (3, H, W) in
[-1, 1]; mask (1, H, W) in {0, 1}.
"""

import io
import os
from typing import Optional

import numpy as np
import torch
from PIL import Image

from data.files import DatasetError, image_format, read_image_bytes

AGNOSTIC_FOLDER = "image-parse-agnostic-v3.2"
DENSEPOSE_FOLDER = "image-densepose"
# HR-VITON's grouping of the 20 CIHP labels (DATASETS.md section 2), in channel order:
# background and neck, hair, face, upper clothes, bottom, left/right arm, left/right leg,
# left/right shoe, socks, noise (glove, scarf).
LABEL_GROUPS = ((0, 10), (1, 2), (4, 13), (5, 6, 7), (9, 12), (14,), (15,), (16,), (17,),
                (18,), (19,), (8,), (3, 11))
NUM_GROUPS = len(LABEL_GROUPS)
NUM_CIHP_LABELS = 20
GROUP_OF_LABEL = np.zeros(NUM_CIHP_LABELS, np.int64)
for _group, _labels in enumerate(LABEL_GROUPS):
    GROUP_OF_LABEL[list(_labels)] = _group
# Garment masks: foreground where the resized value is at least this.
MASK_THRESHOLD = 128


def open_image(path: str, max_pixels: Optional[int] = None) -> Image.Image:
    """The decoded image (Pillow), checked as every reader checks files (``data.files``)."""
    data = read_image_bytes(path, max_pixels)
    try:
        image = Image.open(io.BytesIO(data), formats=[image_format(data)])
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DatasetError(f"{path}: not a readable image ({error})") from None
    return image


def resized(image: Image.Image, height: int, width: int, nearest: bool = False) -> Image.Image:
    """``image`` at (height, width) with Pillow's bilinear (antialiased) or nearest filter."""
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.NEAREST if nearest else Image.BILINEAR)


def image_tensor(image: Image.Image) -> torch.Tensor:
    """RGB Pillow image -> (3, H, W) float32 in [-1, 1], as ToTensor then Normalize(0.5, 0.5)."""
    array = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())
    return array.permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)


def read_label_groups(path: str, height: int, width: int,
                      max_pixels: Optional[int] = None) -> torch.Tensor:
    """A CIHP label map (palette or grey PNG) -> (height, width) int64 group indices."""
    image = open_image(path, max_pixels)
    if image.mode not in ("P", "L", "I", "I;16"):
        raise DatasetError(f"{path}: a {image.mode} image, not a label map (palette or grey "
                           f"PNG of CIHP labels 0..19)")
    labels = np.asarray(resized(image, height, width, nearest=True)).astype(np.int64)
    if labels.size and labels.max() >= NUM_CIHP_LABELS:
        raise DatasetError(f"{path}: label {int(labels.max())} is not a CIHP label (0..19)")
    return torch.from_numpy(GROUP_OF_LABEL[labels])


def read_densepose_rendering(path: str, height: int, width: int,
                             max_pixels: Optional[int] = None) -> torch.Tensor:
    """VITON-HD's DensePose colour rendering -> (3, height, width) in [-1, 1]."""
    return image_tensor(resized(open_image(path, max_pixels), height, width))


def read_garment(image_path: str, mask_path: str, height: int, width: int,
                 max_pixels: Optional[int] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Product photo (3, H, W) in [-1, 1], not masked, and its mask (1, H, W) in {0, 1}."""
    photo = open_image(image_path, max_pixels)
    garment = image_tensor(resized(photo.convert("RGB"), height, width))
    mask_image = open_image(mask_path, max_pixels)
    if mask_image.size != photo.size:
        raise DatasetError(f"{mask_path}: size {mask_image.size[1]}x{mask_image.size[0]} "
                           f"differs from its garment {image_path}")
    mask = np.asarray(resized(mask_image.convert("L"), height, width, nearest=True))
    return garment, torch.from_numpy((mask >= MASK_THRESHOLD).astype(np.float32))[None]


def label_groups_onehot(groups: torch.Tensor) -> torch.Tensor:
    """(B, H, W) int64 group indices -> (B, 13, H, W) float one-hot."""
    onehot = torch.zeros(groups.shape[0], NUM_GROUPS, *groups.shape[1:], device=groups.device)
    return onehot.scatter_(1, groups.long().unsqueeze(1), 1.0)


def dcivton_condition(groups: torch.Tensor, rendering: torch.Tensor) -> torch.Tensor:
    """DCI-VTON's warp condition (B, 16, H, W): the one-hot label groups of (B, H, W) int64
    ``groups``, then the (B, 3, H, W) DensePose ``rendering``."""
    return torch.cat([label_groups_onehot(groups), rendering.to(torch.float32)], 1)


def condition_files(split_root: str, stem: str) -> tuple[str, str]:
    """(parse-agnostic labels, DensePose rendering) of person ``stem`` in a VITON-HD split;
    a missing one is a DatasetError naming it."""
    paths = (os.path.join(split_root, AGNOSTIC_FOLDER, f"{stem}.png"),
             os.path.join(split_root, DENSEPOSE_FOLDER, f"{stem}.jpg"))
    for path in paths:
        if not os.path.isfile(path):
            raise DatasetError(f"{path}: missing (DCI-VTON's warp reads the parse-agnostic "
                               f"labels and the DensePose rendering of every person)")
    return paths


def read_condition(split_root: str, stem: str, height: int, width: int,
                   max_pixels: Optional[int] = None) -> dict:
    """``{'parse_agnostic': (H, W) int64 groups, 'densepose_rendering': (3, H, W)}`` of person
    ``stem`` in a VITON-HD split, at (height, width)."""
    agnostic, rendering = condition_files(split_root, stem)
    return {"parse_agnostic": read_label_groups(agnostic, height, width, max_pixels),
            "densepose_rendering": read_densepose_rendering(rendering, height, width,
                                                            max_pixels)}
