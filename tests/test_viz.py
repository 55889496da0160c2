"""tinytensor.viz: the DOT text of recorded graphs, and rendering through Graphviz when it is installed."""
from __future__ import annotations

import re
import shutil
import sys

import numpy as np
import pytest

import tinytensor as tt
from tinytensor import viz

NODE = re.compile(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)", shape=(\w+), style="(\w+)"', re.M)
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[label=\"([^\"]*)\"\])?;", re.M)


def parse(dot: str):
    """{id: (label rows, shape, style)} and [(src, dst, label)] from to_dot's output."""
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    nodes = {m[1]: (m[2].split("\\n"), m[3], m[4]) for m in NODE.finditer(dot)}
    edges = [(m[1], m[2], m[3]) for m in EDGE.finditer(dot)]
    for src, dst, _ in edges:
        assert src in nodes and dst in nodes, (src, dst)
    return nodes, edges


def by_title(nodes) -> dict:
    out = {}
    for key, (rows, _, _) in nodes.items():
        out.setdefault(rows[0], []).append(key)
    return out


def small_graph(device="cpu"):
    tt.manual_seed(0)
    w = tt.randn(3, requires_grad=True, device=device)
    x = tt.randn(3, device=device)  # a constant: not in the graph
    loss = (w.tanh() * w + x).sum()
    return w, loss


def test_dot_of_a_small_expression_names_every_op_and_tensor(device):
    w, loss = small_graph(device)
    nodes, edges = parse(viz.to_dot(loss, names={"w": w}))
    t = by_title(nodes)
    assert sorted(t) == ["Add", "Mul", "Sum", "Tanh", "output", "w"]
    assert nodes[t["w"][0]][0][1] == f"(3,) float32 {w.device}"
    assert nodes[t["output"][0]][0][1] == f"() float32 {w.device}"
    assert nodes[t["w"][0]][1] == "box" and nodes[t["Mul"][0]][1] == "ellipse"
    (w_, tanh, mul, add, sum_, out) = (t[k][0] for k in ("w", "Tanh", "Mul", "Add", "Sum", "output"))
    assert sorted((s, d) for s, d, _ in edges) == sorted(
        [(w_, tanh), (w_, mul), (tanh, mul), (mul, add), (add, sum_), (sum_, out)]
    )
    # before backward: no gradient shown, and the bytes ops saved are
    assert not any("grad norm" in r for rows, _, _ in nodes.values() for r in rows)
    assert nodes[tanh][0][1] == "saved 12 B"  # tanh keeps its (3,) float32 output
    assert nodes[mul][0][1] == "saved 24 B"  # mul keeps both (3,) float32 operands


def test_dot_after_backward_shows_grad_norms_and_freed_nodes():
    w, loss = small_graph()
    loss.backward()
    nodes, _ = parse(viz.to_dot(loss, names={"w": w}))
    t = by_title(nodes)
    expected = float(np.linalg.norm(w.grad.numpy().astype(np.float64)))
    assert nodes[t["w"][0]][0][2] == f"grad norm {expected:.4g}"
    for op in ("Tanh", "Mul"):  # saved tensors freed, structure still drawn
        rows, _, style = nodes[t[op][0]]
        assert rows[1] == "saved: freed" and style == "dashed"
    for op in ("Add", "Sum"):  # they saved nothing: nothing freed (a second backward may run them)
        rows, _, style = nodes[t[op][0]]
        assert rows == [op] and style == "filled"


def test_retained_tensor_sits_on_its_path_with_its_grad():
    tt.manual_seed(1)
    w = tt.randn(2, 3, requires_grad=True)
    h = w.tanh()
    h.retain_grad()
    loss = (h * h).sum()
    loss.backward()
    nodes, edges = parse(viz.to_dot(loss, names={"h": h}))
    t = by_title(nodes)
    (h_box,) = t["h (retained)"]
    assert nodes[h_box][0][2] == f"grad norm {np.linalg.norm(h.grad.numpy().astype(np.float64)):.4g}"
    (tanh,), (mul,) = t["Tanh"], t["Mul"]
    assert (tanh, h_box, None) in edges
    assert [(s, d) for s, d, _ in edges if d == mul] == [(h_box, mul), (h_box, mul)]  # h * h


