"""F.interpolate / nn.Upsample (UpsamplingNearest2d, UpsamplingBilinear2d), F.pixel_shuffle / unshuffle
(PixelShuffle, PixelUnshuffle), the constant padding modules (ConstantPad1d/2d/3d, ZeroPad1d/2d/3d) and
F.dropout1d / dropout2d (Dropout1d, Dropout2d) against their PyTorch twins: outputs and input gradients
on every device in float64 and float32, PyTorch's coordinate maps over a sweep of sizes, float64
gradient checks, reprs, dropout's statistics and eval mode, and the errors for bad input."""
import warnings

import numpy as np
import pytest
from _nn_testing import close, x_of
from _torch import require_torch

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor.autograd import gradcheck, gradgradcheck

torch = require_torch()
TF = torch.nn.functional

DTYPES = ["float64", "float32"]


def compare(ours, theirs, x_np, dtype, device, seed=9):
    """ours(x) and theirs(tx) (functions or parameter-free modules) agree in the output and, through a
    random upstream gradient, in the input gradient."""
    x = tt.tensor(x_np.astype(dtype), device=device, requires_grad=True)
    tx = torch.tensor(x_np.astype(dtype), requires_grad=True)
    y, ty = ours(x), theirs(tx)
    close(y, ty, dtype, "output")
    g = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(dtype)
    y.backward(tt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    close(x.grad, tx.grad, dtype, "input grad")


# ---- F.interpolate / nn.Upsample vs torch --------------------------------------------------------

INTERPOLATE_CASES = [  # (kwargs, input shape)
    (dict(scale_factor=2), (2, 3, 5)),
    (dict(size=7), (2, 3, 5)),
    (dict(size=3), (2, 3, 8)),  # downsampling
    (dict(scale_factor=1.7), (2, 3, 6)),
    (dict(scale_factor=2, mode="nearest-exact"), (2, 3, 5)),
    (dict(size=4, mode="nearest-exact"), (2, 3, 7)),
    (dict(scale_factor=2.5, mode="linear"), (2, 3, 4)),
    (dict(size=9, mode="linear", align_corners=True), (2, 3, 4)),
    (dict(size=3, mode="linear"), (2, 3, 10)),
    (dict(scale_factor=1.3, mode="linear", recompute_scale_factor=True), (2, 3, 7)),
    (dict(size=1, mode="linear", align_corners=True), (1, 2, 5)),  # one output: the first input
    (dict(scale_factor=2), (2, 3, 4, 5)),
    (dict(size=(7, 3)), (2, 3, 4, 5)),
    (dict(scale_factor=(1.5, 0.7)), (2, 3, 4, 6)),
    (dict(scale_factor=(2.3, 1.6), mode="nearest-exact"), (2, 3, 4, 5)),
    (dict(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    (dict(scale_factor=2, mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    (dict(size=(6, 9), mode="bilinear"), (2, 3, 4, 5)),
    (dict(size=(3, 2), mode="bilinear", align_corners=True), (1, 2, 7, 6)),  # downsampling
    (dict(scale_factor=(1.7, 2.2), mode="bilinear"), (2, 3, 4, 5)),  # 1/scale_factor, not in/out
    (dict(scale_factor=(1.7, 2.2), mode="bilinear", recompute_scale_factor=True), (2, 3, 4, 5)),
    (dict(scale_factor=1.2, mode="bilinear"), (1, 2, 3, 4)),  # H stays 3: PyTorch copies that dim
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kwargs, shape", INTERPOLATE_CASES, ids=str)
def test_interpolate_matches_torch(device, dtype, kwargs, shape):
    compare(lambda x: F.interpolate(x, **kwargs), lambda x: TF.interpolate(x, **kwargs), x_of(*shape), dtype,
            device)
    ours, theirs = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    compare(ours, theirs, x_of(*shape, seed=1), dtype, device)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs", [
    ("UpsamplingNearest2d", dict(scale_factor=2)), ("UpsamplingNearest2d", dict(size=(5, 7))),
    ("UpsamplingBilinear2d", dict(scale_factor=2)), ("UpsamplingBilinear2d", dict(size=(3, 8))),
], ids=str)
def test_upsampling_2d_modules_match_torch(device, dtype, name, kwargs):
    ours, theirs = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    compare(ours, theirs, x_of(2, 3, 4, 5), dtype, device)
    assert repr(ours) == repr(theirs)
    assert (ours.mode, ours.align_corners) == (theirs.mode, theirs.align_corners)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact", "linear"])
def test_interpolate_coordinates_match_torch_over_many_sizes(mode):
    """The source index (nearest) or the two neighbours and weights (linear) agree with PyTorch's for every
    size pair and scale factor below, in both dtypes: read off by interpolating a ramp (as a 2-D image's
    W dim for nearest, PyTorch's 2-D index rule), and checked again through the gradients."""
    nearest = mode.startswith("nearest")
    for dtype in DTYPES:
        for size_in in range(1, 14):
            sizes = [dict(size=o) for o in range(1, 30)]
            for kw in sizes + [dict(scale_factor=s) for s in (0.6, 1.1, 1.3, 2.7)]:
                if size_in * kw.get("scale_factor", 1) < 1:
                    continue
                for align in ([None] if nearest else [False, True]):
                    args = dict(kw, mode=mode, align_corners=align)
                    shape = (1, 2, 2, size_in) if nearest else (1, 2, size_in)
                    ramp = np.broadcast_to(np.arange(size_in, dtype=dtype), shape).copy()
                    x, tx = tt.tensor(ramp, requires_grad=True), torch.tensor(ramp, requires_grad=True)
                    if nearest:
                        args["size"] = (2, kw["size"]) if "size" in kw else None
                        args["scale_factor"] = (1.0, kw["scale_factor"]) if "scale_factor" in kw else None
                    y, ty = F.interpolate(x, **args), TF.interpolate(tx, **args)
                    close(y, ty, dtype, f"{size_in} {args}")
                    g = np.arange(ty.numel(), dtype=dtype).reshape(ty.shape) % 7
                    y.backward(tt.tensor(g))
                    ty.backward(torch.tensor(g))
                    close(x.grad, tx.grad, dtype, f"grad {size_in} {args}")


@pytest.mark.parametrize("kwargs, shape", [
    (dict(scale_factor=2, mode="bilinear"), (1, 2, 3, 4)),
    (dict(size=(5, 2), mode="bilinear", align_corners=True), (1, 2, 3, 4)),
    (dict(size=7, mode="linear"), (2, 1, 4)),
    (dict(scale_factor=(1.5, 2), mode="nearest"), (1, 2, 3, 4)),
], ids=str)
def test_interpolate_gradcheck(device, kwargs, shape):
    x = tt.tensor(x_of(*shape), dtype=tt.float64, device=device, requires_grad=True)
    assert gradcheck(lambda x: F.interpolate(x, **kwargs), [x])
    assert gradgradcheck(lambda x: F.interpolate(x, **kwargs) ** 2, [x])


def test_interpolate_keeps_dtype_and_integer_nearest(device):
    ints = np.arange(12).reshape(1, 1, 3, 4)
    y = F.interpolate(tt.tensor(ints, device=device), scale_factor=2)
    assert y.dtype is tt.int64
    np.testing.assert_array_equal(y.numpy(), TF.interpolate(torch.tensor(ints, dtype=torch.float64),
                                                            scale_factor=2).numpy().astype(np.int64))


# ---- pixel_shuffle / pixel_unshuffle vs torch ------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("r, shape", [(2, (2, 8, 3, 4)), (3, (9, 2, 2)), (1, (2, 3, 4, 5)),
                                      (2, (2, 3, 4, 2, 3))], ids=str)
def test_pixel_shuffle_matches_torch(device, dtype, r, shape):
    compare(nn.PixelShuffle(r), torch.nn.PixelShuffle(r), x_of(*shape), dtype, device)
    assert repr(nn.PixelShuffle(r)) == repr(torch.nn.PixelShuffle(r))
    big = (*shape[:-3], shape[-3] // (r * r) or 1, shape[-2] * r, shape[-1] * r)
    compare(nn.PixelUnshuffle(r), torch.nn.PixelUnshuffle(r), x_of(*big), dtype, device)
    compare(lambda x: F.pixel_unshuffle(x, r), lambda x: TF.pixel_unshuffle(x, r), x_of(*big), dtype, device)
    assert repr(nn.PixelUnshuffle(r)) == repr(torch.nn.PixelUnshuffle(r))


def test_pixel_unshuffle_inverts_pixel_shuffle(device):
    x = tt.tensor(x_of(2, 12, 3, 5), device=device)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())
    assert gradcheck(lambda x: F.pixel_shuffle(x, 2), [tt.tensor(x_of(1, 4, 2, 3), device=device,
                                                                 requires_grad=True)])


# ---- constant padding modules vs torch -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, args, shape", [
    ("ZeroPad1d", (2,), (2, 3, 4)), ("ZeroPad1d", ((1, 3),), (3, 4)),
    ("ZeroPad2d", (1,), (2, 3, 4, 5)),
    ("ZeroPad2d", ((1, 0, 2, -1),), (2, 3, 4, 5)),  # a negative width crops
    ("ZeroPad3d", ((1, 0, 0, 2, 1, 1),), (1, 2, 3, 4, 5)),
    ("ConstantPad1d", (2, 3.5), (2, 3, 4)), ("ConstantPad2d", ((0, 1, 2, 3), -1.0), (3, 4, 5)),
    ("ConstantPad3d", (1, 2.0), (2, 3, 2, 3)),
], ids=str)
def test_constant_pad_modules_match_torch(device, dtype, name, args, shape):
    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    compare(ours, theirs, x_of(*shape), dtype, device)
    assert repr(ours) == repr(theirs)
    assert ours.padding == theirs.padding and ours.value == theirs.value


