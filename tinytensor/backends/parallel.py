"""Row-parallel kernels for the NumPy backend: one kernel, its rows split across threads.

NumPy runs every element-wise loop and reduction on one core, but it lets go of the GIL while it
runs one. A kernel that treats each row on its own (softmax over the last axis, layer norm, GELU,
any element-wise map) can therefore use every core: split the rows into one contiguous block per
thread and call the same NumPy code on each block, writing into its rows of one output array.

    out = np.empty_like(x)
    for_rows(x.shape[0], x.size, lambda rows: softmax_into(x[rows], out[rows]))

Each block is walked in chunks of about ``CHUNK`` elements, so that a kernel of several passes
(max, exp, sum, divide) makes them over memory that is still in the cache.

The kernel's code is the plain NumPy one, so the parallel result is that of the plain kernel on the
whole array: every row is computed by the same operations in the same order. Arrays under
``MIN_PARALLEL`` elements (4 MiB of float32) are done in the calling thread: measured on 2 cores, the
examples' models (attention scores of 86K-262K elements) trained faster without the threads, whose
handoffs and shared memory bandwidth cost more than they save there. ``tinytensor.set_num_threads``
sets the number of threads.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..threads import get_num_threads

MIN_PARALLEL = 1 << 20  # elements: below this one thread does the work (measured: smaller arrays lose)
CHUNK = 1 << 17  # elements per chunk of a thread's block (512 KiB of float32: a core's L2)

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _workers(n: int) -> ThreadPoolExecutor:
    """A pool of ``n`` threads, made again when the thread count changes."""
    global _pool, _pool_size
    if _pool is None or _pool_size != n:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="tinytensor")
        _pool_size = n
    return _pool


def _in_chunks(kernel, start: int, stop: int, step: int) -> None:
    for i in range(start, stop, step):
        kernel(slice(i, min(i + step, stop)))


def for_rows(n_rows: int, size: int, kernel) -> None:
    """Call ``kernel(rows)`` for slices ``rows`` that together cover ``range(n_rows)`` once, in
    chunks of about ``CHUNK`` elements.

    ``size`` is the number of elements the kernel touches (it decides whether threads pay). The
    calling thread does the first block and waits for the others; an exception in any block is
    raised here.
    """
    step = max(1, CHUNK * n_rows // max(size, 1))  # rows per chunk
    _split(n_rows, size, lambda start, stop: _in_chunks(kernel, start, stop, step))


def for_blocks(n: int, size: int, kernel) -> None:
    """Call ``kernel(block)`` once per thread, for slices ``block`` that together cover ``range(n)``:
    for kernels that are already efficient on any number of rows (a stack of matrix products)."""
    _split(n, size, lambda start, stop: kernel(slice(start, stop)))


def _split(n: int, size: int, run) -> None:
    """``run(start, stop)`` for one contiguous block of ``range(n)`` per thread (one block if small)."""
    threads = min(get_num_threads(), n)
    if threads <= 1 or size < MIN_PARALLEL:
        run(0, n)
        return
    bounds = [n * t // threads for t in range(threads + 1)]
    pool = _workers(threads - 1)
    futures = [pool.submit(run, bounds[t], bounds[t + 1]) for t in range(1, threads)]
    try:
        run(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()
