"""The training steps that bench_core.py and bench_nn.py time on whole models, in either library.

* ``gpt``: tinytensor_nn.GPT (rotary positions, pre-norm blocks, GELU; examples/char_gpt.py's model at a
  larger size): 4 layers, 4 heads, d_model 128, block 64, vocabulary 65, batch 16, next-token
  cross-entropy over every position.
* ``vit``: tinytensor_nn.VisionTransformer (learned positions, class token, pre-norm GELU encoder):
  32x32x3 images, patch 4 (64 patches), dim 128, depth 4, 4 heads, mlp 512, 10 classes, batch 32.

One step = zero_grad, forward, cross-entropy, backward, AdamW update (lr 1e-3, betas (0.9, 0.99),
weight decay 0.01), float32, dropout 0. The PyTorch side is the same model written with torch.nn
primitives (_torch_models.py), parameter for parameter. Both start from the same weights (every
parameter is a function of its name, ``param_value``) and the same data, so the first step's loss and
gradients must agree. ``--tiny`` in the scripts shrinks every size (a smoke run of the plumbing).
"""
from __future__ import annotations

import math
import zlib
from typing import Callable, NamedTuple

import numpy as np
from _common import synchronizer

GPT = dict(vocab=65, block=64, layers=4, heads=4, d_model=128, batch=16)
VIT = dict(image=32, patch=4, channels=3, classes=10, dim=128, depth=4, heads=4, batch=32)
TINY = {"gpt": dict(vocab=65, block=16, layers=1, heads=2, d_model=16, batch=2),
        "vit": dict(image=8, patch=4, channels=3, classes=10, dim=16, depth=1, heads=2, batch=2)}
ADAMW = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)
CASES = ("gpt", "vit")


def use_tiny_sizes() -> None:
    """Shrink the models to their --tiny sizes (in the parent and in every worker)."""
    GPT.update(TINY["gpt"])
    VIT.update(TINY["vit"])


def describe() -> list[str]:
    g, v = GPT, VIT
    return [f"  gpt: {g['layers']} layers, {g['heads']} heads, d_model {g['d_model']}, block {g['block']}, "
            f"vocabulary {g['vocab']}, batch {g['batch']}, rotary positions, AdamW",
            f"  vit: {v['image']}x{v['image']}x{v['channels']} images, patch {v['patch']}, dim {v['dim']}, "
            f"depth {v['depth']}, {v['heads']} heads, mlp {4 * v['dim']}, {v['classes']} classes, batch "
            f"{v['batch']}, AdamW"]


# ---- the library, the same weights and data in every process ---------------------------------------

class Lib(NamedTuple):
    lib: object  # torch or tinytensor
    nn: object  # torch.nn or tinytensor_nn
    F: object  # its functional module
    optim: object  # its optimizers
    make: Callable  # NumPy array -> tensor on the device
    sync: Callable  # waits for the device's queued work


def library(impl: str, threads: int, device: str = "cpu") -> Lib:
    """``impl``'s modules, with ``threads`` CPU threads, making tensors on ``device``."""
    sync = synchronizer(impl, device)
    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != 1:
            torch.set_num_interop_threads(1)
        make = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
        return Lib(torch, torch.nn, torch.nn.functional, torch.optim, make, sync)
    import tinytensor
    import tinytensor_nn

    tinytensor.set_num_threads(threads)
    make = lambda a: tinytensor.tensor(a, device=device)  # noqa: E731
    return Lib(tinytensor, tinytensor_nn, tinytensor_nn.functional, tinytensor_nn.optim, make, sync)


def param_value(name: str, shape: tuple) -> np.ndarray:
    """A deterministic value for the parameter called ``name`` (its state_dict key in both libraries)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if len(shape) > 1:  # a matrix: U(±1/√fan_in)
        bound = 1.0 / math.sqrt(shape[-1])
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if "norm" in name and name.endswith("weight"):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    return (0.02 * rng.standard_normal(shape)).astype(np.float32)


def load_weights(lib, model, make) -> None:
    """Overwrite every parameter in place with param_value(name); ``make`` turns an array into a
    tensor of ``lib`` on the model's device."""
    with lib.no_grad():
        for name, p in model.named_parameters():
            p.copy_(make(param_value(name, tuple(p.shape))))