# ---- dropout1d / dropout2d -------------------------------------------------------------------------

@pytest.mark.parametrize("f, shape", [(F.dropout2d, (64, 32, 3, 4)), (F.dropout1d, (64, 32, 5)),
                                      (F.dropout1d, (2048, 5))], ids=str)
def test_channel_dropout_drops_whole_channels(device, f, shape):
    """Each channel is kept (and scaled by 1/(1-p)) or zeroed as a whole, about p of them zeroed; the
    gradient is the same mask; the draws follow tt.manual_seed."""
    p = 0.3
    x = tt.tensor(np.abs(x_of(*shape)) + 1.0, device=device, requires_grad=True)
    tt.manual_seed(0)
    y = f(x, p)
    tt.manual_seed(0)
    np.testing.assert_array_equal(f(x, p).numpy(), y.numpy())
    lead = 2 if len(shape) > 2 else 1
    kept = (y.numpy() != 0).reshape(*shape[:lead], -1)  # (B, C, spatial) or (C, L); x is never 0
    assert np.all(kept == kept[..., :1])  # one draw per channel
    np.testing.assert_allclose(y.numpy()[y.numpy() != 0], x.detach().numpy()[y.numpy() != 0] / (1 - p))
    dropped = 1 - kept[..., 0].mean()
    assert abs(dropped - p) < 4 * np.sqrt(p * (1 - p) / kept[..., 0].size)
    y.backward(tt.ones(*shape, device=device))
    np.testing.assert_allclose(x.grad.numpy(), (y.numpy() != 0) / (1 - p))


