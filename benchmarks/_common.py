"""Helpers shared by the benchmark scripts: worker processes, timing (on the CPU or a GPU), peak memory,
BLAS info, tables, and for a thread sweep the scaling table, a plot and a JSON file.

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
import math
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

def parse_threads(spec: str) -> list[int]:
    """``"1,2,all"`` -> [1, 2, os.cpu_count()]: the thread counts of a sweep, ascending, each once."""
    counts = []
    for word in spec.split(","):
        word = word.strip().lower()
        if not word:
            continue
        n = (os.cpu_count() or 1) if word == "all" else int(word) if word.isdigit() else 0
        if n < 1:
            raise ValueError(f"--threads: expected positive integers or 'all', comma-separated, got {spec!r}")
        if n not in counts:
            counts.append(n)
    if not counts:
        raise ValueError(f"--threads: no thread count in {spec!r}")
    return sorted(counts)


def no_sync() -> None:
    """The CPU's synchronize: nothing is queued."""


def synchronizer(impl: str, device: str):
    """The function that waits for ``impl``'s queued GPU work (``no_sync`` on the CPU): called before the
    clock is read, since GPU kernels run after the Python call that launched them returned."""
    if device == "cpu":
        return no_sync
    if impl == "torch":
        import torch

        return torch.cuda.synchronize
    import tinytensor

    return tinytensor.cuda.synchronize


def time_it(fn, warmup: int = 3, repeat: int = 10, sync=no_sync, number: int = 1) -> dict:
    """Seconds per call of ``fn()``: median and min of ``repeat`` samples after ``warmup`` calls; ``sync()``
    runs before each reading of the clock.

    Each sample times ``number`` calls in a row and is divided by ``number``. The garbage collector runs
    before each sample, so with ``number=1`` every call is timed cold (its allocations fresh); a call
    of ~0.1 ms is better timed warm, as timeit does, with ``number`` well above 1.
    """
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        times.append((time.perf_counter() - t0) / number)
    return {"median": statistics.median(times), "min": min(times), "repeat": repeat}


# ---- devices ----------------------------------------------------------------------------------

def require_device(device: str, script: str) -> None:
    """Exit with a message naming what is missing unless both libraries can run on ``device``."""
    if device == "cpu":
        return
    import tinytensor

    problems = []
    try:
        tinytensor.zeros(1, device=device)
    except Exception as e:  # CuPy missing, no driver or no GPU: the backend's message says which
        problems.append(f"tinytensor cannot use {device!r}: {e}")
    try:
        import torch
    except ImportError:
        problems.append("PyTorch is not installed")
    else:
        if not torch.cuda.is_available():
            problems.append(f"PyTorch {torch.__version__} sees no GPU (torch.cuda.is_available() is False: "
                            "a CPU-only build, or no driver)")
    if problems:
        raise SystemExit(
            f"{script} --device {device}: " + "; ".join(problems) + ". It needs an NVIDIA GPU, CuPy "
            "(pip install -e \".[cuda12]\") and a CUDA build of PyTorch; or run with --device cpu."
        )


def gpu_summary(impl: str) -> str:
    """The GPU and the library versions a cuda worker ran with."""
    if impl == "torch":
        import torch

        return f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}"
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return f"CuPy {cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, {name}"


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


def gpu_pool_growth(fn, impl: str) -> int:
    """Bytes by which the GPU memory pool grows during ``fn()``: ``torch.cuda.memory_reserved()`` for
    PyTorch, CuPy's default pool's ``total_bytes()`` for tinytensor. Both allocators keep what they
    freed, so in a fresh process this is the peak the step needed beyond what was held before."""
    gc.collect()
    if impl == "torch":
        import torch

        torch.cuda.synchronize()
        before = torch.cuda.memory_reserved()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.memory_reserved() - before
    import cupy

    pool = cupy.get_default_memory_pool()
    cupy.cuda.Device().synchronize()
    before = pool.total_bytes()
    fn()
    cupy.cuda.Device().synchronize()
    return pool.total_bytes() - before


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


