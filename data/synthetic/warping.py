"""The deformation of a worn garment: every person pixel p samples the product at

    q(p) = sum_i w_i(p) A_i^-1 (p) + d(p)

with A_i affine maps product -> person, w_i smooth weights summing to 1 and d a low-frequency
sinusoidal field of a few pixels. q is a backward map in pixel units; ``map_to_flow`` turns
it into the normalised flow of ``grid_sample(align_corners=True)``, what the warp module
predicts.
"""

from typing import Sequence

import cv2
import numpy as np


def smooth_field(rng, height, width, amplitude):
    """A low-frequency displacement (2, H, W) in pixels: two random plane waves per component."""
    xs = np.arange(width, dtype=np.float32) / width
    ys = np.arange(height, dtype=np.float32) / height
    field = np.zeros((2, height, width), np.float32)
    for c in range(2):
        for _ in range(2):
            fx, fy = rng.uniform(-1.2, 1.2, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            a = amplitude * rng.uniform(0.3, 0.7)
            # sin(u + v) = sin u cos v + cos u sin v: two outer products instead of H*W sines.
            u = 2 * np.pi * fx * xs + phase
            v = 2 * np.pi * fy * ys
            field[c] += a * (np.outer(np.cos(v), np.sin(u)) + np.outer(np.sin(v), np.cos(u)))
    return field


def garment_map(forward: np.ndarray, field: np.ndarray):
    """Backward sampling map of the worn garment.

    Args:
        forward: (2, 3) affine product -> person.
        field: (2, H, W) displacement in product pixels.

    Returns:
        map_x, map_y float32 (H, W): product coordinates each person pixel shows.
    """
    height, width = field.shape[1:]
    backward = cv2.invertAffineTransform(forward)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    map_x = (backward[0, 0] * xs + backward[0, 2]) + backward[0, 1] * ys + field[0]
    map_y = (backward[1, 0] * xs + backward[1, 2]) + backward[1, 1] * ys + field[1]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def blended_garment_map(forwards: Sequence[np.ndarray], weights: Sequence[np.ndarray],
                        field: np.ndarray):
    """Backward map of a garment fitted by several affine maps: sum_i w_i A_i^-1 (p) + d(p).

    Args:
        forwards: affine maps (2, 3) product -> person.
        weights: one float (H, W) per map, smooth, summing to 1 at every pixel.
        field: (2, H, W) displacement in product pixels.

    Returns:
        map_x, map_y float32 (H, W), as garment_map.
    """
    height, width = field.shape[1:]
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    map_x = field[0].astype(np.float64)
    map_y = field[1].astype(np.float64)
    for forward, weight in zip(forwards, weights):
        b = cv2.invertAffineTransform(forward)
        map_x = map_x + weight * (b[0, 0] * xs + b[0, 1] * ys + b[0, 2])
        map_y = map_y + weight * (b[1, 0] * xs + b[1, 1] * ys + b[1, 2])
    return map_x.astype(np.float32), map_y.astype(np.float32)


def map_to_flow(map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Pixel sampling map -> (2, H, W) normalised flow of ``grid_sample(align_corners=True)``."""
    height, width = map_x.shape
    flow = np.stack([map_x / ((width - 1) / 2) - 1, map_y / ((height - 1) / 2) - 1])
    return flow.astype(np.float32)


def wear(garment, map_x, map_y):
    """The product of ``garment`` (a Garment) seen through a backward map: image uint8
    (H, W, 3), white outside the product, and mask bool (H, W)."""
    worn = cv2.remap(garment.image, map_x, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=(255, 255, 255))
    worn_edge = cv2.remap(garment.edge, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 127
    return worn, worn_edge
