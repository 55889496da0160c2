"""Positional information for attention, which by itself ignores token order (step 3 of the Transformer).

Attention is permutation-equivariant: shuffle the tokens and the outputs shuffle the same way. Order
enters through positions, either *added* to the token embeddings

    SinusoidalPositionalEncoding   PE[pos, 2i] = sin(pos / 10000^(2i/d)),  PE[pos, 2i+1] = cos(...)
    LearnedPositionalEmbedding     P[pos] a learned vector per position
    sinusoidal_table_2d            half the features encode the patch row, half the column (ViT)

or *rotated into* the queries and keys inside attention (RoPE, Su et al. 2021):

    RotaryEmbedding     feature pair (2i, 2i+1) of a query/key at position m turned by the angle m·θ_i,
                        θ_i = base^(-2i/d); then q_m · k_n depends only on m - n
    RotaryEmbedding2D   the same on a patch grid: the first half of the pairs turn with the row,
                        the second half with the column

Every module takes ``offset``: the position of the first token, for decoding with a key/value cache.
"""
from __future__ import annotations

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.autograd import Function
from tinytensor.autograd.dual import add as add_tangents
from tinytensor.ops import sum_to

from .layers import Dropout
from .module import Module, Parameter

__all__ = [
    "sinusoidal_table", "sinusoidal_table_2d", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
    "RotaryEmbedding", "RotaryEmbedding2D",
]


def _sequence_length(op: str, x: Tensor, batch_first: bool, d_model: int) -> int:
    """T of x (B, T, C), (T, B, C) with batch_first=False, or one unbatched sequence (T, C)."""
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        layout = f"(B, T, {d_model})" if batch_first else f"(T, B, {d_model}) (batch_first=False)"
        raise ValueError(f"{op}: expected {layout} or one sequence (T, {d_model}), got input {x.shape}")
    return x.shape[1] if x.ndim == 3 and batch_first else x.shape[0]


def _check_length(op: str, T: int, offset: int, max_len: int) -> None:
    if offset < 0 or offset + T > max_len:
        raise ValueError(
            f"{op}: positions {offset}..{offset + T - 1} (sequence of length {T} at offset {offset}) do not "
            f"fit the table of max_len={max_len} positions; build it with a larger max_len"
        )


def sinusoidal_table(max_len: int, d_model: int, base: float = 10000.0, dtype=None, device=None) -> Tensor:
    """(max_len, d_model): PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(same); computed in
    float64, returned as ``dtype`` (float32 by default)."""
    pos = tt.arange(max_len, dtype=tt.float64, device=device).reshape(max_len, 1)  # (max_len, 1)
    two_i = tt.arange(0, d_model, 2, dtype=tt.float64, device=device)  # (ceil(d/2),)
    angle = pos / base ** (two_i / d_model)  # (max_len, ceil(d/2))
    pe = tt.stack([angle.sin(), angle.cos()], dim=-1)  # (max_len, ceil(d/2), 2): sin, cos interleaved
    return pe.reshape(max_len, -1)[:, :d_model].to(dtype=dtype or tt.float32)  # (max_len, d_model)


