"""The benchmark scripts run: benchmarks/gpu_check.sh --dry-run runs every part of the GPU check on the CPU
at toy sizes (a test file, both training examples, bench_core.py and bench_nn.py with --tiny and one
repeat, a thread sweep, a plot and a JSON file each), and the scripts print their tables. Timings are never
asserted: on a shared machine they mean nothing, and at toy sizes even less.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
PARTS = ("env", "tests", "transformer_reverse", "char_gpt", "bench_core", "bench_nn")
PNG = b"\x89PNG\r\n\x1a\n"


def bench_common():
    """benchmarks/_common.py as a module (benchmarks is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_thread_counts_are_a_comma_list_where_all_means_every_core():
    common = bench_common()
    assert common.parse_threads("1,2,all") == sorted({1, 2, os.cpu_count()})
    assert common.parse_threads("4, 1,4") == [1, 4]
    for bad in ("0", "two", "", "1,-2"):
        with pytest.raises(ValueError, match="--threads"):
            common.parse_threads(bad)


def test_the_scaling_table_compares_speed_ups_and_names_the_missed_targets():
    common = bench_common()
    times = {("a", "tinytensor", 1): 1.0, ("a", "tinytensor", 4): 0.5, ("a", "torch", 1): 1.0,
             ("a", "torch", 4): 0.25, ("b", "tinytensor", 1): 0.9, ("b", "tinytensor", 4): 0.3,
             ("b", "torch", 1): 1.0, ("b", "torch", 4): 0.4}
    peaks = {("a", "tinytensor", 1): 130, ("a", "torch", 1): 100, ("a", "tinytensor", 4): 110,
             ("a", "torch", 4): 100}  # case b has no memory numbers
    headers, rows, records = common.scaling(times, peaks, [("a", "case a"), ("b", "case b")], [1, 4])
    assert headers[:4] == ["case", "tt 1->4", "torch 1->4", "scaling tt/torch (>= 0.8)"]
    a, b = records
    assert (a["tt_speedup"], a["torch_speedup"], a["scaling_ratio"]) == (2.0, 4.0, 0.5)
    assert a["time_ratio"] == {"1": 1.0, "4": 2.0} and a["peak_ratio"] == 1.3
    assert rows[0][-1] == "missed: scaling, time@4, memory"
    assert b["peak_ratio"] is None and rows[1][-2:] == ["-", "met"]
    assert rows[1][1:4] == ["3.00x", "2.50x", "1.20x"]


def test_cuda_is_refused_with_what_is_missing_when_there_is_no_gpu():
    import tinytensor as tt

    torch = pytest.importorskip("torch")
    if tt.cuda.is_available() and torch.cuda.is_available():
        pytest.skip("a GPU is here: --device cuda runs")
    with pytest.raises(SystemExit, match=r"bench_nn\.py --device cuda: .*(CuPy|GPU).*--device cpu"):
        bench_common().require_device("cuda", "bench_nn.py")
    bench_common().require_device("cpu", "bench_nn.py")  # nothing to check


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="gpu_check.sh needs bash and coreutils' timeout")
def test_gpu_check_dry_run_runs_every_part_and_the_benchmarks_print_their_tables(tmp_path):
    env = dict(os.environ, LOG_DIR=str(tmp_path), PYTHON=sys.executable)
    env.pop("TEST_ARGS", None)
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=400)
    summary = (tmp_path / "summary.txt").read_text() if (tmp_path / "summary.txt").exists() else ""
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert summary and summary in proc.stdout
    for part in PARTS:
        assert re.search(rf"^{part} +pass +\d+ +\d+ ", summary, re.M), summary
    assert re.search(r"^tests +pass .* \d+ passed", summary, re.M), summary
    assert re.search(r"^bench_core +pass .*first steps: [1-9]\d* agree, 0 mismatch", summary, re.M), summary

    core = (tmp_path / "bench_core.log").read_text()
    for line in ("threads: 1; malloc:", "chain of 40 ops, (4,): per op", "ViT train step (AdamW)",
                 "ViT peak memory (RSS growth)", "scaling, threads 1 -> 1; malloc: keep"):
        assert line in core, core

    nn = (tmp_path / "bench_nn.log").read_text()
    for line in ("== threads: 1 ==", "== threads: 2 ==", "== scaling: threads 1 -> 2 ==",
                 "GPT train step (AdamW): update", "scaling tt/torch (>= 0.8)", "peak tt/torch (<= 1.2)"):
        assert line in nn, nn
    gpt_rows = [r for r in nn.splitlines() if r.startswith("GPT train step (AdamW) ")]
    assert len(gpt_rows) == 3 and all(r.rstrip().endswith("agree") for r in gpt_rows[:2]), gpt_rows
    assert re.search(r"(met|missed: [a-z@0-9, ]+)$", gpt_rows[2]), gpt_rows[2]

    for name in ("bench_core", "bench_nn"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG
        data = json.loads((tmp_path / f"{name}.json").read_text())
        assert data["device"] == "cpu" and data["tiny"] is True
        got = {(r["case"], r["impl"], r["threads"]) for r in data["results"]}
        case = "vit" if name == "bench_core" else "gpt"
        assert {(case, "torch", 1), (case, "tinytensor", 1)} <= got
    assert {r["threads"] for r in json.loads((tmp_path / "bench_nn.json").read_text())["results"]} == {1, 2}
