"""autograd.explain (the backward stepper), why_no_grad and memory_report."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinytensor as tt
from tinytensor.autograd import Function, engine, explain, memory_report, why_no_grad
from tinytensor.autograd.engine import Node
from tinytensor.autograd.graph import distinct, nbytes, saved_arrays, walk


def norm(t) -> float:
    return float(np.linalg.norm(t.numpy().astype(np.float64).ravel()))


def mlp(seed=0, device="cpu"):
    """x (4, 3) constant -> tanh(x @ W + b) -> sum(h²); h keeps its grad."""
    tt.manual_seed(seed)
    x = tt.randn(4, 3, dtype=tt.float64, device=device)
    W = tt.randn(3, 5, dtype=tt.float64, device=device, requires_grad=True)
    b = tt.randn(5, dtype=tt.float64, device=device, requires_grad=True)
    h = (x @ W + b).tanh()
    h.retain_grad()
    return x, W, b, h, (h * h).sum()


# ---- explain ----------------------------------------------------------------------------------

def test_explain_runs_backward_and_reports_the_real_gradients(device):
    x, W, b, h, loss = mlp(device=device)
    steps = explain(loss, names={"W": W, "b": b}, verbose=False)
    # backward really ran: the same gradients as a plain backward on a copy of the graph
    x2, W2, b2, h2, loss2 = mlp(device=device)
    loss2.backward()
    np.testing.assert_allclose(W.grad.numpy(), W2.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), b2.grad.numpy(), rtol=1e-12)

    ops = [s.op for s in steps]
    assert ops[0] == "Sum" and steps[0].grads_in[0].shape == () and steps[0].grads_in[0].norm == 1.0
    # each leaf receives its whole gradient in one AccumulateGrad step, after everything that feeds it
    acc = {s.name: s for s in steps if s.op == "AccumulateGrad"}
    assert set(acc) == {"leaf W", "leaf b"}
    for name, leaf in (("leaf W", W), ("leaf b", b)):
        step = acc[name]
        assert step.grads_in[0].shape == leaf.shape
        assert step.grads_in[0].norm == pytest.approx(norm(leaf.grad), rel=1e-12)
        senders = [s.index for s in steps if name in s.targets]
        assert senders and max(senders) < step.index
    # the gradient arriving at tanh is h.grad; what it sends on is h.grad * (1 - h²)
    (tanh,) = [s for s in steps if s.op == "Tanh"]
    assert tanh.grads_in[0].shape == (4, 5)
    assert tanh.grads_in[0].norm == pytest.approx(norm(h.grad), rel=1e-12)
    hn = h.numpy()
    assert tanh.grads_out[0].norm == pytest.approx(np.linalg.norm(h.grad.numpy() * (1 - hn**2)), rel=1e-12)
    assert tanh.targets == ("Add",)
    # MatMul: x needs no gradient, so nothing is sent to it
    (mm,) = [s for s in steps if s.op == "MatMul"]
    assert mm.grads_out[0] is None and mm.targets[0] is None
    assert mm.grads_out[1].shape == (3, 5) and mm.targets[1] == "leaf W"
    assert [s.index for s in steps] == list(range(1, len(steps) + 1))


def test_explain_follows_the_engine_order():
    """Hooks on intermediate tensors fire in engine order; explain's node steps are in the same order."""
    tt.manual_seed(3)
    a = tt.randn(3, requires_grad=True)
    b = tt.randn(3, requires_grad=True)
    fired = []
    ts = {}
    ts["Exp"] = a.exp()
    ts["Sin"] = b.sin()
    ts["Mul"] = ts["Exp"] * ts["Sin"]
    ts["Tanh"] = ts["Mul"].tanh()
    ts["Add"] = ts["Tanh"] + ts["Exp"]
    ts["Sum"] = ts["Add"].sum()
    for name, t in ts.items():
        t.register_hook(lambda g, name=name: fired.append(name))
    steps = explain(ts["Sum"], verbose=False)
    assert [s.op for s in steps if s.op != "AccumulateGrad"] == fired
    assert len(fired) == 6 and fired[0] == "Sum"


