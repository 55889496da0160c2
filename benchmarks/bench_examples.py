"""End-to-end training time of the examples' models, tinytensor against the same model in PyTorch.

    python benchmarks/bench_examples.py [--threads 1,2] [--steps 60] [--warmup 5] [--cases reverse,char_gpt]

Cases, each at its example's default sizes, and every step whole (make the batch, forward, loss,
backward, clip the gradient norm, optimizer and schedule step):

* ``reverse``: examples/transformer_reverse.py, the flagship: the encoder-decoder Transformer (d_model 64,
  4 heads, 2+2 layers, feed-forward 256) reversing digit strings of 1-12 digits, batch 128, padding and
  causal masks, label smoothing, Adam with the Noam schedule. tinytensor runs the example's own Reverser
  and make_batch; PyTorch the same model built from torch.nn.Transformer.
* ``char_gpt``: examples/char_gpt.py's model: tinytensor_nn.GPT with rotary positions (d_model 64,
  4 heads, 2 layers, block 128), batch 16, AdamW with a warmup-cosine schedule; PyTorch the twin in
  _torch_models.py. The text is a fixed random token stream of the example's vocabulary size.

Each (case, library, thread count) runs in a process of its own with that many threads
(benchmarks/_common.py); the table gives seconds per step after ``--warmup`` steps, and the speed-up
of each library from the fewest to the most threads.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import numpy as np  # noqa: E402
from _common import parse_threads, report, run_worker, table  # noqa: E402

IMPLS = ("tinytensor", "torch")
CASES = ("reverse", "char_gpt")
REVERSE = dict(batch=128, max_len=12, d_model=64, nhead=4, layers=2, ff=256, warmup=400)
CHAR_GPT = dict(batch=16, block=128, d_model=64, nhead=4, layers=2, vocab=96, lr=3e-3, weight_decay=0.01)


# ---- the flagship in PyTorch: the example's Reverser written with torch.nn ---------------------------

def torch_reverser(torch, d_model: int, nhead: int, layers: int, ff: int, max_len: int, vocab: int,
                   pad: int):
    nn = torch.nn

    class Reverser(nn.Module):
        def __init__(self):
            super().__init__()
            self.d_model = d_model
            self.embed = nn.Embedding(vocab, d_model, padding_idx=pad)
            pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
            freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64)
                             * (-math.log(10000.0) / d_model))
            pe = torch.zeros(max_len, d_model, dtype=torch.float64)
            pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
            self.register_buffer("pe", pe.float(), persistent=False)
            self.transformer = nn.Transformer(d_model, nhead, layers, layers, ff, dropout=0.0,
                                              batch_first=True)
            self.head = nn.Linear(d_model, vocab)

        def embed_tokens(self, tokens):
            return self.embed(tokens) * math.sqrt(self.d_model) + self.pe[: tokens.shape[1]]

        def forward(self, src, tgt_in):
            src_pad = src == pad
            memory = self.transformer.encoder(self.embed_tokens(src), src_key_padding_mask=src_pad)
            T = tgt_in.shape[1]
            causal = nn.Transformer.generate_square_subsequent_mask(T)
            h = self.transformer.decoder(self.embed_tokens(tgt_in), memory, tgt_mask=causal,
                                         tgt_is_causal=True, tgt_key_padding_mask=tgt_in == pad,
                                         memory_key_padding_mask=src_pad)
            return self.head(h)

    return Reverser()


def reverse_step(impl: str):
    """One whole training step of the flagship, as a function of no arguments."""
    import transformer_reverse as ex

    c = REVERSE
    rng = np.random.default_rng(0)
    if impl == "torch":
        import torch

        lib, F, optim = torch, torch.nn.functional, torch.optim
        model = torch_reverser(torch, c["d_model"], c["nhead"], c["layers"], c["ff"], c["max_len"] + 2,
                               ex.VOCAB, ex.PAD)
        make = torch.from_numpy
        clip = torch.nn.utils.clip_grad_norm_
        LambdaLR = torch.optim.lr_scheduler.LambdaLR
    else:
        import tinytensor as lib
        import tinytensor_nn.functional as F
        import tinytensor_nn.optim as optim
        from tinytensor_nn.optim.lr_scheduler import LambdaLR
        from tinytensor_nn.utils import clip_grad_norm_ as clip

        model = ex.Reverser(c["d_model"], c["nhead"], c["layers"], c["ff"], c["max_len"] + 2)
        make = lib.tensor
    opt = optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    sched = LambdaLR(opt, ex.noam_with_cooldown(c["d_model"], c["warmup"], 10**6))

    def loss():
        src, tgt_in, tgt_out = (make(a) for a in ex.make_batch(rng, c["batch"], c["max_len"]))
        logits = model(src, tgt_in)  # (B, T, VOCAB)
        return F.cross_entropy(logits.reshape(-1, ex.VOCAB), tgt_out.reshape(-1), ignore_index=ex.PAD,
                               label_smoothing=0.1)

    del lib
    return training_step(loss, model, opt, sched, clip)


def char_gpt_step(impl: str):
    """One whole training step of char_gpt's model on a fixed random token stream."""
    import char_gpt as ex

    c = CHAR_GPT
    rng = np.random.default_rng(0)
    text = rng.integers(0, c["vocab"], 200_000)
    if impl == "torch":
        import _torch_models as tm
        import torch

        F, optim = torch.nn.functional, torch.optim
        model = tm.GPT(c["vocab"], c["block"], c["d_model"], c["nhead"], c["layers"])
        make = torch.from_numpy
        clip = torch.nn.utils.clip_grad_norm_
        LambdaLR = torch.optim.lr_scheduler.LambdaLR
    else:
        import tinytensor
        import tinytensor_nn as nn
        import tinytensor_nn.functional as F
        import tinytensor_nn.optim as optim
        from tinytensor_nn.optim.lr_scheduler import LambdaLR
        from tinytensor_nn.utils import clip_grad_norm_ as clip

        model = nn.GPT(c["vocab"], c["block"], d_model=c["d_model"], nhead=c["nhead"], num_layers=c["layers"],
                       positional="rope")
        make = tinytensor.tensor
    opt = optim.AdamW(model.parameters(), lr=c["lr"], betas=(0.9, 0.99), weight_decay=c["weight_decay"])
    sched = LambdaLR(opt, ex.warmup_cosine(50, 10**6))

    def loss():
        x, y = (make(a) for a in ex.random_windows(rng, text, c["batch"], c["block"]))
        logits = model(x)  # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, c["vocab"]), y.reshape(-1))

    return training_step(loss, model, opt, sched, clip)


