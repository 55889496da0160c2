"""Per-sample gradient norms of a small Transformer, with tinytensor.func.

    python examples/per_sample_gradients.py --out psg     # a few seconds; writes psg/grad_norms.png

A Transformer encoder layer reads a sequence of vectors and a linear head classifies it. For a batch,
``vmap(grad(loss))`` gives each sample's gradient of its own loss in one batched pass (the model a
function of its weights through ``functional_call``); a Python loop of ``grad`` gives the same. Then
the step DP-SGD takes: clip every sample's gradient to norm C and average. The histogram of the norms
shows which samples pull hardest.

Then a curvature probe: the Hessian-vector product of the loss at the weights (forward over reverse,
``jvp(grad(loss))``) along the averaged gradient, against a finite difference of gradients.

The last line says whether every check passed; the exit status is 1 if one failed.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor import func
from tinytensor_nn import functional as F

parser = argparse.ArgumentParser(description="per-sample gradient norms of a small Transformer")
parser.add_argument("--out", default="per_sample_gradients_out", help="folder for grad_norms.png")
parser.add_argument("--device", default="cpu", help="cpu or cuda")
parser.add_argument("--samples", type=int, default=32)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
tt.manual_seed(args.seed)
B, T, C, CLASSES = args.samples, 6, 16, 3


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(C, 2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(C, CLASSES)

    def forward(self, x):  # x (B, T, C)
        return self.head(self.encoder(x).mean(dim=1))  # (B, classes)


model = Classifier().double().to(args.device)
params = {name: p.detach() for name, p in model.named_parameters()}
x = tt.randn(B, T, C, dtype=tt.float64, device=args.device)  # (B, T, C)
targets = tt.randint(0, CLASSES, (B,), device=args.device)


def loss(params, x, t):  # one sample: x (T, C), its class t (a 0-d integer tensor)
    logits = func.functional_call(model, params, (x.unsqueeze(0),))  # (1, classes)
    return F.cross_entropy(logits, t.unsqueeze(0))


start = time.perf_counter()
per_sample = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, x, targets)  # name -> (B, ...)
t_vmap = time.perf_counter() - start
start = time.perf_counter()
loop = [func.grad(loss)(params, x[i], targets[i]) for i in range(B)]
t_loop = time.perf_counter() - start
diff = max(float((per_sample[n][i] - loop[i][n]).abs().max()) for n in params for i in range(B))
print(f"per-sample gradients of {sum(p.numel() for p in params.values())} weights for {B} samples: "
      f"vmap {t_vmap * 1e3:.0f} ms, a loop {t_loop * 1e3:.0f} ms; largest difference {diff:.1e}")

norms = sum((g.reshape(B, -1) ** 2).sum(-1) for g in per_sample.values()).sqrt()  # (B,)
clip = float(norms.numpy().mean())  # C: clip at the mean norm
scale = (clip / norms).clamp(max=1.0)  # (B,)
clipped = {n: (g * scale.reshape(B, *[1] * (g.ndim - 1))).mean(0) for n, g in per_sample.items()}
print(f"norms: min {norms.numpy().min():.3f}, median {np.median(norms.numpy()):.3f}, "
      f"max {norms.numpy().max():.3f}; {int((norms.numpy() > clip).sum())} of {B} clipped at {clip:.3f}")

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(norms.numpy(), bins=12, color="tab:blue")
    ax.axvline(clip, color="tab:red", label=f"clip C = {clip:.2f}")
    ax.set_xlabel("per-sample gradient norm")
    ax.set_ylabel("samples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "grad_norms.png", dpi=120)
    print(f"wrote {out / 'grad_norms.png'}")
except ImportError:
    print("matplotlib is not installed: no plot")


def batch_loss(params):
    return F.cross_entropy(func.functional_call(model, params, (x,)), targets)


v = {n: g / float(sum((c ** 2).sum() for c in clipped.values()).sqrt()) for n, g in clipped.items()}
hvp = func.jvp(func.grad(batch_loss), (params,), (v,))[1]  # H v, forward over reverse
curvature = float(sum((hvp[n] * v[n]).sum() for n in params))
eps = 1e-5
up = func.grad(batch_loss)({n: p + eps * v[n] for n, p in params.items()})
down = func.grad(batch_loss)({n: p - eps * v[n] for n, p in params.items()})
fd = max(float(((up[n] - down[n]) / (2 * eps) - hvp[n]).abs().max()) for n in params)
print(f"curvature vᵀHv along the clipped mean gradient: {curvature:.4f}; H v against finite "
      f"differences of gradients: largest difference {fd:.1e}")
ok = diff < 1e-10 and fd < 1e-6
print("all checks passed" if ok else "a check FAILED")
raise SystemExit(0 if ok else 1)
