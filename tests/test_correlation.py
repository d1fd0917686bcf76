import pytest
import torch

from models.correlation import local_correlation


def brute_force(first, second, d=3):
    """Direct transcription of the definition, one output element at a time."""
    b_n, c_n, h_n, w_n = first.shape
    side = 2 * d + 1
    out = torch.zeros(b_n, side * side, h_n, w_n, dtype=torch.float64)
    for b in range(b_n):
        for dy in range(-d, d + 1):
            for dx in range(-d, d + 1):
                k = (dy + d) * side + (dx + d)
                for y in range(h_n):
                    for x in range(w_n):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h_n and 0 <= xx < w_n:
                            total = sum(float(first[b, c, y, x]) * float(second[b, c, yy, xx])
                                        for c in range(c_n))
                            out[b, k, y, x] = total / c_n
    return out


def test_matches_brute_force_reference():
    torch.manual_seed(0)
    first = torch.randn(2, 5, 6, 9)
    second = torch.randn(2, 5, 6, 9)
    got = local_correlation(first, second)
    assert got.shape == (2, 49, 6, 9)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), brute_force(first, second), atol=1e-5, rtol=1e-5)


def test_channel_order_is_y_major_and_padding_is_zero():
    # A single bright pixel in `second` at (2, 5); `first` is all ones, C = 4.
    first = torch.ones(1, 4, 7, 9)
    second = torch.zeros(1, 4, 7, 9)
    second[0, :, 2, 5] = 2.0
    out = local_correlation(first, second)
    # At output pixel (y, x) = (3, 4) the bright pixel sits at dy = -1, dx = +1.
    channel = (-1 + 3) * 7 + (1 + 3)
    assert out[0, channel, 3, 4].item() == pytest.approx(2.0)  # mean over C of 1 * 2
    assert out[0, :, 3, 4].sum().item() == pytest.approx(2.0)
    # Near the border the displaced window reads zero padding, never wrapped values.
    assert out[0, 0, 0, 0].item() == 0.0


def test_gradcheck_float64():
    torch.manual_seed(1)
    first = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    second = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(local_correlation, (first, second), eps=1e-6, atol=1e-6)


def test_float32_inside_autocast():
    torch.manual_seed(2)
    first = torch.randn(1, 8, 8, 8)
    second = torch.randn(1, 8, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = local_correlation(first.bfloat16(), second.bfloat16())
    assert out.dtype == torch.float32
    reference = local_correlation(first.bfloat16().float(), second.bfloat16().float())
    torch.testing.assert_close(out, reference)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        local_correlation(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))

