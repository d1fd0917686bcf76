import pytest
import torch

from models.afwm import WarpLevel
from models.distillation import distillation_gate, distillation_loss, distillation_weights
from models.losses import VGGLoss, second_order_smoothness, total_variation, warp_loss
from utils.training.parts import VGGWeightsMissing, build_vgg19_features


def _level(cond, flow):
    zeros = torch.zeros(1)
    return WarpLevel(flow=flow, cond_feature=cond, delta_main=zeros, delta_refine=zeros,
                     flow_dx=zeros, flow_dy=zeros)


def test_distillation_matches_a_hand_computed_case():
    # Batch of 2; the teacher is better on sample 0 only, so n = 1 and only sample 0 counts.
    person = torch.zeros(2, 3, 4, 4)
    teacher_warped = torch.full((2, 3, 4, 4), 0.1)
    teacher_warped[1] = 0.9
    student_warped = torch.full((2, 3, 4, 4), 0.5)
    gate = distillation_gate(teacher_warped, student_warped, person)
    assert gate.tolist() == [1.0, 0.0]

    teacher, student = [], []
    for i in range(5):
        size = 2 ** (i + 1)
        c_t = torch.zeros(2, 2, size, size)
        c_s = torch.zeros(2, 2, size, size)
        c_s[0] = 1.0                      # squared error 1 per element on sample 0
        c_s[1] = 7.0                      # ignored by the gate
        f_t = torch.zeros(2, 2, 2 * size, 2 * size)
        f_s = torch.zeros(2, 2, 2 * size, 2 * size)
        f_s[0, 0] = 3.0
        f_s[0, 1] = 4.0                   # |(3, 4)| = 5 per pixel on sample 0
        f_s[1] = 9.0
        teacher.append(_level(c_t, f_t))
        student.append(_level(c_s, f_s))
    terms = distillation_loss(teacher, student, gate)
    # feature: sum_i (5 - i) * 0.04 * (C h w * 1) / (C h w * 1) = 0.04 * (5+4+3+2+1)
    assert terms["distill_feature"].item() == pytest.approx(0.04 * 15)
    # flow, levels 2..4: (i + 1) * (h w * 5) / (h w * 1) = 5 * (3 + 4 + 5)
    assert terms["distill_flow"].item() == pytest.approx(5 * 12)


def test_distillation_weights_count_per_group():
    gate = torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 0])
    # Groups of 4: n = 1 and 3, two groups averaged -> g_b / (n_k * 2).
    assert distillation_weights(gate, 4).tolist() == pytest.approx(
        [1 / 2, 0, 0, 0, 1 / 6, 1 / 6, 1 / 6, 0])
    # One count over the batch (the earlier behaviour): n = 4.
    assert distillation_weights(gate, 0).tolist() == pytest.approx([0.25, 0, 0, 0, 0.25, 0.25,
                                                                    0.25, 0])
    assert distillation_weights(gate, 8).tolist() == distillation_weights(gate, 0).tolist()
    # A group with no gated sample counts 1 (no division by zero) and still takes its share.
    assert distillation_weights(torch.tensor([0.0, 0, 1, 1]), 2).tolist() == pytest.approx(
        [0, 0, 0.25, 0.25])
    # A batch that does not split evenly: groups [0..2] and [3], each weighing half.
    assert distillation_weights(torch.tensor([1.0, 1, 0, 1]), 3).tolist() == pytest.approx(
        [0.25, 0.25, 0, 0.5])


def _random_levels(batch, seed, requires_grad):
    generator = torch.Generator().manual_seed(seed)
    levels = []
    for i in range(5):
        size = 2 ** (i + 1)
        cond = torch.randn(batch, 3, size, size, generator=generator, dtype=torch.float64)
        flow = torch.randn(batch, 2, 2 * size, 2 * size, generator=generator,
                           dtype=torch.float64)
        levels.append(_level(cond.requires_grad_(requires_grad),
                             flow.requires_grad_(requires_grad)))
    return levels