def sinusoidal_table_2d(grid_h: int, grid_w: int, d_model: int, base: float = 10000.0, dtype=None,
                        device=None) -> Tensor:
    """(grid_h*grid_w, d_model) for patches in row-major order: the first d/2 features are the 1-D table
    at the patch's row, the last d/2 the 1-D table at its column (d_model divisible by 4)."""
    if d_model % 4:
        raise ValueError(f"sinusoidal_table_2d: d_model must be divisible by 4, got {d_model}")
    rows = sinusoidal_table(grid_h, d_model // 2, base, dtype, device)  # (H, d/2)
    cols = sinusoidal_table(grid_w, d_model // 2, base, dtype, device)  # (W, d/2)
    rows = rows.reshape(grid_h, 1, d_model // 2).expand(grid_h, grid_w, d_model // 2)  # (H, W, d/2)
    cols = cols.reshape(1, grid_w, d_model // 2).expand(grid_h, grid_w, d_model // 2)  # (H, W, d/2)
    return tt.cat([rows, cols], dim=-1).reshape(grid_h * grid_w, d_model)  # (H*W, d)


class SinusoidalPositionalEncoding(Module):
    """x + PE[offset : offset+T], then dropout ("Attention Is All You Need", section 3.5).

    x is (B, T, d_model) with ``batch_first=True`` (default) or (T, B, d_model) otherwise, or one
    unbatched sequence (T, d_model). The table
    is a non-persistent float64 buffer (not in the state_dict: it is a formula, not a weight), cast to
    the input's dtype.
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.0, batch_first: bool = True,
                 device=None):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)
        self.register_buffer("pe", sinusoidal_table(max_len, d_model, dtype=tt.float64, device=device),
                             persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        T = _sequence_length(type(self).__name__, x, self.batch_first, self.d_model)
        _check_length(type(self).__name__, T, offset, self.max_len)
        pe = self.pe[offset : offset + T].to(dtype=x.dtype)  # (T, C)
        if x.ndim == 3 and not self.batch_first:
            pe = pe.unsqueeze(1)  # (T, 1, C)
        return self.dropout(x + pe)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(Module):
    """x + P[offset : offset+T] with P a learned (max_len, d_model) table (GPT-2, BERT, ViT).

    ``weight`` starts as N(0, 0.02²). x is (B, T, d_model), or (T, B, d_model) with batch_first=False,
    or one unbatched sequence (T, d_model).
    """

    def __init__(self, max_len: int, d_model: int, batch_first: bool = True, device=None, dtype=None):
        super().__init__()
        self.max_len, self.d_model, self.batch_first = max_len, d_model, batch_first
        self.weight = Parameter(tt.randn(max_len, d_model, dtype=dtype or tt.float32, device=device) * 0.02)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        T = _sequence_length(type(self).__name__, x, self.batch_first, self.d_model)
        _check_length(type(self).__name__, T, offset, self.max_len)
        pos = self.weight[offset : offset + T]  # (T, C)
        return x + (pos.unsqueeze(1) if x.ndim == 3 and not self.batch_first else pos)

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.d_model}"


class RotaryEmbedding(Module):
    """Rotary position embedding for queries and keys of shape (..., T, dim), dim even.

    The pair (x_2i, x_2i+1) of the token at position m = offset + t is rotated by m·θ_i:

        x'_2i   = x_2i cos(mθ_i) - x_2i+1 sin(mθ_i)
        x'_2i+1 = x_2i sin(mθ_i) + x_2i+1 cos(mθ_i),     θ_i = base^(-2i/dim)

    Pass it to MultiheadAttention(rotary=...) to rotate every head's q and k; with a KV cache the
    attention passes ``offset`` = the number of cached tokens. The cos/sin tables are non-persistent
    float64 buffers of shape (max_len, dim/2), cast to the input's dtype.
    """

    def __init__(self, dim: int, max_len: int = 4096, base: float = 10000.0, device=None):
        super().__init__()
        if dim % 2:
            raise ValueError(f"RotaryEmbedding: dim must be even (features turn in pairs), got {dim}")
        self.dim, self.base = dim, base
        pos = tt.arange(max_len, dtype=tt.float64, device=device).reshape(max_len, 1)  # (max_len, 1)
        self._set_angles(pos * self._frequencies(dim, base, device))  # (max_len, dim/2)

    @staticmethod
    def _frequencies(dim: int, base: float, device) -> Tensor:
        """θ_i = base^(-2i/dim) for i = 0 .. dim/2 - 1."""
        return base ** (-tt.arange(0, dim, 2, dtype=tt.float64, device=device) / dim)

    def _set_angles(self, angle: Tensor) -> None:
        self.max_len = angle.shape[0]
        self.register_buffer("cos", angle.cos(), persistent=False)  # (max_len, dim/2)
        self.register_buffer("sin", angle.sin(), persistent=False)  # (max_len, dim/2)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        *lead, T, D = x.shape
        if D != self.dim:
            raise ValueError(f"{type(self).__name__}: expected {self.dim} features (last dim), got {x.shape}")
        _check_length(type(self).__name__, T, offset, self.max_len)
        cos = self.cos[offset : offset + T].to(dtype=x.dtype)  # (T, D/2)
        sin = self.sin[offset : offset + T].to(dtype=x.dtype)  # (T, D/2)
        return Rotate.apply(x, cos, sin)  # (..., T, D)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}, base={self.base}"


class Rotate(Function):
    """Feature pairs turned by angles: (x_2i, x_2i+1) -> (x_2i c - x_2i+1 s, x_2i s + x_2i+1 c) for x
    (..., D) and c, s = cos, sin (..., D/2), broadcast (the backend's ``rotary`` kernel).

    y is linear in x and in (c, s) together, so each derivative is a rotation again:
        ∂L/∂x = the gradient turned back, Rotate(g, c, -s)   (a rotation's inverse is its transpose)
        ∂L/∂c = Σ g_2i x_2i + g_2i+1 x_2i+1,   ∂L/∂s = Σ g_2i+1 x_2i - g_2i x_2i+1
        tangent: Rotate(ẋ, c, s) + Rotate(x, ċ, ṡ)
    """

    def forward(self, x, cos, sin):
        self.x_shape, self.table_shapes = tuple(x.shape), (tuple(cos.shape), tuple(sin.shape))
        need_tables = self.needs_input_grad[1] or self.needs_input_grad[2]
        self.save_for_backward(x if need_tables else None, cos, sin)
        return self.backend.rotary(x, cos, sin)

    def backward(self, g):
        x, cos, sin = self.saved_tensors
        need_x, need_cos, need_sin = self.needs_input_grad
        gx = sum_to(Rotate.apply(g, cos, -sin), self.x_shape) if need_x else None
        gc = gs = None
        if need_cos or need_sin:
            x1, x2, g1, g2 = x[..., 0::2], x[..., 1::2], g[..., 0::2], g[..., 1::2]
            gc = sum_to(g1 * x1 + g2 * x2, self.table_shapes[0]) if need_cos else None
            gs = sum_to(g2 * x1 - g1 * x2, self.table_shapes[1]) if need_sin else None
        return gx, gc, gs

    def jvp(self, tx, tcos, tsin):
        x, cos, sin = self.primals
        turned_tables = None
        if tcos is not None or tsin is not None:
            turned_tables = Rotate.apply(x, tt.zeros_like(cos) if tcos is None else tcos,
                                         tt.zeros_like(sin) if tsin is None else tsin)
        return add_tangents(None if tx is None else Rotate.apply(tx, cos, sin), turned_tables)


class RotaryEmbedding2D(RotaryEmbedding):
    """RoPE on a grid of patches (row-major), for ViT: of the dim/2 feature pairs, the first dim/4 turn by
    row·θ_i and the last dim/4 by column·θ_i (θ_i = base^(-4i/dim)). ``num_prefix_tokens`` leading tokens
    (e.g. the class token) are not rotated. Tokens: (..., num_prefix_tokens + H*W, dim), dim % 4 == 0.
    """

    def __init__(self, dim: int, grid_size: int | tuple[int, int], num_prefix_tokens: int = 0,
                 base: float = 10000.0, device=None):
        Module.__init__(self)
        if dim % 4:
            raise ValueError(f"RotaryEmbedding2D: dim must be divisible by 4 (rows and columns), got {dim}")
        H, W = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        self.dim, self.base, self.grid_size, self.num_prefix_tokens = dim, base, (H, W), num_prefix_tokens
        theta = self._frequencies(dim // 2, base, device)  # (dim/4,)
        row = tt.arange(H, dtype=tt.float64, device=device).reshape(H, 1).expand(H, W)  # (H, W)
        col = tt.arange(W, dtype=tt.float64, device=device).reshape(1, W).expand(H, W)  # (H, W)
        row, col = row.reshape(H * W, 1), col.reshape(H * W, 1)  # (H*W, 1) each, row-major
        angle = tt.cat([row * theta, col * theta], dim=-1)  # (H*W, dim/2)
        prefix = tt.zeros(num_prefix_tokens, dim // 2, dtype=tt.float64, device=device)  # angle 0: unrotated
        self._set_angles(tt.cat([prefix, angle], dim=0))  # (prefix + H*W, dim/2)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        if offset != 0 or x.shape[-2] != self.max_len:
            raise ValueError(
                f"{type(self).__name__}: expected {self.num_prefix_tokens} prefix tokens + "
                f"{self.grid_size[0]}x{self.grid_size[1]} patches = {self.max_len} tokens at offset 0, got "
                f"{x.shape[-2]} tokens (shape {x.shape}) at offset {offset}"
            )
        return super().forward(x, 0)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, grid_size={self.grid_size}, num_prefix_tokens={self.num_prefix_tokens}"
