"""Convolution, pooling and resampling: conv1d/2d, max_pool1d/2d, avg_pool1d/2d, adaptive_avg_pool1d/2d,
interpolate, pixel_shuffle/unshuffle (PyTorch's arguments and shapes).

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
# A 1-D pooling is the 2-D one over a height-1 image: (B, C, L) -> (B, C, 1, L), a 1 x k window.

def _pool_args(op: str, n: int, kernel_size, stride, padding, dilation) -> tuple:
    """kernel, stride, padding and dilation of an n-D pooling as n-tuples (stride defaults to the kernel),
    checked by PyTorch's rules."""
    kernel = _ntuple(op, "kernel_size", kernel_size, n, 1)
    stride = kernel if stride is None or stride == () or stride == [] else _ntuple(op, "stride", stride, n, 1)
    padding = _ntuple(op, "padding", padding, n, 0)
    dilation = _ntuple(op, "dilation", dilation, n, 1)
    if any(p > k // 2 for p, k in zip(padding, kernel)):  # PyTorch's rule (also with dilation)
        raise ValueError(f"{op}: padding {padding} must be at most half of the kernel size {kernel}, so "
                         f"that every window holds input")
    return kernel, stride, padding, dilation


def _pool_args_2d(op: str, n: int, kernel_size, stride, padding, dilation) -> tuple:
    """_pool_args as a 2-D pooling's: a 1-D one's with a height-1 window (kernel 1, stride 1, no padding)."""
    kernel, stride, padding, dilation = _pool_args(op, n, kernel_size, stride, padding, dilation)
    if n == 1:
        kernel, stride, padding, dilation = (1, *kernel), (1, *stride), (0, *padding), (1, *dilation)
    return kernel, stride, padding, dilation


def _pool_windows(op: str, n: int, input: Tensor, kernel, stride, padding, dilation, ceil_mode: bool, value):
    """The windows of a pooling, (B, C, kh·kw, OH, OW) (OH = 1 for n = 1), with the padding (and
    ceil_mode's extra room at the far edges) filled with ``value``; also (OH, OW) and the input's (H, W)."""
    x, _ = _spatial(op, input, n)
    if n == 1:
        x = x.unsqueeze(2)  # (B, C, 1, L)
    B, C, H, W = x.shape
    (ph, pw) = padding
    OH, OW = _out_size(op, (H + 2 * ph, W + 2 * pw), kernel, stride, dilation, ceil_mode, padding)
    if OH <= 0 or OW <= 0:
        raise RuntimeError(
            f"{op}: input of shape {input.shape} is too small for kernel_size={kernel[-n:]}, "
            f"stride={stride[-n:]}, padding={padding[-n:]}, dilation={dilation[-n:]}: the output would be "
            f"{' x '.join(map(str, (OH, OW)[-n:]))}; use a smaller kernel or pad the input"
        )
    # the far side is padded as far as the last window reads (with ceil_mode, maybe past the padding)
    far_h = max((OH - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1 - (H + ph), 0)
    far_w = max((OW - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1 - (W + pw), 0)
    if ph or pw or far_h or far_w:
        x = tt.pad(x, (pw, far_w, ph, far_h), value=value)  # (B, C, H + ph + far_h, W + pw + far_w)
    return _windows(x, kernel, stride, dilation, (OH, OW)), (OH, OW), (H, W)


def _max_pool(op: str, n: int, input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
              ceil_mode: bool = False, return_indices: bool = False):
    """max_pool1d (n = 1) and max_pool2d (n = 2)."""
    kernel, stride, padding, dilation = _pool_args_2d(op, n, kernel_size, stride, padding, dilation)
    if input.dtype.name == "bool":
        raise TypeError(f"{op}: bool input of shape {input.shape} has no max pooling; convert it first "
                        f"(x.float())")
    lowest = -math.inf if input.dtype.is_floating_point else int(np.iinfo(input.dtype.name).min)
    cols, (OH, OW), (H, W) = _pool_windows(op, n, input, kernel, stride, padding, dilation, ceil_mode, lowest)
    out_shape = (*input.shape[:-n], *(OH, OW)[-n:])  # the input's batch and channel dims kept
    y, k = cols.max(dim=2)  # (B, C, OH, OW); the gradient goes to the first maximum, as PyTorch's
    if not return_indices:
        return y.reshape(out_shape)
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
    return y.reshape(out_shape), idx.reshape(out_shape)


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """y[b, c, l] = max over the window x[b, c, l·stride + k·dilation - padding] (padding is -inf); input
    (B, C, L) or (C, L); stride defaults to kernel_size. With return_indices, also each maximum's index
    into L (the first maximum, as PyTorch)."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """y[b, c, oh, ow] = max over the window x[b, c, oh·sh + i·dh - ph, ow·sw + j·dw - pw] (padding is
    -inf); input (B, C, H, W) or (C, H, W); stride defaults to kernel_size. With return_indices, also
    each maximum's index into the flattened H·W input (the first maximum, as PyTorch)."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_pool(op: str, n: int, input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
              count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """avg_pool1d (n = 1) and avg_pool2d (n = 2)."""
    kernel, stride, padding, _ = _pool_args_2d(op, n, kernel_size, stride, padding, 1)
    if not input.dtype.is_floating_point:
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype} of shape {input.shape}; "
                        f"convert it with .float()")
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError(f"{op}: divisor_override must not be zero")
    cols, (OH, OW), (H, W) = _pool_windows(op, n, input, kernel, stride, padding, (1, 1), ceil_mode, 0.0)
    sums = cols.sum(dim=2)  # (B, C, OH, OW)
    if divisor_override is not None:
        y = sums / float(divisor_override)
    else:
        div = _avg_divisor((H, W), kernel, stride, padding, (OH, OW), count_include_pad)  # (OH, OW)
        y = sums / tt.tensor(div, dtype=input.dtype, device=input.device)
    return y.reshape(*input.shape[:-n], *(OH, OW)[-n:])


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
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """y = Σ_window x / window size (the zero padding counted when count_include_pad); input (B, C, L) or
    (C, L); stride defaults to kernel_size."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad)


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


# ---- interpolation ----------------------------------------------------------------------------
# Each spatial dim is resampled on its own (H, then W), by index_select with source indices computed on
# the host: nearest reads one source per output, linear blends two, y = (1 - λ)·x[i0] + λ·x[i1]. The
# gradients are index_select's (a scatter-add), so they come free. The coordinate map is PyTorch's:
#
#     scale = (in - 1)/(out - 1) with align_corners, else 1/scale_factor where given, else in/out
#     nearest: src = ⌊scale·o⌋   nearest-exact: ⌊scale·(o + ½)⌋   (in float32, as PyTorch's kernels)
#     linear:  src = scale·o with align_corners, else max(scale·(o + ½) - ½, 0)

_INTERPOLATE_DIMS = {"nearest": (3, 4), "nearest-exact": (3, 4), "linear": (3,), "bilinear": (4,)}
_NOT_BUILT = {  # PyTorch's modes not built here, and what to use instead
    "bicubic": "mode='bilinear'", "trilinear": "mode='bilinear' on each (H, W) slice",
    "area": "F.adaptive_avg_pool1d/2d (what PyTorch's 'area' is)", "lanczos": "mode='bilinear'",
}


def _interpolate_sizes(op: str, input: Tensor, size, scale_factor, recompute_scale_factor) -> tuple:
    """The output size of each spatial dim, and the scale factor its coordinate map uses (None: in/out)."""
    n, spatial = input.ndim - 2, tuple(input.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size or scale_factor, got size={size!r} and "
                         f"scale_factor={scale_factor!r}")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * n
        if len(sizes) != n:
            raise ValueError(f"{op}: size {size!r} must give {n} sizes, one per spatial dim of the input of "
                             f"shape {input.shape}")
        if not all(hasattr(o, "__index__") and not isinstance(o, bool) for o in sizes):
            raise TypeError(f"{op}: size must be an int or a tuple of {n} ints, got {size!r}")
        out, scales = tuple(int(o) for o in sizes), (None,) * n
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * n
        if len(scales) != n:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} must give {n} factors, one per spatial "
                             f"dim of the input of shape {input.shape}")
        out = tuple(math.floor(i * float(s)) for i, s in zip(spatial, scales))
        scales = (None,) * n if recompute_scale_factor else tuple(float(s) for s in scales)
    if min(spatial) <= 0 or min(out) <= 0:
        raise RuntimeError(f"{op}: input and output sizes must be > 0, got input of shape {input.shape} and "
                           f"output sizes {out}")
    return out, scales


def _nearest_source(i: int, o: int, scale: float | None, exact: bool) -> np.ndarray:
    """The input index each of o outputs reads: PyTorch's nearest_idx ⌊scale·o⌋ (with its out = 2·in
    shortcut; its out = in one is the caller's copy) or, for nearest-exact, ⌊scale·(o + ½)⌋; in float32,
    as PyTorch's kernels."""
    if not exact and o == 2 * i:
        return np.arange(o) // 2
    s = np.float32(1.0 / scale) if scale else np.float32(i) / np.float32(o)
    pos = np.arange(o, dtype=np.float32) + (np.float32(0.5) if exact else np.float32(0))
    return np.minimum(np.floor(pos * s).astype(np.int64), i - 1)


def _linear_source(i: int, o: int, scale: float | None, align_corners: bool) -> tuple:
    """The two input indices each of o outputs blends, and the weight λ of the second (PyTorch's)."""
    if align_corners:
        s = (i - 1) / (o - 1) if o > 1 else 0.0
        src = s * np.arange(o)
    else:
        s = 1.0 / scale if scale else i / o
        src = np.maximum(s * (np.arange(o) + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), i - 1)
    return i0, np.minimum(i0 + 1, i - 1), np.clip(src - i0, 0.0, 1.0)


def _interpolate(op: str, input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                 antialias: bool = False) -> Tensor:
    """F.interpolate, with ``op`` naming the caller in errors (nn.Upsample passes its class name)."""
    if mode in _NOT_BUILT or antialias:
        what = f"antialias=True (mode={mode!r})" if antialias else f"mode={mode!r}"
        raise NotImplementedError(f"{op}: {what} is not built in tinytensor; use "
                                  f"{_NOT_BUILT.get(mode, 'antialias=False')} instead")
    if mode not in _INTERPOLATE_DIMS:
        raise NotImplementedError(f"{op}: unknown mode {mode!r}; the modes are "
                                  f"{', '.join(map(repr, _INTERPOLATE_DIMS))}")
    if input.ndim not in _INTERPOLATE_DIMS[mode]:
        wanted = " or ".join({3: "3-D (B, C, L)", 4: "4-D (B, C, H, W)"}[d] for d in _INTERPOLATE_DIMS[mode])
        raise NotImplementedError(f"{op}: mode={mode!r} needs a {wanted} input, got shape {input.shape}")
    nearest = mode.startswith("nearest")
    if nearest and align_corners is not None:
        raise ValueError(f"{op}: align_corners can only be set with the interpolating modes 'linear' and "
                         f"'bilinear', got align_corners={align_corners} with mode={mode!r}")
    if not nearest and not input.dtype.is_floating_point:
        raise TypeError(f"{op}: mode={mode!r} needs a floating-point input, got {input.dtype} of shape "
                        f"{input.shape}; convert it with .float()")
    out, scales = _interpolate_sizes(op, input, size, scale_factor, recompute_scale_factor)
    x = input
    for d, i, o, scale in zip(range(2, input.ndim), input.shape[2:], out, scales):
        if o == i and mode != "nearest-exact":  # PyTorch's shortcut: the same size is a copy
            continue
        if nearest:
            src = _nearest_source(i, o, scale, exact=mode == "nearest-exact")
            x = x.index_select(d, tt.tensor(src, device=x.device))  # (B, C, ..., o, ...)
            continue
        i0, i1, lam = _linear_source(i, o, scale, bool(align_corners))
        lam = lam.reshape(o, *(1,) * (input.ndim - 1 - d))  # (o, 1): broadcast along the dims after d
        w0, w1 = (tt.tensor(w, dtype=x.dtype, device=x.device) for w in (1.0 - lam, lam))
        x0 = x.index_select(d, tt.tensor(i0, device=x.device))  # (B, C, ..., o, ...)
        x1 = x.index_select(d, tt.tensor(i1, device=x.device))
        x = w0 * x0 + w1 * x1
    return input.clone() if x is input else x  # a new tensor, as PyTorch's, even where no dim changed


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resample input (B, C, L) or (B, C, H, W) to ``size``, or ⌊in·scale_factor⌋ per spatial dim; modes
    'nearest', 'nearest-exact', 'linear' (3-D) and 'bilinear' (4-D), PyTorch's coordinates:
    y[o] = (1 - λ)·x[⌊src⌋] + λ·x[⌊src⌋ + 1], src = o·(in - 1)/(out - 1) with align_corners, else
    (o + ½)/scale_factor - ½ (in/out for 1/scale_factor with recompute_scale_factor or a size).

    Examples:
        >>> F.interpolate(tt.arange(4.0).reshape(1, 1, 2, 2), scale_factor=2).shape
        (1, 1, 4, 4)
    """
    return _interpolate("interpolate", input, size, scale_factor, mode, align_corners, recompute_scale_factor,
                        antialias)


# ---- pixel shuffle ----------------------------------------------------------------------------

def _shuffle_factor(op: str, name: str, factor) -> int:
    if isinstance(factor, bool) or not hasattr(factor, "__index__") or factor < 1:
        raise RuntimeError(f"{op}: {name} must be a positive int, got {factor!r}")
    return operator.index(factor)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C·r², H, W) -> (*, C, H·r, W·r): y[..., c, h·r + i, w·r + j] = x[..., c·r² + i·r + j, h, w]
    (r = upscale_factor); the inverse of pixel_unshuffle."""
    op = "pixel_shuffle"
    r = _shuffle_factor(op, "upscale_factor", upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"{op}: expected an input of at least 3 dims (*, C·r², H, W), got shape "
                           f"{input.shape}")
    *lead, Cr2, H, W = input.shape
    if Cr2 % (r * r):
        raise RuntimeError(f"{op}: the channel dim (size {Cr2}) of the input of shape {input.shape} must be "
                           f"divisible by upscale_factor² = {r * r}")
    k, C = len(lead), Cr2 // (r * r)
    x = input.reshape(*lead, C, r, r, H, W)  # (*, C, r, r, H, W)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)  # (*, C, H, r, W, r)
    return x.reshape(*lead, C, H * r, W * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H·r, W·r) -> (*, C·r², H, W): y[..., c·r² + i·r + j, h, w] = x[..., c, h·r + i, w·r + j]
    (r = downscale_factor); the inverse of pixel_shuffle."""
    op = "pixel_unshuffle"
    r = _shuffle_factor(op, "downscale_factor", downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(f"{op}: expected an input of at least 3 dims (*, C, H·r, W·r), got shape "
                           f"{input.shape}")
    *lead, C, Hr, Wr = input.shape
    if Hr % r or Wr % r:
        raise RuntimeError(f"{op}: the height and width ({Hr}, {Wr}) of the input of shape {input.shape} "
                           f"must be divisible by downscale_factor = {r}")
    k, H, W = len(lead), Hr // r, Wr // r
    x = input.reshape(*lead, C, H, r, W, r)  # (*, C, H, r, W, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)  # (*, C, r, r, H, W)
    return x.reshape(*lead, C * r * r, H, W)


__all__ = ["conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "interpolate", "pixel_shuffle", "pixel_unshuffle"]