def ratio(a, b) -> str:
    """``a / b`` as "1.23x", or "-" when either is missing."""
    return f"{a / b:.2f}x" if a is not None and b else "-"


def scaling(times: dict, peaks: dict, cases: list[tuple[str, str]], threads: list[int]) -> tuple:
    """The scaling table of a thread sweep: (headers, rows, records for --json).

    ``times[case, impl, n]``: seconds of one step with n threads; ``peaks[case, impl, n]``: its peak
    bytes (a case without memory numbers is simply absent). For every case: each library's speed-up
    from the fewest to the most threads, the ratio of the two (tinytensor's over torch's, target
    >= 0.8), tinytensor's time over torch's at each thread count (target <= 1.0) and the largest peak
    memory ratio over the thread counts (target <= 1.2).
    """
    lo, hi = threads[0], threads[-1]
    headers = ["case", f"tt {lo}->{hi}", f"torch {lo}->{hi}", "scaling tt/torch (>= 0.8)",
               *(f"time tt/torch @{n} (<= 1.0)" for n in threads), "peak tt/torch (<= 1.2)", "targets"]
    rows, records = [], []
    for case, label in cases:
        t = {n: times.get((case, "tinytensor", n)) for n in threads}
        p = {n: times.get((case, "torch", n)) for n in threads}
        tt_up = t[lo] / t[hi] if t[lo] and t[hi] else None
        torch_up = p[lo] / p[hi] if p[lo] and p[hi] else None
        scale = tt_up / torch_up if tt_up and torch_up else None
        rel = {n: t[n] / p[n] if t[n] and p[n] else None for n in threads}
        mem = [peaks[case, "tinytensor", n] / peaks[case, "torch", n] for n in threads
               if peaks.get((case, "tinytensor", n)) is not None and peaks.get((case, "torch", n))]
        worst_mem = max(mem) if mem else None
        missed = []
        if hi != lo and scale is not None and scale < 0.8:
            missed.append("scaling")
        missed += [f"time@{n}" for n in threads if rel[n] is not None and rel[n] > 1.0]
        if worst_mem is not None and worst_mem > 1.2:
            missed.append("memory")
        speed = lambda x: f"{x:.2f}x" if x is not None and hi != lo else "-"  # noqa: E731
        rows.append([label, speed(tt_up), speed(torch_up), speed(scale),
                     *(f"{rel[n]:.2f}x" if rel[n] is not None else "-" for n in threads),
                     f"{worst_mem:.2f}x" if worst_mem is not None else "-",
                     "missed: " + ", ".join(missed) if missed else "met"])
        records.append({"case": case, "tt_speedup": tt_up, "torch_speedup": torch_up, "scaling_ratio": scale,
                        "time_ratio": {str(n): rel[n] for n in threads}, "peak_ratio": worst_mem,
                        "missed": missed})
    return headers, rows, records


def plot_threads(path: str, title: str, panels: list[tuple[str, str, dict]], threads: list[int],
                 watermark: str | None = None) -> None:
    """A PNG of one small plot per case: its time against the thread count, one line per library.

    ``panels``: (label, unit, {library: [value at each thread count, or None]}); ``watermark``: a
    warning written across the figure (a --tiny run is not a measurement).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows + 0.5), squeeze=False)
    styles = {"tinytensor": dict(color="tab:blue", marker="o"), "torch": dict(color="tab:orange", marker="s"),
              "numpy": dict(color="tab:gray", marker="^", linestyle="--")}
    for ax, (label, unit, series) in zip(axes.flat, panels):
        for lib, values in series.items():
            pts = [(n, v) for n, v in zip(threads, values) if v is not None]
            if pts:
                ax.plot(*zip(*pts), label=lib, **styles.get(lib, {}))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("threads", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_xticks(threads)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    if watermark:
        fig.text(0.5, 0.5, watermark, ha="center", va="center", rotation=20, fontsize=20, color="red",
                 alpha=0.35)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def fmt_mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.1f} MiB"
