"""tinytensor.func benchmark: per-sample gradients, the cost of a jvp, a Hessian; against torch.func.

    python benchmarks/bench_func.py [--threads 1] [--repeat 10]

Each implementation runs in a process of its own with the same environment (benchmarks/_common.py).

* ``per-sample``: the gradient of a cross-entropy loss for each of 64 samples of an MLP
  (256 -> 128 -> 10, float32) through vmap(grad(...)), and the same by a Python loop of grad over
  the samples. tinytensor's vmap takes the targets as probabilities (one-hot): an integer target is
  read directly by cross_entropy, which makes vmap fall back to its loop (tinytensor.func docs).
* ``jvp``: func.jvp of the MLP's logits for a batch of 64 (one forward pass with tangents) against
  the plain forward pass, with a tangent for every weight (a linear layer's tangent is
  dX Wᵀ + X dWᵀ + db: the first layer's input has none, so X dW1ᵀ there, both products in the
  second) and for the input only (dX Wᵀ, one more product per layer): about 2x the forward's
  arithmetic either way, the first layer's product being most of it. These calls take 0.1-0.5 ms,
  so they are timed warm: each sample times ``JVP_NUMBER`` calls in a row (``time_it(number=...)``),
  the three calls' samples taken in turn.
  A third row, the NumPy floor, is the same MLP's forward and its jvp's arithmetic written directly
  in NumPy (same threads): the ratio no implementation on this backend can beat.
* ``hessian``: func.hessian of the loss of a small network (8 -> 6 -> 3, float64) with respect to
  its first weight (48 x 48), against torch.func.hessian.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _common, and tinytensor from this checkout
from _common import fmt_ms, report, run_worker, table, time_it  # noqa: E402

IMPLS = ("tinytensor", "torch")
JVP_NUMBER = 20  # calls per sample in the jvp case (warm timing)
B, D_IN, D_HID, D_OUT = 64, 256, 128, 10


def _data():
    rng = np.random.default_rng(0)
    return dict(
        w1=rng.standard_normal((D_HID, D_IN)).astype(np.float32) * 0.05,
        b1=np.zeros(D_HID, np.float32),
        w2=rng.standard_normal((D_OUT, D_HID)).astype(np.float32) * 0.05,
        b2=np.zeros(D_OUT, np.float32),
        x=rng.standard_normal((B, D_IN)).astype(np.float32),
        y=rng.integers(0, D_OUT, B),
        hw1=rng.standard_normal((6, 8)), hw2=rng.standard_normal((3, 6)), hx=rng.standard_normal((5, 8)),
    )


def _warm(fns: dict, repeat: int) -> dict:
    """Warm timings of the jvp case's calls: ``repeat`` rounds, each timing one sample of
    ``JVP_NUMBER`` calls of every function in turn, so that a busy spell on a shared machine slows
    them alike and their ratios hold; the fastest sample of each ("min"), as timeit, and the median."""
    for fn in fns.values():
        time_it(fn, warmup=3, repeat=1)
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            samples[name].append(time_it(fn, warmup=0, repeat=1, number=JVP_NUMBER)["min"])
    return {name: {"median": statistics.median(t), "min": min(t), "repeat": repeat}
            for name, t in samples.items()}


def _tinytensor(case: str, repeat: int):
    import tinytensor as tt
    from tinytensor import func
    from tinytensor_nn import functional as F

    d = _data()
    p = {k: tt.tensor(d[k]) for k in ("w1", "b1", "w2", "b2")}
    x, y = tt.tensor(d["x"]), tt.tensor(d["y"])
    t = F.one_hot(y, D_OUT).float()

    def logits(p, x):
        return F.linear(F.linear(x, p["w1"], p["b1"]).relu(), p["w2"], p["b2"])

    def loss(p, x, t):
        return F.cross_entropy(logits(p, x.unsqueeze(0)), t.unsqueeze(0))

    if case == "per-sample":
        vmapped = func.vmap(func.grad(loss), in_dims=(None, 0, 0))
        g = func.grad(loss)
        return {"vmap": time_it(lambda: vmapped(p, x, t), repeat=repeat),
                "loop": time_it(lambda: [g(p, x[i], t[i]) for i in range(B)], repeat=max(3, repeat // 3))}
    if case == "jvp":
        tangents, tx = {k: v * 0.1 for k, v in p.items()}, x * 0.1
        return _warm({"forward": lambda: logits(p, x),
                      "jvp": lambda: func.jvp(lambda q: logits(q, x), (p,), (tangents,)),
                      "jvp_x": lambda: func.jvp(lambda x: logits(p, x), (x,), (tx,))}, repeat * 5)
    hw1, hw2, hx = (tt.tensor(d[k]) for k in ("hw1", "hw2", "hx"))
    h = func.hessian(lambda w1: (hx @ w1.mT).tanh().matmul(hw2.mT).log_softmax(-1).sum())
    return {"hessian": time_it(lambda: h(hw1), repeat=repeat)}


def _torch(case: str, repeat: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    d = _data()
    p = {k: torch.tensor(d[k]) for k in ("w1", "b1", "w2", "b2")}
    x, y = torch.tensor(d["x"]), torch.tensor(d["y"])
    F = torch.nn.functional

    def logits(p, x):
        return F.linear(F.linear(x, p["w1"], p["b1"]).relu(), p["w2"], p["b2"])

    def loss(p, x, y):
        return F.cross_entropy(logits(p, x.unsqueeze(0)), y.unsqueeze(0))

    if case == "per-sample":
        vmapped = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
        g = torch.func.grad(loss)
        return {"vmap": time_it(lambda: vmapped(p, x, y), repeat=repeat),
                "loop": time_it(lambda: [g(p, x[i], y[i]) for i in range(B)], repeat=max(3, repeat // 3))}
    if case == "jvp":
        tangents, tx = {k: v * 0.1 for k, v in p.items()}, x * 0.1
        return _warm({"forward": lambda: logits(p, x),
                      "jvp": lambda: torch.func.jvp(lambda q: logits(q, x), (p,), (tangents,)),
                      "jvp_x": lambda: torch.func.jvp(lambda x: logits(p, x), (x,), (tx,))}, repeat * 5)
    hw1, hw2, hx = (torch.tensor(d[k]) for k in ("hw1", "hw2", "hx"))
    h = torch.func.hessian(lambda w1: (hx @ w1.mT).tanh().matmul(hw2.mT).log_softmax(-1).sum())
    return {"hessian": time_it(lambda: h(hw1), repeat=repeat)}


def _numpy_floor(repeat: int):
    """The jvp case written directly in NumPy: the arithmetic alone, what forward mode cannot go below."""
    d = _data()
    w1, b1, w2, b2, x = (d[k] for k in ("w1", "b1", "w2", "b2", "x"))
    dw1, db1, dw2, db2, dx = (v * np.float32(0.1) for v in (w1, b1, w2, b2, x))

    def forward():
        h = x @ w1.T
        h += b1
        y = np.maximum(h, 0) @ w2.T
        y += b2
        return y

    def hidden():  # the forward's first layer, its ReLU and the ReLU's mask
        h = x @ w1.T
        h += b1
        mask = h > 0
        return h * mask, mask

    def jvp_weights():  # dh = x dW1ᵀ + db1, da = dh·mask, dy = da W2ᵀ + a dW2ᵀ + db2
        a, mask = hidden()
        y = a @ w2.T
        y += b2
        dh = x @ dw1.T
        dh += db1
        dy = (dh * mask) @ w2.T
        dy += a @ dw2.T
        dy += db2
        return y, dy

    def jvp_input():  # dh = dX W1ᵀ, da = dh·mask, dy = da W2ᵀ
        a, mask = hidden()
        y = a @ w2.T
        y += b2
        return y, ((dx @ w1.T) * mask) @ w2.T

    return _warm({"forward": forward, "jvp": jvp_weights, "jvp_x": jvp_input}, repeat * 5)


def worker(args) -> None:
    if args.worker == "numpy":
        out = _numpy_floor(args.repeat)
    elif args.worker == "torch":
        out = _torch(args.case, args.repeat, args.threads)
    else:
        out = _tinytensor(args.case, args.repeat)
    report(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads for every worker")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--worker", choices=IMPLS + ("numpy",), help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    here = os.path.abspath(__file__)
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat)]
    res = {(case, impl): run_worker(here, ["--worker", impl, "--case", case, *common], args.threads)
           for case in ("per-sample", "jvp", "hessian") for impl in IMPLS}
    res["jvp", "numpy"] = run_worker(here, ["--worker", "numpy", "--case", "jvp", *common], args.threads)
    ms = {k: {n: v["median"] for n, v in r.items()} for k, r in res.items()}
    print(f"threads: {args.threads} for every worker; median of {args.repeat} runs\n")
    rows = []
    for impl in IMPLS:
        r = ms["per-sample", impl]
        rows.append([impl, fmt_ms(r["vmap"]), fmt_ms(r["loop"]), f"{r['loop'] / r['vmap']:.1f}x"])
    print(f"per-sample gradients, batch {B}, MLP {D_IN}-{D_HID}-{D_OUT} float32")
    print(table(["", "vmap(grad)", "loop of grad", "vmap speed-up"], rows))
    ours, theirs = ms["per-sample", "tinytensor"]["vmap"], ms["per-sample", "torch"]["vmap"]
    print(f"tinytensor vmap(grad) / torch.func vmap(grad): {ours / theirs:.2f}\n")
    rows = []
    for impl, label in (("tinytensor", "tinytensor"), ("torch", "torch.func"), ("numpy", "NumPy floor")):
        r = {n: v["min"] for n, v in res["jvp", impl].items()}  # warm calls: the fastest sample, as timeit
        us = lambda s: f"{s * 1e6:.0f} µs"  # noqa: E731
        rows.append([label, us(r["forward"]), us(r["jvp"]), f"{r['jvp'] / r['forward']:.2f}",
                     us(r["jvp_x"]), f"{r['jvp_x'] / r['forward']:.2f}"])
    print(f"jvp of the MLP's logits, batch {B}: with tangents for every weight, and for the input only "
          f"(warm: the fastest of {args.repeat * 5} samples of {JVP_NUMBER} calls; the NumPy floor is the "
          f"arithmetic alone)")
    print(table(["", "forward", "jvp (weights)", "/ forward", "jvp (input)", "/ forward"], rows))
    ours, theirs = ms["hessian", "tinytensor"]["hessian"], ms["hessian", "torch"]["hessian"]
    print(f"\nhessian (48 x 48) of a small network: tinytensor {fmt_ms(ours)}, torch.func {fmt_ms(theirs)} "
          f"({ours / theirs:.2f}x)")


if __name__ == "__main__":
    main()
