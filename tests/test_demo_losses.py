"""Loss terms of a switched-off perceptual loss (``--vgg_layers 0``) are left out, not logged
as zeros; the enabled terms and the total keep their values."""

import torch

from models.afwm import AFWM
from models.losses import VGGLoss, skin_loss, tryon_loss, warp_loss
from utils.training.parts import build_vgg19_features


def _warp_levels():
    torch.manual_seed(0)
    model = AFWM(3, channels=(8, 8, 8, 8, 8), fpn_dim=8)
    garment = torch.rand(2, 3, 64, 64) * 2 - 1
    edge = (torch.rand(2, 1, 64, 64) > 0.5).float()
    out = model(torch.rand(2, 3, 64, 64), garment, edge, return_levels=True)
    return out.levels, garment, edge


def test_switched_off_vgg_terms_are_left_out_and_the_rest_unchanged():
    off, on = VGGLoss(None, 0), VGGLoss(build_vgg19_features(allow_random=True), 1)
    assert not off.enabled and on.enabled
    levels, target, edge = _warp_levels()
    warp_off, warp_on = warp_loss(levels, target, edge, off), warp_loss(levels, target, edge, on)
    assert set(warp_off) == {"warp_l1", "warp_edge", "warp_smooth", "warp_tv"}
    assert set(warp_on) == set(warp_off) | {"warp_vgg"} and warp_on["warp_vgg"] > 0
    for name, value in warp_off.items():
        assert torch.equal(value, warp_on[name])
    images = [torch.rand(2, 3, 16, 16) * 2 - 1 for _ in range(3)]
    mask = torch.rand(2, 1, 16, 16)
    gen_off, gen_on = tryon_loss(*images[:2], mask, images[2], off), tryon_loss(
        *images[:2], mask, images[2], on)
    assert set(gen_off) == {"gen_l1", "render_l1", "mask_l1"}
    assert set(gen_on) == set(gen_off) | {"gen_vgg", "render_vgg"}
    assert all(torch.equal(value, gen_on[name]) for name, value in gen_off.items())
    skin = (torch.rand(2, 1, 16, 16) > 0.5).float()
    assert set(skin_loss(images[0], images[2], skin, off, 5.0, 1.0)) == {"skin_l1"}
    # An enabled term with a zero weight is a real zero and stays in the log.
    skin_on = skin_loss(images[0], images[2], skin, on, 5.0, 0.0)
    assert set(skin_on) == {"skin_l1", "skin_vgg"} and skin_on["skin_vgg"] == 0


def test_total_without_the_switched_off_terms_equals_the_sum_with_their_zeros():
    levels, target, edge = _warp_levels()
    terms = warp_loss(levels, target, edge, VGGLoss(None, 0))
    with_zero = {**terms, "warp_vgg": target.new_zeros(())}
    assert torch.equal(sum(terms.values()), sum(with_zero.values()))
