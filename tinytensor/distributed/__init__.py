"""``tinytensor.distributed``: PyTorch's ``torch.distributed`` collectives over MPI.

Start every process of a job the same way, ``mpiexec -n 2 python train.py``, and call
``init_process_group()`` once in each: rank and world size come from MPI (mpi4py, the ``mpi`` extra).
Run without a launcher and without mpi4py, the same script is a world of one process in which every
collective leaves its tensors as they are.

Collectives write in place, into the tensor's own memory: a tensor aliasing it (a view, ``.data``)
sees the result. Every rank must call the same collectives in the same order with tensors of the same
shape and dtype, as with MPI itself. Tensors on a GPU go through the host on the ``mpi`` backend;
``backend="nccl"`` keeps them on the device (``cupyx.distributed``, one GPU per rank).

An uncaught exception on one rank aborts the whole job, with a message that names the rank, so the
other ranks never wait forever in a collective the failed one will not reach.
"""
from __future__ import annotations

import enum
import sys
import traceback

import numpy as np

from ..tensor import Tensor
from .groups import MPIGroup, NCCLGroup, SingleProcess, import_mpi, launched_size

__all__ = [
    "ReduceOp", "Work", "init_process_group", "is_initialized", "is_available", "is_mpi_available",
    "is_nccl_available", "get_rank", "get_world_size", "get_backend", "all_reduce", "broadcast",
    "all_gather", "all_gather_object", "barrier", "destroy_process_group",
]


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' tensors. ``AVG`` is the sum divided by the world size
    (floating-point tensors only)."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


class Work:
    """What ``async_op=True`` returns: ``wait()`` blocks until the collective's result is in place;
    ``is_completed()`` asks without blocking (and lets MPI make progress meanwhile)."""

    def __init__(self, request=None, finish=None):
        self._request, self._finish = request, finish

    def wait(self) -> bool:
        """Block until the collective's result is in place; returns True (``torch.distributed.Work.wait``)."""
        if self._request is not None:
            self._request.Wait()
            self._done()
        return True

    def is_completed(self) -> bool:
        """Whether the collective has finished, without blocking (it lets MPI make progress)."""
        if self._request is not None and self._request.Test():
            self._done()
        return self._request is None

    def _done(self) -> None:
        self._request = None
        if self._finish is not None:
            self._finish()


_state = {"group": None, "excepthook": None}


# ---- the process group -----------------------------------------------------------------------------

def is_available() -> bool:
    """True: the API is always there (without MPI, as a world of one process)."""
    return True


def is_mpi_available() -> bool:
    """Whether mpi4py and an MPI library can be imported (``pip install "tinytensor[mpi]"``)."""
    return import_mpi() is not None


def is_nccl_available() -> bool:
    """Whether ``cupyx.distributed`` (CuPy with NCCL) can be imported."""
    try:
        import cupyx.distributed  # noqa: F401
    except ImportError:
        return False
    return True


def init_process_group(backend: str | None = None, init_method=None, timeout=None, world_size: int = -1,
                       rank: int = -1, **unused) -> None:
    """Join the job: rank and world size come from MPI. ``backend`` is ``"mpi"`` (the default; CPU
    tensors, GPU ones through the host) or ``"nccl"`` (CuPy tensors on one GPU per rank).

    ``world_size``/``rank``, when given, are checked against the launcher's. ``init_method`` and
    ``timeout`` are PyTorch's arguments; MPI needs neither, and they are ignored.
    """
    if _state["group"] is not None:
        raise RuntimeError("init_process_group: trying to initialize the default process group twice")
    backend = "mpi" if backend is None else str(backend).lower()
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend {backend!r} is not supported; use 'mpi' (CPU "
                         f"tensors, GPU ones through the host) or 'nccl' (CuPy tensors)")
    host = _host_group()
    for name, given, actual in (("world_size", world_size, host.size), ("rank", rank, host.rank)):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but the launcher started this process "
                             f"with {name} {actual}")
    if backend == "nccl":
        if not is_nccl_available():
            raise RuntimeError("init_process_group(backend='nccl') needs CuPy with NCCL "
                               "(cupyx.distributed); use backend='mpi' for CPU tensors")
        group = NCCLGroup(host)
    else:
        group = host
    _state["group"] = group
    if group.size > 1:
        _abort_on_uncaught_exception(group)


