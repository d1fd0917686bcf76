"""Inference fast paths: conv-BatchNorm folding, channels_last, torch.compile, CUDA graphs.

Each is a switch of ``optimize_for_inference`` (or the ``CudaGraphRunner`` wrapper) and each is
tested equal to the plain eval model (tests/test_fast_paths.py).

Folding. An eval-mode BatchNorm is the affine map ``y = a * x + b`` per channel with
``a = gamma / sqrt(var + eps)`` and ``b = beta - a * mean``. When it directly follows a conv
(conv -> BN), ``BN(W * x + c) = (a W) * x + (a c + b)``: the BN disappears into the conv's
weight and bias. That is exact for the generator's ResidualBlocks and U-Net levels and for the
middle BN of AFWM's pre-activation ResBlocks (conv1 -> BN -> ReLU -> conv2). The other AFWM BNs
open a block (BN -> ReLU -> conv, after a residual sum): a ReLU sits between them and the next
conv, so folding forward would not be exact; they stay as eval BatchNorms, which are already
one fused affine per channel.
"""

import copy
from typing import Callable, Sequence

import torch
import torch.nn as nn

from models.registry import (
    ModuleWrapper,
    unwrap,  # noqa: F401  (its earlier home; import it from the registry)
)


@torch.no_grad()
def batchnorm_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b), float64 (C,), of an eval-mode BatchNorm2d as ``y = a * x + b`` per channel:
    ``a = gamma / sqrt(var + eps)``, ``b = beta - a * mean``."""
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError("a BatchNorm2d without running statistics (track_running_stats=False) "
                         "has no fixed affine map")
    scale = bn.running_var.double().add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d equal to ``bn(conv(x))`` with ``bn`` in eval mode (its running stats)."""
    if conv.out_channels != bn.num_features:
        raise ValueError(f"conv has {conv.out_channels} output channels but the BatchNorm "
                         f"after it has {bn.num_features}")
    scale, shift = batchnorm_affine(bn)
    with torch.no_grad():
        folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                           stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                           groups=conv.groups, bias=True, padding_mode=conv.padding_mode,
                           device=conv.weight.device, dtype=conv.weight.dtype)
        weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
        bias = shift if conv.bias is None else conv.bias.double() * scale + shift
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return folded


def fold_batchnorms(model: nn.Module) -> int:
    """Fold, in place, every BatchNorm2d that directly follows a Conv2d in an ``nn.Sequential``
    into that conv (the BN becomes ``nn.Identity``). Returns how many were folded.

    Only meaningful for inference: the model must be in eval mode.
    """
    if model.training:
        raise ValueError("fold_batchnorms needs an eval-mode model (call .eval() first): "
                         "in training mode BatchNorm uses batch statistics, which cannot fold")
    folded = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules.keys())
        for first_name, second_name in zip(names, names[1:]):
            conv, bn = module._modules[first_name], module._modules[second_name]
            if isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d:
                module._modules[first_name] = fold_conv_bn(conv, bn)
                module._modules[second_name] = nn.Identity()
                folded += 1
    return folded


class ChannelsLast(ModuleWrapper):
    """Runs ``model`` with its floating inputs (B, C, H, W) converted to channels_last; the
    outputs keep that memory format (values and shapes are unchanged)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        def convert(x):
            if isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point():
                return x.contiguous(memory_format=torch.channels_last)
            return x
        args = [convert(a) for a in args]
        kwargs = {k: convert(v) for k, v in kwargs.items()}
        return self.model(*args, **kwargs)

    def __getattr__(self, name):
        # Attributes the callers read (``align_corners``, ``input_nc``) come from the model.
        try:
            return super().__getattr__(name)
        except AttributeError:
            model = self.__dict__.get("_modules", {}).get("model")
            if name.startswith("_") or model is None:
                raise
            return getattr(model, name)


def optimize_for_inference(model: nn.Module, fold_bn: bool = True, channels_last: bool = True,
                           compile: bool = False, compile_mode: str | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` computing the same outputs faster.

    ``fold_bn``: fold conv -> BN pairs (see the module docstring); ``channels_last``: NHWC
    weights and inputs (oneDNN and cuDNN run NHWC convolutions faster); ``compile``: wrap in
    ``torch.compile`` (``compile_mode`` e.g. 'max-autotune'). The original model is untouched.
    Parameters of the copy do not require grad.
    """
    optimized = copy.deepcopy(model).eval()
    optimized.requires_grad_(False)
    if fold_bn:
        fold_batchnorms(optimized)
    if channels_last:
        optimized = ChannelsLast(optimized.to(memory_format=torch.channels_last)).eval()
    if compile:
        optimized = torch.compile(optimized, mode=compile_mode)
    return optimized


class CudaGraphRunner:
    """Replays a CUDA graph of ``fn(*inputs)`` for inputs of one fixed shape.

    ``fn`` takes tensors and returns a tensor, or tuples, lists or dataclasses of tensors;
    ``example_inputs`` fix the shapes, dtypes and device. Calling the runner copies
    new inputs into the captured buffers, replays the graph, and returns clones of the outputs
    (so later calls do not overwrite them). Construct only on CUDA.
    """

    def __init__(self, fn: Callable, example_inputs: Sequence[torch.Tensor],
                 warmup_iters: int = 3):
        if not torch.cuda.is_available():
            raise RuntimeError("CudaGraphRunner needs CUDA, and torch.cuda.is_available() is False")
        if not example_inputs or any(not x.is_cuda for x in example_inputs):
            raise ValueError("CudaGraphRunner needs CUDA tensors as example inputs")
        self.fn = fn
        self.static_inputs = [x.detach().clone() for x in example_inputs]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        # Warm-up on a side stream, as capture requires: it triggers lazy initialisation
        # (cuDNN autotuning, Triton compilation) outside the graph.
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(warmup_iters):
                fn(*self.static_inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.static_outputs = fn(*self.static_inputs)

    def __call__(self, *inputs: torch.Tensor):
        if len(inputs) != len(self.static_inputs):
            raise ValueError(f"CudaGraphRunner was captured with {len(self.static_inputs)} "
                             f"inputs, got {len(inputs)}")
        for buffer, x in zip(self.static_inputs, inputs):
            if x.shape != buffer.shape:
                raise ValueError(f"CudaGraphRunner was captured for shape {tuple(buffer.shape)}, "
                                 f"got {tuple(x.shape)}")
            buffer.copy_(x)
        self.graph.replay()
        return _clone_tensors(self.static_outputs)


def _clone_tensors(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_clone_tensors(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return type(value)(**{k: _clone_tensors(getattr(value, k))
                              for k in value.__dataclass_fields__})
    return value
