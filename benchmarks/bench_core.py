"""tinytensor core benchmark: attention forward+backward, per-op overhead, GPT and ViT training steps,
peak memory; on the CPU at several thread counts, or on a GPU.

    python benchmarks/bench_core.py [--threads 1,2,all] [--device cpu|cuda] [--repeat 10] [--warmup 3]
                                    [--malloc keep|default|both] [--cases attention,chain,gpt,...]
                                    [--tiny] [--json PATH] [--plot PATH]

Up to three implementations of each case, each timed in a process of its own with the same
environment:

* ``numpy``: a hand-written NumPy forward and backward of the same computation, in place where it
  can be: the floor, with no autograd overhead (attention and the chain; on the CPU only).
* ``torch``: PyTorch eager mode, the same primitives, ``torch.set_num_threads`` = the thread count.
* ``tinytensor``: the same primitives on tinytensor's NumPy backend (CuPy with ``--device cuda``).

Cases: multi-head self-attention (B=16, T=128, d_model=256, 8 heads, float32) without and with a
causal mask; a chain of 2,000 ops on shape-(4,) tensors (per-op cost); a GPT and a ViT training step
(forward, backward, AdamW; benchmarks/_models.py: the same weights and data in both libraries, and the
first step's loss and gradients must agree); the peak memory of the causal attention step and of the
two training steps, measured in a fresh process per implementation.

``--threads`` takes a comma list ("all" = os.cpu_count()); every case runs at every thread count, one
table each, then a scaling table: each library's speed-up from the fewest to the most threads, the
ratio of the two (target >= 0.8), tt/torch time per thread count (target <= 1.0) and peak memory
(target <= 1.2). ``--device cuda`` runs torch and tinytensor on the GPU and synchronises before every
reading of the clock; ``--tiny`` shrinks every size (a smoke run; its times mean nothing); ``--json``
writes every result, ``--plot`` a PNG of each case's time against the thread count.

Where tinytensor's time goes beyond the floor: in attention, every tinytensor op makes a new array
where the floor works in place (scale, mask, softmax backward), masked_fill's backward is one more
pass over the (B, nh, T, T) scores (the floor knows softmax already zeroed them), and the gradients
of q, k, v are copied twice (reshape, then the split's concatenation) where the floor writes them
into one buffer. Per op it is Python: an op is a chain of Python calls (operator, dtype/shape
checks, ``Function.apply``, ``forward``, a new Tensor, the graph node), and its backward runs
Tensor ops through the same machinery, which is what makes ``create_graph=True`` work.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable, NamedTuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _common, and tinytensor from this checkout
import _models  # noqa: E402
from _common import (  # noqa: E402
    BLAS_OVERRIDES,
    blas_summary,
    fmt_mib,
    fmt_ms,
    gpu_pool_growth,
    gpu_summary,
    keep_freed_memory,
    no_sync,
    parse_threads,
    peak_rss_delta,
    peak_traced,
    plot_threads,
    ratio,
    report,
    require_device,
    rss_available,
    run_worker,
    scaling,
    synchronizer,
    table,
    time_it,
    write_json,
)
from _models import host, model_steps  # noqa: E402

ATT = dict(B=16, T=128, C=256, nh=8)  # the attention cases
CHAIN = dict(ops=2000)  # the per-op case
TINY = dict(att=dict(B=2, T=16, C=32, nh=4), chain=dict(ops=40))
IMPLS = ("numpy", "torch", "tinytensor")
CASES = ("attention", "attention-causal", "chain", *_models.CASES)
MEMORY = {"attention-causal": "memory-attention", "gpt": "memory-gpt", "vit": "memory-vit"}  # its worker
MEASURED_BY = {kind: case for case, kind in MEMORY.items()}


def use_tiny_sizes() -> None:
    """--tiny: every case at a toy size (in the parent and in every worker)."""
    ATT.update(TINY["att"])
    CHAIN.update(TINY["chain"])
    _models.use_tiny_sizes()


def impls_of(case: str, device: str) -> tuple[str, ...]:
    """The implementations of ``case``: the NumPy floor only for the hand-written cases on the CPU."""
    return IMPLS if case in ("attention", "attention-causal", "chain") and device == "cpu" else IMPLS[1:]


def attention_inputs(seed: int = 0, shape=None):
    """x (B, T, C), W_qkv (C, 3C), W_o (C, C): float32, the same in every worker."""
    b, t, c = shape or (ATT["B"], ATT["T"], ATT["C"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t, c), dtype=np.float32)
    w_qkv = rng.standard_normal((c, 3 * c), dtype=np.float32) * np.float32(c**-0.5)
    w_o = rng.standard_normal((c, c), dtype=np.float32) * np.float32(c**-0.5)
    return x, w_qkv, w_o


def chain_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(4, dtype=np.float32), rng.uniform(0.5, 1.0, 4).astype(np.float32)


# ---- the NumPy floor ----------------------------------------------------------------------------

def numpy_attention(x, w_qkv, w_o, causal: bool, nh: int):
    """Forward and backward by hand; returns (loss, dx, dW_qkv, dW_o). loss = mean(attn(x) @ W_o)."""
    b, t, c = x.shape
    hs = c // nh
    scale = np.float32(1.0 / math.sqrt(hs))
    qkv = x @ w_qkv  # (B, T, 3C)
    q, k, v = qkv.reshape(b, t, 3, nh, hs).transpose(2, 0, 3, 1, 4)  # each (B, nh, T, hs), views
    p = q @ k.swapaxes(-1, -2)  # (B, nh, T, T)
    p *= scale
    if causal:
        mask = np.triu(np.ones((t, t), dtype=bool), 1)
        np.copyto(p, np.float32(-np.inf), where=mask)
    p -= p.max(axis=-1, keepdims=True)  # softmax, in place
    np.exp(p, out=p)
    p /= p.sum(axis=-1, keepdims=True)
    y = p @ v  # (B, nh, T, hs)
    ym = y.transpose(0, 2, 1, 3).reshape(b * t, c)  # (B*T, C)
    del y
    loss = (ym @ w_o).mean(dtype=np.float32)

    g_out = np.full((b * t, c), 1.0 / (b * t * c), dtype=np.float32)
    dw_o = ym.T @ g_out
    del ym
    dy = (g_out @ w_o.T).reshape(b, t, nh, hs).transpose(0, 2, 1, 3)  # (B, nh, T, hs)
    del g_out
    dqkv = np.empty((b, t, 3, nh, hs), dtype=np.float32)
    dq, dk, dv = dqkv.transpose(2, 0, 3, 1, 4)  # views into dqkv
    dv[...] = p.swapaxes(-1, -2) @ dy
    dp = dy @ v.swapaxes(-1, -2)  # (B, nh, T, T)
    del dy
    s = np.einsum("bhij,bhij->bhi", dp, p)[..., None]  # softmax backward, in place
    dp -= s
    dp *= p  # masked positions have p = 0, so they get no gradient
    dp *= scale
    del p
    dq[...] = dp @ k
    dk[...] = dp.swapaxes(-1, -2) @ q
    del dp, q, k, v, qkv
    dqkv = dqkv.reshape(b * t, 3 * c)
    dw_qkv = x.reshape(b * t, c).T @ dqkv
    dx = (dqkv @ w_qkv.T).reshape(b, t, c)
    return loss, dx, dw_qkv, dw_o


def numpy_chain(x, w, n: int):
    """y = x; repeat (y*w, y+w, tanh(y), y-w); loss = sum(y). Returns (loss, dx, dw)."""
    tape = []
    y = x
    for i in range(n):
        r = i % 4
        if r == 0:
            tape.append(y)
            y = y * w
        elif r == 1:
            y = y + w
        elif r == 2:
            y = np.tanh(y)
            tape.append(y)
        else:
            y = y - w
    loss = y.sum()
    g = np.ones_like(y)
    gw = np.zeros_like(w)
    for i in reversed(range(n)):
        r = i % 4
        if r == 0:
            prev = tape.pop()
            gw = gw + g * prev
            g = g * w
        elif r == 1:
            gw = gw + g
        elif r == 2:
            t = tape.pop()
            g = g * (1.0 - t * t)
        else:
            gw = gw - g
    return loss, g, gw


# ---- PyTorch ----------------------------------------------------------------------------------

def torch_attention(torch, x, w_qkv, w_o, causal: bool, mask, nh: int):
    b, t, c = x.shape
    hs = c // nh
    qkv = x @ w_qkv
    q, k, v = qkv.split(c, dim=-1)
    q = q.view(b, t, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = k.view(b, t, nh, hs).transpose(1, 2)
    v = v.view(b, t, nh, hs).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
    if causal:
        att = att.masked_fill(mask, float("-inf"))
    att = att.softmax(dim=-1)
    y = (att @ v).transpose(1, 2).reshape(b, t, c)
    return (y @ w_o).mean()


def torch_chain(x, w, n: int):
    y = x
    for i in range(n):
        r = i % 4
        y = y * w if r == 0 else y + w if r == 1 else y.tanh() if r == 2 else y - w
    return y.sum()


# ---- tinytensor (the same code as the PyTorch one, tinytensor's names) ----------------------------

def tt_attention(tt, x, w_qkv, w_o, causal: bool, mask, nh: int):
    b, t, c = x.shape
    hs = c // nh
    qkv = x @ w_qkv
    q, k, v = qkv.split(c, dim=-1)
    q = q.view(b, t, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = k.view(b, t, nh, hs).transpose(1, 2)
    v = v.view(b, t, nh, hs).transpose(1, 2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
    if causal:
        att = att.masked_fill(mask, float("-inf"))
    att = att.softmax(dim=-1)
    y = (att @ v).transpose(1, 2).reshape(b, t, c)
    return (y @ w_o).mean()


tt_chain = torch_chain  # the same operators


# ---- workers ----------------------------------------------------------------------------------

class Step(NamedTuple):
    run: Callable  # one forward+backward (and update, for the training steps)
    forward: Callable | None  # the forward alone (None for the NumPy floor, which fuses the two)
    result: Callable  # (loss, *grads) of one step, to check that the implementations agree
    sync: Callable  # waits for the device's queued work


def make_step(impl: str, case: str, threads: int, device: str = "cpu", shape=None) -> Step:
    """One step of ``case``; ``shape``: (B, T, C) of an attention case, (batch, seq) of a model."""
    if case in _models.CASES:
        (step,), leaves, sync = model_steps(impl, case, threads, device, [shape or _models.full_size(case)])

        def result():  # call it first: the first step starts from the shared weights
            loss = step()
            return (loss.item(),) + tuple(host(leaf.grad) for leaf in leaves)

        return Step(step, step.forward, result, sync)

    causal = case == "attention-causal"
    shape = shape or (ATT["B"], ATT["T"], ATT["C"])
    nh, n_ops = ATT["nh"], CHAIN["ops"]
    if impl == "numpy":
        if case == "chain":
            x, w = chain_inputs()
            run = lambda: numpy_chain(x, w, n_ops)  # noqa: E731
        else:
            x, w_qkv, w_o = attention_inputs(shape=shape)
            run = lambda: numpy_attention(x, w_qkv, w_o, causal, nh)  # noqa: E731
        return Step(run, None, run, no_sync)

    if impl == "torch":
        import torch as lib

        lib.set_num_threads(threads)
        if lib.get_num_interop_threads() != 1:
            lib.set_num_interop_threads(1)
        make = lambda a: lib.from_numpy(a).to(device).requires_grad_()  # noqa: E731
        mask = lib.ones(shape[1], shape[1], dtype=lib.bool, device=device).triu(1)
        forward, chain = torch_attention, torch_chain
    else:
        import tinytensor as lib

        lib.set_num_threads(threads)
        make = lambda a: lib.tensor(a, device=device, requires_grad=True)  # noqa: E731
        mask = lib.triu(lib.ones(shape[1], shape[1], device=device), 1) > 0
        forward, chain = tt_attention, tt_chain
    leaves = [make(a) for a in (chain_inputs() if case == "chain" else attention_inputs(shape=shape))]

    def fwd():
        for leaf in leaves:
            leaf.grad = None
        if case == "chain":
            return chain(*leaves, n_ops)
        return forward(lib, *leaves, causal=causal, mask=mask, nh=nh)

    def run():
        loss = fwd()
        loss.backward()  # as in a training loop: the forward's intermediates are out of scope
        return loss

    def result():
        loss = run()
        return (loss.item(),) + tuple(host(leaf.grad) for leaf in leaves)

    return Step(run, fwd, result, synchronizer(impl, device))


def worker(args) -> None:
    if args.malloc == "keep":
        keep_freed_memory()
    if args.tiny:
        use_tiny_sizes()
    gpu = args.device != "cpu"
    if args.case.startswith("memory-"):
        case = MEASURED_BY[args.case]
        # the first full-size step in this process; a small step first pays for lazy initialisation
        small = (1, 8, ATT["C"]) if case == "attention-causal" else (2, 8)
        make_step(args.worker, case, args.threads, args.device, shape=small).run()
        step = make_step(args.worker, case, args.threads, args.device)
        step.sync()
        if gpu:
            report({"rss": gpu_pool_growth(step.run, args.worker), "traced": None})
            return
        rss = peak_rss_delta(step.run) if rss_available() else None
        traced = peak_traced(step.run) if args.worker != "torch" else None
        report({"rss": rss, "traced": traced})
        return
    step = make_step(args.worker, args.case, args.threads, args.device)
    loss, *grads = step.result()  # the first step: compared between the implementations
    timing = time_it(step.run, warmup=args.warmup, repeat=args.repeat, sync=step.sync)
    if step.forward is not None:
        timing["forward"] = time_it(step.forward, warmup=args.warmup, repeat=args.repeat,
                                    sync=step.sync)["median"]
    if gpu and args.worker != "numpy":
        info = gpu_summary(args.worker)
    else:
        info = blas_summary() + (_torch_blas() if args.worker == "torch" else "")
    report({**timing, "loss": float(loss), "grad_sums": [float(np.abs(g).sum()) for g in grads],
            "blas": info})


def _torch_blas() -> str:
    """PyTorch links its BLAS (MKL) statically, so threadpoolctl cannot see it: ask torch."""
    import torch

    mkl = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    return f"; torch: {mkl}, {torch.backends.cpu.get_cpu_capability()}, x{torch.get_num_threads()}"


# ---- the tables ---------------------------------------------------------------------------------

def measure(args, malloc: str, cases: list[str], threads: list[int]) -> dict:
    """{(case or memory worker, impl, threads): what the worker reported}."""
    here = os.path.abspath(__file__)
    common = ["--repeat", str(args.repeat), "--warmup", str(args.warmup), "--malloc", malloc,
              "--device", args.device] + (["--tiny"] if args.tiny else [])
    kinds = list(cases) + [MEMORY[c] for c in cases if c in MEMORY]
    out = {}
    for n in threads:
        for kind in kinds:
            for impl in impls_of(MEASURED_BY.get(kind, kind), args.device):
                print(f"  {malloc:7s} threads {n:<3d} {kind:16s} {impl} ...", file=sys.stderr, flush=True)
                out[kind, impl, n] = run_worker(
                    here, ["--worker", impl, "--case", kind, "--threads", str(n), *common], n)
    return out


def check_agreement(res: dict, case: str, n: int) -> str:
    """Do the implementations compute the same loss and gradients (to float32 rounding)?"""
    ref_impl = "numpy" if (case, "numpy", n) in res else "torch"
    ref = res[case, ref_impl, n]
    for impl in ("torch", "tinytensor"):
        if impl == ref_impl:
            continue
        r = res[case, impl, n]
        vals = [(r["loss"], ref["loss"])] + list(zip(r["grad_sums"], ref["grad_sums"]))
        for a, b in vals:
            if not math.isclose(a, b, rel_tol=2e-3, abs_tol=1e-6):
                return f"MISMATCH ({impl}: {a:.6g} vs {b:.6g})"
    return "agree"


LABELS = {
    "attention": "attention fwd+bwd",
    "attention-causal": "attention fwd+bwd, causal",
    "chain": "chain of {ops} ops, (4,): per op",
    "gpt": "GPT train step (AdamW)",
    "vit": "ViT train step (AdamW)",
}


def label(case: str) -> str:
    return LABELS[case].format(ops=CHAIN["ops"])


def render(res: dict, cases: list[str], n: int, device: str) -> str:
    def get(case, impl, key="median"):
        return res[case, impl, n][key] if (case, impl, n) in res else None

    def us(v):
        return f"{v:.2f} us" if v is not None else "-"

    def mib(v):
        return fmt_mib(v) if v is not None else "-"

    rows = []
    for case in cases:
        if case != "chain":
            f, p, t = (get(case, i) for i in IMPLS)
            target = "tt <= torch, tt <= 1.0x floor" if case.startswith("attention") else "tt <= torch"
            rows.append([label(case), fmt_ms(f) if f is not None else "-", fmt_ms(p), fmt_ms(t), ratio(t, f),
                         ratio(t, p), target, check_agreement(res, case, n)])
            continue
        f, p, t = (get(case, i) * 1e6 / CHAIN["ops"] if get(case, i) is not None else None for i in IMPLS)
        rows.append([label(case), us(f), us(p), us(t), ratio(t, f), ratio(t, p), "tt <= 0.8x torch",
                     check_agreement(res, case, n)])
        pf, tf = (get(case, i, "forward") * 1e6 / CHAIN["ops"] for i in ("torch", "tinytensor"))
        rows.append(["  of which forward", "-", us(pf), us(tf), "-", ratio(tf, pf), "", ""])
        rows.append(["  of which backward", "-", us(p - pf), us(t - tf), "-", ratio(t - tf, p - pf), "", ""])
        if f is not None:
            rows.append(["  overhead over the floor", "-", us(p - f), us(t - f), "-", ratio(t - f, p - f),
                         "", ""])
    for case in cases:
        if case not in MEMORY:
            continue
        kind = MEMORY[case]
        what = "attention" if case == "attention-causal" else label(case).split(" train")[0]
        f, p, t = (get(kind, i, "rss") for i in IMPLS)
        ft, tt_ = get(kind, "numpy", "traced"), get(kind, "tinytensor", "traced")
        if tt_ is not None:
            rows.append([f"{what} peak memory (tracemalloc)", mib(ft), "n/a", mib(tt_), ratio(tt_, ft), "-",
                         "tt <= 1.2x floor" if ft is not None else "", ""])
        if t is not None:
            how = "RSS growth" if device == "cpu" else "GPU pool growth"
            rows.append([f"{what} peak memory ({how})", mib(f), mib(p), mib(t), ratio(t, f), ratio(t, p),
                         "tt <= 1.2x torch", ""])
    headers = ["case", "numpy floor", "torch", "tinytensor", "tt/floor", "tt/torch", "target", "results"]
    return table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1",
                        help="comma-separated thread counts, 'all' = os.cpu_count() (e.g. 1,2,all): "
                             "BLAS/OpenMP/torch/tinytensor threads of every worker, one table each")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where torch and tinytensor run (cuda: tinytensor on CuPy, torch on CUDA)")
    parser.add_argument("--repeat", type=int, default=10, help="timed repeats (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--malloc", choices=("keep", "default", "both"), default="keep",
                        help="keep: glibc keeps freed memory for reuse (as tinytensor's NumPy backend "
                             "does); default: glibc's defaults; both: one table each")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, some of {','.join(CASES)} (default: all)")
    parser.add_argument("--tiny", action="store_true",
                        help="toy sizes: a smoke run of the script (its times mean nothing)")
    parser.add_argument("--json", metavar="PATH", help="also write every result to this JSON file")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG of each case's time against the threads")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)

    try:
        threads = parse_threads(args.threads)
    except ValueError as e:
        parser.error(str(e))
    wanted = [c for c in args.cases.split(",") if c]
    unknown = [c for c in wanted if c not in CASES]
    if unknown or not wanted:
        parser.error(f"--cases: unknown {unknown}; expected some of {','.join(CASES)}")
    cases = [c for c in CASES if c in wanted]  # in the tables' order
    require_device(args.device, "bench_core.py")
    if args.tiny:
        use_tiny_sizes()

    mallocs = ("keep", "default") if args.malloc == "both" else (args.malloc,)
    results = {m: measure(args, m, cases, threads) for m in mallocs}
    first = results[mallocs[0]]
    a = ATT
    print(f"tinytensor core benchmark on {args.device}: attention B={a['B']} T={a['T']} d_model={a['C']} "
          f"heads={a['nh']} float32; chain of {CHAIN['ops']} ops"
          + (" [--tiny: toy sizes, the times mean nothing]" if args.tiny else ""))
    for line in _models.describe():
        print(line)
    was_set = ", ".join(f"{v}={os.environ[v]}" for v in BLAS_OVERRIDES if v in os.environ)
    print(f"threads: {','.join(map(str, threads))}, the same in every worker (OMP/MKL/OPENBLAS_NUM_THREADS, "
          f"torch.set_num_threads, tt.set_num_threads); {'/'.join(BLAS_OVERRIDES)} unset in the workers "
          f"({was_set or 'none was set here'})")
    for impl in IMPLS:
        key = next(((c, impl, threads[0]) for c in cases if (c, impl, threads[0]) in first), None)
        if key is not None:
            what = "GPU" if args.device != "cpu" and impl != "numpy" else "BLAS"
            print(f"{what} ({impl} worker): {first[key]['blas']}")
    print(f"times: median of {args.repeat} after {args.warmup} warm-up steps; each implementation, case and "
          f"thread count in its own process; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if args.device == "cpu":
        print("memory: peak during the first full-size step in a fresh process, above the memory live "
              "before it; tracemalloc sees NumPy buffers only (not torch's allocator), RSS growth sees all")
    else:
        print("memory: growth of the GPU memory pool (torch.cuda.memory_reserved, CuPy's default pool) "
              "during the first full-size step in a fresh process")
    records = {}
    for m in mallocs:
        how = ("glibc keeps freed memory (mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=max) in every "
               "worker" if m == "keep" else "glibc malloc defaults in every worker")
        res = results[m]
        for n in threads:
            print(f"\nthreads: {n}; malloc: {how}")
            print(render(res, cases, n, args.device))
        times = {(c, i, n): res[c, i, n]["median"] for c in cases for i in IMPLS[1:] for n in threads}
        peaks = {(c, i, n): res[MEMORY[c], i, n]["rss"] for c in cases if c in MEMORY
                 for i in IMPLS[1:] for n in threads}
        headers, rows, records[m] = scaling(times, peaks, [(c, label(c)) for c in cases], threads)
        print(f"\nscaling, threads {threads[0]} -> {threads[-1]}; malloc: {m}")
        print(table(headers, rows))

    if args.plot:
        title = (f"bench_core.py on {args.device}: median of {args.repeat}; {os.cpu_count()} cores"
                 + (" [--tiny]" if args.tiny else ""))
        panels = []
        for c in cases:
            scale, unit = (1e6 / CHAIN["ops"], "us per op") if c == "chain" else (1e3, "ms")
            series = {i: [first[c, i, n]["median"] * scale for n in threads]
                      for i in ("tinytensor", "torch", "numpy") if i in impls_of(c, args.device)}
            panels.append((label(c), unit, series))
        plot_threads(args.plot, title, panels, threads,
                     watermark="--tiny: toy sizes, not a measurement" if args.tiny else None)
        print(f"\nplot: {args.plot}")
    if args.json:
        write_json(args.json, {
            "script": "bench_core.py", "device": args.device, "threads": threads, "tiny": args.tiny,
            "settings": {"repeat": args.repeat, "warmup": args.warmup, "cpu_count": os.cpu_count(),
                         "load": os.getloadavg()[0]},
            "sizes": {"attention": ATT, "chain": CHAIN, "gpt": _models.GPT, "vit": _models.VIT},
            "results": [{"malloc": m, "case": c, "impl": i, "threads": n, **v}
                        for m in mallocs for (c, i, n), v in results[m].items()],
            "scaling": records,
        })
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()
