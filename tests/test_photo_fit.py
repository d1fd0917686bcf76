"""Fitting photos of any size to the model's frame and mapping the result back."""

import numpy as np
import pytest

from data.photo_fit import apply_placement, fit_to_frame, paste_back, plan_fit


def _photo(height, width, seed=0):
    rng = np.random.default_rng(seed)
    photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    photo[0], photo[-1], photo[:, 0], photo[:, -1] = 230, 230, 230, 230   # a light border
    return photo


@pytest.mark.parametrize("size", [(300, 300), (200, 400), (1000, 300), (256, 192), (97, 61)])
@pytest.mark.parametrize("mode", ["pad", "crop"])
def test_canvas_has_the_frame_aspect_and_contains_or_fits_the_photo(size, mode):
    placement = plan_fit(size, (256, 192), mode)
    canvas_h, canvas_w = placement.canvas_size
    assert abs(canvas_h / canvas_w - 256 / 192) < 2 / min(canvas_h, canvas_w)
    top, left = placement.offset
    if mode == "pad":     # the photo lies inside the canvas, centred
        assert canvas_h >= size[0] and canvas_w >= size[1]
        assert (top, left) == ((canvas_h - size[0]) // 2, (canvas_w - size[1]) // 2)
    else:                 # the window lies inside the photo, centred
        assert canvas_h <= size[0] and canvas_w <= size[1]
        assert (top, left) == ((size[0] - canvas_h) // 2, (size[1] - canvas_w) // 2)


def test_pad_fills_with_the_border_colour_and_round_trips():
    photo = _photo(120, 240)                      # wide: padded above and below
    frame, placement = fit_to_frame(photo, (128, 96), "pad")
    assert frame.shape == (128, 96, 3) and placement.fill == (230, 230, 230)
    assert placement.canvas_size == (320, 240) and placement.offset == (100, 0)
    # The padding rows are the border colour; the photo sits in the middle.
    assert (frame[:30] == 230).all() and (frame[-30:] == 230).all()
    back = paste_back(photo, frame, placement)
    assert back.shape == photo.shape
    # Shrinking by 2.5 and enlarging again blurs noise, but a smooth image comes back.
    smooth = np.repeat(np.repeat(np.linspace(0, 255, 24, dtype=np.uint8)[None, :, None],
                                 120, 0), 10, 1).repeat(3, 2)
    frame, placement = fit_to_frame(smooth, (128, 96), "pad")
    assert np.abs(paste_back(smooth, frame, placement).astype(int) - smooth).mean() < 3


def test_crop_keeps_the_pixels_outside_the_window_and_replaces_the_inside():
    photo = _photo(200, 400, seed=1)              # wide: a centred 3:4 window is cut
    frame, placement = fit_to_frame(photo, (64, 48), "crop")
    assert placement.canvas_size == (200, 150) and placement.offset == (0, 125)
    result = np.zeros((64, 48, 3), np.uint8)      # a "try-on" that is all black
    back = paste_back(photo, result, placement)
    assert back.shape == photo.shape
    assert np.array_equal(back[:, :125], photo[:, :125])
    assert np.array_equal(back[:, 275:], photo[:, 275:])
    assert (back[:, 125:275] == 0).all()


def test_masks_fit_with_nearest_and_zero_fill():
    mask = np.zeros((100, 300), np.uint8)
    mask[20:80, 100:200] = 1
    photo = _photo(100, 300)
    _, placement = fit_to_frame(photo, (64, 48), "pad")
    fitted = apply_placement(mask, placement, interpolation="nearest", fill=0)
    assert fitted.shape == (64, 48) and set(np.unique(fitted)) == {0, 1}
    assert fitted[:5].max() == 0 and fitted[-5:].max() == 0
    with pytest.raises(ValueError, match="does not match"):
        apply_placement(mask[:50], placement)


def test_bad_inputs():
    with pytest.raises(ValueError, match="fit mode"):
        plan_fit((10, 10), (64, 48), "stretch")
    with pytest.raises(ValueError, match="uint8"):
        fit_to_frame(np.zeros((10, 10, 3), np.float32), (64, 48))


def test_shrinking_averages_instead_of_skipping_pixels():
    from data.files import resize_photo
    stripes = np.zeros((64, 64, 3), np.uint8)
    stripes[:, ::2] = 255                                 # 1-pixel columns, 0 and 255
    small = resize_photo(stripes, 16, 16)
    assert np.abs(small.astype(int) - 128).max() <= 1    # the mean, not some of the columns