def training_step(loss_of_a_batch, model, opt, sched, clip):
    """The examples' step around a batch's loss: backward, clip the gradient norm to 1, optimizer and
    schedule step; returns the loss."""
    def step():
        loss = loss_of_a_batch()
        opt.zero_grad()
        loss.backward()
        clip(model.parameters(), 1.0)
        opt.step()
        sched.step()
        return loss

    return step


def worker(args) -> None:
    if args.impl == "torch":
        import torch

        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
    else:
        import tinytensor

        tinytensor.set_num_threads(args.threads)
    step = (reverse_step if args.case == "reverse" else char_gpt_step)(args.impl)
    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    seconds = time.perf_counter() - t0
    report({"per_step": seconds / args.steps, "total": seconds, "loss": float(loss.item())})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts, or 'all'")
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    threads = parse_threads(args.threads)
    cases = [c for c in args.cases.split(",") if c]
    res = {}
    for case in cases:
        for n in threads:
            for impl in IMPLS:
                print(f"  {case:9s} {impl:10s} x{n} ...", file=sys.stderr, flush=True)
                res[case, impl, n] = run_worker(__file__, ["--worker", "--impl", impl, "--case", case,
                                                           "--threads", str(n), "--steps", str(args.steps),
                                                           "--warmup", str(args.warmup)], n)
    print(f"examples end to end: {args.steps} steps after {args.warmup} warm-up steps, each library and "
          f"thread count in its own process")
    rows = []
    for case in cases:
        for n in threads:
            t, p_ = (res[case, i, n]["per_step"] for i in IMPLS)
            rows.append([case, n, f"{t * 1e3:.1f} ms", f"{p_ * 1e3:.1f} ms", f"{t / p_:.2f}x"])
    print(table(["case", "threads", "tinytensor step", "torch step", "tt/torch"], rows))
    if len(threads) > 1:
        lo, hi = threads[0], threads[-1]
        rows = []
        for case in cases:
            su = {i: res[case, i, lo]["per_step"] / res[case, i, hi]["per_step"] for i in IMPLS}
            rows.append([case, f"{su['tinytensor']:.2f}x", f"{su['torch']:.2f}x",
                         f"{(su['tinytensor'] - 1) / (su['torch'] - 1):.0%}" if su["torch"] > 1 else "-"])
        print(table(["case", f"tt {lo}->{hi} threads", f"torch {lo}->{hi} threads", "tt's gain / torch's"],
                    rows))


if __name__ == "__main__":
    main()
