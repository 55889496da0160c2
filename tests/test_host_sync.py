"""No device→host synchronisation inside a training step.

On a GPU every read of a value on the host (``bool()``, ``int()``, ``float()``, ``.item()``, a copy
to NumPy) waits for all the work queued before it. The strict stand-in counts those reads
(``tinytensor.testing.count_host_syncs``); here a whole training step of a Transformer, a GPT and
a ViT makes none, and ``loss.item()`` makes exactly the reads it should. Value checks (an index out
of range) raise at once on the CPU and, where reads are syncs, at the next host sync
(``tinytensor/backends/deferred.py``).
"""
from __future__ import annotations

import numpy as np
import pytest

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor.backends.deferred import checks_at_once
from tinytensor.testing import count_host_syncs, register_strict_backend
from tinytensor_nn.optim import AdamW
from tinytensor_nn.utils import clip_grad_norm_

pytest.importorskip("array_api_strict")
register_strict_backend()
DEV = "strict"


@pytest.fixture(autouse=True)
def gpu_checks():
    """The stand-in defers its value checks to the next host sync, as a GPU does; none is left behind."""
    backend = tt.backends.get(DEV)
    backend.checks.discard()
    backend.defers_checks = True
    yield backend
    del backend.defers_checks
    backend.checks.discard()


def ids(high: int, *shape: int, seed: int = 0) -> tt.Tensor:
    return tt.tensor(np.random.default_rng(seed).integers(0, high, shape), device=DEV)


def train_step(model, opt, loss_fn):
    """forward, loss, backward, clip_grad_norm_, AdamW step, zero_grad: what one step of a loop does."""
    loss = loss_fn()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    return loss


def assert_no_syncs_then_item(model, loss_fn, steps: int = 2):
    """Two steps without a sync; then loss.item() reads the checks' flag and the value (2), and a
    second item() only the value (1)."""
    opt = AdamW(model.parameters(), lr=1e-3)
    for _ in range(steps):
        with count_host_syncs() as syncs:
            loss = train_step(model, opt, loss_fn)
        assert syncs.count == 0, syncs
    with count_host_syncs() as syncs:
        value = loss.item()
    assert [t.kind for t in syncs.where] == ["bool()", "to_device(CPU)"], syncs
    assert "deferred.py" in syncs.where[0].site  # the pending value checks, read once for all
    with count_host_syncs() as syncs:
        assert loss.item() == value
    assert syncs.count == 1, syncs
    assert np.isfinite(value)
    return value


# ---- the counter ------------------------------------------------------------------------------

def test_the_counter_counts_every_kind_of_read_and_nothing_on_the_cpu():
    import operator

    s, i = tt.tensor([1.5, 2.0], device=DEV), tt.tensor([3], device=DEV)
    with count_host_syncs() as syncs:
        bool(s.array[0] > 1), int(s.array[0]), float(s.array[1]), operator.index(i.array[0]), repr(s.array)
        s[0].item(), s.numpy(), s.tolist(), bool(s[0] > 1), float(s[1]), repr(s)  # each one copy to the host
        tt.randn(3).sum().item(), bool(tt.ones(1) > 0)  # on the CPU: nothing to wait for
    kinds = [t.kind for t in syncs.where]
    assert kinds == ["bool()", "int()", "float()", "index()", "repr()"] + ["to_device(CPU)"] * 6, syncs
    assert syncs.to_device_count == 0
    with count_host_syncs() as syncs:
        tt.tensor([1, 2], device=DEV), tt.randn(2, 3).to(DEV), tt.zeros(4, device=DEV)
    assert syncs.count == 0 and syncs.to_device_count == 2, syncs  # zeros are made on the device
    with count_host_syncs() as syncs:  # a shape that depends on the values: a GPU reads them
        s[s > 1.6], s.nonzero(), s.masked_select(s > 1.6)
    assert syncs.count == 3 and syncs.to_device_count == 0, syncs


def test_the_counter_names_the_op_and_restores_the_array_class():
    from array_api_strict._array_object import Array

    original = Array.__dict__["__bool__"]

    class Peek(tt.autograd.Function):
        def forward(self, x):
            return x if bool(self.xp.all(x > 0)) else -x

        def backward(self, gy):
            return gy

    with count_host_syncs() as outer:
        with count_host_syncs() as inner:
            Peek.apply(tt.ones(3, device=DEV))
        assert Array.__dict__["__bool__"] is not original  # the outer block is still open
    assert Array.__dict__["__bool__"] is original
    assert inner.count == outer.count == 1
    (read,) = inner.where
    assert read.kind == "bool()" and read.op == "Peek" and "test_host_sync.py" in read.site, read
    assert "Peek" in str(inner) and "test_host_sync.py" in str(inner)


