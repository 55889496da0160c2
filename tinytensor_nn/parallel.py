"""Data parallelism: PyTorch's ``DistributedDataParallel`` over ``tinytensor.distributed``.

Every rank holds a whole copy of the model and runs it on its own slice of the batch. Construction
makes the copies equal (rank 0's parameters and buffers are broadcast); backward makes the gradients
equal (each is averaged over the ranks). Averaging the ranks' mean-loss gradients gives the gradient of
the mean loss over the whole batch, so N ranks on B/N samples each take the same step as one process
on B samples.

The gradients travel in buckets of about ``bucket_cap_mb`` (the first, which backward fills first, of
1 MB, as in PyTorch): the parameters, in reverse order of registration (roughly the order backward
reaches them), are cut into buckets; when every gradient of a bucket is final
(``register_post_accumulate_grad_hook``) the bucket is sent with a non-blocking all-reduce while
backward goes on with the layers below. When backward ends (``queue_callback``) the
engine waits for the buckets still in flight and writes the averages into ``.grad``. Buckets are sent
in the same order on every rank, as MPI requires: a bucket that is ready early waits for the ones
before it.
"""
from __future__ import annotations

from contextlib import contextmanager

import tinytensor as tt
from tinytensor import distributed as dist
from tinytensor.autograd import queue_callback

from .module import Module

__all__ = ["DistributedDataParallel"]

FIRST_BUCKET_BYTES = 2**20  # the bucket backward fills first is sent early: a small one


class _Bucket:
    """Parameters whose gradients are reduced together, and the state of this backward's reduction.

    ``flat`` holds their gradients end to end, then one "used" flag per parameter; it is made once
    and reused by every backward (a fresh buffer of that size each step costs more than the copies).
    ``views`` are the parameters' pieces of it, shaped like them; ``used`` is the flags' piece."""

    def __init__(self, params: list):
        self.params = params
        sizes = [p.numel() for p in params]
        self.flat = tt.zeros(sum(sizes) + len(params), dtype=params[0].dtype, device=params[0].device)
        *pieces, self.used = self.flat.split(sizes + [len(params)])
        self.views = [piece.view(p.shape) for piece, p in zip(pieces, params)]
        self.ready = set()  # ids of the parameters whose gradient is final in this backward
        self.work = None  # the all-reduce in flight