def _host_group():
    MPI = import_mpi()
    if MPI is not None:
        return MPIGroup(MPI)
    if launched_size() > 1:
        raise RuntimeError(
            f"init_process_group: this process was launched as one of {launched_size()} ranks, but "
            f"mpi4py cannot be imported; install it with: pip install \"tinytensor[mpi]\""
        )
    return SingleProcess()


def _abort_on_uncaught_exception(group) -> None:
    """An exception nobody catches on this rank ends the whole job, saying which rank and why."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        sys.stderr.write(f"tinytensor.distributed: rank {group.rank} of {group.size} failed with "
                         f"{kind.__name__}: {value}; aborting all ranks\n")
        traceback.print_exception(kind, value, tb, file=sys.stderr)
        sys.stderr.flush()
        group.abort(1)

    _state["excepthook"] = previous
    sys.excepthook = hook


def is_initialized() -> bool:
    """Whether ``init_process_group`` has been called (and ``destroy_process_group`` not since)."""
    return _state["group"] is not None


def _group(who: str):
    group = _state["group"]
    if group is None:
        raise RuntimeError(f"{who}: the default process group has not been initialized; call "
                           f"tinytensor.distributed.init_process_group() first")
    return group


def get_rank(group=None) -> int:
    """This process's rank, 0 .. world size - 1."""
    return _group("get_rank").rank


def get_world_size(group=None) -> int:
    """The number of processes in the job."""
    return _group("get_world_size").size


def get_backend(group=None) -> str:
    """``"mpi"``, ``"nccl"`` or, for a world of one without MPI, ``"single process"``."""
    return _group("get_backend").name


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank has reached this call."""
    _group("barrier").barrier()
    return Work() if async_op else None


def destroy_process_group(group=None) -> None:
    """Leave the job's process group (MPI itself stays up until the process ends, as mpi4py wants)."""
    _group("destroy_process_group")
    if _state["excepthook"] is not None:
        sys.excepthook, _state["excepthook"] = _state["excepthook"], None
    _state["group"] = None


# ---- collectives ------------------------------------------------------------------------------------