def _release_group_term(teacher, student, gate):
    """The release's formula for one GPU's batch: n = max(1, sum g) over that batch."""
    count = max(1.0, float(gate.sum()))
    total = 0.0
    for i, (t, s) in enumerate(zip(teacher, student)):
        c, h, w = s.cond_feature.shape[1:]
        total = total + (5 - i) * 0.04 * ((t.cond_feature - s.cond_feature) ** 2 * gate.view(
            -1, 1, 1, 1)).sum() / (c * h * w * count)
        if i >= 2:
            h, w = s.flow.shape[-2:]
            total = total + (i + 1) * (torch.norm(t.flow - s.flow, p=2, dim=1) * gate.view(
                -1, 1, 1)).sum() / (h * w * count)
    return total


def test_distillation_is_equal_for_one_process_of_8_two_of_4_and_the_release():
    """One batch of 8 as 1 x 8 (groups of 4), as 2 processes x 4 (DDP averages their losses'
    gradients), and by the release's per-GPU formula: same loss and same gradients."""
    gate = torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 0], dtype=torch.float64)
    teacher = _random_levels(8, 0, requires_grad=False)

    def loss_and_grads(split):
        student = _random_levels(8, 1, requires_grad=True)
        if split == "one_process":
            terms = distillation_loss(teacher, student, gate, group_size=4)
            loss = terms["distill_feature"] + terms["distill_flow"]
        else:
            losses = []
            for half in (slice(0, 4), slice(4, 8)):
                part = [_level(s.cond_feature[half], s.flow[half]) for s in student]
                ref = [_level(t.cond_feature[half], t.flow[half]) for t in teacher]
                if split == "two_processes":
                    terms = distillation_loss(ref, part, gate[half], group_size=4)
                    losses.append(terms["distill_feature"] + terms["distill_flow"])
                else:
                    losses.append(_release_group_term(ref, part, gate[half]))
            loss = sum(losses) / 2          # DDP's mean of the two ranks' gradients
        inputs = [p for s in student for p in (s.cond_feature, s.flow)]
        grads = torch.autograd.grad(loss, inputs, allow_unused=True)   # flows 0, 1 unused
        return loss.detach(), [torch.zeros_like(x) if g is None else g
                               for g, x in zip(grads, inputs)]

    reference_loss, reference_grads = loss_and_grads("release")
    for split in ("one_process", "two_processes"):
        loss, grads = loss_and_grads(split)
        assert loss.item() == pytest.approx(reference_loss.item(), rel=1e-12), split
        for got, want in zip(grads, reference_grads):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)
    # Counting over the whole batch of 8 (group 0, the earlier behaviour) weighs sample 0,
    # alone in its group of 4, by 1/4 instead of the release's 1/2.
    student = _random_levels(8, 1, requires_grad=True)
    whole = distillation_loss(teacher, student, gate, group_size=0)
    (grad,) = torch.autograd.grad(whole["distill_feature"], [student[4].cond_feature])
    torch.testing.assert_close(2 * grad[0], reference_grads[8][0], rtol=1e-12, atol=1e-15)


def test_gate_with_no_better_teacher_gives_zero_loss_without_dividing_by_zero():
    person = torch.zeros(1, 3, 2, 2)
    gate = distillation_gate(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), person)
    assert gate.tolist() == [0.0]
    level = _level(torch.ones(1, 1, 2, 2), torch.ones(1, 2, 4, 4))
    terms = distillation_loss([level] * 5, [_level(torch.zeros(1, 1, 2, 2),
                                                   torch.zeros(1, 2, 4, 4))] * 5, gate)
    assert terms["distill_feature"].item() == 0.0 and terms["distill_flow"].item() == 0.0


def test_total_variation_and_smoothness_values():
    ramp = torch.arange(12.0).view(1, 1, 3, 4)   # +4 per row, +1 per column
    assert total_variation(ramp).item() == pytest.approx(5.0)
    assert second_order_smoothness(torch.zeros(2, 4, 3, 3)).item() == pytest.approx(1e-6 ** 0.45)
    assert second_order_smoothness(torch.full((1, 1, 2, 2), 2.0)).item() == pytest.approx(
        (4 + 1e-6) ** 0.45)


