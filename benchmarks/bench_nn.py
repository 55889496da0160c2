"""tinytensor_nn benchmark: training steps of a Transformer encoder, a GPT and a ViT, and MultiheadAttention,
against PyTorch eager mode, on the CPU at several thread counts or on a GPU.

    python benchmarks/bench_nn.py [--threads 1,2,all] [--device cpu|cuda] [--repeat 10] [--warmup 3]
                                  [--rounds 3] [--malloc keep|default] [--cases gpt,vit,...] [--tiny]
                                  [--json PATH] [--plot PATH]

Cases (float32, batch_first, dropout 0, the same weights and data in both implementations):

* ``encoder``: one training step (forward, backward, Adam) of a 2-layer TransformerEncoder (d_model 128,
  4 heads, dim_feedforward 512, ReLU, post-norm: PyTorch's defaults) with a linear head to 32 classes and
  cross-entropy over every token; batch 32, sequence 64.
* ``encoder-gelu``: the same with GELU and norm_first=True (the ViT layer).
* ``mha``: MultiheadAttention self-attention forward and backward (B=16, T=128, d=256, 8 heads,
  need_weights=False) with a fixed random upstream gradient.
* ``gpt``: a training step (forward, backward, AdamW) of tinytensor_nn.GPT (4 layers, 4 heads, d_model 128,
  block 64, vocabulary 65, batch 16, rotary positions) against the same model written with torch.nn
  primitives (benchmarks/_models.py, _torch_models.py).
* ``vit``: the same for tinytensor_nn.VisionTransformer (32x32x3 images, patch 4, dim 128, depth 4,
  4 heads, batch 32).

Each (case, implementation, thread count) runs in a process of its own with the same environment and
thread count (benchmarks/_common.py); the timing workers run ``--rounds`` times, alternating the
implementations, and each one's best median is reported (the load of a shared machine comes and goes).
``--threads`` takes a comma list ("all" = os.cpu_count()): one table per thread count, then the scaling
table (each library's speed-up from the fewest to the most threads, the ratio of the two, tt/torch time
per thread count, the peak memory ratio, against the project's targets). A second table per thread
count splits the step into forward, backward and optimizer update. Peak memory is measured in another
fresh process per implementation: the RSS growth during the first full-size step, after a small step
has paid for lazy initialisation (and created the optimizer's state), and for tinytensor also the
NumPy buffers tracemalloc sees; on a GPU, the growth of the allocator's memory pool. The first step of
both implementations starts from the same weights: its loss and gradients must agree (the "first step"
column).

``--device cuda`` runs both libraries on the GPU (tinytensor through CuPy), synchronising before every
reading of the clock; ``--tiny`` shrinks every size to check the plumbing (its times mean nothing);
``--json`` writes every result, ``--plot`` a PNG of each case's step time against the thread count.
"""
from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _common, and tinytensor from this checkout
import _models  # noqa: E402
from _common import (  # noqa: E402
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
    table,
    time_it,
    write_json,
)
from _models import Step, host, library, load_weights, model_steps, param_value  # noqa: E402, F401

ENC = dict(d_model=128, nhead=4, dim_feedforward=512, layers=2, batch=32, seq=64, classes=32)
MHA = dict(batch=16, seq=128, d_model=256, nhead=8)
TINY = {"encoder": dict(d_model=16, nhead=2, dim_feedforward=32, layers=1, batch=2, seq=8, classes=8),
        "mha": dict(batch=2, seq=8, d_model=16, nhead=2)}
CASES = ("encoder", "encoder-gelu", "mha", *_models.CASES)
IMPLS = ("torch", "tinytensor")
SMALL_SIZE = (2, 8)  # (batch, seq) of the warm-up step before a memory measurement


def use_tiny_sizes() -> None:
    """--tiny: every case at a toy size (in the parent and in every worker)."""
    ENC.update(TINY["encoder"])
    MHA.update(TINY["mha"])
    _models.use_tiny_sizes()


