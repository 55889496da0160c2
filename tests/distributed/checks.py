"""Checks that run inside an MPI job: ``mpiexec -n 2 python tests/distributed/checks.py <check>``.

tests/test_distributed.py launches them. Each check asserts on every rank and ends by printing
``ok <check> rank <r>``; an assertion that fails aborts the whole job (tinytensor.distributed's
excepthook), so the launcher exits non-zero.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tinytensor as tt
import tinytensor.distributed as dist
import tinytensor_nn as nn
from tinytensor.testing.strict_backend import register_strict_backend
from tinytensor_nn.parallel import DistributedDataParallel as DDP

register_strict_backend()
CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def gathered(t: tt.Tensor) -> list:
    """Every rank's values of ``t``, as nested lists."""
    out = [tt.zeros(t.shape, dtype=t.dtype, device=t.device) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return [o.tolist() for o in out]


@check
def collectives(rank, world):
    ranks = np.arange(world)
    for device in ("cpu", "strict"):
        for dtype in (tt.float32, tt.float64, tt.int64):
            x = tt.tensor([1, 2, 3], dtype=dtype, device=device) * (rank + 1)
            alias = x  # collectives write in place: an alias sees the result
            dist.all_reduce(x)
            assert alias.tolist() == (np.array([1, 2, 3]) * (ranks + 1).sum()).tolist(), (device, dtype)
            assert x.dtype is dtype and x.device == device
            for op, expect in ((dist.ReduceOp.MAX, world), (dist.ReduceOp.MIN, 1),
                               (dist.ReduceOp.PRODUCT, int(np.prod(ranks + 1)))):
                z = tt.tensor(rank + 1, dtype=dtype, device=device)  # 0-d
                dist.all_reduce(z, op=op)
                assert z.shape == () and z.item() == expect, (op, z.item())
            b = tt.full((2, 3), rank, dtype=dtype, device=device)
            dist.broadcast(b, src=world - 1)
            assert b.tolist() == [[world - 1] * 3] * 2
            outs = [tt.zeros(2, dtype=dtype, device=device) for _ in range(world)]
            kept = list(outs)
            dist.all_gather(outs, tt.tensor([rank, 10 * rank], dtype=dtype, device=device))
            assert all(a is b for a, b in zip(outs, kept)), "all_gather fills the tensors in the list"
            assert [o.tolist() for o in outs] == [[r, 10 * r] for r in range(world)]
        avg = tt.tensor([float(rank), 1.0], dtype=tt.float64, device=device)
        dist.all_reduce(avg, op=dist.ReduceOp.AVG)
        assert avg.tolist() == [ranks.mean(), 1.0]
        base = tt.arange(6.0, device=device).reshape(2, 3)
        view = base.t()  # not contiguous: staged, then written back into base's memory
        dist.all_reduce(view)
        assert base.tolist() == (np.arange(6.0).reshape(2, 3) * world).tolist()
    half = tt.ones(3, dtype=tt.float16)
    dist.all_reduce(half)
    assert half.dtype is tt.float16 and half.tolist() == [world] * 3
    w = tt.full((2,), float(rank), requires_grad=True)  # a leaf parameter: written like .data
    version = w._version[0]
    dist.broadcast(w, src=0)
    assert w.tolist() == [0.0, 0.0] and w._version[0] > version and w.requires_grad
    work = dist.all_reduce(tt.ones(4), async_op=True)
    assert work.wait() and work.is_completed()
    dist.barrier()


@check
def collective_errors(rank, world):
    def refused(fn, kind, *words):
        try:
            fn()
        except kind as e:
            assert all(w in str(e) for w in words), str(e)
            return
        raise AssertionError(f"no {kind.__name__}")

    x = tt.ones(3)
    refused(lambda: dist.all_gather([tt.ones(3)], x), ValueError, "list of 2 tensors")
    refused(lambda: dist.all_gather([tt.ones(3), tt.ones(4)], x), ValueError, "tensor_list[1]", "[4]")
    refused(lambda: dist.all_reduce(tt.ones(3, dtype=tt.int64), op=dist.ReduceOp.AVG), TypeError, "AVG")
    refused(lambda: dist.broadcast(x, src=world), ValueError, "src=2")
    refused(lambda: dist.all_reduce(np.ones(3)), TypeError, "ndarray")
    y = tt.ones(3, requires_grad=True) * 2
    refused(lambda: dist.all_reduce(y), RuntimeError, "detach()")
    refused(lambda: dist.init_process_group(), RuntimeError, "twice")


def mlp(seed: int) -> nn.Module:
    tt.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 3)).double()


