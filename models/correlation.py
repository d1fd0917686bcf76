"""Local correlation cost volume of the appearance-flow network.

For features ``first`` and ``second`` of shape (B, C, H, W) and a maximum displacement ``d``
(3 in PF-AFN), the volume has ``(2d+1)**2`` channels (49), ordered y-major:

    out[b, (dy+d)*(2d+1) + (dx+d), y, x] = mean_c first[b, c, y, x] * second[b, c, y+dy, x+dx]

with ``second`` zero-padded outside the image. It is a mean over channels, not a sum. The release
computed this with a cupy kernel; here it runs on CPU and CUDA with autograd, and always in
float32 (under autocast the inputs are promoted).

Four implementations compute the same numbers:

- ``"loop"``: one product per displacement (the plain reference; 49 passes over memory).
- ``"band"``: the band-GEMM formulation below, pure PyTorch, fastest on CPU (9.1x the loop
  forward, 11.7x forward and backward, at B=2, C=256, 128x96 on 2 cores), also valid on CUDA.
- ``"triton"``: fused CUDA kernels, forward and backward (``models/correlation_triton.py``).
- ``"rows"``: one batched matmul per vertical displacement, plain tensor operations only (no
  ``as_strided``, no custom autograd), so it traces into a graph: what the ONNX and
  ``torch.export`` exports use (``utils/export.py``).

``"auto"`` (the default) picks triton for float32 CUDA tensors when Triton is importable, and
band otherwise. The implementation is chosen per call (the warp modules take it as a
constructor argument, ``cost_volume``, and ``set_cost_volume`` changes it on a built model);
there is no process-wide default to flip.

Band GEMM. Both features are stored channels-last and flattened over (y, x) with rows padded to
``Wp = W + 2d`` columns (``second`` also padded by ``d`` rows on top). In that layout the
displacement (dy, dx) is a constant offset ``dy*Wp + dx`` between the two sequences, so cutting
the sequence of ``first`` into tiles of T positions, the products of one tile with the T + 2d
positions of ``second`` starting ``dy*Wp`` further on form one small GEMM (T x C)(C x (T+2d)),
whose 2d+1 diagonals are the wanted values. The windows of ``second`` are strided views of one
buffer, so the GEMMs read it in place; 7 batched GEMMs give the 49 channels.
"""

import os

import torch
import torch.nn.functional as F

from common.errors import UserError

MAX_DISPLACEMENT = 3
IMPLEMENTATIONS = ("auto", "loop", "band", "triton", "rows")
# Positions per band-GEMM tile. 16 was fastest of 8/16/32/64 on a 2-core AVX2 CPU; the wasted
# products grow as (T + 2d) / (2d + 1), small GEMMs run slower per product.
BAND_TILE = 16


def check_implementation(name: str) -> str:
    """``name`` if it is one of ``IMPLEMENTATIONS``, else ``ValueError`` listing them."""
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown correlation implementation {name!r}; "
                         f"choose one of {IMPLEMENTATIONS}")
    return name


