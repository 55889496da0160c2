"""How many threads the CPU backend uses (PyTorch's ``torch.set_num_threads``).

Two kinds of work share the count: BLAS runs each matrix product on that many threads, and the NumPy
backend's row-parallel kernels (softmax, layer norm, GELU, ...: ``backends/parallel.py``) split their
rows across that many Python threads, since NumPy itself runs every element-wise loop on one core.

The default is what PyTorch picks: ``OMP_NUM_THREADS`` when it is set, else every core this process
may run on.
"""
from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

_threads: int | None = None  # set_num_threads' value; None: the default, read on first use


def default_num_threads() -> int:
    """``OMP_NUM_THREADS`` if it is a positive integer, else the cores this process may run on."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_num_threads(n: int) -> None:
    """Use ``n`` threads from now on: for BLAS and for the NumPy backend's row-parallel kernels."""
    global _threads
    if isinstance(n, bool) or int(n) != n or int(n) < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n!r}")
    _threads = int(n)
    threadpool_limits(_threads)


def get_num_threads() -> int:
    """The number of threads CPU work may use (``set_num_threads``' value, else the default)."""
    global _threads
    if _threads is None:
        _threads = default_num_threads()
    return _threads