def test_explain_prints_a_table():
    x, W, b, h, loss = mlp()
    out = io.StringIO()
    steps = explain(loss, names={"W": W, "b": b}, file=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"backward of a () float64 cpu tensor: {len(steps)} steps, "
                        f"in the order the engine ran them")
    sends = sum(sum(t is not None for t in s.targets) for s in steps if s.op != "AccumulateGrad")
    continuation = sends - sum(1 for s in steps if s.op != "AccumulateGrad" and any(s.targets))
    assert len(lines) == 2 + len(steps) + continuation
    assert any(line.endswith("into leaf W.grad") for line in lines)
    assert any("-> leaf b: (5,) norm" in line for line in lines)


def test_explain_unused_output_and_multi_output_names():
    x = tt.randn(4, 2, requires_grad=True)
    a, _ = tt.split(x, [1, 3], dim=0)  # the second output is never used
    steps = explain(a.sum(), verbose=False)
    (split,) = [s for s in steps if s.op == "Split"]
    assert split.grads_in[0].shape == (1, 2) and split.grads_in[1] is None
    assert split.grads_out[0].shape == (4, 2)
    (sum_,) = [s for s in steps if s.op == "Sum"]
    assert sum_.targets[0] == "Split[0]"


def test_explain_with_create_graph_and_an_explicit_gradient():
    x = tt.tensor([0.2, -0.4, 1.0], dtype=tt.float64, requires_grad=True)
    y = x.tanh()
    g = tt.tensor([1.0, 2.0, 3.0], dtype=tt.float64)
    steps = explain(y, g, create_graph=True, verbose=False)
    assert [s.op for s in steps] == ["Tanh", "AccumulateGrad"]
    assert steps[0].grads_in[0].norm == pytest.approx(np.sqrt(14))
    assert x.grad.requires_grad  # create_graph kept the backward's own graph
    want = np.array([1.0, 2.0, 3.0]) * (1 - np.tanh([0.2, -0.4, 1.0]) ** 2)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
    assert steps[1].grads_in[0].norm == pytest.approx(np.linalg.norm(want), rel=1e-12)


def test_explain_ignores_backward_runs_nested_in_hooks_and_cleans_up():
    w = tt.randn(3, requires_grad=True)
    other = tt.randn(2, requires_grad=True)

    def hook(g):
        with tt.enable_grad():  # backward runs hooks with grad mode off
            tt.autograd.grad((other * other).sum(), other)  # a backward inside the backward

    y = w.exp()
    y.register_hook(hook)
    steps = explain(y.sum(), verbose=False)
    assert [s.op for s in steps] == ["Sum", "Exp", "AccumulateGrad"]
    assert engine._observer.get() is None


