"""tinytensor.distributed, DistributedDataParallel and DistributedSampler.

Multi-process behaviour runs for real: ``mpiexec -n 2`` launches tests/distributed/checks.py (MPI from
the ``mpi`` extra). In CI (TINYTENSOR_REQUIRE_MPI=1, set by .ci/run) a missing MPI fails these tests
instead of skipping them. The world of one process, without MPI, runs in this process.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from _torch import require_torch

import tinytensor as tt
import tinytensor.distributed as dist
import tinytensor_nn as nn
from tinytensor.autograd import queue_callback
from tinytensor.utils.data import DistributedSampler
from tinytensor.utils.data.distributed import torch_randperm
from tinytensor_nn.parallel import DistributedDataParallel as DDP

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ROOT / "tests" / "distributed" / "checks.py"


def mpiexec() -> str:
    """The MPI launcher beside this Python (the mpich wheel puts it there), else on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    # (find_spec, not an import: importing mpi4py.MPI would start MPI inside the test process)
    if found is None or importlib.util.find_spec("mpi4py") is None:
        if os.environ.get("TINYTENSOR_REQUIRE_MPI") == "1":
            pytest.fail("MPI is required (TINYTENSOR_REQUIRE_MPI=1): pip install -e '.[mpi]'")
        pytest.skip("MPI is not installed: pip install -e '.[mpi]'")
    return found


def launch(*args: str, ranks: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python args...``, one BLAS thread per rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [mpiexec(), "-n", str(ranks), sys.executable, *args] if ranks else [sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


MULTI_RANK = ["collectives", "collective_errors", "ddp_matches_one_process", "ddp_no_sync_accumulates",
              "ddp_unused_parameters_and_buffers", "ddp_refuses_different_models", "checkpoint_resume"]


@pytest.mark.parametrize("check", MULTI_RANK)
def test_on_two_ranks(check, tmp_path):
    proc = launch(str(CHECKS), check, str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"ok {check} rank 0" in proc.stdout and f"ok {check} rank 1" in proc.stdout, proc.stdout


@pytest.mark.parametrize("check", ["collectives", "ddp_matches_one_process"])
def test_the_same_script_runs_as_one_process_with_mpi(check, tmp_path):
    mpiexec()  # MPI installed, but no launcher: MPI's world of one
    proc = launch(str(CHECKS), check, str(tmp_path), ranks=0)
    assert proc.returncode == 0 and f"ok {check} rank 0" in proc.stdout, proc.stdout + proc.stderr[-3000:]


def test_an_exception_on_one_rank_ends_the_job_and_names_the_rank():
    proc = launch(str(CHECKS), "failure_aborts", timeout=120)  # rank 0 waits in a barrier meanwhile
    assert proc.returncode != 0
    assert "rank 1 of 2 failed with ValueError: boom on purpose; aborting all ranks" in proc.stderr
    assert "ok failure_aborts" not in proc.stdout


def test_char_gpt_on_two_ranks_trains_as_one_rank_with_twice_the_batch(tmp_path):
    tiny = ["--block-size", "24", "--d-model", "16", "--nhead", "2", "--layers", "1", "--warmup", "1",
            "--eval-windows", "4", "--sample-chars", "10", "--steps", "12", "--seed", "3", "--device", "cpu"]
    example = str(ROOT / "examples" / "char_gpt.py")
    one = launch(example, *tiny, "--batch-size", "8", "--checkpoint", str(tmp_path / "one.safetensors"),
                 ranks=0)
    two = launch(example, *tiny, "--batch-size", "4", "--distributed",
                 "--checkpoint", str(tmp_path / "two.safetensors"))
    for proc in (one, two):
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert two.stdout.count("validation:") == 1, "only rank 0 reports"
    metric = [p.stdout.strip().splitlines()[-1].split(", trained")[0] for p in (one, two)]
    assert metric[0] == metric[1]
    a = safetensors.numpy.load_file(tmp_path / "one.safetensors")
    b = safetensors.numpy.load_file(tmp_path / "two.safetensors")
    weights = [k for k in a if k.startswith("model.")]
    assert weights and a.keys() == b.keys()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in weights) < 1e-5


def test_the_docs_training_script_trains_alike_on_two_ranks_and_on_one(tmp_path):
    page = (ROOT / "docs" / "distributed.md").read_text()
    script = page.split('title="train.py"}', 1)[1].split("\n", 1)[1].split("\n```", 1)[0]
    (tmp_path / "train.py").write_text(script)
    runs = [launch(str(tmp_path / "train.py"), ranks=n) for n in (0, 2)]
    for proc in runs:
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    one, two = (float(p.stdout.split("first weight")[1]) for p in runs)
    assert abs(one - two) < 1e-10 and runs[1].stdout.count("first weight") == 1


# ---- a world of one process, without MPI -------------------------------------------------------------

@pytest.fixture
def world_of_one(monkeypatch):
    """init_process_group() as in a process started without a launcher, with mpi4py absent."""
    monkeypatch.setattr(dist, "import_mpi", lambda: None)
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(var, raising=False)
    dist.init_process_group()
    yield
    dist.destroy_process_group()


def test_collectives_before_init_process_group_raise():
    assert not dist.is_initialized()
    for call in (lambda: dist.all_reduce(tt.ones(2)), lambda: dist.broadcast(tt.ones(2), 0),
                 lambda: dist.all_gather([tt.ones(2)], tt.ones(2)), dist.barrier, dist.get_rank,
                 dist.get_world_size, lambda: DDP(nn.Linear(2, 2))):
        with pytest.raises(RuntimeError, match="init_process_group"):
            call()
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(4))


def test_a_world_of_one_needs_no_mpi(world_of_one):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "single process"
    x = tt.tensor([1.0, -2.0, 3.0])
    for op in dist.ReduceOp:
        dist.all_reduce(x, op=op)
    assert x.tolist() == [1.0, -2.0, 3.0]
    dist.broadcast(x, src=0)
    out = [tt.zeros(3)]
    dist.all_gather(out, x)
    assert out[0].tolist() == x.tolist()
    with pytest.raises(ValueError, match="src=1"):
        dist.broadcast(x, src=1)
    tt.manual_seed(0)
    model = nn.Linear(3, 2)
    plain = nn.Linear(3, 2)
    plain.load_state_dict(model.state_dict())
    ddp = DDP(model)
    for net in (ddp, plain):
        net(tt.ones(4, 3)).pow(2).mean().backward()
    for p, q in zip(model.parameters(), plain.parameters()):
        assert float((p.grad - q.grad).abs().max()) == 0.0
    assert DistributedSampler(range(5), shuffle=False).num_replicas == 1


def test_launched_as_one_of_several_ranks_without_mpi4py(monkeypatch):
    monkeypatch.setattr(dist, "import_mpi", lambda: None)
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(RuntimeError, match=r"one of 2 ranks.*tinytensor\[mpi\]"):
        dist.init_process_group()
    assert not dist.is_initialized()


def test_init_process_group_refuses_unknown_backends_and_wrong_sizes(monkeypatch):
    monkeypatch.setattr(dist, "import_mpi", lambda: None)
    with pytest.raises(ValueError, match="backend 'gloo' is not supported"):
        dist.init_process_group("gloo")
    with pytest.raises(ValueError, match="world_size=4"):
        dist.init_process_group(world_size=4)
    if not dist.is_nccl_available():
        with pytest.raises(RuntimeError, match="cupyx.distributed"):
            dist.init_process_group("nccl")
    assert not dist.is_initialized()


# ---- DistributedSampler: PyTorch's indices ------------------------------------------------------------

def test_torch_randperm_is_torchs_permutation():
    torch = require_torch()
    sizes = list(range(0, 40)) + [100, 257, 1000, 4097, 65536]
    for n in sizes:
        for seed in (0, 1, 12345, 2**32 + 5, -3):
            g = torch.Generator().manual_seed(seed)
            assert torch_randperm(n, seed) == torch.randperm(n, generator=g).tolist(), (n, seed)


def test_distributed_sampler_matches_pytorchs():
    require_torch()
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    for n in (0, 1, 5, 10, 11, 33, 100):
        for replicas in (1, 2, 3, 4):
            for shuffle in (True, False):
                for drop_last in (False, True):
                    for rank in range(replicas):
                        kw = dict(num_replicas=replicas, rank=rank, shuffle=shuffle, seed=7,
                                  drop_last=drop_last)
                        ours, theirs = DistributedSampler(range(n), **kw), TorchSampler(range(n), **kw)
                        for epoch in (0, 3):
                            ours.set_epoch(epoch)
                            theirs.set_epoch(epoch)
                            assert list(ours) == list(theirs), (n, kw, epoch)
                            assert len(ours) == len(theirs)


def test_distributed_sampler_refuses_bad_ranks():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(4), num_replicas=0, rank=0)