def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` over all ranks with ``op``, in place: afterwards every rank holds the result."""
    pg = _group("all_reduce")
    op = _reduce_op(op)
    _check_tensor("all_reduce", tensor)
    if op is ReduceOp.AVG and not tensor.dtype.is_floating_point:
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating-point tensor, got {tensor.dtype}; "
                        f"reduce with ReduceOp.SUM and divide")
    buf, write_back = _buffer(pg, tensor)
    mpi_op = "sum" if op is ReduceOp.AVG else op.value

    def finish():
        if op is ReduceOp.AVG and pg.size > 1:
            buf[...] = buf / pg.size
        write_back()

    if async_op:
        return Work(pg.iallreduce(buf, mpi_op), finish)
    pg.allreduce(buf, mpi_op)
    finish()
    return None


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """Copy rank ``src``'s ``tensor`` into every other rank's, in place."""
    pg = _group("broadcast")
    _check_tensor("broadcast", tensor)
    if not 0 <= src < pg.size:
        raise ValueError(f"broadcast: src={src} is not a rank of this job (ranks 0 .. {pg.size - 1})")
    buf, write_back = _buffer(pg, tensor)
    pg.bcast(buf, src)
    write_back()
    return Work() if async_op else None


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Fill ``tensor_list[r]`` (world-size tensors, each like ``tensor``) with rank r's ``tensor``."""
    pg = _group("all_gather")
    _check_tensor("all_gather", tensor)
    if not isinstance(tensor_list, list) or len(tensor_list) != pg.size:
        got = len(tensor_list) if isinstance(tensor_list, list) else type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must be a list of {pg.size} tensors (the world size), "
                         f"got {got}")
    for r, out in enumerate(tensor_list):
        _check_tensor("all_gather", out)
        if out.shape != tensor.shape or out.dtype is not tensor.dtype or out.device != tensor.device:
            raise ValueError(f"all_gather: tensor_list[{r}] is {out.dtype}{list(out.shape)} on {out.device}, "
                             f"but the tensor sent is {tensor.dtype}{list(tensor.shape)} on {tensor.device}")
    send, _ = _buffer(pg, tensor)
    recv = _empty_like(pg, tensor, (pg.size,) + tuple(tensor.shape), send.dtype)
    pg.allgather(send, recv)
    for r, out in enumerate(tensor_list):
        _write(out, recv[r])
    return Work() if async_op else None


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Fill ``object_list`` (world-size entries) with every rank's ``obj`` (any picklable value)."""
    pg = _group("all_gather_object")
    if not isinstance(object_list, list) or len(object_list) != pg.size:
        raise ValueError(f"all_gather_object: object_list must be a list of {pg.size} entries "
                         f"(the world size)")
    object_list[:] = pg.allgather_object(obj)


def _reduce_op(op) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    try:
        return ReduceOp[str(op).upper()]
    except KeyError:
        raise ValueError(f"all_reduce: unknown op {op!r}; use one of "
                         f"{', '.join('ReduceOp.' + o.name for o in ReduceOp)}") from None


def _check_tensor(who: str, tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{who}: expected a tinytensor Tensor, got {type(tensor).__name__}")
    if tensor.grad_fn is not None:
        raise RuntimeError(f"{who}: the tensor was made by an op ({tensor.grad_fn.name()}) and collectives "
                           f"write in place outside autograd; pass tensor.detach() (it shares the memory)")
    if tensor.dtype.name == "bool":
        raise TypeError(f"{who}: bool tensors are not supported; convert with .to(tt.uint8) first")


# Buffers: the bytes a group reads and writes. A NumPy array that is contiguous and writable is used
# as it is; anything else (a strided view, float16, a GPU array under MPI) goes through a staging copy
# that is written back into the tensor's own memory afterwards.

def _buffer(pg, tensor: Tensor):
    """(buf, write_back): the group's buffer for ``tensor`` and how to put the result back."""
    a = tensor.array
    if isinstance(pg, NCCLGroup):
        if tensor.device.split(":")[0] != "cuda":
            raise RuntimeError(f"the nccl backend reduces CuPy tensors; this one is on {tensor.device}. "
                               f"Move it with .to('cuda') or use backend='mpi'")
        buf = a if a.flags.c_contiguous else pg.cupy.ascontiguousarray(a)
        return buf, _bump(tensor) if buf is a else (lambda: _write(tensor, buf))
    if isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable and a.dtype != np.float16:
        return a, _bump(tensor)
    host = np.ascontiguousarray(tensor.backend.to_host(a))
    if host.dtype == np.float16:  # MPI has no half type: reduce in float32
        host = host.astype(np.float32)
    else:
        host = host.copy()
    return host, lambda: _write(tensor, host)


def _bump(tensor: Tensor):
    """The write-back of a buffer that is the tensor's own memory: only its version changes."""
    def write_back():
        tensor._version[0] += 1
    return write_back


def _write(tensor: Tensor, values) -> None:
    """Put ``values`` (a host or device array of the tensor's shape) into the tensor's own memory."""
    if isinstance(values, np.ndarray):
        values = values.astype(tensor.dtype.name, copy=False)
        if not isinstance(tensor.array, np.ndarray):
            values = tensor.backend.from_host(values)
    tensor.backend.setitem(tensor.array, (Ellipsis,), values)
    tensor._version[0] += 1


def _empty_like(pg, tensor: Tensor, shape: tuple, dtype):
    if isinstance(pg, NCCLGroup):
        return pg.cupy.empty(shape, dtype=tensor.array.dtype)
    return np.empty(shape, dtype=dtype)