# ---- the same weights and data in every process (param_value, load_weights: _models.py) ----------

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

    def to(self, device):
        self.encoder, self.head = self.encoder.to(device), self.head.to(device)
        return self

    def __call__(self, x):
        return self.head(self.encoder(x))  # (B, T, classes)


def make_steps(impl: str, case: str, threads: int, sizes: list[tuple[int, int]], device: str = "cpu"):
    """(steps, leaves, sync): one Step per (batch, seq) in ``sizes``, all on ONE model (and optimizer);
    ``leaves``: tensors whose gradients are compared between the implementations; ``sync`` waits for
    the device."""
    if case in _models.CASES:
        return model_steps(impl, case, threads, device, sizes)
    lib, nn, F, optim, make, sync = library(impl, threads, device)
    if case == "mha":
        mha = nn.MultiheadAttention(MHA["d_model"], MHA["nhead"], batch_first=True).to(device)
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
        return [s for s, _ in steps], [steps[0][1], mha.in_proj_weight, mha.out_proj.weight], sync

    gelu = case == "encoder-gelu"
    model = EncoderClassifier(nn, "gelu" if gelu else "relu", norm_first=gelu).to(device)
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
            [first.self_attn.in_proj_weight, first.linear1.weight, model.head.weight], sync)


def time_phases(step: Step, repeat: int, sync=no_sync) -> dict:
    """Median seconds of each phase over ``repeat`` steps (``sync()`` before each reading of the clock)."""
    times = {"forward": [], "backward": [], "update": []}
    for _ in range(repeat):
        gc.collect()
        sync()
        t0 = time.perf_counter()
        out = step.forward()
        sync()
        t1 = time.perf_counter()
        step.backward(out)
        sync()
        t2 = time.perf_counter()
        step.update()
        sync()
        t3 = time.perf_counter()
        del out
        for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2)):
            times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def full_size(case: str) -> tuple[int, int]:
    if case in _models.CASES:
        return _models.full_size(case)
    return (MHA["batch"], MHA["seq"]) if case == "mha" else (ENC["batch"], ENC["seq"])


# ---- workers ----------------------------------------------------------------------------------

def worker(args) -> None:
    if args.malloc == "keep":
        keep_freed_memory()
    if args.tiny:
        use_tiny_sizes()
    gpu = args.device != "cpu"
    if args.case.startswith("memory-"):
        case = args.case[len("memory-"):]
        (small, full), _, sync = make_steps(args.worker, case, args.threads, [SMALL_SIZE, full_size(case)],
                                            args.device)
        small()  # lazy initialisation; the optimizer's state and the gradients' buffers
        sync()
        if gpu:
            report({"rss": gpu_pool_growth(full, args.worker), "traced": None})
            return
        rss = peak_rss_delta(full) if rss_available() else None
        traced = peak_traced(full) if args.worker != "torch" else None
        report({"rss": rss, "traced": traced})
        return
    (step,), leaves, sync = make_steps(args.worker, args.case, args.threads, [full_size(args.case)],
                                       args.device)
    loss = step()  # the first step, from the shared weights: its results are compared
    result = {
        "loss": float(loss.detach().abs().sum().item()),
        "grad_sums": [float(np.abs(host(t.grad)).sum()) for t in leaves],
    }
    timing = time_it(step, warmup=args.warmup, repeat=args.repeat, sync=sync)
    timing["phases"] = time_phases(step, args.repeat, sync)
    report({**timing, **result, "blas": gpu_summary(args.worker) if gpu else blas_summary()})


# ---- the tables ---------------------------------------------------------------------------------

def agreement(res: dict, case: str, n: int) -> str:
    """Do both implementations compute the same first step (loss or |output|, |gradients|)?"""
    a, b = res[case, "tinytensor", n], res[case, "torch", n]
    for x, y in zip([a["loss"], *a["grad_sums"]], [b["loss"], *b["grad_sums"]]):
        if not math.isclose(x, y, rel_tol=2e-3, abs_tol=1e-6):
            return f"MISMATCH ({x:.6g} vs {y:.6g})"
    return "agree"