def encoder_layer(seed: int) -> nn.Module:
    tt.manual_seed(seed)
    return nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True).double()


def max_diff(a: nn.Module, b: nn.Module) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


def train_both(make, x, y, rank, world, steps=3, **ddp_args):
    """Rank-seeded copies under DDP on a slice of the batch each, beside one process on all of it."""
    reference = make(0)  # the model rank 0 builds, whose parameters DDP broadcasts
    model = make(rank)  # seeded differently on each rank: only the broadcast makes them equal
    assert rank == 0 or max_diff(model, reference) > 0.01
    ddp = DDP(model, **ddp_args)
    assert max_diff(model, reference) == 0.0
    opt = tt.optim.Adam(ddp.parameters(), lr=0.01)
    ref_opt = tt.optim.Adam(reference.parameters(), lr=0.01)
    mine = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    for _ in range(steps):
        for net, o, xs, ys in ((ddp, opt, x[mine], y[mine]), (reference, ref_opt, x, y)):
            o.zero_grad()
            ((net(xs) - ys) ** 2).mean().backward()
            o.step()
    return model, reference


@check
def ddp_matches_one_process(rank, world):
    x = tt.randn(8, 6, dtype=tt.float64, generator=tt.Generator().manual_seed(1))
    y = tt.randn(8, 3, dtype=tt.float64, generator=tt.Generator().manual_seed(2))
    for cap in (25, 0.0005):  # one bucket; a bucket per parameter or two
        model, reference = train_both(mlp, x, y, rank, world, bucket_cap_mb=cap)
        assert max_diff(model, reference) < 1e-10, max_diff(model, reference)
    x = tt.randn(4, 5, 8, dtype=tt.float64, generator=tt.Generator().manual_seed(3))
    y = tt.randn(4, 5, 8, dtype=tt.float64, generator=tt.Generator().manual_seed(4))
    model, reference = train_both(encoder_layer, x, y, rank, world, bucket_cap_mb=0.001)
    assert max_diff(model, reference) < 1e-10, max_diff(model, reference)
    ddp = DDP(mlp(rank))
    assert list(ddp.parameters()) == list(ddp.module.parameters()), "DDP's parameters are the module's"
    assert all(k.startswith("module.") for k in ddp.state_dict())


@check
def ddp_no_sync_accumulates(rank, world):
    x = tt.randn(8, 6, dtype=tt.float64, generator=tt.Generator().manual_seed(5))
    y = tt.randn(8, 3, dtype=tt.float64, generator=tt.Generator().manual_seed(6))
    reference, model = mlp(0), mlp(rank)
    ddp = DDP(model, bucket_cap_mb=0.0005)
    micro = [slice(0, 4), slice(4, 8)]  # two micro-batches; each rank takes half of each
    for k, m in enumerate(micro):
        mine = slice(m.start + rank * 2, m.start + rank * 2 + 2)
        if k == 0:
            with ddp.no_sync():
                ((ddp(x[mine]) - y[mine]) ** 2).mean().backward()
            local = gathered(model[0].weight.grad)
            assert local[0] != local[1], "inside no_sync the gradients stay on their rank"
        else:
            ((ddp(x[mine]) - y[mine]) ** 2).mean().backward()
        ((reference(x[m]) - y[m]) ** 2).mean().backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        assert float((p.grad - q.grad).abs().max()) < 1e-10
    try:
        ((ddp(x[:2]) - y[:2]) ** 2).mean().backward(retain_graph=True)
        loss = ((ddp(x[:2]) - y[:2]) ** 2).mean()
        loss.backward(retain_graph=True)
        loss.backward()
    except RuntimeError as e:
        assert "second backward" in str(e)
    else:
        raise AssertionError("a second backward through one forward was not refused")
    model.zero_grad()
    mine = slice(rank * 2, rank * 2 + 2)
    ((model(x[mine]) - y[mine]) ** 2).mean().backward()  # the module itself, not DDP: stays local
    local = gathered(model[0].weight.grad)
    assert local[0] != local[1]