def test_channel_dropout_eval_and_edge_probabilities(device):
    x = tt.tensor(x_of(2, 3, 4, 5), device=device)
    for m in (nn.Dropout2d(0.5), nn.Dropout1d(0.5)):
        m.eval()
        inp = x if isinstance(m, nn.Dropout2d) else x[0]
        np.testing.assert_array_equal(m(inp).numpy(), inp.numpy())
    assert F.dropout2d(x, 0.5, training=False) is x and F.dropout2d(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout2d(x, 1.0).numpy(), np.zeros((2, 3, 4, 5)))
    m = nn.Dropout2d(0.25)
    assert m.training and m.p == 0.25 and repr(m) == "Dropout2d(p=0.25)"
    assert repr(nn.Dropout1d()) == "Dropout1d(p=0.5)"
    assert F.dropout1d(x[0, 0], 0.5).shape == (4, 5)  # unbatched (C, L)


def test_dropout2d_of_a_3d_input_is_torch_s_1d_reading():
    """PyTorch reads a 3-D input to dropout2d as (B, C, L) (and warns): each x[b, c, :] is one channel."""
    x = tt.ones(16, 8, 6)
    with pytest.warns(UserWarning, match="dropout2d: a 3-D input is read as \\(B, C, L\\)"):
        y = F.dropout2d(x, 0.5).numpy()
    assert np.all(y == y[..., :1]) and 0 < (y == 0).mean() < 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.nn.functional.dropout2d(torch.ones(16, 8, 6)).unique(dim=2).shape == (16, 8, 1)


