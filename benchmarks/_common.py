"""Helpers shared by the benchmark scripts: worker processes, timing, peak memory, BLAS info, tables.

Every implementation under test runs in a process of its own (``run_worker``), started with the same
environment (``bench_env``): the same thread count for OpenMP, MKL and OpenBLAS, and no
``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` overrides, which pick slower kernels on a current NumPy.
PyTorch and NumPy are never timed in one process: idle torch threads spin and slow both.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
RESULT_PREFIX = "BENCH-RESULT "


# ---- worker processes -------------------------------------------------------------------------

def bench_env(threads: int) -> dict:
    """The environment every worker gets: fixed thread counts, no OpenBLAS kernel overrides."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    for var in THREAD_VARS:
        env[var] = str(threads)
    return env


def run_worker(script: str, args: list[str], threads: int, timeout: float = 900) -> dict:
    """Run ``python script *args`` in a fresh process and return the dict it reported with ``report``."""
    proc = subprocess.run(
        [sys.executable, script, *args], env=bench_env(threads), capture_output=True, text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(
        f"worker {' '.join(args)} failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def report(result: dict) -> None:
    """Called by a worker: hand ``result`` back to ``run_worker`` on stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---- timing -----------------------------------------------------------------------------------

def time_it(fn, warmup: int = 3, repeat: int = 10) -> dict:
    """Seconds per call of ``fn()``: median and min of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median": statistics.median(times), "min": min(times), "repeat": repeat}


# ---- memory -----------------------------------------------------------------------------------

def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def rss_available() -> bool:
    """Whether the peak resident set size can be reset (/proc/self/clear_refs, Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _proc_status_kib("VmHWM")
        return True
    except OSError:
        return False


def peak_rss_delta(fn) -> int:
    """Bytes by which the peak resident set size during ``fn()`` exceeds the resident size before it.

    Counts every allocator (NumPy, PyTorch's, Python's). Run it on the first call in a fresh process:
    later calls reuse memory the allocator kept, which no longer shows as growth.
    """
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _proc_status_kib("VmRSS")
    fn()
    return (_proc_status_kib("VmHWM") - before) * 1024


def peak_traced(fn) -> int:
    """Peak bytes allocated during ``fn()`` above what was live before, as tracemalloc sees it.

    NumPy reports its array buffers to tracemalloc, so this is exact for NumPy data; PyTorch's
    allocator is invisible to it.
    """
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - base


# ---- allocator and BLAS -----------------------------------------------------------------------

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> bool:
    """Ask glibc malloc to keep freed memory for reuse instead of returning it to the OS.

    Large buffers (over 128 KiB by default) are mmap'ed and unmapped on free; the next step faults
    the pages in again. Raising the mmap threshold to its maximum (32 MiB on 64-bit) and never
    trimming the heap lets the same memory be reused from step to step. Returns False off glibc.
    """
    path = ctypes.util.find_library("c")
    if path is None or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(path)
        ok = libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
        ok &= libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):
        return False
    return bool(ok)


def blas_summary() -> str:
    """Which BLAS libraries are loaded, their kernel ('architecture') and thread count."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = []
    for info in threadpool_info():
        arch = info.get("architecture") or info.get("threading_layer") or ""
        version = info.get("version") or ""
        parts.append(f"{info['internal_api']} {version} {arch} x{info['num_threads']}".replace("  ", " "))
    return "; ".join(parts) or "none found"


# ---- output -----------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A plain-text table; ``align`` is one of 'l'/'r' per column (default: first left, rest right)."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align))

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def fmt_mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MiB"
