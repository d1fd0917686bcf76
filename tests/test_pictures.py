"""Sample grids with a header naming their columns, and flows on the colour wheel."""

import math

import pytest
import torch

from models.flow import identity_flow
from utils.flow_viz import flow_displacement, flow_magnitude, flow_to_color
from utils.logging_utils import GRID_PADDING, header_height, image_grid, render_label


def test_header_names_the_image_below_it():
    """Constant images, one per column: under each label lie exactly that image's pixels."""
    names = ["person", "tutor", "garment", "warped_garment", "flow", "warped_edge", "mask",
             "try_on"]
    values = torch.linspace(-0.9, 0.9, len(names))
    images = {}
    for name, value in zip(names, values):
        if name in ("warped_edge", "mask"):
            images[name] = torch.full((3, 1, 16, 12), (value.item() + 1) / 2)   # masks in [0, 1]
        else:
            images[name] = torch.full((3, 3, 16, 12), value.item())
    grid = image_grid(images, max_samples=2)
    top = header_height(names, 12)
    pad = GRID_PADDING
    assert grid.shape == (3, top + pad + 2 * (16 + pad), pad + len(names) * (12 + pad))
    labels = [render_label(name.replace("_", " "), 12, top) for name in names]
    for k, (name, value) in enumerate(zip(names, values)):
        left = pad + k * (12 + pad)
        header = grid[:, :top, left:left + 12]
        assert torch.equal(header, labels[k]), name
        assert (header < 0.5).any(), f"no text drawn for {name}"
        # Every other label differs from this column's header.
        assert all(not torch.equal(header, other) for j, other in enumerate(labels)
                   if names[j] != name)
        for row in range(2):
            y = top + pad + row * (16 + pad)
            tile = grid[:, y:y + 16, left:left + 12]
            assert torch.allclose(tile, torch.full_like(tile, (value.item() + 1) / 2),
                                  atol=1e-6), (name, row)
    # White between tiles.
    assert (grid[:, top:top + pad] == 1).all() and (grid[:, :, :pad] == 1).all()


def test_long_names_are_wrapped_into_narrow_columns():
    tile = render_label("warped garment", 24, 40)
    assert tile.shape == (3, 40, 24) and (tile < 0.5).any()
    # Two lines: ink in the upper and in the lower half.
    assert (tile[0, :20] < 0.5).any() and (tile[0, 20:] < 0.5).any()


def test_grid_rejects_other_channel_counts():
    with pytest.raises(ValueError, match="must be"):
        image_grid({"flow": torch.zeros(1, 2, 4, 4)})


def test_flow_colours_follow_direction_and_magnitude():
    height, width = 9, 13
    flow = identity_flow(1, height, width)
    assert flow_magnitude(flow).item() == pytest.approx(0, abs=1e-6)
    assert torch.allclose(flow_to_color(flow), torch.ones(1, 3, height, width))  # white: still
    # Every pixel fetches from 2 pixels to the right: red at full saturation.
    shifted = flow.clone()
    shifted[:, 0] += 2 * 2 / (width - 1)
    assert flow_displacement(shifted)[:, 0].allclose(torch.full((1, height, width), 2.0),
                                                     atol=1e-5)
    assert flow_magnitude(shifted).item() == pytest.approx(2.0, abs=1e-5)
    red = flow_to_color(shifted)[0, :, 4, 6]
    assert red.tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-5)
    # Upwards on screen (negative y) is a quarter turn: hue 0.25, yellow-green (0.5, 1, 0).
    up = flow.clone()
    up[:, 1] -= 3 * 2 / (height - 1)
    assert flow_to_color(up)[0, :, 4, 6].tolist() == pytest.approx([0.5, 1.0, 0.0], abs=1e-5)
    # Half the largest displacement: half the saturation.
    mixed = flow.clone()
    mixed[:, 0, :, :6] += 2 * 2 / (width - 1)
    mixed[:, 0, :, 6:] += 1 * 2 / (width - 1)
    colours = flow_to_color(mixed)[0]
    assert colours[:, 0, 8].tolist() == pytest.approx([1.0, 0.5, 0.5], abs=1e-5)
    assert flow_to_color(mixed, max_magnitude=4.0)[0, :, 0, 0].tolist() == pytest.approx(
        [1.0, 0.5, 0.5], abs=1e-5)
    assert not math.isnan(flow_to_color(mixed).sum().item())