class DistributedDataParallel(Module):
    """Wrap ``module`` so that backward averages its gradients over the ranks of the process group.

    ``ddp(x)`` runs ``module(x)``; ``ddp.module`` is the model (save ``ddp.module.state_dict()`` to
    load it without DDP). Inside ``with ddp.no_sync():`` forward passes are not synchronized: their
    gradients accumulate locally, and the next synchronized backward averages the sum.

    A parameter that no rank used in a backward keeps its ``.grad``; one that some ranks used gets the
    average, counting the others' as zeros. ``device_ids``, ``output_device``, ``dim``,
    ``process_group`` and ``find_unused_parameters`` are PyTorch's arguments; they change nothing here.
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb: float = 25,
                 find_unused_parameters: bool = False, **unused):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group has not been "
                               "initialized; call tinytensor.distributed.init_process_group() first")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        self.world_size = dist.get_world_size()
        _check_same_model(module)
        with tt.no_grad():
            for t in self._states():
                dist.broadcast(t, src=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _buckets(params[::-1], min(FIRST_BUCKET_BYTES, bucket_cap_mb * 2**20),
                                 bucket_cap_mb * 2**20)
        self._bucket_of = {id(p): b for b in self._buckets for p in b.params}
        self._armed = False  # the next backward reduces the gradients
        self._reduced = None  # the last forward whose gradients were averaged
        for p in params:
            p.register_post_accumulate_grad_hook(self._grad_ready)

    def _states(self) -> list:
        return list(self.module.parameters()) + [b for _, b in self.module.named_buffers() if b is not None]

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers and self.world_size > 1:
            with tt.no_grad():
                for _, b in self.module.named_buffers():
                    if b is not None:
                        dist.broadcast(b, src=0)
        sync = tt.is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            for bucket in self._buckets:
                bucket.ready, bucket.work = set(), None
            self._next = 0  # the next bucket to send
            self._queued = False  # whether _finish waits at the end of backward
        self._armed = sync
        out = self.module(*args, **kwargs)
        if sync:  # a second backward through these outputs would not be averaged: refuse it
            self._forward = forward = object()
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, tt.Tensor) and t.requires_grad:
                    t.register_hook(lambda g, forward=forward: self._check_not_reduced(forward))
        return out

    def _check_not_reduced(self, forward) -> None:
        if forward is self._reduced:
            raise RuntimeError("DistributedDataParallel: a second backward through one forward's output; "
                               "run the forward again (its gradients were already averaged once)")

    @contextmanager
    def no_sync(self):
        """Inside this block, forward passes leave their gradients to accumulate on this rank."""
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    # ---- the reducer: runs inside backward ---------------------------------------------------------
    def _grad_ready(self, param) -> None:
        """A parameter's gradient is final for this backward: send its bucket once it is complete."""
        if not self._armed:  # no_sync, or a backward that did not start at a DDP forward's output
            return
        if not self._queued:  # the first gradient of this backward
            queue_callback(self._finish)
            self._queued = True
        self._bucket_of[id(param)].ready.add(id(param))
        self._send_ready_buckets()
        for bucket in self._buckets[:self._next]:  # let MPI move the buckets in flight
            bucket.work.is_completed()

    def _send_ready_buckets(self, everything: bool = False) -> None:
        while self._next < len(self._buckets):
            bucket = self._buckets[self._next]
            if not everything and len(bucket.ready) < len(bucket.params):
                return
            with tt.no_grad():
                for i, (p, view) in enumerate(zip(bucket.params, bucket.views)):
                    if id(p) in bucket.ready:
                        view.copy_(p.grad)
                        bucket.used[i] = 1.0
                    else:  # not used by this backward: counts as zeros
                        view.zero_()
                        bucket.used[i] = 0.0
            bucket.work = dist.all_reduce(bucket.flat, async_op=True)
            self._next += 1

    def _finish(self) -> None:
        """Backward has ended: send what is left, wait for every bucket, write the averages."""
        self._armed, self._reduced = False, self._forward
        self._send_ready_buckets(everything=True)
        with tt.no_grad():
            for bucket in self._buckets:
                bucket.work.wait()
                for p, total, used_somewhere in zip(bucket.params, bucket.views, bucket.used.tolist()):
                    if not used_somewhere:
                        continue
                    if p.grad is None:
                        p.grad = total / self.world_size
                    else:
                        p.grad.copy_(total).div_(self.world_size)
                bucket.work = None


def _buckets(params: list, first_cap: float, cap: float) -> list:
    """Consecutive runs of ``params`` of one dtype and device: the first up to about ``first_cap``
    bytes, the others up to about ``cap``."""
    buckets, current, size = [], [], 0
    for p in params:
        nbytes = p.numel() * p.dtype.itemsize
        limit = cap if buckets else first_cap
        if current and (size + nbytes > limit or p.dtype is not current[0].dtype
                        or p.device != current[0].device):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


def _check_same_model(module: Module) -> None:
    """Every rank must wrap the same model: compare the names, shapes and dtypes with rank 0's."""
    mine = [("parameter", n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
    mine += [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in module.named_buffers() if b is not None]
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone[1:], start=1):
        if theirs == reference:
            continue
        for a, b in zip(reference, theirs):
            if a != b:
                raise ValueError(f"DistributedDataParallel: the model differs between ranks: rank 0 has "
                                 f"{a[0]} {a[1]!r} {list(a[2])} {a[3]}, rank {rank} has {b[0]} {b[1]!r} "
                                 f"{list(b[2])} {b[3]}; every rank must build the same model")
        raise ValueError(f"DistributedDataParallel: the model differs between ranks: rank 0 has "
                         f"{len(reference)} parameters and buffers, rank {rank} has {len(theirs)}")