def test_reached_as_torch_nn():
    import tinytensor.nn as tnn

    for name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle", "PixelUnshuffle",
                 "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
                 "Dropout1d", "Dropout2d"):
        assert getattr(tnn, name) is getattr(nn, name)
    for name in ("interpolate", "pixel_shuffle", "pixel_unshuffle", "dropout1d", "dropout2d"):
        assert getattr(tnn.functional, name) is getattr(F, name) and name in F.__all__


# ---- bad input -----------------------------------------------------------------------------------

def test_interpolate_errors():
    x3, x4 = tt.randn(2, 3, 5), tt.randn(2, 3, 4, 5)
    for mode, instead in [("bicubic", "mode='bilinear'"), ("trilinear", "each \\(H, W\\) slice"),
                          ("area", "F.adaptive_avg_pool1d/2d")]:
        with pytest.raises(NotImplementedError, match=f"interpolate: mode='{mode}' is not built.*{instead}"):
            F.interpolate(x4, scale_factor=2, mode=mode)
    with pytest.raises(NotImplementedError, match="interpolate: antialias=True \\(mode='bilinear'\\) is not "
                                                  "built.*antialias=False"):
        F.interpolate(x4, scale_factor=0.5, mode="bilinear", antialias=True)
    with pytest.raises(NotImplementedError, match="interpolate: unknown mode 'cubic'; the "
                                                  "modes are 'nearest'"):
        F.interpolate(x4, scale_factor=2, mode="cubic")
    with pytest.raises(NotImplementedError, match=r"interpolate: mode='bilinear' needs a 4-D \(B, C, H, W\) "
                                                  r"input, got shape \(2, 3, 5\)"):
        F.interpolate(x3, scale_factor=2, mode="bilinear")
    with pytest.raises(NotImplementedError, match=r"Upsample: mode='linear' needs a 3-D "
                                                  r"\(B, C, L\) input, got shape \(2, 3, 4, 5\)"):
        nn.Upsample(scale_factor=2, mode="linear")(x4)
    with pytest.raises(NotImplementedError, match=r"interpolate: mode='nearest' needs a 3-D "
                                                  r"\(B, C, L\) or 4-D \(B, C, H, W\) input, got "
                                                  r"shape \(3, 5\)"):
        F.interpolate(tt.randn(3, 5), scale_factor=2)
    with pytest.raises(ValueError, match="interpolate: align_corners can only be set with the interpolating "
                                         "modes.*mode='nearest'"):
        F.interpolate(x4, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="interpolate: give exactly one of size or "
                                         "scale_factor, got size=None"):
        F.interpolate(x4)
    with pytest.raises(ValueError, match="give exactly one of size or scale_factor, "
                                         "got size=3 and scale_factor=2"):
        F.interpolate(x4, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="recompute_scale_factor is not meaningful with an explicit size"):
        F.interpolate(x4, size=3, recompute_scale_factor=True)
    with pytest.raises(ValueError, match=r"interpolate: size \(3, 4, 5\) must give 2 "
                                         r"sizes.*shape \(2, 3, 4, 5\)"):
        F.interpolate(x4, size=(3, 4, 5))
    with pytest.raises(ValueError, match=r"scale_factor \(2, 2\) must give 1 factors.*shape \(2, 3, 5\)"):
        F.interpolate(x3, scale_factor=(2, 2))
    with pytest.raises(TypeError, match=r"interpolate: size must be an int or a tuple "
                                        r"of 2 ints, got \(3.5, 4\)"):
        F.interpolate(x4, size=(3.5, 4))
    with pytest.raises(RuntimeError, match=r"interpolate: input and output sizes must be > 0, "
                                           r"got input of shape \(2, 3, 4, 5\) and output sizes \(0, 1\)"):
        F.interpolate(x4, scale_factor=0.2)
    with pytest.raises(TypeError, match=r"UpsamplingBilinear2d: mode='bilinear' needs a "
                                        r"floating-point input, got tinytensor.int64 of "
                                        r"shape \(1, 1, 2, 2\)"):
        nn.UpsamplingBilinear2d(scale_factor=2)(tt.ones(1, 1, 2, 2, dtype=tt.int64))


