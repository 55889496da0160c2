"""A tour of autograd for learners: see the graph, step through backward, and check derivatives.

    python examples/autograd_tour.py --out tour     # a few seconds; writes into ./tour

1. The graph of one neuron's loss, as Graphviz DOT text (graph.dot) and, when Graphviz is installed,
   a picture (graph.svg); then the backward pass step by step, and the memory it held.
2. The first four derivatives of tanh, each the gradient of the one before (create_graph=True),
   checked against their closed forms and plotted to tanh_derivatives.png.
3. A Function written here (softplus) checked against finite differences with gradcheck.
4. A Hessian-vector product (the gradient of g·v) checked against finite differences of gradients.

The last line says how many checks passed; the exit status is 1 if any failed.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

import tinytensor as tt
from tinytensor.autograd import Function, explain, grad, gradcheck, gradgradcheck, memory_report, why_no_grad

parser = argparse.ArgumentParser(description="a tour of tinytensor's autograd")
parser.add_argument("--out", default="autograd_tour_out", help="folder for graph.dot/.svg and the plot")
parser.add_argument("--device", default="cpu", help="cpu or cuda")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
out, dev = Path(args.out), args.device
out.mkdir(parents=True, exist_ok=True)
tt.manual_seed(args.seed)
checks: dict[str, bool] = {}


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 70 - len(title)))


# ---- 1. see the graph, then watch backward walk it ------------------------------------------
section("1. the graph of a neuron's loss, and its backward pass")
x = tt.randn(3, device=dev)                                  # an input: needs no gradient
w = tt.randn(3, device=dev, requires_grad=True)              # parameters: leaves that require grad
b = tt.zeros((), device=dev, requires_grad=True)
y = ((w * x).sum() + b).tanh()                               # the neuron's output
loss = (y - 0.5) ** 2
names = {"x": x, "w": w, "b": b, "loss": loss}
(out / "graph.dot").write_text(tt.viz.to_dot(loss, names=names))
if shutil.which("dot"):
    tt.viz.draw(loss, out / "graph.svg", names=names)
    print(f"wrote {out / 'graph.dot'} and {out / 'graph.svg'}")
else:
    print(f"wrote {out / 'graph.dot'} (install Graphviz's `dot` to also get graph.svg)")
print("why will y.grad be None?", why_no_grad(y, loss))      # y is not a leaf: it keeps no .grad
steps = explain(loss, names=names, retain_graph=True)        # runs backward, printing every step
leaves = {s.name for s in steps if s.op == "AccumulateGrad"}
checks["explain starts at the loss's op and reaches w and b"] = (
    steps[0].op == loss.grad_fn.name() and leaves == {"leaf w", "leaf b"})
report = memory_report(loss)                                 # a second backward, measured; frees the graph
print(report)
checks["memory report: every saved array freed"] = report.freed_bytes == report.saved_bytes > 0
gy = 2 * (y.item() - 0.5) * (1 - y.item() ** 2)              # dloss/dw = 2(y - ½)(1 - y²) x, twice over
checks["w.grad after two backward passes"] = bool(np.allclose(w.grad.numpy(), 2 * gy * x.numpy(), rtol=1e-5))

# ---- 2. higher derivatives: differentiate the derivative --------------------------------------
section("2. four derivatives of tanh with create_graph=True")
xs = tt.linspace(-3, 3, 121, dtype=tt.float64, device=dev, requires_grad=True)
f = xs.tanh()
derivs = []
for _ in range(4):                                           # d^k tanh / dx^k, elementwise
    (f,) = grad(f.sum(), xs, create_graph=True)              # the gradient is itself a graph
    derivs.append(f.numpy())
t = np.tanh(xs.numpy())
sech2 = 1 - t**2                                             # sech² x = d tanh / dx
closed = [sech2, -2 * t * sech2, -2 * sech2 * (1 - 3 * t**2), 8 * t * sech2 * (2 - 3 * t**2)]
for k, (got, want) in enumerate(zip(derivs, closed), start=1):
    err = float(np.abs(got - want).max())
    print(f"d{k} tanh: max error vs closed form {err:.2e}")
    checks[f"tanh derivative {k}"] = err < 1e-10
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs.numpy(), t, "k", label="tanh")
    for label, d in zip(["d/dx", "d²/dx²", "d³/dx³", "d⁴/dx⁴"], derivs):
        ax.plot(xs.numpy(), d, label=label)
    ax.set(xlabel="x", title="tanh and its first four derivatives (create_graph=True)")
    ax.legend()
    fig.savefig(out / "tanh_derivatives.png", dpi=100)
    print(f"wrote {out / 'tanh_derivatives.png'}")
except ImportError:
    print("matplotlib is not installed: no plot (pip install matplotlib)")


# ---- 3. a Function of your own ----------------------------------------------------------------
section("3. a Function written here: softplus, checked by gradcheck")
class Softplus(Function):
    """log(1 + e^x); d/dx = sigmoid(x)."""

    def forward(self, x):                                    # arrays in, arrays out
        self.save_for_backward(x)
        return self.xp.logaddexp(self.xp.zeros_like(x), x)  # log(e^0 + e^x), stable for large x

    def backward(self, gy):                                  # Tensors, so it is differentiable too
        (x,) = self.saved_tensors
        return gy * x.sigmoid()


z = tt.randn(2, 3, dtype=tt.float64, device=dev, requires_grad=True)
checks["softplus gradcheck"] = gradcheck(Softplus.apply, [z])
checks["softplus gradgradcheck"] = gradgradcheck(Softplus.apply, [z])
print("gradcheck and gradgradcheck passed")

# ---- 4. Hessian-vector product ----------------------------------------------------------------
section("4. a Hessian-vector product against finite differences")
A = tt.randn(4, 3, dtype=tt.float64, device=dev)


def f_of(p):                                                 # f(p) = Σ tanh(A p)²
    return ((A @ p).tanh() ** 2).sum()


def grad_at(p):
    p = p.detach().requires_grad_()
    return grad(f_of(p), p)[0]


p = tt.randn(3, dtype=tt.float64, device=dev, requires_grad=True)
v = tt.randn(3, dtype=tt.float64, device=dev)
(g,) = grad(f_of(p), p, create_graph=True)                   # g(p), with its own graph
(hv,) = grad((g * v).sum(), p)                               # H v = ∇(g · v)
eps = 1e-6
fd = (grad_at(p + eps * v).numpy() - grad_at(p - eps * v).numpy()) / (2 * eps)
err = float(np.abs(hv.numpy() - fd).max())
print(f"H v = {np.round(hv.numpy(), 6)}; finite differences agree to {err:.1e}")
checks["Hessian-vector product"] = err < 1e-6

failed = [name for name, ok in checks.items() if not ok]
for name in failed:
    print(f"FAILED: {name}")
print(f"autograd tour: {len(checks) - len(failed)}/{len(checks)} checks passed")
raise SystemExit(1 if failed else 0)