def test_distributed_sampler_in_a_dataloader_gives_each_rank_its_share():
    from tinytensor.utils.data import DataLoader, TensorDataset

    data = TensorDataset(tt.arange(10))
    seen = []
    for rank in range(2):
        loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=rank))
        seen += [int(v) for (batch,) in loader for v in batch.tolist()]
    assert sorted(seen) == list(range(10))


# ---- the engine's hooks for DDP ----------------------------------------------------------------------

def test_post_accumulate_grad_hook_sees_the_final_grad_once_per_backward():
    w = tt.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(p.grad.tolist()))
    (w * w + 3 * w).sum().backward()  # two paths into w: the hook runs once, after both
    assert seen == [[5.0, 7.0]]
    (w * 2).sum().backward()  # accumulated into .grad first
    assert seen == [[5.0, 7.0], [7.0, 9.0]]
    tt.autograd.grad((w * 2).sum(), w)  # autograd.grad accumulates nothing: no hook
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="does not require grad"):
        tt.ones(2).register_post_accumulate_grad_hook(print)


def test_queue_callback_runs_when_backward_ends():
    a = tt.ones(2, requires_grad=True)
    b = tt.ones(2, requires_grad=True)
    log = []

    def hook(p):
        log.append("hook")
        queue_callback(lambda: log.append(("end", a.grad is not None, b.grad is not None)))
        queue_callback(lambda: queue_callback(lambda: log.append("queued by a callback")))

    a.register_post_accumulate_grad_hook(hook)
    (a * b).sum().backward()
    assert log == ["hook", ("end", True, True), "queued by a callback"]
    with pytest.raises(RuntimeError, match="no backward pass is running"):
        queue_callback(print)