def test_vgg_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(VGGWeightsMissing,
                       match="vgg19-dcbb9e9d.pth.*--vgg_weights.*--allow_random_weights"):
        build_vgg19_features()
    with pytest.raises(VGGWeightsMissing, match="weights file given with --vgg_weights not found"):
        build_vgg19_features(str(tmp_path / "missing.pth"))


def test_vgg_loss_loads_a_named_file_and_is_zero_only_for_equal_inputs(tmp_path, caplog,
                                                                       monkeypatch):
    import torchvision
    torch.manual_seed(0)
    path = tmp_path / "vgg19.pth"
    model = torchvision.models.vgg19(weights=None).eval()
    torch.save(model.state_dict(), path)
    features = build_vgg19_features(str(path))
    loss = VGGLoss(features)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    # The file's weights, as torchvision's own VGG19 holds them (up to relu5_1).
    assert len(features) == 30 and torch.equal(features(x), model.features[:30](x))
    assert loss(x, x).item() == 0.0
    assert loss(x, x.flip(-1)).item() > 0.0
    assert not any(p.requires_grad for p in loss.parameters())
    # Random weights only on request, and announced.
    monkey_dir = tmp_path / "empty"
    monkey_dir.mkdir()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(monkey_dir))
    with caplog.at_level("WARNING"):
        build_vgg19_features(allow_random=True)
    assert "RANDOM weights" in caplog.text


def test_warp_loss_terms_and_gradients():
    from models.afwm import AFWM
    torch.manual_seed(0)
    model = AFWM(3, channels=(8, 8, 8, 8, 8), fpn_dim=8)
    vgg = VGGLoss(build_vgg19_features(allow_random=True))
    garment = torch.rand(2, 3, 64, 64) * 2 - 1
    edge = torch.ones(2, 1, 64, 64)
    out = model(torch.rand(2, 3, 64, 64), garment, edge, return_levels=True)
    terms = warp_loss(out.levels, garment, edge, vgg)
    assert set(terms) == {"warp_l1", "warp_vgg", "warp_edge", "warp_smooth", "warp_tv"}
    assert all(torch.isfinite(v) and v.item() >= 0 for v in terms.values())
    sum(terms.values()).backward()
    assert model.aflow_net.netMain[0][0].weight.grad.abs().sum() > 0


def test_vgg_loss_on_maps_too_small_for_the_last_pool_skips_those_slices():
    # 16x12 is the coarsest warp level at 256x192: relu5_1 would need a 2x1 -> 1x0 max-pool.
    torch.manual_seed(0)
    features = build_vgg19_features(allow_random=True)
    loss = VGGLoss(features)
    x, y = torch.rand(1, 3, 16, 12), torch.rand(1, 3, 16, 12)
    expected = 0.0
    h_x, h_y = x, y
    for weight, (a, b) in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4), ((0, 2), (2, 7), (7, 12), (12, 21))):
        h_x, h_y = features[a:b](h_x), features[a:b](h_y)
        expected += weight * (h_x - h_y).abs().mean().item()
    assert loss(x, y).item() == pytest.approx(expected, rel=1e-5)


def test_bn_running_statistics_follow_only_the_tracked_inputs():
    """Stage 4's --bn_statistics photos: the training pass on tutor images leaves the running
    statistics alone; the no-grad pass on photos moves them by the momentum."""
    from utils.training.batch_norm import running_statistics_frozen, track_running_statistics
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4)).train()
    norm = model[1]
    tutor, photos = torch.randn(2, 3, 5, 5) + 3, torch.randn(2, 3, 5, 5)
    with running_statistics_frozen(model):
        out = model(tutor)
    assert torch.equal(norm.running_mean, torch.zeros(4)) and norm.momentum == 0.1
    # Still normalised by the batch (train mode), and differentiable.
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(4), atol=1e-5, rtol=0)
    assert out.requires_grad
    track_running_statistics(model, photos)
    with torch.no_grad():
        expected = 0.1 * model[0](photos).mean((0, 2, 3))
    torch.testing.assert_close(norm.running_mean, expected)