def set_cost_volume(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """Make every cost volume of ``model`` (each submodule with a ``cost_volume`` attribute)
    use implementation ``name``; returns ``model``. The values computed do not change."""
    check_implementation(name)
    for module in model.modules():
        if hasattr(module, "cost_volume"):
            module.cost_volume = name
        arch = getattr(module, "arch", None)
        if isinstance(arch, dict) and "cost_volume" in arch:
            arch["cost_volume"] = name
    return model


def triton_available() -> bool:
    """Whether the Triton kernels can be imported (Triton installed)."""
    try:
        import models.correlation_triton  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_implementation(name: str, tensor: torch.Tensor) -> str:
    """The concrete implementation ``name`` ('auto' or explicit) means for ``tensor``. 'auto'
    picks the Triton kernels for float32 CUDA tensors only once they have matched the band
    formulation on this GPU (``triton_agrees``), and the band formulation otherwise."""
    check_implementation(name)
    if name != "auto":
        return name
    if tensor.is_cuda and tensor.dtype == torch.float32 and triton_available() \
            and triton_agrees(tensor.device):
        return "triton"
    return "band"


# CUDA device index -> whether the Triton kernels matched the band formulation there.
_TRITON_AGREES: dict[int, bool] = {}
AGREEMENT_TOLERANCE = 1e-4


def triton_agrees(device: torch.device) -> bool:
    """Compare the Triton kernels with the band formulation on ``device``, forward and both
    gradients, on a small random input; once per device and process. A disagreement (a driver,
    a Triton version, a GPU the kernels were not tested on) is warned about, and 'auto' then
    uses the band formulation on that device."""
    device = torch.device(device)
    index = device.index or 0
    if index in _TRITON_AGREES:
        return _TRITON_AGREES[index]
    import warnings

    from models.correlation_triton import triton_correlation
    generator = torch.Generator(device="cpu").manual_seed(0)
    first, second = (torch.randn(2, 32, 12, 10, generator=generator).to(device)
                     for _ in range(2))
    grad = torch.randn(2, 49, 12, 10, generator=generator).to(device)
    results = []
    try:
        with torch.autocast(device_type=device.type, enabled=False), torch.enable_grad():
            for compute in (triton_correlation,
                            lambda a, b, d: BandCorrelation.apply(a, b, d)):
                a, b = first.clone().requires_grad_(), second.clone().requires_grad_()
                volume = compute(a, b, MAX_DISPLACEMENT)
                volume.backward(grad)
                results.append((volume.detach(), a.grad, b.grad))
        worst = max(float((x - y).abs().max()) for x, y in zip(*results))
        error = None if worst <= AGREEMENT_TOLERANCE else f"differs by up to {worst:.3g}"
    except Exception as failure:     # a kernel that does not compile or launch here
        error = f"failed: {type(failure).__name__}: {failure}"
    _TRITON_AGREES[index] = error is None
    if error is not None:
        where = torch.cuda.get_device_name(index) if device.type == "cuda" else str(device)
        warnings.warn(f"the Triton cost volume on {where} {error} "
                      f"from the band formulation; correlation 'auto' uses the band "
                      f"formulation on this GPU", RuntimeWarning, stacklevel=3)
    return _TRITON_AGREES[index]


def local_correlation(first: torch.Tensor, second: torch.Tensor,
                      max_displacement: int = MAX_DISPLACEMENT,
                      implementation: str = "auto") -> torch.Tensor:
    """Cost volume between ``first`` (B, C, H, W) and ``second`` (B, C, H, W).

    ``implementation``: 'auto', 'loop', 'band', 'triton' or 'rows'. Returns
    (B, (2*max_displacement+1)**2, H, W) in float32 (float64 if an input is float64).
    """
    if first.shape != second.shape or first.dim() != 4:
        raise ValueError(f"correlation needs two (B, C, H, W) tensors of one shape, "
                         f"got {tuple(first.shape)} and {tuple(second.shape)}")
    if max_displacement < 0:
        raise ValueError(f"max_displacement must be >= 0, got {max_displacement}")
    dtype = torch.promote_types(torch.promote_types(first.dtype, second.dtype), torch.float32)
    first, second = first.to(dtype), second.to(dtype)
    name = resolve_implementation(implementation, first)
    with torch.autocast(device_type=first.device.type, enabled=False):
        if name == "loop":
            return _shift_loop(first, second, max_displacement)
        if name == "band":
            return BandCorrelation.apply(first, second, max_displacement)
        if name == "rows":
            return _row_products(first, second, max_displacement)
        if not first.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
            raise UserError("the triton cost volume (--cost_volume triton) runs on CUDA "
                            "tensors (or on CPU under TRITON_INTERPRET=1): band on a CPU")
        from models.correlation_triton import triton_correlation
        return triton_correlation(first, second, max_displacement)


def _shift_loop(first: torch.Tensor, second: torch.Tensor, d: int) -> torch.Tensor:
    # One product per displacement; the shifted windows are views of one padded tensor, so
    # autograd keeps no extra copies of ``second``.
    height, width = first.shape[-2:]
    padded = F.pad(second, (d, d, d, d))
    scale = 1.0 / first.shape[1]
    planes = []
    for dy in range(2 * d + 1):
        for dx in range(2 * d + 1):
            window = padded[:, :, dy:dy + height, dx:dx + width]
            planes.append(torch.einsum("bchw,bchw->bhw", first, window) * scale)
    return torch.stack(planes, dim=1)


def _row_products(first: torch.Tensor, second: torch.Tensor, d: int) -> torch.Tensor:
    # For each dy, one matmul per image row: row y of ``first`` (W x C) times row y + dy of the
    # zero-padded ``second`` (C x (W + 2d)) holds every product of the two rows; the wanted ones
    # (x, x + dx + d) for dx in [-d, d] lie on 2d+1 diagonals. In the row-major flattening of a
    # (W, W + 2d) matrix, element (x, x + k) sits at x * (W + 2d + 1) + k, so padding the
    # flattened products by W and reading them as (W, W + 2d + 1) puts diagonal k in column k.
    # About (W + 2d) / (2d + 1) times the products of the loop, but only GEMMs, pads and reshapes.
    height, width = first.shape[-2:]
    side = 2 * d + 1
    rows = first.permute(0, 2, 3, 1)                                  # (B, H, W, C)
    padded = F.pad(second, (d, d, d, d)).permute(0, 2, 1, 3)          # (B, H + 2d, C, W + 2d)
    planes = []
    for dy in range(side):
        products = torch.matmul(rows, padded[:, dy:dy + height])      # (B, H, W, W + 2d)
        diagonals = F.pad(products.flatten(2), (0, width)).unflatten(2, (width, width + side))
        planes.append(diagonals[..., :side])                          # (B, H, W, 2d + 1)
    volume = torch.cat(planes, dim=3)                                 # y-major: dy * side + dx
    return volume.permute(0, 3, 1, 2) * (1.0 / first.shape[1])


class _BandLayout:
    """Sizes of the flattened channels-last buffers of the band-GEMM correlation.

    Per batch element the sequence holds ``length`` positions (a multiple of the tile), enough
    for ``second``'s (H + 2d) padded rows and for every window read from the last real tile.
    ``tail`` extra rows after the last batch element keep the windows of its padding tiles
    inside the buffer.
    """

    def __init__(self, batch, channels, height, width, d, tile):
        self.batch, self.channels, self.height, self.width = batch, channels, height, width
        self.d = d
        self.tile = tile
        self.side = 2 * d + 1
        self.row = width + 2 * d
        needed = (height + 2 * d) * self.row + 2 * d
        self.length = -(-needed // tile) * tile
        self.tiles = batch * self.length // tile
        self.tail = 2 * d * self.row + tile + 2 * d

    def first_buffer(self, first):
        """(B, C, H, W) -> zero-padded (B*length, C); position y*row + x holds (y, x)."""
        buffer = first.new_zeros(self.batch * self.length, self.channels)
        self._grid(buffer, self.height)[:, :, :self.width].copy_(first.permute(0, 2, 3, 1))
        return buffer

    def second_buffer(self, second):
        """(B, C, H, W) -> (B*length + tail, C) holding ``second`` padded by d on every side."""
        buffer = second.new_zeros(self.batch * self.length + self.tail, self.channels)
        d = self.d
        grid = self._grid(buffer, self.height + 2 * d)
        grid[:, d:d + self.height, d:d + self.width].copy_(second.permute(0, 2, 3, 1))
        return buffer

    def _grid(self, buffer, rows):
        per_batch = buffer[:self.batch * self.length].view(self.batch, self.length, -1)
        return per_batch[:, :rows * self.row].view(self.batch, rows, self.row, -1)

    def window(self, buffer, dy):
        """Strided view (tiles, T + 2d, C) of ``buffer`` rows ``n*T + dy*row + [0, T+2d)``."""
        channels = buffer.shape[-1]
        return buffer.as_strided((self.tiles, self.tile + 2 * self.d, channels),
                                 (self.tile * channels, channels, 1),
                                 buffer.storage_offset() + dy * self.row * channels)

    def band(self, products):
        """(tiles, T, T + 2d) products -> their 2d+1 diagonals (tiles, T, 2d+1) as a view."""
        width = self.tile + 2 * self.d
        return products.as_strided((self.tiles, self.tile, self.side),
                                   (self.tile * width, width + 1, 1),
                                   products.storage_offset())

    def unflatten_volume(self, volume):
        """(B*length, K) -> (B, K, H, W)."""
        grid = self._grid(volume, self.height)[:, :, :self.width]
        return grid.permute(0, 3, 1, 2).contiguous()

    def flatten_volume(self, volume):
        """(B, K, H, W) -> zero-padded (B*length, K), the inverse of ``unflatten_volume``."""
        buffer = volume.new_zeros(self.batch * self.length, volume.shape[1])
        self._grid(buffer, self.height)[:, :, :self.width].copy_(volume.permute(0, 2, 3, 1))
        return buffer

    def unflatten_second(self, buffer):
        """(B*length + tail, C) gradient buffer -> (B, C, H, W), dropping the padding."""
        d = self.d
        grid = self._grid(buffer, self.height + 2 * d)[:, d:d + self.height, d:d + self.width]
        return grid.permute(0, 3, 1, 2).contiguous()


class BandCorrelation(torch.autograd.Function):
    """The band-GEMM cost volume (see the module docstring) with its backward:

    grad_first[p]            = (1/C) sum_k g[p, k] second[p + o_k]
    grad_second[p + o_k]    += (1/C) g[p, k] first[p]

    with ``o_k = dy*row + dx`` the flat offset of displacement k. Both are GEMMs with the band
    of ``g`` spread into a (T, T + 2d) matrix, one per dy.
    """

    @staticmethod
    def forward(ctx, first, second, max_displacement):
        batch, channels, height, width = first.shape
        layout = _BandLayout(batch, channels, height, width, max_displacement, BAND_TILE)
        first_flat = layout.first_buffer(first)
        second_flat = layout.second_buffer(second)
        first_tiles = first_flat.view(layout.tiles, layout.tile, channels)
        volume = first.new_empty(batch * layout.length, layout.side * layout.side)
        volume_tiles = volume.view(layout.tiles, layout.tile, -1)
        for dy in range(layout.side):
            products = torch.bmm(first_tiles, layout.window(second_flat, dy).transpose(1, 2))
            volume_tiles[:, :, dy * layout.side:(dy + 1) * layout.side] = layout.band(products)
        volume.mul_(1.0 / channels)
        ctx.layout = layout
        ctx.save_for_backward(first_flat, second_flat)
        return layout.unflatten_volume(volume)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_volume):
        layout = ctx.layout
        first_flat, second_flat = ctx.saved_tensors
        channels, tile, d, side = layout.channels, layout.tile, layout.d, layout.side
        grad_flat = layout.flatten_volume(grad_volume * (1.0 / channels))
        grad_tiles = grad_flat.view(layout.tiles, tile, -1)
        first_tiles = first_flat.view(layout.tiles, tile, channels)
        grad_first = torch.zeros_like(first_tiles) if ctx.needs_input_grad[0] else None
        grad_second = torch.zeros_like(second_flat) if ctx.needs_input_grad[1] else None
        band_matrix = grad_flat.new_zeros(layout.tiles, tile, tile + 2 * d)
        for dy in range(side):
            layout.band(band_matrix).copy_(grad_tiles[:, :, dy * side:(dy + 1) * side])
            window = layout.window(second_flat, dy)
            if grad_first is not None:
                grad_first.baddbmm_(band_matrix, window)
            if grad_second is not None:
                spread = torch.bmm(band_matrix.transpose(1, 2), first_tiles)
                # The windows of neighbouring tiles overlap by 2d rows: add the first T rows of
                # every window, then the last 2d rows, so no two writes of one call collide.
                target = layout.window(grad_second, dy)
                target[:, :tile].add_(spread[:, :tile])
                shifted = grad_second.as_strided(
                    (layout.tiles, 2 * d, channels), (tile * channels, channels, 1),
                    grad_second.storage_offset() + (dy * layout.row + tile) * channels)
                shifted.add_(spread[:, tile:])
        if grad_first is not None:
            grad_first = layout.unflatten_volume(grad_first.view(-1, channels))
        if grad_second is not None:
            grad_second = layout.unflatten_second(grad_second)
        return grad_first, grad_second, None