def host(t) -> np.ndarray:
    """A tensor of either library as a host NumPy array."""
    return t.detach().cpu().numpy()


def gpt_data(batch: int, seq: int, seed: int = 0):
    """Token ids (B, T) and the next-token targets (B, T), int64."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, GPT["vocab"], (batch, seq + 1)).astype(np.int64)
    return ids[:, :-1], ids[:, 1:]


def vit_data(batch: int, seed: int = 0):
    """Images (B, C, H, W) float32 and labels (B,) int64."""
    rng = np.random.default_rng(seed)
    v = VIT
    x = rng.standard_normal((batch, v["channels"], v["image"], v["image"]), dtype=np.float32)
    return x, rng.integers(0, v["classes"], (batch,)).astype(np.int64)


# ---- one step -------------------------------------------------------------------------------------

class Step:
    """One step in three phases: ``forward()`` -> loss (or output), ``backward(out)``, ``update()``.
    Calling it runs all three and returns what forward gave."""

    def __init__(self, forward, backward, update=lambda: None):
        self.forward, self.backward, self.update = forward, backward, update

    def __call__(self):
        out = self.forward()
        self.backward(out)
        self.update()
        return out


def full_size(case: str) -> tuple[int, int]:
    """(batch, sequence length) of the timed step; a ViT's sequence is fixed by its images."""
    return (GPT["batch"], GPT["block"]) if case == "gpt" else (VIT["batch"], 0)


def build_model(impl: str, case: str, L: Lib, device: str):
    """The ``case`` model of ``impl`` on ``device``, from the shared weights."""
    g, v = GPT, VIT
    if impl == "torch":
        import _torch_models as tm

        if case == "gpt":
            model = tm.GPT(g["vocab"], g["block"], g["d_model"], g["heads"], g["layers"])
        else:
            model = tm.VisionTransformer(v["image"], v["patch"], v["channels"], v["classes"], v["dim"],
                                         v["depth"], v["heads"])
    elif case == "gpt":
        model = L.nn.GPT(g["vocab"], g["block"], d_model=g["d_model"], nhead=g["heads"],
                         num_layers=g["layers"], positional="rope")
    else:
        model = L.nn.VisionTransformer(v["image"], v["patch"], v["channels"], v["classes"],
                                       embed_dim=v["dim"], depth=v["depth"], num_heads=v["heads"])
    model = model.to(device)
    load_weights(L.lib, model, L.make)
    return model


COMPARED = {  # parameters whose first-step gradients are compared between the libraries
    "gpt": ("tok_emb.weight", "blocks.0.attn.in_proj_weight", "blocks.0.linear1.weight",
            "lm_head.weight"),
    "vit": ("cls_token", "patch_embed.proj.weight", "encoder.layers.0.self_attn.in_proj_weight",
            "head.weight"),
}


def model_steps(impl: str, case: str, threads: int, device: str, sizes: list[tuple[int, int]]):
    """(steps, leaves, sync): one Step per (batch, seq) in ``sizes``, all on ONE model and AdamW;
    ``leaves``: the parameters whose gradients are compared between the implementations; ``sync``
    waits for the device."""
    L = library(impl, threads, device)
    model = build_model(impl, case, L, device)
    opt = L.optim.AdamW(model.parameters(), **ADAMW)

    def step(batch: int, seq: int) -> Step:
        if case == "gpt":
            x_np, y_np = gpt_data(batch, seq)
            classes = GPT["vocab"]
        else:
            x_np, y_np = vit_data(batch)
            classes = VIT["classes"]
        x, y = L.make(x_np), L.make(y_np).reshape(-1)

        def forward():
            opt.zero_grad()
            logits = model(x)  # (B, T, vocab) or (B, classes)
            return L.F.cross_entropy(logits.reshape(-1, classes), y)

        return Step(forward, lambda loss: loss.backward(), opt.step)

    params = dict(model.named_parameters())
    return [step(b, t) for b, t in sizes], [params[n] for n in COMPARED[case]], L.sync
