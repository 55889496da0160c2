"""How many threads the CPU backend's BLAS may use (PyTorch's ``torch.set_num_threads``)."""
from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits


def set_num_threads(n: int) -> None:
    """Let BLAS/OpenMP use ``n`` threads from now on. Small models multiply small matrices, where
    threads cost more than they give: on a busy 2-core machine one thread trains several times
    faster than two."""
    if int(n) < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    threadpool_limits(int(n))


def get_num_threads() -> int:
    """The largest thread count among the loaded BLAS/OpenMP pools (1 if none is loaded)."""
    return max((p["num_threads"] for p in threadpool_info()), default=1)
