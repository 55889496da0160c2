"""Convolution and pooling: conv1d, conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool1d/2d (PyTorch's
arguments and shapes).

Everything is composed of differentiable tinytensor ops, so gradients of every order come free and
every backend runs it. The one idea is ``_windows``: pad the image, then for every kernel offset
(i, j) take the strided slice that offset reads in every window, and stack them:

    x (B, C, H, W) -> pad -> kh·kw strided slices, each (B, C, OH, OW) -> stack (B, C, kh·kw, OH, OW)

A convolution is then one matmul of the weight (O, C·kh·kw) with those columns; a pooling is a max
or a mean over the kh·kw axis. Output sizes follow PyTorch (H_out written for one spatial dim):

    OH = ⌊(H + pad_top + pad_bottom - dilation·(kh - 1) - 1) / stride⌋ + 1

A convolution whose kernel tiles the image (kernel = stride, no padding, dilation 1, groups 1: ViT's
patch embedding) skips the windows: the image is cut into patches by a reshape, one Linear projects
them.
"""
from __future__ import annotations

import math
import operator

import numpy as np

import tinytensor as tt
from tinytensor import Tensor

from .basic import _same_device, _same_float_dtype, linear


def _ntuple(op: str, name: str, value, n: int, minimum: int) -> tuple:
    """An int or a length-n sequence of ints, as a tuple, each >= minimum (PyTorch's _pair/_single)."""
    try:
        items = (value,) * n if hasattr(value, "__index__") else tuple(value)
        if len(items) != n or any(isinstance(v, bool) for v in items):
            raise TypeError
        items = tuple(operator.index(v) for v in items)  # Python or NumPy ints
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if any(v < minimum for v in items):
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return items


def _spatial(op: str, input: Tensor, n: int) -> tuple[Tensor, bool]:
    """input (C, *spatial) or (B, C, *spatial) as batched, and whether it was unbatched."""
    if input.ndim not in (n + 1, n + 2):
        dims = {1: "L", 2: "H, W"}[n]
        raise RuntimeError(
            f"{op}: expected a {n + 1}-D (C, {dims}) unbatched or {n + 2}-D (B, C, {dims}) batched input, "
            f"got shape {input.shape}"
        )
    return (input.unsqueeze(0), True) if input.ndim == n + 1 else (input, False)


