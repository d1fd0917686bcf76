"""Every fast path equals the plain one: correlation implementations (forward and backward),
conv-BN folding, channels_last, bf16 autocast, torch.compile, CUDA graphs."""

import copy
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

import models.correlation as correlation
from common.errors import UserError
from models.afwm import AFWM
from models.correlation import local_correlation
from models.fast import CudaGraphRunner, fold_batchnorms, optimize_for_inference
from models.generator import ResUnetGenerator
from models.tryon import parser_free_tryon

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_WARP = dict(channels=(8, 8, 8, 8, 8), fpn_dim=8)


def _triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def randomise_batchnorms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Running stats and affine parameters far from the identity, so folding is really tested."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return model


def correlation_and_grads(first, second, d, implementation, grad):
    first = first.detach().requires_grad_(True)
    second = second.detach().requires_grad_(True)
    out = local_correlation(first, second, d, implementation=implementation)
    grad_first, grad_second = torch.autograd.grad(out, (first, second), grad)
    return out, grad_first, grad_second


# ---------------------------------------------------------------------------- correlation


@pytest.mark.parametrize("shape,d", [((2, 5, 6, 9), 3), ((3, 4, 8, 6), 2), ((1, 3, 1, 1), 3),
                                     ((2, 7, 13, 5), 0), ((1, 2, 2, 40), 3)])
def test_band_matches_loop_forward_and_backward(shape, d):
    torch.manual_seed(0)
    first, second = torch.randn(shape), torch.randn(shape)
    side = 2 * d + 1
    grad = torch.randn(shape[0], side * side, *shape[2:])
    loop = correlation_and_grads(first, second, d, "loop", grad)
    band = correlation_and_grads(first, second, d, "band", grad)
    for expected, got in zip(loop, band):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_band_gradcheck_float64():
    torch.manual_seed(1)
    first = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    second = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: local_correlation(a, b, 3, implementation="band"), (first, second),
        eps=1e-6, atol=1e-6)


def test_band_only_first_needs_grad():
    # The pre-warped garment feature is detached from the flow but the condition is not: each
    # input's gradient must be right when the other one has none.
    torch.manual_seed(2)
    first = torch.randn(1, 4, 5, 7, requires_grad=True)
    second = torch.randn(1, 4, 5, 7)
    local_correlation(first, second, implementation="band").sum().backward()
    expected = torch.autograd.grad(local_correlation(first, second, implementation="loop").sum(),
                                   first)[0]
    torch.testing.assert_close(first.grad, expected, atol=1e-5, rtol=1e-5)


def test_band_float32_under_autocast():
    torch.manual_seed(3)
    first, second = torch.randn(1, 8, 8, 8), torch.randn(1, 8, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = local_correlation(first.bfloat16(), second.bfloat16(), implementation="band")
    assert out.dtype == torch.float32
    expected = local_correlation(first.bfloat16().float(), second.bfloat16().float(),
                                 implementation="loop")
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_channels_last_inputs_give_the_same_volume():
    torch.manual_seed(4)
    first, second = torch.randn(2, 6, 7, 5), torch.randn(2, 6, 7, 5)
    expected = local_correlation(first, second, implementation="loop")
    got = local_correlation(first.contiguous(memory_format=torch.channels_last),
                            second.contiguous(memory_format=torch.channels_last),
                            implementation="band")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_cost_volume_is_chosen_per_model():
    warp, _ = tiny_models(1)
    other = copy.deepcopy(warp)
    correlation.set_cost_volume(warp, "loop")
    assert warp.aflow_net.cost_volume == "loop" and warp.arch["cost_volume"] == "loop"
    assert other.aflow_net.cost_volume == "auto"                  # no process-wide default
    with pytest.raises(ValueError, match="unknown correlation implementation"):
        correlation.set_cost_volume(warp, "cupy")
    with pytest.raises(ValueError, match="unknown correlation implementation"):
        AFWM(3, cost_volume="cupy")
    assert correlation.resolve_implementation("auto", torch.zeros(1)) == "band"  # a CPU tensor


def test_cost_volume_flag_for_a_warp_without_one_is_refused(tmp_path, caplog):
    """--cost_volume applies to the warp a run trains; FS-VTON's has no cost volume, so the
    flag given for it is refused instead of being ignored. From a file shared by several runs
    (or a run's config.yaml) it is let through, and the log says it is not used."""
    import argparse
    import logging

    from options import ConfigError, parse_config
    from utils.logging_utils import LOGGER_NAME
    from utils.training.parts import warp_arch
    for warp_type, volume in (("pfafn", "rows"), ("fsvton", "auto"), ("mobile", "loop")):
        arch = warp_arch(argparse.Namespace(warp_arch=warp_type, cost_volume=volume), 3)
        assert arch.get("cost_volume", "auto") == volume
    with pytest.raises(ConfigError, match=r"^--cost_volume: for a warp's cost volume, which the "
                                          r"--warp_arch trained here has not"):
        parse_config(["--warp_arch", "fsvton", "--cost_volume", "rows"], default_name="x")
    shared = tmp_path / "shared.yaml"
    shared.write_text("cost_volume: rows\n")
    cfg = parse_config(["--config", str(shared), "--warp_arch", "fsvton"], default_name="x")
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        assert "cost_volume" not in warp_arch(cfg, 3)
    assert "cost_volume rows not used: the fsvton warp has no cost volume" in caplog.text


def test_triton_on_cpu_tensors_is_refused_outside_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    # A user's flag (--cost_volume): one line, not a ValueError traceback in training.
    with pytest.raises(UserError, match=r"--cost_volume triton\) runs on CUDA tensors"):
        local_correlation(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 3),
                          implementation="triton")