# ---- training steps ---------------------------------------------------------------------------

def test_an_encoder_decoder_transformer_step_with_masks_makes_no_sync():
    tt.manual_seed(0)
    V, B, S, T, E = 13, 3, 6, 5, 16
    model = nn.ModuleDict({
        "emb": nn.Embedding(V, E, padding_idx=0),
        "tf": nn.Transformer(E, nhead=2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=32,
                             dropout=0.1, batch_first=True),
        "head": nn.Linear(E, V),
    }).to(DEV)
    model.train()
    src, tgt = ids(V, B, S, seed=1), ids(V, B, T + 1, seed=2)
    src_pad = tt.tensor([[False] * S, [False] * 4 + [True] * 2, [False] * 2 + [True] * 4], device=DEV)
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    ignored = tt.tensor([[False] * T] * 2 + [[False] * 3 + [True] * 2], device=DEV)  # the padding of tgt
    tgt_out = tgt_out.masked_fill(ignored, -100)

    def loss_fn():
        causal = nn.Transformer.generate_square_subsequent_mask(T, device=DEV)  # (T, T) float, -inf above
        out = model["tf"](model["emb"](src), model["emb"](tgt_in), tgt_mask=causal, tgt_is_causal=True,
                          src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad)  # (B, T, E)
        logits = model["head"](out)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=-100,
                               label_smoothing=0.1)

    assert_no_syncs_then_item(model, loss_fn)


def test_an_encoder_step_with_padding_and_causal_masks_makes_no_sync():
    tt.manual_seed(1)
    V, B, T, E = 9, 2, 7, 8
    layer = nn.TransformerEncoderLayer(E, 2, 16, dropout=0.2, batch_first=True, norm_first=True)
    model = nn.ModuleDict({"emb": nn.Embedding(V, E), "enc": nn.TransformerEncoder(layer, 2),
                           "head": nn.Linear(E, V)}).to(DEV)
    x, y = ids(V, B, T, seed=3), ids(V, B, T, seed=4)
    pad = tt.tensor([[False] * T, [False] * 5 + [True] * 2], device=DEV)
    causal = tt.ones(T, T, dtype=tt.bool, device=DEV).triu(diagonal=1)  # bool, True = blocked (modules)

    def loss_fn():
        h = model["enc"](model["emb"](x), mask=causal, src_key_padding_mask=pad, is_causal=True)
        return F.cross_entropy(model["head"](h).reshape(-1, V), y.reshape(-1))

    assert_no_syncs_then_item(model, loss_fn)


def test_a_gpt_step_with_dropout_makes_no_sync_and_copies_only_dropout_masks():
    tt.manual_seed(2)
    V, B, T = 17, 2, 8
    model = nn.GPT(V, block_size=T, d_model=16, nhead=2, num_layers=2, dropout=0.1).to(DEV)
    model.train()
    x, y = ids(V, B, T, seed=5), ids(V, B, T, seed=6)
    loss_fn = lambda: F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))  # noqa: E731
    assert_no_syncs_then_item(model, loss_fn)
    opt = AdamW(model.parameters(), lr=1e-3)
    with count_host_syncs() as syncs:
        train_step(model, opt, loss_fn)
    # each dropout draws its mask on the host (one seeded stream for every device) and copies it:
    # the embedding's, and per block the attention weights', the attention output's and the MLP's
    assert syncs.count == 0 and syncs.to_device_count == 1 + 2 * 3, syncs
    assert all(any(" in dropout" in line for line in t.stack) for t in syncs.to_device_where), syncs


def test_a_gpt_step_in_learned_positions_and_float64_makes_no_sync():
    tt.manual_seed(3)
    V, B, T = 11, 2, 6
    model = nn.GPT(V, block_size=T, d_model=8, nhead=2, num_layers=1, dropout=0.0,
                   positional="learned").double().to(DEV)
    x, y = ids(V, B, T, seed=7), ids(V, B, T, seed=8)
    assert_no_syncs_then_item(model, lambda: F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1)))