def _out_size(op: str, size: tuple, kernel: tuple, stride: tuple, dilation: tuple, ceil_mode: bool = False,
              padding: tuple = (0, 0)) -> tuple:
    """PyTorch's output size for padded sizes ``size``: ⌊(H - d·(k-1) - 1)/s⌋ + 1 (⌈⌉ with ceil_mode,
    where the last window must still start inside the image or its left padding)."""
    out = []
    for h, k, s, d, p in zip(size, kernel, stride, dilation, padding):
        span = h - d * (k - 1) - 1  # the room the window start has
        o = (-(-span // s) if ceil_mode else span // s) + 1 if span >= 0 else 0
        if ceil_mode and o > 0 and (o - 1) * s >= h - p:
            o -= 1
        out.append(o)
    return tuple(out)


def _windows(x: Tensor, kernel: tuple, stride: tuple, dilation: tuple, out: tuple) -> Tensor:
    """Every window of x (B, C, H, W), offset by offset: (B, C, kh·kw, OH, OW).

    Window (oh, ow) reads x[:, :, oh·sh + i·dh, ow·sw + j·dw] at kernel offset (i, j); for one offset
    those positions over every window form one strided slice, so kh·kw slices gather all windows.
    """
    (kh, kw), (sh, sw), (dh, dw), (OH, OW) = kernel, stride, dilation, out
    views = [
        x[:, :, i * dh : i * dh + (OH - 1) * sh + 1 : sh, j * dw : j * dw + (OW - 1) * sw + 1 : sw]
        for i in range(kh) for j in range(kw)
    ]  # kh·kw views, each (B, C, OH, OW)
    return tt.stack(views, dim=2)  # (B, C, kh·kw, OH, OW), offsets row-major (as PyTorch scans)


# ---- convolution ------------------------------------------------------------------------------

def _conv_padding(op: str, padding, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """padding (int, tuple, 'valid' or 'same') as ((top, bottom), (left, right), ...) per spatial dim.
    'same' puts the odd element on the far side, as PyTorch."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding != "same":
            raise ValueError(f"{op}: invalid padding string {padding!r}, should be one of 'same', 'valid'")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                             f"(stride={stride}); use stride=1, or give the padding as numbers")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    return tuple((p, p) for p in _ntuple(op, "padding", padding, n, 0))


def _conv(op: str, n: int, input: Tensor, weight: Tensor, bias: Tensor | None, stride, padding, dilation,
          groups: int) -> Tensor:
    """conv1d (n = 1, run as a conv2d of height 1) and conv2d (n = 2): checks, then _conv2d."""
    _same_device(op, input, weight, bias)
    _same_float_dtype(op, input, weight, bias)
    if weight.ndim != n + 2:
        raise RuntimeError(f"{op}: weight must be {n + 2}-D (out_channels, in_channels/groups, *kernel), "
                           f"got shape {weight.shape}")
    stride = _ntuple(op, "stride", stride, n, 1)
    dilation = _ntuple(op, "dilation", dilation, n, 1)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    pads = _conv_padding(op, padding, tuple(weight.shape[2:]), stride, dilation)
    x, unbatched = _spatial(op, input, n)
    O, Cg = weight.shape[:2]
    if x.shape[1] != Cg * groups:
        raise RuntimeError(
            f"{op}: weight of shape {weight.shape} with groups={groups} expects input with {Cg * groups} "
            f"channels (dim {0 if unbatched else 1}), got input of shape {input.shape} ({x.shape[1]} "
            f"channels); fix in_channels or the input"
        )
    if O % groups:
        raise RuntimeError(f"{op}: out_channels {O} (weight shape {weight.shape}) is not divisible by "
                           f"groups={groups}")
    if bias is not None and tuple(bias.shape) != (O,):
        raise RuntimeError(f"{op}: bias has shape {bias.shape}, expected ({O},) (out_channels)")
    if n == 1:  # (B, C, L) as (B, C, 1, L)
        y = _conv2d(op, x.unsqueeze(2), weight.unsqueeze(2), bias, (1,) + stride, ((0, 0),) + pads,
                    (1,) + dilation, groups).squeeze(2)  # (B, O, OL)
    else:
        y = _conv2d(op, x, weight, bias, stride, pads, dilation, groups)  # (B, O, OH, OW)
    return y.squeeze(0) if unbatched else y


def _conv2d(op: str, x: Tensor, weight: Tensor, bias, stride: tuple, pads: tuple, dilation: tuple,
            groups: int) -> Tensor:
    """y[b, o] = Σ_{c, i, j} w[o, c, i, j] · x_padded[b, g·Cg + c, oh·sh + i·dh, ow·sw + j·dw] + bias[o]."""
    B, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    (pt, pb), (pl, pr) = pads
    Hp, Wp = H + pt + pb, W + pl + pr
    if Hp < dilation[0] * (kh - 1) + 1 or Wp < dilation[1] * (kw - 1) + 1:
        raise RuntimeError(
            f"{op}: the padded input is {Hp} x {Wp} per channel (input of shape {tuple(x.shape)}, padding "
            f"{pads}) but the kernel spans {dilation[0] * (kh - 1) + 1} x {dilation[1] * (kw - 1) + 1} "
            f"(weight {weight.shape}, dilation {dilation}); the kernel can't be larger than the input: "
            f"pad more, or use a smaller kernel or dilation"
        )
    OH, OW = _out_size(op, (Hp, Wp), (kh, kw), stride, dilation)
    if (kh, kw) == stride and pads == ((0, 0), (0, 0)) and dilation == (1, 1) and groups == 1:
        return _patchify_conv(x, weight, bias, OH, OW)
    if any(p for pair in pads for p in pair):
        x = tt.pad(x, (pl, pr, pt, pb))  # (B, C, Hp, Wp)
    cols = _windows(x, (kh, kw), stride, dilation, (OH, OW))  # (B, C, kh·kw, OH, OW)
    g, K = groups, Cg * kh * kw
    cols = cols.reshape(B, g, K, OH * OW)  # (B, g, Cg·kh·kw, L): channel-major, as the weight's rows
    w = weight.reshape(g, O // g, K)  # (g, O/g, Cg·kh·kw)
    y = (w @ cols).reshape(B, O, OH, OW)  # (B, g, O/g, L) -> (B, O, OH, OW)
    return y if bias is None else y + bias.reshape(O, 1, 1)


def _patchify_conv(x: Tensor, weight: Tensor, bias, OH: int, OW: int) -> Tensor:
    """A convolution whose kernel tiles the image (stride = kernel): a reshape into patches and one
    Linear, no windows copied (rows and columns left over at the far edges are dropped, as PyTorch)."""
    B, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    if (H, W) != (OH * kh, OW * kw):
        x = x[:, :, : OH * kh, : OW * kw]  # (B, C, OH·kh, OW·kw)
    x = x.reshape(B, C, OH, kh, OW, kw)  # (B, C, OH, kh, OW, kw)
    x = x.permute(0, 2, 4, 1, 3, 5).reshape(B, OH * OW, C * kh * kw)  # (B, L, C·kh·kw): one row a patch
    y = linear(x, weight.reshape(O, C * kh * kw), bias)  # (B, L, O)
    return y.reshape(B, OH, OW, O).permute(0, 3, 1, 2)  # (B, O, OH, OW)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """y[b, o, l] = Σ_{c, k} w[o, c, k] · x[b, c, l·stride + k·dilation - pad] + bias[o]; input (B, C, L)
    or (C, L), weight (O, C/groups, K); padding an int, a 1-tuple, 'valid' or 'same'."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """y[b, o] = Σ_{c, i, j} w[o, c, i, j] · x[b, c, oh·sh + i·dh - pt, ow·sw + j·dw - pl] + bias[o];
    input (B, C, H, W) or (C, H, W), weight (O, C/groups, kh, kw); padding int, pair, 'valid', 'same'."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


# ---- pooling ----------------------------------------------------------------------------------

def _pool_args(op: str, kernel_size, stride, padding, dilation) -> tuple:
    kernel = _ntuple(op, "kernel_size", kernel_size, 2, 1)
    stride = kernel if stride is None or stride == () or stride == [] else _ntuple(op, "stride", stride, 2, 1)
    padding = _ntuple(op, "padding", padding, 2, 0)
    dilation = _ntuple(op, "dilation", dilation, 2, 1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):  # PyTorch's rule (also with dilation)
        raise ValueError(f"{op}: padding {padding} must be at most half of the kernel size {kernel}, so "
                         f"that every window holds input")
    return kernel, stride, padding, dilation


def _pool_windows(op: str, input: Tensor, kernel, stride, padding, dilation, ceil_mode: bool, value):
    """The windows of a pooling, (B, C, kh·kw, OH, OW), with the padding (and ceil_mode's extra room at
    the far edges) filled with ``value``; also the output size and whether the input was unbatched."""
    x, unbatched = _spatial(op, input, 2)
    B, C, H, W = x.shape
    (ph, pw) = padding
    OH, OW = _out_size(op, (H + 2 * ph, W + 2 * pw), kernel, stride, dilation, ceil_mode, padding)
    if OH <= 0 or OW <= 0:
        raise RuntimeError(
            f"{op}: input of shape {input.shape} is too small for kernel_size={kernel}, stride={stride}, "
            f"padding={padding}, dilation={dilation}: the output would be {OH} x {OW}; use a smaller "
            f"kernel or pad the input"
        )
    # the far side is padded as far as the last window reads (with ceil_mode, maybe past the padding)
    far_h = max((OH - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - (H + ph), 0)
    far_w = max((OW - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - (W + pw), 0)
    if ph or pw or far_h or far_w:
        x = tt.pad(x, (pw, far_w, ph, far_h), value=value)  # (B, C, H + ph + far_h, W + pw + far_w)
    return _windows(x, kernel, stride, dilation, (OH, OW)), (OH, OW), unbatched, (H, W)


def _max_pool2d(op: str, input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                ceil_mode: bool = False, return_indices: bool = False):
    kernel, stride, padding, dilation = _pool_args(op, kernel_size, stride, padding, dilation)
    if input.dtype.name == "bool":
        raise TypeError(f"{op}: bool input of shape {input.shape} has no max pooling; convert it first "
                        f"(x.float())")
    lowest = -math.inf if input.dtype.is_floating_point else int(np.iinfo(input.dtype.name).min)
    cols, (OH, OW), unbatched, (H, W) = _pool_windows(op, input, kernel, stride, padding, dilation,
                                                      ceil_mode, lowest)
    y, k = cols.max(dim=2)  # (B, C, OH, OW); the gradient goes to the first maximum, as PyTorch's
    if unbatched:
        y = y.squeeze(0)
    if not return_indices:
        return y
    # the maximum's position in the flattened (H, W) input: (row, col) from the kernel offset k
    backend = input.backend
    xp = backend.xp
    oh = xp.reshape(backend.arange(OH), (OH, 1))  # (OH, 1)
    ow = xp.reshape(backend.arange(OW), (1, OW))  # (1, OW)
    k = k.array
    kw = kernel[1]
    row = oh * stride[0] - padding[0] + (k // kw) * dilation[0]  # (B, C, OH, OW)
    col = ow * stride[1] - padding[1] + (k % kw) * dilation[1]
    idx = Tensor(backend.astype(row * W + col, tt.int64), backend)
    return y, (idx.squeeze(0) if unbatched else idx)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """y[b, c, oh, ow] = max over the window x[b, c, oh·sh + i·dh - ph, ow·sw + j·dw - pw] (padding is
    -inf); input (B, C, H, W) or (C, H, W); stride defaults to kernel_size. With return_indices, also
    each maximum's index into the flattened H·W input (the first maximum, as PyTorch)."""
    return _max_pool2d("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)


def _avg_pool2d(op: str, input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    kernel, stride, padding, _ = _pool_args(op, kernel_size, stride, padding, 1)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype} of shape {input.shape}; "
                        f"convert it with .float()")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"{op}: divisor_override must not be zero")
    cols, (OH, OW), unbatched, (H, W) = _pool_windows(op, input, kernel, stride, padding, (1, 1),
                                                      ceil_mode, 0.0)
    sums = cols.sum(dim=2)  # (B, C, OH, OW)
    if divisor_override is not None:
        y = sums / float(divisor_override)
    else:
        div = _avg_divisor((H, W), kernel, stride, padding, (OH, OW), count_include_pad)  # (OH, OW)
        y = sums / tt.tensor(div, dtype=input.dtype, device=input.device)
    return y.squeeze(0) if unbatched else y


def _avg_divisor(size, kernel, stride, padding, out, count_include_pad: bool) -> np.ndarray:
    """PyTorch's divisor per window: its size inside the padded input (count_include_pad) or inside the
    input alone; windows cut by ceil_mode at the far edge count only their part that is there."""
    per_dim = []
    for n, k, s, p, o in zip(size, kernel, stride, padding, out):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)  # the part inside the padded input
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)  # the part inside the input
        per_dim.append((end - start).astype(np.float64))
    return np.outer(*per_dim)  # (OH, OW)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """y = Σ_window x / divisor, the divisor being the window's size (the zero padding counted when
    count_include_pad) or divisor_override; input (B, C, H, W) or (C, H, W)."""
    return _avg_pool2d("avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def _adaptive_avg_pool(op: str, n: int, input: Tensor, output_size) -> Tensor:
    """adaptive_avg_pool1d (n = 1) and 2d (n = 2): the last n dims pooled one at a time, by _bin_means."""
    x, unbatched = _spatial(op, input, n)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype} of shape {input.shape}; "
                        f"convert it with .float()")
    sizes = tuple(x.shape[2:])  # (L,) or (H, W)
    if isinstance(output_size, (tuple, list)) and len(output_size) == n:  # None keeps that dim's size
        output_size = tuple(size if o is None else o for o, size in zip(output_size, sizes))
    out = _ntuple(op, "output_size", output_size, n, 0)
    if 0 in sizes:
        raise RuntimeError(f"{op}: expected an input with non-zero spatial sizes, got shape {input.shape}")
    for d, o in zip(range(-n, 0), out):
        x = _bin_means(x, d, o)  # (B, C, ..., o, ...)
    return x.squeeze(0) if unbatched else x


def _bin_means(x: Tensor, dim: int, out: int) -> Tensor:
    """x's dim ``dim`` (-1 or -2) of size L pooled to ``out`` means, bin i spanning
    [⌊i·L/out⌋, ⌈(i+1)·L/out⌉) (PyTorch's bins; they overlap where out does not divide L).

    Where out divides L the bins tile it: a reshape and a mean. Otherwise a product with the (out, L)
    averaging matrix A, A[i, l] = 1/|bin i| for l in bin i, so that the gradient is Aᵀ·g."""
    L = x.shape[dim]
    if out == L:
        return x
    d = x.ndim + dim
    if out and L % out == 0:
        return x.reshape(*x.shape[:d], out, L // out, *x.shape[d + 1:]).mean(dim=d + 1)
    i = np.arange(out)[:, None]  # (out, 1)
    start, end = i * L // out, -(-(i + 1) * L // out)  # ⌊i·L/out⌋, ⌈(i+1)·L/out⌉
    pos = np.arange(L)  # (L,)
    inside = (pos >= start) & (pos < end)  # (out, L)
    A = tt.tensor(inside / (end - start), dtype=x.dtype, device=x.device)  # (out, L)
    return x @ A.mT if dim == -1 else A @ x  # (..., out) or (..., out, W)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """y[b, c, i] = mean of x[b, c, ⌊i·L/out⌋ : ⌈(i+1)·L/out⌉]: ``output_size`` means whatever L is;
    input (B, C, L) or (C, L)."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """The mean of each of OH × OW bins, bin (i, j) spanning rows ⌊i·H/OH⌋ : ⌈(i+1)·H/OH⌉ and the columns
    alike; output_size an int, or a pair whose None entries keep that size; input (B, C, H, W) or
    (C, H, W). ``output_size=1`` is global average pooling."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


__all__ = ["conv1d", "conv2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d"]