# The Triton interpreter runs the kernels on CPU tensors; it reads TRITON_INTERPRET when the
# kernels are defined, so the check runs in a fresh process. A few seconds per launch: tiny shapes.
TRITON_CHECK = textwrap.dedent("""
    import torch
    from models.correlation import local_correlation
    from models.correlation_triton import triton_correlation
    torch.manual_seed(0)
    for shape, d in [((2, 5, 6, 9), 3), ((1, 40, 3, 70), 2)]:
        side = 2 * d + 1
        first = torch.randn(shape, requires_grad=True)
        second = torch.randn(shape, requires_grad=True)
        grad = torch.randn(shape[0], side * side, *shape[2:])
        expected = local_correlation(first, second, d, implementation="loop")
        expected_grads = torch.autograd.grad(expected, (first, second), grad)
        got = triton_correlation(first, second, d)
        got_grads = torch.autograd.grad(got, (first, second), grad)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        for e, g in zip(expected_grads, got_grads):
            torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    first = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    second = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: triton_correlation(a, b, 1), (first, second),
                                    fast_mode=True)
    print("TRITON-OK")
""")


@pytest.mark.skipif(not _triton_importable(), reason="triton is not installed")
def test_triton_kernels_match_loop_in_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", TRITON_CHECK], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if "TRITON-OK" not in result.stdout:
        raise AssertionError(f"triton check failed:\n{result.stdout}\n{result.stderr[-3000:]}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.skipif(not _triton_importable(), reason="triton is not installed")
def test_triton_matches_loop_on_cuda():
    torch.manual_seed(5)
    shape, d = (2, 64, 24, 17), 3
    first, second = torch.randn(shape, device="cuda"), torch.randn(shape, device="cuda")
    grad = torch.randn(2, 49, 24, 17, device="cuda")
    loop = correlation_and_grads(first, second, d, "loop", grad)
    fused = correlation_and_grads(first, second, d, "triton", grad)
    for expected, got in zip(loop, fused):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------- inference models


def tiny_models(seed: int = 0):
    torch.manual_seed(seed)
    warp = randomise_batchnorms(AFWM(3, **TINY_WARP), seed).eval()
    gen = randomise_batchnorms(ResUnetGenerator(7, ngf=4), seed + 1).eval()
    return warp, gen


def tiny_inputs(batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    person = torch.rand(batch, 3, 64, 64, generator=generator) * 2 - 1
    garment = torch.rand(batch, 3, 64, 64, generator=generator) * 2 - 1
    edge = (torch.rand(batch, 1, 64, 64, generator=generator) > 0.3).float()
    return person, garment, edge


def test_fold_batchnorms_counts_and_equals_generator():
    _, gen = tiny_models()
    x = torch.randn(2, 7, 64, 64)
    with torch.no_grad():
        expected = gen(x)
        folded = optimize_for_inference(gen, fold_bn=True, channels_last=False)
        got = folded(x)
    # Generator: every BN follows a conv (3 down BNs, 4 up BNs, 2 per ResidualBlock x 4 x 9).
    assert sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()) == 0
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    # The original model is untouched.
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gen.modules()) > 0


