"""Quickstart: tensors, autograd, and a small network trained from scratch with tinytensor's core ops.

    python examples/quickstart.py  # a second or two on a CPU; --device cuda, --seed 1, --steps 1000
"""
import argparse
import math

import tinytensor as tt

parser = argparse.ArgumentParser(description="tinytensor quickstart")
parser.add_argument("--device", default="cpu", help="cpu or cuda")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--steps", type=int, default=300)
args = parser.parse_args()
tt.manual_seed(args.seed)
dev = args.device

# 1. Tensors: arrays on a device, with PyTorch's names.
a = tt.tensor([[1.0, 2.0], [3.0, 4.0]], device=dev)
print("a @ a.T =", (a @ a.T).tolist(), "  a.mean() =", a.mean().item())

# 2. Autograd: ops on tensors that require grad record a graph; backward() fills each leaf's .grad.
x = tt.tensor(2.0, device=dev, requires_grad=True)
y = x**3 + x.sin()
y.backward()
print(f"d/dx (x³ + sin x) at x=2: {x.grad.item():.4f}  (3·2² + cos 2 = {12 + math.cos(2):.4f})")

# 3. A toy problem: is a 2-D point inside the unit circle?
def make_data(n):
    X = tt.randn(n, 2, device=dev) * 1.2                          # (n, 2)
    return X, ((X * X).sum(-1) < 1.0).float()                     # (n,) 1 inside, 0 outside

(X, Y), (X_test, Y_test) = make_data(512), make_data(256)

# A two-layer network 2 -> 16 -> 1; its parameters are leaf tensors that require grad.
W1 = (tt.randn(2, 16, device=dev) * 0.8).requires_grad_()
W2 = (tt.randn(16, 1, device=dev) * 0.3).requires_grad_()
b1, b2 = tt.zeros(16, device=dev, requires_grad=True), tt.zeros(1, device=dev, requires_grad=True)
params = [W1, b1, W2, b2]

def model(X):
    h = (X @ W1 + b1).tanh()                                      # (n, 16)
    return (h @ W2 + b2).reshape(-1)                              # (n,) logits

for step in range(args.steps + 1):
    z = model(X)
    # binary cross-entropy on logits, written stably: max(z, 0) - z·y + log(1 + e^-|z|)
    loss = (z.relu() - z * Y + ((-z.abs()).exp() + 1).log()).mean()
    for p in params:
        p.grad = None                                             # fresh gradients each step
    loss.backward()
    with tt.no_grad():                                            # gradient descent, step size 1
        for p in params:
            p -= p.grad
    if step % 100 == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")

with tt.no_grad():
    accuracy = ((model(X_test) > 0).float() == Y_test).float().mean().item()
print(f"test accuracy {accuracy:.3f}")
