"""tinytensor core benchmark: attention forward+backward, per-op overhead, peak memory.

    python benchmarks/bench_core.py [--threads 1] [--repeat 10] [--malloc keep|default|both]

Three implementations of each case, each timed in a process of its own with the same environment:

* ``numpy``: a hand-written NumPy forward and backward of the same computation, in place where it
  can be: the floor, with no autograd overhead.
* ``torch``: PyTorch on the CPU, the same primitives, ``torch.set_num_threads`` = ``--threads``.
* ``tinytensor``: the same primitives on tinytensor's NumPy backend.

Cases: multi-head self-attention (B=16, T=128, d_model=256, 8 heads, float32) without and with a
causal mask; a chain of 2,000 ops on shape-(4,) tensors (per-op cost); the attention step's peak
memory, measured in a fresh process per implementation.

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
from _common import (  # noqa: E402
    BLAS_OVERRIDES,
    blas_summary,
    fmt_mib,
    fmt_ms,
    keep_freed_memory,
    peak_rss_delta,
    peak_traced,
    report,
    rss_available,
    run_worker,
    table,
    time_it,
)

B, T, C, NH = 16, 128, 256, 8
CHAIN_OPS = 2000
IMPLS = ("numpy", "torch", "tinytensor")


def attention_inputs(seed: int = 0, shape=(B, T, C)):
    """x (B, T, C), W_qkv (C, 3C), W_o (C, C): float32, the same in every worker."""
    b, t, c = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, t, c), dtype=np.float32)
    w_qkv = rng.standard_normal((c, 3 * c), dtype=np.float32) * np.float32(c**-0.5)
    w_o = rng.standard_normal((c, c), dtype=np.float32) * np.float32(c**-0.5)
    return x, w_qkv, w_o


def chain_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(4, dtype=np.float32), rng.uniform(0.5, 1.0, 4).astype(np.float32)


# ---- the NumPy floor ----------------------------------------------------------------------------

def numpy_attention(x, w_qkv, w_o, causal: bool, nh: int = NH):
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


def numpy_chain(x, w, n: int = CHAIN_OPS):
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

def torch_attention(torch, x, w_qkv, w_o, causal: bool, mask=None, nh: int = NH):
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


def torch_chain(x, w, n: int = CHAIN_OPS):
    y = x
    for i in range(n):
        r = i % 4
        y = y * w if r == 0 else y + w if r == 1 else y.tanh() if r == 2 else y - w
    return y.sum()


# ---- tinytensor (the same code as the PyTorch one, tinytensor's names) ----------------------------

def tt_attention(tt, x, w_qkv, w_o, causal: bool, mask=None, nh: int = NH):
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
    run: Callable  # one forward+backward
    forward: Callable | None  # the forward alone (None for the NumPy floor, which fuses the two)
    result: Callable  # (loss, *grads) of one step, to check that the implementations agree


def make_step(impl: str, case: str, threads: int, shape=(B, T, C)) -> Step:
    causal = case == "attention-causal"
    if impl == "numpy":
        if case == "chain":
            x, w = chain_inputs()
            run = lambda: numpy_chain(x, w)  # noqa: E731
        else:
            x, w_qkv, w_o = attention_inputs(shape=shape)
            run = lambda: numpy_attention(x, w_qkv, w_o, causal)  # noqa: E731
        return Step(run, None, run)

    if impl == "torch":
        import torch as lib

        lib.set_num_threads(threads)
        if lib.get_num_interop_threads() != 1:
            lib.set_num_interop_threads(1)
        make = lambda a: lib.from_numpy(a).requires_grad_()  # noqa: E731
        mask = lib.ones(shape[1], shape[1], dtype=lib.bool).triu(1)
        forward = torch_attention
    else:
        import tinytensor as lib

        make = lambda a: lib.tensor(a, requires_grad=True)  # noqa: E731
        mask = lib.triu(lib.ones(shape[1], shape[1]), 1) > 0
        forward = tt_attention
    leaves = [make(a) for a in (chain_inputs() if case == "chain" else attention_inputs(shape=shape))]

    def fwd():
        for leaf in leaves:
            leaf.grad = None
        if case == "chain":
            return torch_chain(*leaves) if impl == "torch" else tt_chain(*leaves)
        return forward(lib, *leaves, causal=causal, mask=mask)

    def run():
        loss = fwd()
        loss.backward()  # as in a training loop: the forward's intermediates are out of scope
        return loss

    def result():
        loss = run()
        return (loss.item(),) + tuple(leaf.grad.numpy() for leaf in leaves)

    return Step(run, fwd, result)


def worker(args) -> None:
    if args.malloc == "keep":
        keep_freed_memory()
    if args.case == "memory":
        # the first full-size step in this process; a tiny step first pays for lazy initialisation
        make_step(args.worker, "attention-causal", args.threads, shape=(1, 8, 64)).run()
        run = make_step(args.worker, "attention-causal", args.threads).run
        rss = peak_rss_delta(run) if rss_available() else None
        traced = peak_traced(run) if args.worker != "torch" else None
        report({"rss": rss, "traced": traced})
        return
    step = make_step(args.worker, args.case, args.threads)
    timing = time_it(step.run, warmup=args.warmup, repeat=args.repeat)
    if step.forward is not None:
        timing["forward"] = time_it(step.forward, warmup=args.warmup, repeat=args.repeat)["median"]
    loss, *grads = step.result()
    report({
        **timing, "loss": float(loss), "grad_sums": [float(np.abs(g).sum()) for g in grads],
        "blas": blas_summary() + (_torch_blas() if args.worker == "torch" else ""),
    })


def _torch_blas() -> str:
    """PyTorch links its BLAS (MKL) statically, so threadpoolctl cannot see it: ask torch."""
    import torch

    mkl = "MKL" if torch.backends.mkl.is_available() else "no MKL"
    return f"; torch: {mkl}, {torch.backends.cpu.get_cpu_capability()}, x{torch.get_num_threads()}"


# ---- the table ----------------------------------------------------------------------------------

def measure(args, malloc: str) -> dict:
    here = os.path.abspath(__file__)
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat), "--warmup", str(args.warmup),
              "--malloc", malloc]
    out = {}
    for case in ("attention", "attention-causal", "chain", "memory"):
        for impl in IMPLS:
            print(f"  {malloc:7s} {case:16s} {impl} ...", file=sys.stderr, flush=True)
            out[case, impl] = run_worker(here, ["--worker", impl, "--case", case, *common], args.threads)
    return out


def check_agreement(res: dict, case: str) -> str:
    """Do the three implementations compute the same loss and gradients (to float32 rounding)?"""
    ref = res[case, "numpy"]
    for impl in ("torch", "tinytensor"):
        r = res[case, impl]
        vals = [(r["loss"], ref["loss"])] + list(zip(r["grad_sums"], ref["grad_sums"]))
        for a, b in vals:
            if not math.isclose(a, b, rel_tol=2e-3, abs_tol=1e-6):
                return f"MISMATCH ({impl}: {a:.6g} vs {b:.6g})"
    return "agree"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def render(res: dict, malloc: str, args) -> str:
    rows = []
    for case, label in (("attention", "attention fwd+bwd"),
                        ("attention-causal", "attention fwd+bwd, causal")):
        f, p, t = (res[case, i]["median"] for i in IMPLS)
        rows.append([label, fmt_ms(f), fmt_ms(p), fmt_ms(t), ratio(t, f), ratio(t, p),
                     "tt <= torch, tt <= 1.0x floor", check_agreement(res, case)])
    f, p, t = (res["chain", i]["median"] * 1e6 / CHAIN_OPS for i in IMPLS)
    rows.append([f"chain of {CHAIN_OPS} ops, (4,): per op", f"{f:.2f} us", f"{p:.2f} us", f"{t:.2f} us",
                 ratio(t, f), ratio(t, p), "tt <= 0.8x torch", check_agreement(res, "chain")])
    pf, tf = (res["chain", i]["forward"] * 1e6 / CHAIN_OPS for i in ("torch", "tinytensor"))
    rows.append(["  of which forward", "-", f"{pf:.2f} us", f"{tf:.2f} us", "-", ratio(tf, pf), "", ""])
    rows.append(["  of which backward", "-", f"{p - pf:.2f} us", f"{t - tf:.2f} us", "-",
                 ratio(t - tf, p - pf), "", ""])
    rows.append(["  overhead over the floor", "-", f"{p - f:.2f} us", f"{t - f:.2f} us", "-",
                 ratio(t - f, p - f), "", ""])
    mem = {i: res["memory", i] for i in IMPLS}
    f, t = mem["numpy"]["traced"], mem["tinytensor"]["traced"]
    rows.append(["attention peak memory (tracemalloc)", fmt_mib(f), "n/a", fmt_mib(t), ratio(t, f),
                 "-", "tt <= 1.2x floor", ""])
    if mem["numpy"]["rss"] is not None:
        rows.append(["attention peak memory (RSS growth)", *(fmt_mib(mem[i]["rss"]) for i in IMPLS),
                     ratio(mem["tinytensor"]["rss"], mem["numpy"]["rss"]),
                     ratio(mem["tinytensor"]["rss"], mem["torch"]["rss"]), "", ""])
    headers = ["case", "numpy floor", "torch cpu", "tinytensor", "tt/floor", "tt/torch", "target", "results"]
    return table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads for every worker")
    parser.add_argument("--repeat", type=int, default=10, help="timed repeats (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--malloc", choices=("keep", "default", "both"), default="keep",
                        help="keep: glibc keeps freed memory for reuse (as tinytensor's NumPy backend "
                             "does); default: glibc's defaults; both: one table each")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    mallocs = ("keep", "default") if args.malloc == "both" else (args.malloc,)
    results = {m: measure(args, m) for m in mallocs}
    first = results[mallocs[0]]
    print(f"tinytensor core benchmark: B={B} T={T} d_model={C} heads={NH} float32; chain of {CHAIN_OPS} ops")
    was_set = ", ".join(f"{v}={os.environ[v]}" for v in BLAS_OVERRIDES if v in os.environ)
    print(f"threads: {args.threads} for every worker (OMP/MKL/OPENBLAS_NUM_THREADS, torch.set_num_threads); "
          f"{'/'.join(BLAS_OVERRIDES)} unset in the workers ({was_set or 'none was set here'})")
    print(f"BLAS (numpy worker): {first['attention', 'numpy']['blas']}")
    print(f"BLAS (torch worker): {first['attention', 'torch']['blas']}")
    print(f"times: median of {args.repeat} after {args.warmup} warm-up steps; each implementation in its "
          f"own process; load average {os.getloadavg()[0]:.2f}")
    print("memory: peak during the first full-size step in a fresh process, above the memory live "
          "before it; tracemalloc sees NumPy buffers only (not torch's allocator), RSS growth sees all")
    for m in mallocs:
        how = ("glibc keeps freed memory (mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=max) in every "
               "worker" if m == "keep" else "glibc malloc defaults in every worker")
        print(f"\nmalloc: {how}")
        print(render(results[m], m, args))


if __name__ == "__main__":
    main()