def test_explain_errors():
    with pytest.raises(TypeError, match="explain: expected a Tensor"):
        explain(np.ones(3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        explain(tt.ones(3).sum(), verbose=False)
    w = tt.randn(3, requires_grad=True)
    loss = w.exp().sum()
    explain(loss, verbose=False)
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        explain(loss, verbose=False)
    assert engine._observer.get() is None  # reset even when backward raised


# ---- why_no_grad ------------------------------------------------------------------------------

def test_why_no_grad_has_grad_and_backward_not_run():
    w = tt.randn(3, requires_grad=True)
    loss = (w * 2).sum()
    r = why_no_grad(w)
    assert r.code == "backward_not_run" and "loss.backward()" in r.message and "loss=" in r.message
    assert why_no_grad(w, loss).code == "backward_not_run"
    loss.backward()
    r = why_no_grad(w, loss)
    assert r.code == "has_grad" and "(3,) float32 cpu" in str(r)


def test_why_no_grad_not_floating_and_requires_grad_off():
    assert why_no_grad(tt.tensor([1, 2])).code == "not_floating"
    r = why_no_grad(tt.randn(3))
    assert r.code == "requires_grad_off" and "requires_grad=True" in r.message
    w = tt.randn(3, requires_grad=True)
    with tt.no_grad():
        y = w * 2  # no graph recorded: y is a plain tensor
    r = why_no_grad(y)
    assert r.code == "requires_grad_off" and "no_grad()" in r.message


def test_why_no_grad_not_leaf_suggests_retain_grad():
    w = tt.randn(3, requires_grad=True)
    h = w * 2
    loss = h.sum()
    loss.backward()
    r = why_no_grad(h, loss)
    assert r.code == "not_leaf" and "retain_grad()" in r.message and "Mul" in r.message
    p = tt.randn(3, requires_grad=True).double()  # a "parameter" that is really a cast's output
    r = why_no_grad(p)
    assert r.code == "not_leaf" and "Cast" in r.message and "requires_grad=True" in r.message
    # retained: then .grad is kept, and the usual reasons apply
    h2 = w * 3
    h2.retain_grad()
    loss2 = h2.sum()
    assert why_no_grad(h2, loss2).code == "backward_not_run"
    loss2.backward()
    assert why_no_grad(h2, loss2).code == "has_grad"


def test_why_no_grad_loss_without_graph_and_not_reached():
    w = tt.randn(3, requires_grad=True)
    v = tt.randn(3, requires_grad=True)
    with tt.no_grad():
        loss = (w * 2).sum()
    r = why_no_grad(w, loss)
    assert r.code == "loss_has_no_graph" and "no_grad()" in r.message
    with tt.no_grad():
        y = w * 2  # w used only under no_grad
    loss = (y * v).sum()
    r = why_no_grad(w, loss)
    assert r.code == "not_reached" and "no_grad()" in r.message and ".detach()" in r.message
    assert why_no_grad(w, (w.detach() * v).sum()).code == "not_reached"
    assert why_no_grad(w, (v * 2).sum()).code == "not_reached"
    assert why_no_grad(v, loss).code == "backward_not_run"


def test_why_no_grad_grad_reset_and_autograd_grad():
    w = tt.randn(3, requires_grad=True)
    loss = w.exp().sum()
    loss.backward()
    w.grad = None
    r = why_no_grad(w, loss)
    assert r.code == "grad_reset" and "zero_grad" in r.message
    loss = w.exp().sum()
    tt.autograd.grad(loss, w)
    r = why_no_grad(w, loss)
    assert r.code == "grad_reset" and "autograd.grad()" in r.message


def test_why_no_grad_rejects_non_tensors():
    with pytest.raises(TypeError, match="why_no_grad: expected a Tensor"):
        why_no_grad([1.0])


# ---- memory_report ----------------------------------------------------------------------------

class Square(Function):
    """x² with x saved; backward gy * 2x."""

    def forward(self, x):
        self.save_for_backward(x)
        return x * x

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * (x * 2.0)


def test_memory_numbers_of_a_chain_are_exact(device):
    n = 10
    w = tt.randn(n, dtype=tt.float64, device=device, requires_grad=True)
    y = Square.apply(Square.apply(w))  # saves w (a leaf's data), then the first square (an activation)
    g = tt.ones(n, dtype=tt.float64, device=device)
    r = memory_report(y, g)
    b = 8 * n  # one (n,) float64 array
    assert r.num_ops == 2
    assert r.saved_bytes == 2 * b and r.saved_leaf_bytes == b and r.by_op == {"Square": 2 * b}
    assert r.freed_bytes == r.saved_bytes
    # at the first step both saved arrays are held, plus the root gradient and the one sent on
    assert r.peak_bytes == 2 * b + 2 * b and r.peak_grad_bytes == 2 * b
    assert r.leaf_grad_bytes == b and w.grad is not None


def test_memory_retain_graph_frees_nothing():
    w = tt.randn(6, dtype=tt.float64, requires_grad=True)
    loss = Square.apply(w.tanh()).sum()
    r1 = memory_report(loss, retain_graph=True)
    # tanh saves its output and Square saves its input: one (6,) float64 array, counted once
    assert r1.saved_bytes == 48 and r1.by_op == {"Tanh": 48, "Square": 48} and r1.freed_bytes == 0
    r2 = memory_report(loss)  # the graph is still whole: a second pass sees the same saved arrays
    assert r2.saved_bytes == r1.saved_bytes and r2.freed_bytes == r2.saved_bytes
    np.testing.assert_allclose(w.grad.numpy(), 2 * (2 * np.tanh(w.numpy()) * (1 - np.tanh(w.numpy()) ** 2)))


def test_memory_saved_bytes_is_the_sum_of_distinct_saved_arrays(device):
    x, W, b, h, loss = mlp(device=device)
    nodes = [t for t in walk([loss]) if isinstance(t, Node)]
    arrays = distinct(a for n in nodes for a in saved_arrays(n))
    expected = sum(int(a.size) * 8 for a in arrays)  # all float64
    assert expected > 0
    r = memory_report(loss)
    assert r.saved_bytes == expected and r.freed_bytes == expected
    assert all(saved_arrays(n) == [] for n in nodes)  # and backward really freed them
    assert r.num_ops == len(nodes)
    assert r.peak_bytes >= r.saved_bytes + 8  # everything saved, plus the root gradient
    assert r.peak_bytes >= r.leaf_grad_bytes == 8 * (W.numel() + b.numel())
    assert r.peak_grad_bytes <= r.peak_bytes
    assert sum(r.by_op.values()) >= r.saved_bytes
    text = str(r)
    assert f"backward over {r.num_ops} ops" in text and "saved for backward" in text and "Tanh" in text


def test_memory_x_times_x_counts_the_array_once_and_attributes_separately():
    w = tt.randn(5, dtype=tt.float64, requires_grad=True)
    r = memory_report((w * w).sum())
    assert r.saved_bytes == 40 and r.saved_leaf_bytes == 40
    weight = tt.randn(4, 2, requires_grad=True)
    idx = tt.tensor([0, 3, 3])
    r = memory_report(tt.embedding(idx, weight).sum())
    assert r.attribute_bytes == nbytes(idx.array) == 24 and "kept as attributes" in str(r)


def test_memory_report_errors():
    with pytest.raises(TypeError, match="memory_report: expected a Tensor"):
        memory_report(3.0)


# ---- the examples that teach these tools --------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, cwd: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()


def test_quickstart_example_learns_the_toy_problem(tmp_path):
    lines = run_example("quickstart.py", "--seed", "0", "--device", "cpu", cwd=tmp_path)
    assert lines[0].startswith("a @ a.T = [[5.0, 11.0], [11.0, 25.0]]")
    m = re.fullmatch(r"test accuracy (\d\.\d{3})", lines[-1])
    assert m and float(m[1]) >= 0.9, lines[-1]


def test_autograd_tour_example_passes_its_checks(tmp_path):
    lines = run_example("autograd_tour.py", "--out", str(tmp_path / "tour"), "--seed", "1", cwd=tmp_path)
    m = re.fullmatch(r"autograd tour: (\d+)/(\d+) checks passed", lines[-1])
    assert m and m[1] == m[2] and int(m[2]) >= 10, lines[-1]
    dot = (tmp_path / "tour" / "graph.dot").read_text()
    assert dot.startswith("digraph autograd {") and "Tanh" in dot and "w\\n(3,) float32 cpu" in dot
    assert (tmp_path / "tour" / "tanh_derivatives.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "tour" / "graph.svg").exists() == (shutil.which("dot") is not None)