@check
def ddp_unused_parameters_and_buffers(rank, world):
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 3), nn.Linear(3, 3)
            self.register_buffer("count", tt.tensor(rank * 7))  # integer buffers are broadcast too
            self.register_buffer("stat", tt.full((2,), float(rank)))

        def forward(self, x, use_b):
            return self.b(x) if use_b else self.a(x)

    model = Two().double()
    ddp = DDP(model)
    assert model.count.item() == 0 and model.stat.tolist() == [0.0, 0.0]
    x = tt.ones(2, 3, dtype=tt.float64)
    ddp(x, use_b=rank == 1).sum().backward()  # rank 0 uses a only, rank 1 b only
    assert gathered(model.a.weight.grad)[0] == gathered(model.a.weight.grad)[1]
    assert model.a.weight.grad.abs().sum().item() > 0 and model.b.weight.grad.abs().sum().item() > 0
    model.zero_grad()
    ddp(x, use_b=False).sum().backward()  # nobody uses b: its grad stays None
    assert model.b.weight.grad is None and model.a.weight.grad is not None


@check
def ddp_refuses_different_models(rank, world):
    tt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 7 + rank), nn.ReLU())
    try:
        DDP(model)
    except ValueError as e:
        assert "rank 0 has parameter '0.weight' [7, 4]" in str(e) and "rank 1 has parameter" in str(e), str(e)
    else:
        raise AssertionError("different models were not refused")
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(1 + rank)])
    try:
        DDP(model)
    except ValueError as e:
        assert "differs between ranks" in str(e), str(e)
    else:
        raise AssertionError("different models were not refused")


@check
def checkpoint_resume(rank, world):
    folder = Path(sys.argv[2])

    def setup():
        tt.manual_seed(10 + rank)  # different streams on each rank: dropout differs per rank
        model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5), nn.Linear(16, 1)).double()
        ddp = DDP(model)
        return model, ddp, tt.optim.Adam(ddp.parameters(), lr=0.01)

    def step(ddp, opt, i):
        x = tt.randn(4, 4, dtype=tt.float64, generator=tt.Generator().manual_seed(100 * i + rank))
        opt.zero_grad()
        ddp(x).pow(2).mean().backward()
        opt.step()

    model, ddp, opt = setup()
    for i in range(2):
        step(ddp, opt, i)
    nn.save_checkpoint(folder / "ckpt.safetensors", model=model, optimizer=opt, extra={"step": 2})
    for i in range(2, 4):
        step(ddp, opt, i)
    straight = [p.tolist() for p in model.parameters()]

    model, ddp, opt = setup()
    extra = nn.load_checkpoint(folder / "ckpt.safetensors", model=model, optimizer=opt)
    assert extra == {"step": 2}
    for i in range(2, 4):
        step(ddp, opt, i)
    assert [p.tolist() for p in model.parameters()] == straight, "the resumed run continues exactly"
    try:
        nn.save_checkpoint(folder / "missing" / "dir" / "ckpt.safetensors", model=model)
    except Exception as e:  # rank 0's own error, and the others hear of it
        assert rank == 0 or "rank 0 failed" in str(e), str(e)
    else:
        raise AssertionError("a failed write went unnoticed")


@check
def failure_aborts(rank, world):
    if rank == 1:
        raise ValueError("boom on purpose")
    dist.barrier()  # rank 0 would wait here forever if rank 1's exception did not end the job


if __name__ == "__main__":
    name = sys.argv[1]
    dist.init_process_group("mpi")
    CHECKS[name](dist.get_rank(), dist.get_world_size())
    print(f"ok {name} rank {dist.get_rank()}", flush=True)