def test_fold_batchnorms_equals_afwm_and_keeps_preactivation_bns():
    warp, _ = tiny_models(1)
    person, garment, _ = tiny_inputs()
    with torch.no_grad():
        expected = warp(person, garment)
        folded = optimize_for_inference(warp, fold_bn=True, channels_last=False)
        got = folded(person, garment)
    # Per encoder level: the BN opening DownSample and each ResBlock stays (3), the middle BN
    # of each ResBlock (conv -> BN) folds (2); two encoders of five levels.
    remaining = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert remaining == 2 * 5 * 3
    torch.testing.assert_close(got.warped, expected.warped, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got.flow, expected.flow, atol=1e-4, rtol=1e-4)


def test_optimized_model_forwards_attributes_and_copies():
    warp, _ = tiny_models(6)
    fast = optimize_for_inference(warp, fold_bn=True, channels_last=True)
    assert fast.align_corners is True and fast.input_nc == 3
    person, garment, _ = tiny_inputs(seed=6)
    with torch.no_grad():
        torch.testing.assert_close(copy.deepcopy(fast)(person, garment).flow,
                                   fast(person, garment).flow)


def test_fold_needs_eval_mode():
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batchnorms(ResUnetGenerator(7, ngf=4).train())


def test_fast_tryon_equals_plain_tryon():
    """BN folding + channels_last + band correlation vs the plain path (loop, no folding)."""
    warp, gen = tiny_models(2)
    person, garment, edge = tiny_inputs(seed=2)
    plain_warp = correlation.set_cost_volume(copy.deepcopy(warp), "loop")
    with torch.no_grad():
        plain = parser_free_tryon(plain_warp, gen, person, garment, edge)
    fast_warp = optimize_for_inference(warp, fold_bn=True, channels_last=True)
    fast_gen = optimize_for_inference(gen, fold_bn=True, channels_last=True)
    with torch.no_grad():
        fast = parser_free_tryon(fast_warp, fast_gen, person, garment, edge)
    for name in ("tryon", "warped", "warped_edge", "mask"):
        torch.testing.assert_close(getattr(fast, name), getattr(plain, name),
                                   atol=1e-4, rtol=1e-4, msg=name)


# bf16 keeps 8 mantissa bits (relative step 2**-8) through some 60 convolutions. Flows are
# normalised coordinates in [-1, 1] (0.01 is a third of a pixel at 64 wide); the generator's
# logits here have a standard deviation of about 0.15. The warped garment is not compared: with
# a random-noise garment, a third of a pixel of flow changes pixels by O(1).
BF16_FLOW_TOLERANCE = dict(max=0.05, mean=0.01)
BF16_GENERATOR_TOLERANCE = dict(max=0.03, mean=0.003)


def test_bf16_autocast_within_tolerance():
    warp, gen = tiny_models(3)
    person, garment, edge = tiny_inputs(seed=3)
    with torch.no_grad():
        plain_warp = warp(person, garment)
        gen_input = torch.cat([person, plain_warp.warped, edge], 1)
        plain_gen = gen(gen_input)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            reduced_warp = warp(person, garment)
            reduced_gen = gen(gen_input)
    assert reduced_gen.dtype == torch.bfloat16
    flow_error = (reduced_warp.flow.float() - plain_warp.flow).abs()
    gen_error = (reduced_gen.float() - plain_gen).abs()
    assert flow_error.max().item() < BF16_FLOW_TOLERANCE["max"]
    assert flow_error.mean().item() < BF16_FLOW_TOLERANCE["mean"]
    assert gen_error.max().item() < BF16_GENERATOR_TOLERANCE["max"]
    assert gen_error.mean().item() < BF16_GENERATOR_TOLERANCE["mean"]
    assert gen_error.max().item() > 0   # autocast really ran in reduced precision


@pytest.mark.skipif(not os.environ.get("PFAFN_TEST_COMPILE"),
                    reason="slow: torch.compile takes minutes on CPU; set PFAFN_TEST_COMPILE=1")
