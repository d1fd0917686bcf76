import pytest
import torch

from models.afwm import AFWM
from models.flow import identity_flow, sample, upsample_flow
from models.generator import ResUnetGenerator
from models.tryon import parser_free_tryon

SMALL = dict(channels=(8, 16, 16, 16, 16), fpn_dim=16)


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_equal_the_release():
    assert count(AFWM(3)) == 29_304_416        # 29.30 M
    assert count(ResUnetGenerator(7)) == 43_899_968  # 43.90 M
    assert count(AFWM(45)) == 29_328_692
    assert count(ResUnetGenerator(8)) == 43_900_544


def test_release_key_names():
    warp_keys = set(AFWM(3).state_dict())
    for key in ("image_features.encoders.0.0.block.0.weight", "cond_FPN.smooth.4.bias",
                "aflow_net.netMain.0.0.weight", "aflow_net.netRefine.4.6.bias"):
        assert key in warp_keys
    # adaptive.4 is the finest lateral conv, 64 -> 256 channels.
    assert AFWM(3).image_FPN.adaptive[4].weight.shape == (256, 64, 1, 1)
    gen = ResUnetGenerator(7).state_dict()
    assert gen["model.model.0.weight"].shape == (64, 7, 3, 3)


def _zero_flow_heads(model):
    for head in list(model.aflow_net.netMain) + list(model.aflow_net.netRefine):
        torch.nn.init.zeros_(head[-1].weight)
        torch.nn.init.zeros_(head[-1].bias)


@pytest.mark.parametrize("height,width", [(256, 192), (512, 384), (1024, 768)])
def test_zero_offsets_give_the_upsampled_identity_flow(height, width):
    # With every predicted offset zero, each composition samples the coarser flow at its own
    # grid points, so the result is the stride-32 identity grid upsampled five times.
    torch.manual_seed(0)
    model = AFWM(3, **SMALL).eval()
    _zero_flow_heads(model)
    garment = torch.rand(1, 3, height, width) * 2 - 1
    cond = torch.rand(1, 3, height, width)
    edge = (torch.rand(1, 1, height, width) > 0.5).float()
    with torch.no_grad():
        out = model(cond, garment, edge, return_levels=True)
    expected = identity_flow(1, height // 32, width // 32)
    for level in out.levels:
        expected = upsample_flow(expected)
        torch.testing.assert_close(level.flow, expected, atol=1e-5, rtol=0)
        assert level.warped_garment.shape[-2:] == expected.shape[-2:]
        assert level.flow_dx.shape == (1, 4, expected.shape[2] - 2, expected.shape[3] - 2)
    assert out.flow.shape == (1, 2, height, width)
    torch.testing.assert_close(out.warped, sample(garment, out.flow), atol=1e-6, rtol=0)
    # Zero offsets are not the identity warp in the release's conventions: upsampling a
    # normalised (align_corners=True) grid with align_corners=False shifts it slightly.
    assert (out.flow - identity_flow(1, height, width)).abs().max() > 1e-3


def test_full_width_shapes_and_levels_at_256x192():
    torch.manual_seed(0)
    model = AFWM(45).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 45, 256, 192), torch.randn(1, 3, 256, 192),
                    torch.ones(1, 1, 256, 192), return_levels=True)
    assert out.warped.shape == (1, 3, 256, 192) and out.flow.shape == (1, 2, 256, 192)
    sizes = [tuple(level.flow.shape[-2:]) for level in out.levels]
    assert sizes == [(16, 12), (32, 24), (64, 48), (128, 96), (256, 192)]
    assert [tuple(level.cond_feature.shape[1:]) for level in out.levels] == [
        (256, 8, 6), (256, 16, 12), (256, 32, 24), (256, 64, 48), (256, 128, 96)]
    assert all(level.warped_edge.shape[1] == 1 for level in out.levels)
    assert torch.isfinite(out.flow).all()


def test_generator_and_tryon_shapes():
    torch.manual_seed(0)
    warp = AFWM(3, **SMALL).eval()
    gen = ResUnetGenerator(7, ngf=8).eval()
    person = torch.rand(2, 3, 64, 96) * 2 - 1
    garment = torch.rand(2, 3, 64, 96) * 2 - 1
    edge = (torch.rand(2, 1, 64, 96) > 0.3).float()
    with torch.no_grad():
        result = parser_free_tryon(warp, gen, person, garment, edge)
    assert result.tryon.shape == (2, 3, 64, 96)
    assert result.tryon.abs().max() <= 1.0
    assert ((result.mask >= 0) & (result.mask <= 1)).all()
    # Where the warped edge is zero, the try-on is the rendered person alone.
    outside = result.warped_edge == 0
    assert outside.any()
    torch.testing.assert_close(result.tryon[outside.expand_as(result.tryon)],
                               result.rendered[outside.expand_as(result.rendered)])


def test_sizes_not_divisible_by_32_are_rejected():
    with pytest.raises(ValueError, match="divisible by 32"):
        AFWM(3, **SMALL)(torch.zeros(1, 3, 100, 64), torch.zeros(1, 3, 100, 64))
    with pytest.raises(ValueError, match="condition channels"):
        AFWM(3, **SMALL)(torch.zeros(1, 45, 64, 64), torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="divisible by 32"):
        ResUnetGenerator(7, ngf=8)(torch.zeros(1, 7, 48, 64))
