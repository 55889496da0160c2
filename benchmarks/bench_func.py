"""tinytensor.func benchmark: per-sample gradients, the cost of a jvp, a Hessian; against torch.func.

    python benchmarks/bench_func.py [--threads 1] [--repeat 10]

Each implementation runs in a process of its own with the same environment (benchmarks/_common.py).

* ``per-sample``: the gradient of a cross-entropy loss for each of 64 samples of an MLP
  (256 -> 128 -> 10, float32) through vmap(grad(...)), and the same by a Python loop of grad over
  the samples. tinytensor's vmap takes the targets as probabilities (one-hot): an integer target is
  read directly by cross_entropy, which makes vmap fall back to its loop (tinytensor.func docs).
* ``jvp``: func.jvp of the MLP's logits for a batch of 64 (one forward pass with tangents) against
  the plain forward pass, with a tangent for every weight (each linear layer's tangent then takes
  two more products, dX Wᵀ and X dWᵀ: about 3x the forward's work) and for the input only (one
  more product per layer: about 2x).
* ``hessian``: func.hessian of the loss of a small network (8 -> 6 -> 3, float64) with respect to
  its first weight (48 x 48), against torch.func.hessian.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _common, and tinytensor from this checkout
from _common import fmt_ms, report, run_worker, table, time_it  # noqa: E402

IMPLS = ("tinytensor", "torch")
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
        return {"forward": time_it(lambda: logits(p, x), repeat=repeat * 5),
                "jvp": time_it(lambda: func.jvp(lambda q: logits(q, x), (p,), (tangents,)),
                               repeat=repeat * 5),
                "jvp_x": time_it(lambda: func.jvp(lambda x: logits(p, x), (x,), (tx,)), repeat=repeat * 5)}
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
        return {"forward": time_it(lambda: logits(p, x), repeat=repeat * 5),
                "jvp": time_it(lambda: torch.func.jvp(lambda q: logits(q, x), (p,), (tangents,)),
                               repeat=repeat * 5),
                "jvp_x": time_it(lambda: torch.func.jvp(lambda x: logits(p, x), (x,), (tx,)),
                                 repeat=repeat * 5)}
    hw1, hw2, hx = (torch.tensor(d[k]) for k in ("hw1", "hw2", "hx"))
    h = torch.func.hessian(lambda w1: (hx @ w1.mT).tanh().matmul(hw2.mT).log_softmax(-1).sum())
    return {"hessian": time_it(lambda: h(hw1), repeat=repeat)}


def worker(args) -> None:
    if args.worker == "torch":
        out = _torch(args.case, args.repeat, args.threads)
    else:
        out = _tinytensor(args.case, args.repeat)
    report(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads for every worker")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    here = os.path.abspath(__file__)
    common = ["--threads", str(args.threads), "--repeat", str(args.repeat)]
    res = {(case, impl): run_worker(here, ["--worker", impl, "--case", case, *common], args.threads)
           for case in ("per-sample", "jvp", "hessian") for impl in IMPLS}
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
    for impl in IMPLS:
        r = ms["jvp", impl]
        rows.append([impl, fmt_ms(r["forward"]), fmt_ms(r["jvp"]), f"{r['jvp'] / r['forward']:.2f}",
                     fmt_ms(r["jvp_x"]), f"{r['jvp_x'] / r['forward']:.2f}"])
    print(f"jvp of the MLP's logits, batch {B}: with tangents for every weight, and for the input only")
    print(table(["", "forward", "jvp (weights)", "/ forward", "jvp (input)", "/ forward"], rows))
    ours, theirs = ms["hessian", "tinytensor"]["hessian"], ms["hessian", "torch"]["hessian"]
    print(f"\nhessian (48 x 48) of a small network: tinytensor {fmt_ms(ours)}, torch.func {fmt_ms(theirs)} "
          f"({ours / theirs:.2f}x)")


if __name__ == "__main__":
    main()