LABELS = {
    "encoder": "encoder train step (relu, post-norm)",
    "encoder-gelu": "encoder train step (gelu, pre-norm)",
    "mha": "MultiheadAttention fwd+bwd",
    "gpt": "GPT train step (AdamW)",
    "vit": "ViT train step (AdamW)",
}


def render(res: dict, cases: list[str], n: int) -> str:
    rows = []
    for case in cases:
        p, t = res[case, "torch", n]["median"], res[case, "tinytensor", n]["median"]
        pm, tm = res["memory-" + case, "torch", n]["rss"], res["memory-" + case, "tinytensor", n]["rss"]
        traced = res["memory-" + case, "tinytensor", n]["traced"]
        rows.append([LABELS[case], fmt_ms(p), fmt_ms(t), ratio(t, p),
                     fmt_mib(pm) if pm is not None else "-", fmt_mib(tm) if tm is not None else "-",
                     ratio(tm, pm), fmt_mib(traced) if traced is not None else "-", agreement(res, case, n)])
    headers = ["case", "torch step", "tt step", "tt/torch", "torch peak", "tt peak", "tt/torch",
               "tt traced", "first step"]
    return table(headers, rows)


def render_phases(res: dict, cases: list[str], n: int) -> str:
    rows = []
    for case in cases:
        p, t = res[case, "torch", n]["phases"], res[case, "tinytensor", n]["phases"]
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
    parser.add_argument("--threads", default="1",
                        help="comma-separated thread counts, 'all' = os.cpu_count() (e.g. 1,2,all): "
                             "BLAS/OpenMP/torch/tinytensor threads of every worker, one table each")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where both libraries run (cuda: tinytensor on CuPy, torch on CUDA)")
    parser.add_argument("--repeat", type=int, default=10, help="timed repeats (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="run every timing worker this many times, alternating the implementations, "
                             "and report each one's best median (a shared machine's load comes and goes)")
    parser.add_argument("--malloc", choices=("keep", "default"), default="keep",
                        help="keep: glibc keeps freed memory for reuse in every worker (see "
                             "NumpyBackend.keep_freed_memory); default: glibc's defaults")
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, some of {','.join(CASES)} (default: all)")
    parser.add_argument("--tiny", action="store_true",
                        help="toy sizes: a smoke run of the script (its times mean nothing)")
    parser.add_argument("--json", metavar="PATH", help="also write every result to this JSON file")
    parser.add_argument("--plot", metavar="PATH",
                        help="write a PNG of each case's step time against the thread count")
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
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown or not cases:
        parser.error(f"--cases: unknown {unknown}; expected some of {','.join(CASES)}")
    require_device(args.device, "bench_nn.py")
    if args.tiny:
        use_tiny_sizes()

    here = os.path.abspath(__file__)
    common = ["--repeat", str(args.repeat), "--warmup", str(args.warmup), "--malloc", args.malloc,
              "--device", args.device] + (["--tiny"] if args.tiny else [])

    def run(kind, impl, n):
        print(f"  threads {n:<3d} {kind:20s} {impl} ...", file=sys.stderr, flush=True)
        return run_worker(here, ["--worker", impl, "--case", kind, "--threads", str(n), *common], n)

    res = {}  # (case, impl, threads) -> what the worker reported
    for r in range(args.rounds):  # alternate the implementations; keep each one's best round
        for n in threads:
            for case in cases:
                for impl in (IMPLS if r % 2 == 0 else IMPLS[::-1]):
                    out = run(case, impl, n)
                    if (case, impl, n) not in res or out["median"] < res[case, impl, n]["median"]:
                        res[case, impl, n] = out
    for _ in range(args.rounds):  # peak memory varies a little between processes: keep the lowest
        for n in threads:
            for case in cases:
                for impl in IMPLS:
                    out, key = run("memory-" + case, impl, n), ("memory-" + case, impl, n)
                    if key not in res or (out["rss"] or 0) < (res[key]["rss"] or 0):
                        res[key] = out

    e, m = ENC, MHA
    gpu = args.device != "cpu"
    print(f"tinytensor_nn benchmark, float32, on {args.device}; threads {','.join(map(str, threads))} "
          f"(OMP/MKL/OPENBLAS_NUM_THREADS, torch.set_num_threads, tt.set_num_threads in every worker)"
          + (" [--tiny: toy sizes, the times mean nothing]" if args.tiny else ""))
    print(f"  encoder: {e['layers']} layers, d_model {e['d_model']}, {e['nhead']} heads, dim_feedforward "
          f"{e['dim_feedforward']}, batch {e['batch']}, seq {e['seq']}, dropout 0, linear head to "
          f"{e['classes']} classes, cross-entropy, Adam")
    print(f"  mha: B={m['batch']} T={m['seq']} d={m['d_model']} heads={m['nhead']}, need_weights=False")
    for line in _models.describe():
        print(line)
    what = "GPU" if gpu else "BLAS"
    print(f"{what} (tinytensor worker): {res[cases[0], 'tinytensor', threads[0]]['blas']}")
    print(f"{what} (torch worker): {res[cases[0], 'torch', threads[0]]['blas']}")
    print(f"times: median of {args.repeat} steps after {args.warmup} warm-up steps, the best of "
          f"{args.rounds} rounds; each implementation, case and thread count in its own process; malloc: "
          f"{args.malloc}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    if gpu:
        print("peak: growth of the GPU memory pool (torch.cuda.memory_reserved, CuPy's default pool) during "
              f"the first full-size step in a fresh process (after a small step), the lowest of "
              f"{args.rounds} processes")
    else:
        print("peak: RSS growth during the first full-size step in a fresh process (after a small step), "
              f"above the memory live before it, the lowest of {args.rounds} processes; tt traced: NumPy "
              "buffers only (tracemalloc)")
    for n in threads:
        print(f"\n== threads: {n} ==")
        print(render(res, cases, n))
        print()
        print(render_phases(res, cases, n))

    times = {(c, i, n): res[c, i, n]["median"] for c in cases for i in IMPLS for n in threads}
    peaks = {(c, i, n): res["memory-" + c, i, n]["rss"] for c in cases for i in IMPLS for n in threads}
    headers, rows, records = scaling(times, peaks, [(c, LABELS[c]) for c in cases], threads)
    print(f"\n== scaling: threads {threads[0]} -> {threads[-1]} ==")
    print(table(headers, rows))

    if args.plot:
        title = (f"bench_nn.py on {args.device}: ms per step, median of {args.repeat}, best of {args.rounds} "
                 f"rounds; {os.cpu_count()} cores" + (" [--tiny]" if args.tiny else ""))
        panels = [(LABELS[c], "ms", {i: [times[c, i, n] * 1e3 for n in threads] for i in IMPLS[::-1]})
                  for c in cases]
        plot_threads(args.plot, title, panels, threads,
                     watermark="--tiny: toy sizes, not a measurement" if args.tiny else None)
        print(f"\nplot: {args.plot}")
    if args.json:
        write_json(args.json, {
            "script": "bench_nn.py", "device": args.device, "threads": threads, "tiny": args.tiny,
            "settings": {"repeat": args.repeat, "warmup": args.warmup, "rounds": args.rounds,
                         "malloc": args.malloc, "cpu_count": os.cpu_count(), "load": os.getloadavg()[0]},
            "sizes": {"encoder": ENC, "mha": MHA, "gpt": _models.GPT, "vit": _models.VIT},
            "results": [{"case": c, "impl": i, "threads": n, **v} for (c, i, n), v in res.items()],
            "scaling": records,
        })
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()
