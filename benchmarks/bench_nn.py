"""tinytensor_nn benchmark: a Transformer training step and MultiheadAttention, against PyTorch on the CPU.

    python benchmarks/bench_nn.py [--threads 1] [--repeat 10] [--warmup 3] [--rounds 3]
                                  [--malloc keep|default]

Cases (float32, batch_first, dropout 0, the same weights and data in both implementations):

* ``encoder``: one training step (forward, backward, Adam) of a 2-layer TransformerEncoder (d_model 128,
  4 heads, dim_feedforward 512, ReLU, post-norm: PyTorch's defaults) with a linear head to 32 classes and
  cross-entropy over every token; batch 32, sequence 64.
* ``encoder-gelu``: the same with GELU and norm_first=True (the ViT layer).
* ``mha``: MultiheadAttention self-attention forward and backward (B=16, T=128, d=256, 8 heads,
  need_weights=False) with a fixed random upstream gradient.

Each (case, implementation) runs in a process of its own with the same environment and thread count
(benchmarks/_common.py); the timing workers run ``--rounds`` times, alternating the implementations, and
each one's best median is reported (the load of a shared machine comes and goes). A second table splits
the step into forward, backward and optimizer update. Peak memory is measured in another fresh process
per implementation: the RSS growth during the first full-size step, after a small step has paid for
lazy initialisation (and created Adam's state), and for tinytensor also the NumPy buffers tracemalloc
sees. The first step of both implementations starts from the same weights: its loss and gradients must
agree (the "first step" column).
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _common, and tinytensor from this checkout
from _common import (  # noqa: E402
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

ENC = dict(d_model=128, nhead=4, dim_feedforward=512, layers=2, batch=32, seq=64, classes=32)
MHA = dict(batch=16, seq=128, d_model=256, nhead=8)
CASES = ("encoder", "encoder-gelu", "mha")
IMPLS = ("torch", "tinytensor")
SMALL_SIZE = (2, 8)  # (batch, seq) of the warm-up step before a memory measurement


# ---- the same weights and data in every process -----------------------------------------------

def param_value(name: str, shape: tuple) -> np.ndarray:
    """A deterministic value for the parameter called ``name`` (its state_dict key in both libraries)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if len(shape) > 1:  # a matrix: U(±1/√fan_in)
        bound = 1.0 / math.sqrt(shape[-1])
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    if "norm" in name and name.endswith("weight"):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    return (0.02 * rng.standard_normal(shape)).astype(np.float32)


def load_weights(lib, model, make) -> None:
    """Overwrite every parameter in place with param_value(name); ``make`` turns an array into a
    tensor of ``lib``."""
    with lib.no_grad():
        for name, p in model.named_parameters():
            p.copy_(make(param_value(name, tuple(p.shape))))


def encoder_data(batch: int, seq: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, seq, ENC["d_model"]), dtype=np.float32)
    y = rng.integers(0, ENC["classes"], (batch, seq)).astype(np.int64)
    return x, y


def mha_data(batch: int, seq: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, seq, MHA["d_model"]), dtype=np.float32)
    g = rng.standard_normal((batch, seq, MHA["d_model"]), dtype=np.float32)
    return x, g


# ---- one step in either library (the same code, each library's names) ---------------------------

def build(impl: str, threads: int):
    """(library, nn module, functional, optim, make-tensor) for ``impl``."""
    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != 1:
            torch.set_num_interop_threads(1)
        return torch, torch.nn, torch.nn.functional, torch.optim, torch.from_numpy
    import tinytensor
    import tinytensor_nn

    return tinytensor, tinytensor_nn, tinytensor_nn.functional, tinytensor_nn.optim, tinytensor.tensor


class EncoderClassifier:
    """TransformerEncoder + a linear head; forward(x) -> (B, T, classes) logits."""

    def __init__(self, nn, activation: str, norm_first: bool):
        layer = nn.TransformerEncoderLayer(ENC["d_model"], ENC["nhead"], ENC["dim_feedforward"], dropout=0.0,
                                           activation=activation, batch_first=True, norm_first=norm_first)
        kw = {"enable_nested_tensor": False} if nn.__name__ == "torch.nn" else {}
        self.encoder = nn.TransformerEncoder(layer, ENC["layers"], **kw)
        self.head = nn.Linear(ENC["d_model"], ENC["classes"])

    def named_parameters(self):
        yield from (("encoder." + n, p) for n, p in self.encoder.named_parameters())
        yield from (("head." + n, p) for n, p in self.head.named_parameters())

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def __call__(self, x):
        return self.head(self.encoder(x))  # (B, T, classes)


