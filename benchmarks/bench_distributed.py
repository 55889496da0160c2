"""Data parallelism over MPI on this machine: all-reduce throughput, the encoder step on 1 rank x 2
threads against 2 ranks x 1 thread, and how much of the gradient traffic backward hides.

    python benchmarks/bench_distributed.py [--repeat 20] [--ranks 2]

Needs the ``mpi`` extra (``pip install -e ".[mpi]"``); every measurement runs in fresh processes
started by ``mpiexec`` (or plain ``python`` for one rank) with the thread count fixed (_common.bench_env).

* all-reduce: ``tinytensor.distributed.all_reduce`` (SUM, in place) of a float32 tensor of 1 KB to
  64 MB between the ranks; the median time of a call after a barrier, and bytes / time in GB/s.
* encoder step: bench_nn.py's encoder training step (2-layer TransformerEncoder, d_model 128, batch 32,
  sequence 64, Adam), once as one process on the whole batch with 2 BLAS threads, once as 2 ranks under
  DistributedDataParallel on 16 sequences each with 1 thread each: the median step time of rank 0.
* overlap: on the ranks, backward with DDP (until the averaged gradients are in ``.grad``) against
  backward of the same model without DDP (each time the slowest rank's, as a synchronized backward
  ends with it), and one blocking all-reduce of all the gradients' bytes: hidden = 1 - (DDP backward -
  plain backward) / all-reduce time, the share of the communication that ran while backward was
  still computing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # _common, and tinytensor from this checkout
from _common import RESULT_PREFIX, bench_env, report, table  # noqa: E402
from bench_nn import ENC  # noqa: E402

SIZES = [2**k for k in range(10, 27, 2)]  # 1 KB .. 64 MB


def launcher() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit("bench_distributed: mpiexec not found; pip install -e '.[mpi]'")
    return found


def run(ranks: int, threads: int, *args: str) -> dict:
    """Run this file's worker on ``ranks`` processes; the result rank 0 reported."""
    command = [sys.executable, __file__, *args]
    if ranks > 1:
        command = [launcher(), "-n", str(ranks), *command]
    proc = subprocess.run(command, env=bench_env(threads), capture_output=True, text=True, timeout=1800)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(f"worker {args} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                       f"{proc.stderr[-4000:]}")


# ---- workers (inside the MPI job) ------------------------------------------------------------------

def median_time(fn, repeat: int, sync) -> float:
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def allreduce_worker(repeat: int) -> None:
    import tinytensor as tt
    import tinytensor.distributed as dist

    dist.init_process_group()
    out = {}
    for nbytes in SIZES:
        x = tt.ones(nbytes // 4)
        calls = max(3, min(repeat * 10, (2**28) // nbytes))
        dist.all_reduce(x)  # warm-up
        out[nbytes] = median_time(lambda x=x: dist.all_reduce(x), calls, dist.barrier)
    if dist.get_rank() == 0:
        report({"allreduce": out})


def encoder_model(tt, nn):
    tt.manual_seed(0)
    layer = nn.TransformerEncoderLayer(ENC["d_model"], ENC["nhead"], ENC["dim_feedforward"], dropout=0.0,
                                       batch_first=True)
    head = nn.Linear(ENC["d_model"], ENC["classes"])
    return nn.Sequential(nn.TransformerEncoder(layer, ENC["layers"]), head)


def encoder_worker(repeat: int) -> None:
    import tinytensor as tt
    import tinytensor.distributed as dist
    import tinytensor_nn as nn
    import tinytensor_nn.functional as F
    from tinytensor_nn.parallel import DistributedDataParallel

    dist.init_process_group()
    rank, world = dist.get_rank(), dist.get_world_size()
    rng = np.random.default_rng(0)
    batch = ENC["batch"] // world
    mine = slice(rank * batch, (rank + 1) * batch)  # this rank's share of the batch
    x = tt.tensor(rng.standard_normal((ENC["batch"], ENC["seq"], ENC["d_model"]), dtype=np.float32)[mine])
    y = tt.tensor(rng.integers(0, ENC["classes"], (ENC["batch"], ENC["seq"]))[mine])
    model = encoder_model(tt, nn)
    net = DistributedDataParallel(model) if world > 1 else model
    opt = tt.optim.Adam(model.parameters(), lr=1e-3)

    def loss_of(m):
        return F.cross_entropy(m(x).reshape(-1, ENC["classes"]), y.reshape(-1))

    def step():
        opt.zero_grad()
        loss_of(net).backward()
        opt.step()

    for _ in range(3):
        step()
    result = {"step": median_time(step, repeat, dist.barrier)}

    # backward alone, without and with DDP (on one rank DDP's all-reduce moves nothing: what is left
    # is its bookkeeping)
    ddp = net if world > 1 else DistributedDataParallel(model)

    def backward_of(m):
        opt.zero_grad()
        loss = loss_of(m)
        dist.barrier()  # both ranks start backward together: no wait for a slower forward
        t0 = time.perf_counter()
        loss.backward()
        return time.perf_counter() - t0

    def slowest(seconds):  # a synchronized backward ends with the slowest rank: compare those
        t = tt.tensor(seconds, dtype=tt.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.item()

    plain, synced = [], []
    for _ in range(3 * repeat):
        plain.append(slowest(backward_of(model)))
        synced.append(slowest(backward_of(ddp)))
    flat = tt.cat([p.grad.reshape(-1) for p in model.parameters()])
    result.update(plain_backward=statistics.median(plain), ddp_backward=statistics.median(synced),
                  grad_bytes=flat.numel() * 4,
                  allreduce=median_time(lambda: dist.all_reduce(flat), 3 * repeat, dist.barrier))
    if rank == 0:
        report(result)


# ---- the driver ----------------------------------------------------------------------------------

def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 2**10:.3g} KB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--worker", choices=("allreduce", "encoder"))
    args = p.parse_args()
    if args.worker == "allreduce":
        return allreduce_worker(args.repeat)
    if args.worker == "encoder":
        return encoder_worker(args.repeat)

    n = args.ranks
    ar = run(n, 1, "--worker", "allreduce", "--repeat", str(args.repeat))["allreduce"]
    print(f"all-reduce (SUM, float32, in place) between {n} ranks, 1 thread each, median per call")
    print(table(["size", "time", "GB/s"],
                [[fmt_bytes(int(b)), f"{t * 1e6:.0f} us", f"{int(b) / t / 1e9:.3g}"] for b, t in ar.items()]))

    single = run(1, 1, "--worker", "encoder", "--repeat", str(args.repeat))
    one = run(1, n, "--worker", "encoder", "--repeat", str(args.repeat))
    many = run(n, 1, "--worker", "encoder", "--repeat", str(args.repeat))
    print(f"\nencoder training step (batch {ENC['batch']}, seq {ENC['seq']}, d_model {ENC['d_model']}), "
          f"median of {args.repeat}")
    print(table(["run", "step", "vs 1 rank"],
                [["1 rank x 1 thread", f"{single['step'] * 1e3:.1f} ms",
                  f"{single['step'] / one['step']:.2f}x"],
                 [f"1 rank x {n} threads", f"{one['step'] * 1e3:.1f} ms", "1.00x"],
                 [f"{n} ranks x 1 thread (DDP)", f"{many['step'] * 1e3:.1f} ms",
                  f"{many['step'] / one['step']:.2f}x"]]))
    bookkeeping = single["ddp_backward"] - single["plain_backward"]
    exposed = many["ddp_backward"] - many["plain_backward"] - bookkeeping
    hidden = min(1.0, max(0.0, 1.0 - exposed / many["allreduce"]))
    ms = {k: f"{v * 1e3:.1f} ms" for k, v in many.items() if k != "grad_bytes"}
    print(f"\noverlap (medians; on {n} ranks each time the slowest rank's backward): backward "
          f"{ms['plain_backward']} without DDP, {ms['ddp_backward']} with it; DDP's bookkeeping alone "
          f"(1 rank) {bookkeeping * 1e3:.1f} ms; the all-reduce of all {fmt_bytes(many['grad_bytes'])} of "
          f"gradients alone {ms['allreduce']} -> {hidden:.0%} of the communication hidden behind backward")


if __name__ == "__main__":
    main()
