"""Process groups: who moves the bytes of a collective.

A group works on host or device arrays of its own kind and knows nothing of Tensors:

- ``SingleProcess``: a job of one process, needing no MPI. Every collective is the identity.
- ``MPIGroup``: mpi4py's ``COMM_WORLD``, for NumPy arrays (and anything staged through the host).
- ``NCCLGroup``: ``cupyx.distributed``'s NCCL communicator for CuPy arrays, one GPU per rank; MPI
  (when there) for the rest: starting up, barriers and Python objects.

Each has ``rank``, ``size`` and ``allreduce(buf, op)``, ``iallreduce(buf, op)`` (returns a request
with ``Wait()`` and ``Test()``, mpi4py's), ``bcast(buf, src)``, ``allgather(send, recv)``, ``barrier()``,
``allgather_object(obj)`` and ``abort(code)``; ``buf`` is reduced in place.
"""
from __future__ import annotations

import os
import sys

import numpy as np

# Environment variables through which MPI launchers (MPICH/Hydra, Open MPI, PMIx, Slurm) tell a
# process how many ranks the job has.
_LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_size() -> int:
    """The number of ranks an MPI launcher says this job has (1 when not launched by one)."""
    for var in _LAUNCHER_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def import_mpi():
    """mpi4py's MPI module, or None when mpi4py (or the MPI library under it) is missing."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


class Done:
    """A finished request."""

    def Wait(self) -> None:
        return None

    def Test(self) -> bool:
        return True


class SingleProcess:
    """A world of one: every collective leaves its buffers as they are."""

    rank, size, name = 0, 1, "single process"

    def allreduce(self, buf, op: str) -> None:
        return None

    def iallreduce(self, buf, op: str) -> Done:
        return Done()

    def bcast(self, buf, src: int) -> None:
        return None

    def allgather(self, send, recv) -> None:
        recv[0] = send

    def barrier(self) -> None:
        return None

    def allgather_object(self, obj) -> list:
        return [obj]

    def abort(self, code: int) -> None:
        sys.exit(code)


class MPIGroup:
    """COMM_WORLD of mpi4py, on C-contiguous NumPy buffers (the caller stages anything else)."""

    name = "mpi"

    def __init__(self, MPI):
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN, "product": MPI.PROD}

    def allreduce(self, buf: np.ndarray, op: str) -> None:
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])

    def iallreduce(self, buf: np.ndarray, op: str):
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])

    def bcast(self, buf: np.ndarray, src: int) -> None:
        self.comm.Bcast(buf, root=src)

    def allgather(self, send: np.ndarray, recv: np.ndarray) -> None:
        self.comm.Allgather(send, recv)

    def barrier(self) -> None:
        self.comm.Barrier()

    def allgather_object(self, obj) -> list:
        return self.comm.allgather(obj)

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


class NCCLGroup:
    """NCCL over CuPy arrays (one GPU per rank, the GPU of ``cuda:<rank % device count>``); the
    objects, barriers and aborts go through ``host`` (an MPIGroup, or SingleProcess for one rank)."""

    name = "nccl"

    def __init__(self, host):
        import cupy
        from cupyx import distributed

        self.cupy, self.host = cupy, host
        self.rank, self.size = host.rank, host.size
        cupy.cuda.Device(self.rank % cupy.cuda.runtime.getDeviceCount()).use()
        self.comm = distributed.init_process_group(self.size, self.rank, backend="nccl",
                                                   use_mpi=isinstance(host, MPIGroup))

    def allreduce(self, buf, op: str) -> None:
        self.comm.all_reduce(buf, buf, op="prod" if op == "product" else op)

    def iallreduce(self, buf, op: str) -> Done:
        self.allreduce(buf, op)  # queued on the device's stream: the host does not wait for it
        return Done()

    def bcast(self, buf, src: int) -> None:
        self.comm.broadcast(buf, src)

    def allgather(self, send, recv) -> None:
        self.comm.all_gather(send, recv, send.size)

    def barrier(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()
        self.host.barrier()

    def allgather_object(self, obj) -> list:
        return self.host.allgather_object(obj)

    def abort(self, code: int) -> None:
        self.host.abort(code)