def test_pixel_shuffle_padding_and_dropout_errors():
    with pytest.raises(RuntimeError, match=r"pixel_shuffle: the channel dim \(size 6\) of the input of shape "
                                           r"\(1, 6, 2, 2\) must be divisible by upscale_factor² = 4"):
        nn.PixelShuffle(2)(tt.randn(1, 6, 2, 2))
    with pytest.raises(RuntimeError, match=r"pixel_shuffle: expected an input of at least 3 "
                                           r"dims.*shape \(4, 4\)"):
        F.pixel_shuffle(tt.randn(4, 4), 2)
    with pytest.raises(RuntimeError, match="pixel_shuffle: upscale_factor must be a positive int, got 0"):
        F.pixel_shuffle(tt.randn(1, 4, 2, 2), 0)
    with pytest.raises(RuntimeError, match=r"pixel_unshuffle: the height and width \(5, 4\) "
                                           r"of the input of shape \(1, 1, 5, 4\) must be divisible by "
                                           r"downscale_factor = 2"):
        nn.PixelUnshuffle(2)(tt.randn(1, 1, 5, 4))
    with pytest.raises(TypeError, match=r"ZeroPad2d: padding must be an int or a tuple of "
                                        r"4 ints, got \(1, 2\)"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match=r"ConstantPad2d: padding \(1, 1, 1, 1\) pads the "
                                         r"last 2 dims, got an input of shape \(5,\)"):
        nn.ConstantPad2d(1, 0.5)(tt.randn(5))
    with pytest.raises(ValueError, match=r"dropout2d: p must be in \[0, 1\], got 1.5"):
        F.dropout2d(tt.randn(1, 2, 3, 3), 1.5)
    with pytest.raises(RuntimeError, match=r"dropout1d: expected a 2-D or 3-D input.*got "
                                           r"shape \(1, 2, 3, 3\)"):
        nn.Dropout1d()(tt.randn(1, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"dropout2d: expected a 3-D or 4-D input.*got shape \(2, 3\)"):
        F.dropout2d(tt.randn(2, 3))
    with pytest.raises(TypeError, match=r"dropout2d: scaling by 1/\(1-p\) needs a floating-point input, got "
                                        r"tinytensor.int64 of shape \(1, 2, 2, 2\)"):
        F.dropout2d(tt.ones(1, 2, 2, 2, dtype=tt.int64))