class Step:
    """One step in three phases: ``forward()`` -> loss (or output), ``backward(out)``, ``update()``.
    Calling it runs all three and returns what forward gave."""

    def __init__(self, forward, backward, update=lambda: None):
        self.forward, self.backward, self.update = forward, backward, update

    def __call__(self):
        out = self.forward()
        self.backward(out)
        self.update()
        return out


def make_steps(impl: str, case: str, threads: int, sizes: list[tuple[int, int]]):
    """(steps, leaves): one Step per (batch, seq) in ``sizes``, all on ONE model (and optimizer);
    ``leaves``: tensors whose gradients are compared between the implementations."""
    lib, nn, F, optim, make = build(impl, threads)
    if case == "mha":
        mha = nn.MultiheadAttention(MHA["d_model"], MHA["nhead"], batch_first=True)
        load_weights(lib, mha, make)
        params = list(mha.parameters())

        def mha_step(batch, seq):
            x_np, g_np = mha_data(batch, seq)
            x, g = make(x_np).requires_grad_(), make(g_np)

            def forward():
                for p in params:
                    p.grad = None
                x.grad = None
                return mha(x, x, x, need_weights=False)[0]  # (B, T, C)

            return Step(forward, lambda y: y.backward(g)), x

        steps = [mha_step(b, t) for b, t in sizes]
        return [s for s, _ in steps], [steps[0][1], mha.in_proj_weight, mha.out_proj.weight]

    gelu = case == "encoder-gelu"
    model = EncoderClassifier(nn, "gelu" if gelu else "relu", norm_first=gelu)
    load_weights(lib, model, make)
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def encoder_step(batch, seq):
        x_np, y_np = encoder_data(batch, seq)
        x, y = make(x_np), make(y_np).reshape(-1)

        def forward():
            opt.zero_grad()
            logits = model(x)  # (B, T, classes)
            return F.cross_entropy(logits.reshape(-1, ENC["classes"]), y)

        return Step(forward, lambda loss: loss.backward(), opt.step)

    first = model.encoder.layers[0]
    return ([encoder_step(b, t) for b, t in sizes],
            [first.self_attn.in_proj_weight, first.linear1.weight, model.head.weight])


def time_phases(step: Step, repeat: int) -> dict:
    """Median seconds of each phase over ``repeat`` steps."""
    times = {"forward": [], "backward": [], "update": []}
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = step.forward()
        t1 = time.perf_counter()
        step.backward(out)
        t2 = time.perf_counter()
        step.update()
        t3 = time.perf_counter()
        del out
        for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def full_size(case: str) -> tuple[int, int]:
    return (MHA["batch"], MHA["seq"]) if case == "mha" else (ENC["batch"], ENC["seq"])


# ---- workers ----------------------------------------------------------------------------------

def worker(args) -> None:
    if args.malloc == "keep":
        keep_freed_memory()
    if args.case.startswith("memory-"):
        case = args.case[len("memory-"):]
        small, full = make_steps(args.worker, case, args.threads, [SMALL_SIZE, full_size(case)])[0]
        small()  # lazy initialisation; Adam's state and the gradients' buffers
        rss = peak_rss_delta(full) if rss_available() else None
        traced = peak_traced(full) if args.worker != "torch" else None
        report({"rss": rss, "traced": traced})
        return
    (step,), leaves = make_steps(args.worker, args.case, args.threads, [full_size(args.case)])
    loss = step()  # the first step, from the shared weights: its results are compared
    result = {
        "loss": float(loss.detach().abs().sum().item()),
        "grad_sums": [float(np.abs(t.grad.numpy()).sum()) for t in leaves],
    }
    timing = time_it(step, warmup=args.warmup, repeat=args.repeat)
    timing["phases"] = time_phases(step, args.repeat)
    report({**timing, **result, "blas": blas_summary()})


# ---- the table ----------------------------------------------------------------------------------

def agreement(res: dict, case: str) -> str:
    """Do both implementations compute the same first step (loss or |output|, |gradients|)?"""
    a, b = res[case, "tinytensor"], res[case, "torch"]
    for x, y in zip([a["loss"], *a["grad_sums"]], [b["loss"], *b["grad_sums"]]):
        if not math.isclose(x, y, rel_tol=2e-3, abs_tol=1e-6):
            return f"MISMATCH ({x:.6g} vs {y:.6g})"
    return "agree"


def ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


LABELS = {
    "encoder": "encoder train step (relu, post-norm)",
    "encoder-gelu": "encoder train step (gelu, pre-norm)",
    "mha": "MultiheadAttention fwd+bwd",
}


def render(res: dict) -> str:
    rows = []
    for case in CASES:
        p, t = res[case, "torch"]["median"], res[case, "tinytensor"]["median"]
        pm, tm = res["memory-" + case, "torch"]["rss"], res["memory-" + case, "tinytensor"]["rss"]
        traced = res["memory-" + case, "tinytensor"]["traced"]
        rows.append([LABELS[case], fmt_ms(p), fmt_ms(t), ratio(t, p),
                     fmt_mib(pm) if pm is not None else "-", fmt_mib(tm) if tm is not None else "-",
                     ratio(tm, pm), fmt_mib(traced), agreement(res, case)])
    headers = ["case", "torch step", "tt step", "tt/torch", "torch peak", "tt peak", "tt/torch",
               "tt traced", "first step"]
    return table(headers, rows)


def render_phases(res: dict) -> str:
    rows = []
    for case in CASES:
        p, t = res[case, "torch"]["phases"], res[case, "tinytensor"]["phases"]
        for phase in ("forward", "backward", "update"):
            if case == "mha" and phase == "update":
                continue
            rows.append([f"{LABELS[case]}: {phase}", fmt_ms(p[phase]), fmt_ms(t[phase]),
                         ratio(t[phase], p[phase])])
    return table(["phase (median, the same worker runs)", "torch", "tt", "tt/torch"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads for every worker")
    parser.add_argument("--repeat", type=int, default=10, help="timed repeats (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="run every timing worker this many times, alternating the implementations, "
                             "and report each one's best median (a shared machine's load comes and goes)")
    parser.add_argument("--malloc", choices=("keep", "default"), default="keep",
                        help="keep: glibc keeps freed memory for reuse in every worker (see "
                             "NumpyBackend.keep_freed_memory); default: glibc's defaults")
    parser.add_argument("--cases", default=",".join(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    here = os.path.abspath(__file__)
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat), "--warmup", str(args.warmup),
              "--malloc", args.malloc]

    def run(kind, impl):
        print(f"  {kind:20s} {impl} ...", file=sys.stderr, flush=True)
        return run_worker(here, ["--worker", impl, "--case", kind, *common], args.threads)

    res = {}
    for r in range(args.rounds):  # alternate the implementations; keep each one's best round
        for case in CASES:
            for impl in (IMPLS if r % 2 == 0 else IMPLS[::-1]):
                out = run(case, impl)
                if (case, impl) not in res or out["median"] < res[case, impl]["median"]:
                    res[case, impl] = out
    for _ in range(args.rounds):  # RSS growth varies a little between processes: keep the lowest
        for case in CASES:
            for impl in IMPLS:
                out, key = run("memory-" + case, impl), ("memory-" + case, impl)
                if key not in res or (out["rss"] or 0) < (res[key]["rss"] or 0):
                    res[key] = out
    e, m = ENC, MHA
    print(f"tinytensor_nn benchmark, float32, threads {args.threads} in every worker "
          f"(OMP/MKL/OPENBLAS_NUM_THREADS, torch.set_num_threads)")
    print(f"  encoder: {e['layers']} layers, d_model {e['d_model']}, {e['nhead']} heads, dim_feedforward "
          f"{e['dim_feedforward']}, batch {e['batch']}, seq {e['seq']}, dropout 0, linear head to "
          f"{e['classes']} classes, cross-entropy, Adam")
    print(f"  mha: B={m['batch']} T={m['seq']} d={m['d_model']} heads={m['nhead']}, need_weights=False")
    print(f"BLAS (tinytensor worker): {res['encoder', 'tinytensor']['blas']}")
    print(f"BLAS (torch worker): {res['encoder', 'torch']['blas']}")
    print(f"times: median of {args.repeat} steps after {args.warmup} warm-up steps, the best of "
          f"{args.rounds} rounds; each implementation and case in its own process; malloc: {args.malloc}; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("peak: RSS growth during the first full-size step in a fresh process (after a small step), above "
          f"the memory live before it, the lowest of {args.rounds} processes; tt traced: NumPy buffers only "
          "(tracemalloc)")
    print()
    print(render(res))
    print()
    print(render_phases(res))


if __name__ == "__main__":
    main()
