"""Drawing primitives on label maps and images (points in pixels, (x, y)), and random colours.

Shapes are drawn with cv2 at 4 fractional bits, so their placement is sub-pixel; without it a
person drawn at 64x64 would move in whole-pixel steps.
"""

import cv2
import numpy as np

SHIFT = 4                  # fractional bits of cv2's fixed-point coordinates
SCALE = 1 << SHIFT


def fixed(points) -> np.ndarray:
    """Points in pixels (..., 2) -> int32 fixed-point coordinates for cv2 (x SCALE)."""
    return np.round(np.asarray(points, dtype=np.float64) * SCALE).astype(np.int32)


def capsule(canvas, start, end, radius, value):
    """A thick segment with round ends (cv2 draws thick lines with round caps)."""
    thickness = max(1, int(round(2 * radius)))
    cv2.line(canvas, tuple(fixed(start)), tuple(fixed(end)), value, thickness, cv2.LINE_8, SHIFT)


def ellipse(canvas, centre, axes, angle, value):
    """A filled ellipse: ``axes`` (2,) half axes in pixels (at least 0.5), ``angle`` degrees."""
    cv2.ellipse(canvas, tuple(fixed(centre)), tuple(fixed(np.maximum(axes, 0.5))), float(angle),
                0, 360, value, -1, cv2.LINE_8, SHIFT)


def polygon(canvas, points, value):
    """A filled polygon through ``points`` (N, 2)."""
    cv2.fillPoly(canvas, [fixed(points).reshape(-1, 1, 2)], value, cv2.LINE_8, SHIFT)


def rotation(angle):
    """(2, 2) rotation by ``angle`` radians (clockwise on the image, whose y axis points down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def random_colour(rng, low=20, high=235):
    """uint8 (3,) RGB, each channel uniform in low..high."""
    return rng.integers(low, high + 1, size=3).astype(np.uint8)


def contrasting(rng, colour):
    """A colour at least ~100 away (L1 over channels / 3) from ``colour``."""
    for _ in range(8):
        other = random_colour(rng)
        if np.abs(other.astype(int) - colour.astype(int)).mean() > 100:
            return other
    return (255 - colour).astype(np.uint8)