def test_a_vit_step_makes_no_sync():
    tt.manual_seed(4)
    model = nn.VisionTransformer(image_size=8, patch_size=4, in_channels=1, num_classes=3, embed_dim=16,
                                 depth=1, num_heads=2, dropout=0.1).to(DEV)
    images, labels = tt.randn(2, 1, 8, 8).to(DEV), ids(3, 2, seed=9)
    assert_no_syncs_then_item(model, lambda: F.cross_entropy(model(images), labels))


# ---- the ops, one by one ----------------------------------------------------------------------

def _no_sync(fn):
    with count_host_syncs() as syncs:
        out = fn()
    assert syncs.count == 0, syncs
    return out


def _targets(*values):
    return tt.tensor(list(values), device=DEV)


def _column(*values):
    return tt.tensor([[v] for v in values], device=DEV)  # (n, 1)


OPS = {  # x (5, 3) float32, requires grad, and i = [4, 0, 2, 1, 3, 1] on the strict device
    "embedding": lambda x, i: F.embedding(i, x),
    "embedding_backward": lambda x, i: F.embedding(i, x).sum().backward(),
    "one_hot": lambda x, i: F.one_hot(i, num_classes=5),
    "cross_entropy": lambda x, i: F.cross_entropy(x, _targets(2, 0, -100, 1, 2), label_smoothing=0.1),
    "cross_entropy_backward": lambda x, i: F.cross_entropy(x, _targets(2, 0, 1, 1, 2)).backward(),
    "nll_loss": lambda x, i: F.nll_loss(x.log_softmax(-1), _targets(2, 0, 1, 1, 2), ignore_index=1),
    "gather": lambda x, i: x.gather(1, _column(0, 2, 1, 1, 0)).sum().backward(),
    "scatter": lambda x, i: x.detach().scatter(1, _column(0, 2, 1, 1, 0), 1.0),
    "scatter_add": lambda x, i: x.scatter_add(1, _column(0, 2, 1, 1, 0), x[:, :1]).sum().backward(),
    "index_select": lambda x, i: x.index_select(0, i).sum().backward(),
    "index_add": lambda x, i: x.index_add(0, i, tt.ones(6, 3, device=DEV)),
    "index_fill": lambda x, i: x.index_fill(0, i - 2, 0.0),
    "dropout": lambda x, i: F.dropout(x, 0.5, training=True).sum().backward(),
    "attention_with_a_fully_masked_row": lambda x, i: F.scaled_dot_product_attention(
        x[None, :4, :2], x[None, :, :2], x[None, :, 1:], attn_mask=tt.tensor(
            [[True] * 5] * 3 + [[False] * 5], device=DEV)).sum().backward(),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_op_that_checks_values_makes_no_sync(name):
    x = tt.randn(5, 3).to(DEV).requires_grad_()
    i = tt.tensor([4, 0, 2, 1, 3, 1], device=DEV)
    _no_sync(lambda: OPS[name](x, i))
    tt.backends.get(DEV).synchronize()  # the checks, read at last: every one passes


def test_one_hot_without_num_classes_must_read_the_largest_value():
    # the output's shape depends on the values: a sync that no deferral can avoid
    with count_host_syncs() as syncs:
        hot = F.one_hot(tt.tensor([0, 3, 1], device=DEV))
    assert syncs.count == 2 and hot.shape == (3, 4), syncs  # min and max


# ---- deferred value checks --------------------------------------------------------------------

def test_an_out_of_range_index_raises_at_once_on_the_cpu():
    weight = tt.randn(10, 3)
    with pytest.raises(IndexError, match="embedding: index 12 is out of range for a weight with 10 rows"):
        F.embedding(tt.tensor([1, 12]), weight)
    assert len(weight.backend.checks) == 0


@pytest.mark.parametrize("sync", ["item", "numpy", "tolist", "bool", "print", "to_cpu", "synchronize"])
def test_on_a_device_it_raises_at_the_next_host_sync_naming_the_op_and_the_value(sync):
    weight = tt.randn(10, 3).to(DEV)
    rows = F.embedding(tt.tensor([1, 12], device=DEV), weight)  # no sync, no error yet
    total = rows.sum() * 2  # later work goes on as usual
    assert len(weight.backend.checks) == 1
    reads = {"item": total.item, "numpy": rows.numpy, "tolist": rows.tolist, "bool": lambda: bool(total > 0),
             "print": lambda: repr(rows), "to_cpu": lambda: rows.to("cpu"),
             "synchronize": weight.backend.synchronize}
    with pytest.raises(IndexError, match=r"embedding: index 12 is out of range for a weight with 10 rows "
                                         r"\[checked on strict when the op ran at .*test_host_sync.py:\d+"):
        reads[sync]()
    assert len(weight.backend.checks) == 0
    assert np.isfinite(rows.sum().item())  # the error was raised once; the backend reads on


BAD = {  # an op with an out-of-range index, on a device (x (5, 3) float32)
    "embedding": lambda x, d: F.embedding(tt.tensor([0, 5], device=d), x),
    "one_hot": lambda x, d: F.one_hot(tt.tensor([0, 5], device=d), num_classes=4),
    "cross_entropy": lambda x, d: F.cross_entropy(x, tt.tensor([0, 1, 3, 1, 0], device=d),
                                                  weight=tt.ones(3, device=d)),
    "gather": lambda x, d: x.gather(1, tt.tensor([[0], [3], [0], [0], [0]], device=d)),
    "scatter": lambda x, d: x.scatter(1, tt.tensor([[0], [-1], [0], [0], [0]], device=d), 2.0),
    "scatter_add": lambda x, d: x.scatter_add(1, tt.tensor([[0], [3], [0], [0], [0]], device=d), x),
    "index_select": lambda x, d: x.index_select(0, tt.tensor([5], device=d)),
    "index_add": lambda x, d: x.index_add(0, tt.tensor([-1], device=d), x[:1]),
    "index_fill": lambda x, d: x.index_fill(0, tt.tensor([-6], device=d), 0.0),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_index_check_raises_its_cpu_error_at_the_next_sync_on_a_device(name):
    x = tt.randn(5, 3)
    with pytest.raises((IndexError, RuntimeError)) as on_cpu:
        BAD[name](x, "cpu")
    with count_host_syncs() as syncs:
        out = BAD[name](x.to(DEV), DEV)  # the kernels run on a clipped index: nothing fails yet
    assert syncs.count == 0, syncs
    with pytest.raises(on_cpu.type) as on_device:
        out.numpy()
    assert str(on_device.value).startswith(str(on_cpu.value) + " [checked on strict when the op ran at ")


def test_the_first_failed_check_raises_and_one_read_covers_them_all():
    x = tt.randn(4, 3).to(DEV)
    x.gather(1, tt.tensor([[0], [1], [2], [0]], device=DEV))  # fine
    F.cross_entropy(x, tt.tensor([0, 7, 1, 2], device=DEV))  # target 7: the first failure
    x.index_select(0, tt.tensor([-1], device=DEV))  # a second failure, not reported
    with count_host_syncs() as syncs:
        with pytest.raises(IndexError, match=r"cross_entropy: target 7 is out of bounds for 3 classes"):
            x.sum().item()
    assert [t.kind for t in syncs.where][:1] == ["bool()"]  # any failure? one read, then the culprit's


def test_checks_at_once_raise_at_the_op_on_a_device_too():
    weight = tt.randn(10, 3).to(DEV)
    with checks_at_once(), pytest.raises(IndexError, match="embedding: index -1 is out of range"):
        F.embedding(tt.tensor([-1, 2], device=DEV), weight)
    assert len(weight.backend.checks) == 0


def test_a_checkpoint_is_not_saved_past_a_failed_check(tmp_path):
    model = nn.Embedding(5, 2).to(DEV)
    model(tt.tensor([5], device=DEV))
    with pytest.raises(IndexError, match="embedding: index 5 is out of range for a weight with 5 rows"):
        nn.save_checkpoint(tmp_path / "ckpt.safetensors", model=model)


def test_checks_never_pile_up_unread():
    backend = tt.backends.get(DEV)
    i, w = tt.tensor([0, 1], device=DEV), tt.randn(2, 2).to(DEV)
    with count_host_syncs() as syncs:
        for _ in range(backend.checks.MAX_PENDING + 1):
            F.embedding(i, w)
    assert syncs.count == 1 and len(backend.checks) == 1, syncs  # the full list was read once


def test_dropout_draws_the_same_stream_as_before_on_every_device():
    p, shape = 0.3, (4, 6)
    tt.manual_seed(7)
    on_cpu = F.dropout(tt.ones(*shape), p).numpy()
    tt.manual_seed(7)
    on_strict = F.dropout(tt.ones(*shape, device=DEV), p).numpy()
    keep = np.random.default_rng(7).random(shape) >= p
    want = (keep / (1.0 - p)).astype(np.float32)
    np.testing.assert_array_equal(on_cpu, want)
    np.testing.assert_array_equal(on_strict, want)
