"""The training examples, run as a user runs them (a subprocess) with tiny settings: they start, train,
save a checkpoint, resume from it, and print their metric on the last line.

quickstart.py and autograd_tour.py are run by tests/test_explain.py (the tools they teach are tested
there); test_every_example_is_run checks that no example is left out.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run examples/<name> on the CPU; fail with its output if it exits with an error."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), "--device", "cpu", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def last_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.strip().splitlines()[-1]


def load_example(name: str):
    """examples/<name>.py as a module (examples is not a package)."""
    sys.path.insert(0, str(EXAMPLES))  # attention_maps imports transformer_reverse from its folder
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_every_example_is_run():
    explain = (ROOT / "tests" / "test_explain.py").read_text()
    for name in ("quickstart.py", "autograd_tour.py"):
        assert f'run_example("{name}"' in explain, f"tests/test_explain.py no longer runs {name}"
    here = {name for name, *_ in TRAINING} | {"attention_maps.py"}
    here |= {"per_sample_gradients.py"}  # run by tests/test_func.py
    assert {p.name for p in EXAMPLES.glob("*.py")} == here | {"quickstart.py", "autograd_tour.py"}


# ---- train, save, resume ----------------------------------------------------------------------
# (example, tiny settings, the length option with a first and a longer length, what resuming prints,
# the last line)

TRAINING = [
    ("transformer_reverse.py",
     ["--batch-size", "16", "--max-len", "5", "--d-model", "16", "--nhead", "2", "--layers", "1",
      "--dim-feedforward", "32", "--warmup", "2", "--test-size", "20", "--save-every", "2"],
     ("--steps", 3, 5), "at step 3",
     r"held-out exact-match accuracy: (\d+\.\d)% \((\d+)/20\), trained (\d+) steps in \d+ s on cpu"),
    ("vit_digits.py",
     ["--batch-size", "256", "--dim", "16", "--depth", "1", "--heads", "2", "--mlp-dim", "32"],
     ("--epochs", 1, 2), "at epoch 1",
     r"test accuracy: (\d+\.\d)% \((\d+)/360\), trained (\d+) epochs in \d+ s on cpu"),
    ("char_gpt.py",
     ["--batch-size", "4", "--block-size", "24", "--d-model", "16", "--nhead", "2", "--layers", "1",
      "--warmup", "1", "--eval-windows", "4", "--sample-chars", "20", "--save-every", "2"],
     ("--steps", 3, 5), "at step 3",
     r"validation: (\d+\.\d{3}) bits/char, unigram baseline (\d+\.\d{3}) bits/char "
     r"\((-?\d+\.\d{3}) bits/char better\), trained (\d+) steps in \d+ s on cpu"),
]


def metric_part(line: str) -> str:
    return line.split(", trained")[0]


@pytest.mark.parametrize("name, tiny, length, resumed_at, metric", TRAINING, ids=[t[0] for t in TRAINING])
def test_example_trains_saves_and_resumes(tmp_path, name, tiny, length, resumed_at, metric):
    flag, first, longer = length
    ckpt = tmp_path / "ckpt" / "model.safetensors"  # the folder is created by the example
    args = [*tiny, "--seed", "1", "--checkpoint", str(ckpt)]

    proc = run(name, *args, flag, str(first), cwd=tmp_path)
    assert ckpt.read_bytes()[8:9] == b"{", "the checkpoint is not a safetensors file"
    m = re.fullmatch(metric, last_line(proc))
    assert m and int(m[3 + (name == "char_gpt.py")]) == first, last_line(proc)
    assert "loss=" in proc.stderr and "acc=" in proc.stderr, "the progress bar shows loss and accuracy"

    # resumed at its end, the run has nothing left to train: the restored model gives the same metric
    again = run(name, *args, flag, str(first), "--resume", cwd=tmp_path)
    assert f"resumed from {ckpt} {resumed_at}" in again.stdout
    assert metric_part(last_line(again)) == metric_part(last_line(proc))

    longer_run = run(name, *args, flag, str(longer), "--resume", cwd=tmp_path)
    assert f"resumed from {ckpt} {resumed_at}" in longer_run.stdout
    m = re.fullmatch(metric, last_line(longer_run))
    assert m and int(m[3 + (name == "char_gpt.py")]) == longer - first, last_line(longer_run)


@pytest.mark.parametrize("name, tiny, length", [t[:3] for t in TRAINING], ids=[t[0] for t in TRAINING])
def test_example_runs_on_a_device_that_is_not_numpy(tmp_path, name, tiny, length):
    """On the strict stand-in device (registered by conftest.py), which refuses NumPy conversions: the
    examples move data with tt.tensor(..., device=) and .numpy() only, and use no NumPy-only path."""
    from threadpoolctl import threadpool_limits

    example = load_example(name.removesuffix(".py"))
    args = [*tiny, "--device", "strict", "--checkpoint", str(tmp_path / "ckpt.safetensors")]
    with threadpool_limits(limits=1):  # restores this process's BLAS threads afterwards
        example.main([*args, length[0], str(length[1])])
        example.main([*args, length[0], str(length[2]), "--resume"])


def test_char_gpt_compares_cached_and_uncached_generation(tmp_path):
    ckpt = tmp_path / "c.safetensors"
    proc = run("char_gpt.py", *TRAINING[2][1], "--steps", "2", "--checkpoint", str(ckpt), cwd=tmp_path)
    lines = proc.stdout.splitlines()
    assert re.match(r"text: \d+ stdlib modules of Python 3\.\d+\.\d+, [\d,]+ characters", lines[0]), lines[0]
    gen = [line for line in lines if line.startswith("greedy generation of 8 characters")]
    assert gen and re.search(r"without KV cache \d+\.\d\d s, with KV cache \d+\.\d\d s .*same tokens: True$",
                             gen[0]), lines
    sample = lines[lines.index("--- sample (temperature 0.8) ---") + 1]
    assert sample.startswith("def ")


# ---- attention maps ---------------------------------------------------------------------------

def test_attention_maps_trains_the_flagship_if_needed_then_draws(tmp_path):
    ckpt, out = tmp_path / "reverse.safetensors", tmp_path / "figures"
    args = ["--checkpoint", str(ckpt), "--out", str(out), "--max-len", "5", "--d-model", "16", "--nhead", "2",
            "--layers", "2", "--dim-feedforward", "32", "--warmup", "2", "--batch-size", "16",
            "--held-out", "20", "--example", "31415"]
    proc = run("attention_maps.py", *args, "--train-steps", "2", cwd=tmp_path)
    assert f"no checkpoint yet: training {ckpt}" in proc.stdout and ckpt.exists()
    proc = run("attention_maps.py", *args, "--train-steps", "4", "--resume", cwd=tmp_path)
    assert f"resumed from {ckpt} at step 2" in proc.stdout
    gap = re.search(r"max \|difference in logits\| = (\S+)", proc.stdout)
    assert gap and float(gap[1]) < 1e-4, proc.stdout
    for name in ("positional_encoding", "position_dot_products", "noam_schedule", "cross_attention",
                 "self_attention"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    m = re.fullmatch(r"cross-attention on the mirrored source digit: (\d\.\d\d) \(decoder layer [12], mean "
                     r"of 2 heads; best head (\d\.\d\d)\); exact match (\d+\.\d)% on 20 held-out sequences",
                     last_line(proc))
    assert m and 0 <= float(m[1]) <= float(m[2]) <= 1, last_line(proc)


def test_mirrored_mass_counts_the_anti_diagonal():
    maps = load_example("attention_maps")
    src = np.array([[5, 6, 7, maps.EOS, maps.PAD], [9, maps.EOS, maps.PAD, maps.PAD, maps.PAD]])
    cross = np.zeros((2, 2, 5, 5))  # (B, h, T, S)
    for t, s in ((0, 2), (1, 1), (2, 0)):
        cross[0, 0, t, s] = 1.0  # head 0 copies backwards
    cross[1, 0, 0, 0] = 1.0
    cross[:, 1] = 1.0 / 5  # head 1 looks everywhere
    assert np.allclose(maps.mirrored_mass(cross, src), [1.0, 0.2])


def test_char_gpt_unigram_baseline_is_the_cross_entropy_of_character_frequencies():
    gpt = load_example("char_gpt")
    codec = gpt.CharCodec("abcab")
    assert codec.decode(codec.encode("cab")) == "cab" and len(codec) == 3
    train, val = codec.encode("aab"), codec.encode("ac")
    p = np.array([3, 2, 1]) / 6  # counts + 1
    assert gpt.unigram_bits(train, val, 3) == pytest.approx(-(np.log2(p[0]) + np.log2(p[2])) / 2)