def test_torch_compile_equals_eager():
    _, gen = tiny_models(4)
    x = torch.randn(1, 7, 64, 64)
    with torch.no_grad():
        expected = gen(x)
        got = optimize_for_inference(gen, channels_last=False, compile=True)(x)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_cuda_graph_runner_refuses_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the CUDA test below covers the runner")
    with pytest.raises(RuntimeError, match="needs CUDA"):
        CudaGraphRunner(lambda x: x * 2, [torch.zeros(2)])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_graph_runner_equals_eager():
    warp, gen = tiny_models(5)
    warp, gen = warp.cuda(), gen.cuda()
    person, garment, edge = (x.cuda() for x in tiny_inputs(seed=5))

    def tryon(p, g, e):
        return parser_free_tryon(warp, gen, p, g, e).tryon

    runner = CudaGraphRunner(tryon, [person, garment, edge])
    with torch.no_grad():
        expected = tryon(person.flip(0), garment.flip(0), edge.flip(0))
    got = runner(person.flip(0), garment.flip(0), edge.flip(0))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_auto_falls_back_to_band_when_the_triton_kernels_disagree(monkeypatch):
    import types
    calls = []

    def wrong_kernel(first, second, d):
        calls.append(1)
        return correlation.BandCorrelation.apply(first, second, d) + 0.01

    fake = types.ModuleType("models.correlation_triton")
    fake.triton_correlation = wrong_kernel
    monkeypatch.setitem(sys.modules, "models.correlation_triton", fake)
    monkeypatch.setattr(correlation, "_TRITON_AGREES", {})
    with pytest.warns(RuntimeWarning, match="differs by up to 0.01.*uses the band formulation"):
        assert correlation.triton_agrees(torch.device("cpu")) is False
    assert correlation.triton_agrees(torch.device("cpu")) is False and len(calls) == 1  # once
    fake.triton_correlation = lambda a, b, d: correlation.BandCorrelation.apply(a, b, d)
    monkeypatch.setattr(correlation, "_TRITON_AGREES", {})
    assert correlation.triton_agrees(torch.device("cpu")) is True


def test_second_order_differences_equal_one_filter_at_a_time():
    from models.flow import SECOND_ORDER_FILTERS, second_order_differences
    flow = torch.randn(3, 2, 9, 7, dtype=torch.float64)
    dx, dy = second_order_differences(flow)
    for component, got in ((flow[:, 0:1], dx), (flow[:, 1:2], dy)):
        for k, kernel in enumerate(SECOND_ORDER_FILTERS.double()[:, 0]):
            # each filter written out as the sum of its taps
            expected = sum(kernel[i, j] * component[:, 0, i:i + 7, j:j + 5]
                           for i in range(3) for j in range(3))
            torch.testing.assert_close(got[:, k], expected, rtol=0, atol=1e-12)


def _conv_inputs_channels_last(model, run) -> list[bool]:
    """Whether each Conv2d of ``model`` saw a channels-last input during ``run()``."""
    seen = []
    hooks = [m.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last)))
        for m in model.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1]
    try:
        run()
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def test_cpu_training_runs_channels_last_and_equals_nchw():
    # The CPU convolutions of the warp module and the generator run on NHWC. The fp32 forward
    # equals that of the NCHW layout to float rounding; the gradients are compared in float64,
    # since in float32 a bilinear sample's gradient jumps where a position crosses a pixel.
    torch.manual_seed(0)
    warp = AFWM(3, **TINY_WARP).train()
    gen = ResUnetGenerator(7, ngf=4).train()
    person, garment = torch.randn(4, 3, 64, 64), torch.randn(4, 3, 64, 64)
    edge = (torch.rand(4, 1, 64, 64) > 0.5).float()

    def step(dtype, memory_format):
        w, g = copy.deepcopy(warp).to(dtype), copy.deepcopy(gen).to(dtype)
        for module in [*w.modules(), *g.modules()]:
            if hasattr(module, "cpu_memory_format"):
                module.cpu_memory_format = memory_format
        out = w(person.to(dtype), garment.to(dtype), edge.to(dtype), return_levels=True)
        rendered = g(torch.cat([person.to(dtype), out.warped, out.levels[-1].warped_edge], 1))
        total = rendered.square().mean() + sum(level.flow_dx.square().mean()
                                               + level.warped_garment.mean()
                                               for level in out.levels)
        total.backward()
        grads = torch.cat([p.grad.flatten() for p in [*w.parameters(), *g.parameters()]])
        return [total.detach(), out.warped.detach(), out.flow.detach(), rendered.detach(),
                grads]

    layouts = _conv_inputs_channels_last(warp, lambda: warp(person, garment))
    layouts += _conv_inputs_channels_last(gen, lambda: gen(torch.randn(2, 7, 64, 64)))
    assert layouts and all(layouts)
    fast, plain = step(torch.float32, torch.channels_last), step(torch.float32,
                                                                  torch.contiguous_format)
    for got, expected in zip(fast[:-1], plain[:-1]):
        torch.testing.assert_close(got, expected, rtol=0, atol=2e-3)
    fast, plain = step(torch.float64, torch.channels_last), step(torch.float64,
                                                                  torch.contiguous_format)
    for got, expected in zip(fast, plain):
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)