def test_multi_output_op_labels_its_outputs():
    x = tt.randn(4, 2, requires_grad=True)
    a, b = tt.split(x, [1, 3], dim=0)
    loss = (a.sum() * 2) + b.sum()
    nodes, edges = parse(viz.to_dot(loss))
    (split,) = by_title(nodes)["Split"]
    assert nodes[split][0][1] == "outputs (1, 2), (3, 2)"
    assert sorted(lbl for s, _, lbl in edges if s == split) == ["out 0", "out 1"]


def test_higher_order_graph_draws():
    x = tt.tensor([0.3, -0.5], dtype=tt.float64, requires_grad=True)
    (g,) = tt.autograd.grad(x.tanh().sum(), x, create_graph=True)  # 1 - tanh², itself a graph
    (gg,) = tt.autograd.grad(g.sum(), x, create_graph=True)
    for out in (g, gg):
        nodes, edges = parse(viz.to_dot(out, names={"x": x}))
        t = by_title(nodes)
        assert len(t["x"]) == 1 and "Tanh" in t  # the forward tanh is reached through saved outputs
        assert len(t) > 3 and edges
        assert {d for _, d, _ in edges} >= {t["output"][0]}


def test_several_outputs_and_constants():
    w = tt.randn(3, requires_grad=True)
    c = tt.ones(2)
    y1, y2 = w.exp(), w.sin()
    nodes, _ = parse(viz.to_dot([y1, y2, c], names={"w": w, "c": c}))
    t = by_title(nodes)
    assert len(t["output"]) == 2 and len(t["w"]) == 1 and "Exp" in t and "Sin" in t
    assert nodes[t["c (constant)"][0]][0][1] == "(2,) float32 cpu"
    nodes, edges = parse(viz.to_dot(w))  # a leaf alone
    assert [r[0][0] for r in nodes.values()] == ["leaf"] and edges == []


def test_labels_are_escaped():
    w = tt.randn(2, requires_grad=True)
    dot = viz.to_dot(w.exp().sum(), names={'w "q" \\ 1': w})
    assert 'label="w \\"q\\" \\\\ 1\\n(2,) float32 cpu"' in dot  # DOT text: w \"q\" \\ 1\n...
    parse(dot)


def test_deep_chain_needs_no_recursion():
    x = tt.tensor([0.5], requires_grad=True)
    y = x
    n = 3 * sys.getrecursionlimit()
    for _ in range(n):
        y = y * 1.0
    nodes, edges = parse(viz.to_dot(y))
    assert len(nodes) == n + 2 and len(edges) == n + 1  # n ops, the leaf, the output


def test_to_dot_rejects_non_tensors():
    with pytest.raises(TypeError, match="to_dot: expected a Tensor"):
        viz.to_dot([tt.ones(2), 3.0])


def test_draw_without_graphviz_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    w, loss = small_graph()
    with pytest.raises(viz.GraphvizNotFoundError) as err:
        viz.draw(loss, tmp_path / "g.svg")
    msg = str(err.value)
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg and "conda" in msg
    assert "to_dot" in msg and not (tmp_path / "g.svg").exists()
    assert isinstance(err.value, RuntimeError)


def test_draw_with_empty_path_env_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere
    with pytest.raises(viz.GraphvizNotFoundError, match="Graphviz `dot` program was not found"):
        viz.draw(small_graph()[1], tmp_path / "g.png")


@pytest.mark.skipif(shutil.which("dot") is None, reason="rendering needs the Graphviz `dot` program")
def test_draw_renders_svg_and_png(tmp_path):
    w, loss = small_graph()
    loss.backward()
    svg = viz.draw(loss, tmp_path / "g.svg", names={"w": w})
    text = svg.read_text()
    assert "<svg" in text and "Tanh" in text and "grad norm" in text
    png = viz.draw(loss, tmp_path / "g.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RuntimeError, match="viz.draw: `dot -Tnot_a_format` failed"):
        viz.draw(loss, tmp_path / "g.not_a_format")
