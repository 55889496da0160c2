"""einops' layers as tinytensor Modules: ``from einops.layers.torch import Rearrange, Reduce, EinMix``
becomes ``from tinytensor.nn.einops import Rearrange, Reduce, EinMix``.

    patches = Rearrange("b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=16, p2=16)  # (B, N, P·P·C)
    mix = EinMix("b n c -> b n d", weight_shape="c d", bias_shape="d", c=768, d=512)

They are built on einops' framework-independent layer code (``RearrangeMixin``, ``ReduceMixin``,
``_EinmixMixin``: pattern parsing, recipes, EinMix's shapes and init bounds), as einops' own torch and
flax layers are; only the parameters and the forward pass are tinytensor's. EinMix's weight and bias
are Parameters named ``weight`` and ``bias`` (the state_dict keys of einops' torch EinMix), drawn as
there from U(±√(3 / fan_in)) and U(±√(1 / fan_in)), with tinytensor's seeded generator
(``tt.manual_seed``). Requires einops (``pip install einops``).
"""
from __future__ import annotations

from einops import EinopsError
from einops.layers import RearrangeMixin, ReduceMixin
from einops.layers._einmix import _EinmixMixin

import tinytensor as tt
from tinytensor import _einops  # registers the einops backend (einops is imported above)
from tinytensor_nn import Module, Parameter, init

__all__ = ["EinMix", "Rearrange", "Reduce"]


def _check_ndim(layer, x) -> None:
    """einops' layers index their recipes by the input's ndim: a wrong ndim says so, not KeyError."""
    if len(x.shape) not in layer._multirecipe:
        lo, hi = min(layer._multirecipe), max(layer._multirecipe)
        raise EinopsError(f"{layer!r}: expected an input with {lo if lo == hi else f'{lo} to {hi}'} dims, "
                          f"got shape {tuple(x.shape)}")


class Rearrange(RearrangeMixin, Module):
    """``einops.rearrange(x, pattern, **axes_lengths)`` as a layer."""

    def forward(self, x):
        _check_ndim(self, x)
        return self._apply_recipe(x)


class Reduce(ReduceMixin, Module):
    """``einops.reduce(x, pattern, reduction, **axes_lengths)`` as a layer."""

    def forward(self, x):
        _check_ndim(self, x)
        return self._apply_recipe(x)


class EinMix(_EinmixMixin, Module):
    """An einsum of the input with a learned ``weight`` (plus ``bias``), rearranging around it:
    ``EinMix("t b cin -> t b cout", weight_shape="cin cout", bias_shape="cout", cin=10, cout=20)``
    is a Linear layer. Init: weight ~ U(±√(3 / fan_in)), bias ~ U(±√(1 / fan_in)), as einops'."""

    def _create_parameters(self, weight_shape, weight_bound, bias_shape, bias_bound):
        self.weight = Parameter(tt.zeros(weight_shape))
        init.uniform_(self.weight, -weight_bound, weight_bound)
        if bias_shape is not None:
            self.bias = Parameter(tt.zeros(bias_shape))
            init.uniform_(self.bias, -bias_bound, bias_bound)
        else:
            self.bias = None  # an attribute, not a parameter slot: no "bias" key, as in einops' torch layer

    def _create_rearrange_layers(self, pre_reshape_pattern, pre_reshape_lengths, post_reshape_pattern,
                                 post_reshape_lengths):
        self.pre_rearrange = None
        if pre_reshape_pattern is not None:
            self.pre_rearrange = Rearrange(pre_reshape_pattern, **(pre_reshape_lengths or {}))
        self.post_rearrange = None
        if post_reshape_pattern is not None:
            self.post_rearrange = Rearrange(post_reshape_pattern, **(post_reshape_lengths or {}))

    def forward(self, x):
        if self.pre_rearrange is not None:
            x = self.pre_rearrange(x)
        y = _einops.einsum(self.einsum_pattern, x, self.weight)
        if self.bias is not None:
            y = y + self.bias
        if self.post_rearrange is not None:
            y = self.post_rearrange(y)
        return y
