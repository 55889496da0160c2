"""A decoder-only Transformer (GPT) learns to write Python, one character at a time.

    python examples/char_gpt.py                 # 1.5-3 minutes on a 2-core CPU; ~2.2 bits/char
    mpiexec -n 2 python examples/char_gpt.py --distributed     # 2 processes, each --batch-size windows

The text is Python's own standard library: the source files of a fixed list of modules (STDLIB_FILES),
read from the running interpreter's installation, so every machine has it and nothing is downloaded.
The files are concatenated in the listed order (a few hundred thousand characters); the first 90% is
for training, the last 10% for validation. The text, and so the exact numbers, depend on the Python
version (the modules' sources change between releases), but a given interpreter always reads the same
characters, and a missing file is reported, never silently replaced.

The model is tinytensor_nn.GPT: token embeddings, pre-norm decoder-only blocks whose causal self-attention
rotates queries and keys by their position (rotary embeddings, RoPE), a final LayerNorm and a linear
head over the characters. After training it prints

  * the validation loss in bits per character next to the unigram baseline (the entropy of the
    validation text under the training text's character frequencies: what a model that ignores all
    context can do),
  * a sample of generated text,
  * greedy generation with and without the key/value cache: the same characters, and how long each took
    (with the cache every step feeds one new token and reuses the keys and values of the earlier ones).

The last line printed is the validation bits per character.

With ``--distributed`` every process of an MPI job (``mpiexec -n N``) trains the same model on its own
``--batch-size`` windows of each step's N x ``--batch-size``, and DistributedDataParallel averages the
gradients: N processes train exactly as one process with ``--batch-size`` N times larger. Rank 0 prints,
evaluates and writes the checkpoint.
"""
from __future__ import annotations

import argparse
import math
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor.distributed as dist
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor_nn.optim import AdamW
from tinytensor_nn.optim.lr_scheduler import LambdaLR
from tinytensor_nn.parallel import DistributedDataParallel
from tinytensor_nn.utils import clip_grad_norm_

# Plain-ASCII modules that exist in every Python 3.9+ (paths relative to the stdlib directory).
STDLIB_FILES = (
    "textwrap.py", "string.py", "bisect.py", "contextlib.py", "dataclasses.py", "random.py", "argparse.py",
    "difflib.py", "pprint.py", "queue.py", "abc.py", "copy.py", "enum.py", "operator.py", "calendar.py",
    "json/__init__.py", "json/decoder.py", "json/encoder.py", "numbers.py", "graphlib.py", "fnmatch.py",
    "glob.py", "csv.py", "reprlib.py", "weakref.py", "tokenize.py",
)



def stdlib_text(files=STDLIB_FILES) -> tuple[str, list[str]]:
    """The listed stdlib sources concatenated (in that order), and the files that were missing."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, missing = [], []
    for name in files:
        path = root / name
        if path.is_file():
            parts.append(path.read_text(encoding="utf-8"))
        else:
            missing.append(name)
    if not parts:
        raise FileNotFoundError(f"char_gpt: none of the stdlib files {files} exist under {root}")
    return "".join(parts), missing


class CharCodec:
    """Characters <-> ids 0..V-1 (sorted, so the ids only depend on which characters occur)."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def unigram_bits(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Bits per character of val under the training text's character frequencies (add-one smoothed)."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    log2p = np.log2(counts / counts.sum())
    return float(-log2p[val].mean())


def random_windows(rng: np.random.Generator, data: np.ndarray, batch_size: int, block_size: int):
    """(x, y) int64 (B, T): B random windows of the text and the same windows shifted by one character."""
    starts = rng.integers(0, len(data) - block_size - 1, size=batch_size)
    x = np.stack([data[s : s + block_size] for s in starts])  # (B, T)
    y = np.stack([data[s + 1 : s + block_size + 1] for s in starts])  # (B, T)
    return x, y


@tt.no_grad()
def bits_per_char(model: nn.Module, data: np.ndarray, block_size: int, max_windows: int, device: str,
                  batch_size: int = 32) -> float:
    """Mean next-character loss in bits over consecutive windows of data (at most max_windows of them)."""
    was_training = model.training
    model.eval()
    n = min(max_windows, (len(data) - 1) // block_size)
    total, count = 0.0, 0
    for i in range(0, n, batch_size):
        starts = np.arange(i, min(n, i + batch_size)) * block_size
        x = np.stack([data[s : s + block_size] for s in starts])  # (B, T)
        y = np.stack([data[s + 1 : s + block_size + 1] for s in starts])  # (B, T)
        logits = model(tt.tensor(x, device=device))  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tt.tensor(y.reshape(-1), device=device),
                               reduction="sum")
        total, count = total + loss.item(), count + y.size
    model.train(was_training)
    return total / count / math.log(2)


def warmup_cosine(warmup: int, total: int):
    """lr factor: a linear rise over ``warmup`` steps, then a cosine from 1 down to 0.1 at ``total``.

    A function of the step alone, rebuilt from the arguments: a run resumed with more --steps follows
    the longer schedule from the step it stopped at.
    """
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


def timed_generate(model: nn.GPT, prompt: tt.Tensor, n: int, use_cache: bool) -> tuple[tt.Tensor, float]:
    t0 = time.perf_counter()
    out = model.generate(prompt, n, greedy=True, use_cache=use_cache)
    return out, time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=128, help="context length in characters")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--nhead", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--eval-windows", type=int, default=128, help="validation windows of --block-size chars")
    p.add_argument("--sample-chars", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--checkpoint", default="checkpoints/char_gpt.safetensors")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (tt.set_num_threads); 1 by default: on 2 cores this small model "
                        "trained faster on one (benchmarks/bench_examples.py)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the processes of an MPI job (mpiexec -n N ...)")
    args = p.parse_args(argv)
    tt.set_num_threads(args.threads)
    rank, world = 0, 1
    if args.distributed:
        dist.init_process_group("mpi")
        rank, world = dist.get_rank(), dist.get_world_size()
    say = print if rank == 0 else (lambda *a, **k: None)

    text, missing = stdlib_text()
    codec = CharCodec(text)
    data = codec.encode(text)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    say(f"text: {len(STDLIB_FILES) - len(missing)} stdlib modules of Python {sys.version.split()[0]}, "
          f"{len(text):,} characters ({len(train):,} train, {len(val):,} validation), {len(codec)} distinct"
          + (f"; missing here: {', '.join(missing)}" if missing else ""))

    tt.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    model = nn.GPT(len(codec), args.block_size, d_model=args.d_model, nhead=args.nhead,
                   num_layers=args.layers, positional="rope").to(args.device)
    opt = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=args.weight_decay)
    sched = LambdaLR(opt, warmup_cosine(args.warmup, args.steps))
    net = DistributedDataParallel(model) if args.distributed else model  # what the training step runs

    ckpt = Path(args.checkpoint)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    start = 0
    if args.resume:
        extra = nn.load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, device=args.device)
        start = extra["step"]
        data_rng.bit_generator.state = extra["data_rng"]
        say(f"resumed from {ckpt} at step {start}")

    def save(step):
        nn.save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched,
                           extra={"step": step, "data_rng": data_rng.bit_generator.state})

    t0 = time.perf_counter()
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="train", mininterval=1.0,
               disable=rank != 0)
    for step in bar:
        # every rank draws the whole step's windows and keeps its own share of them
        x, y = random_windows(data_rng, train, world * args.batch_size, args.block_size)
        mine = slice(rank * args.batch_size, (rank + 1) * args.batch_size)
        x, y = tt.tensor(x[mine], device=args.device), tt.tensor(y[mine], device=args.device)
        logits = net(x)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, len(codec)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0:
            acc = (logits.argmax(-1) == y).float().mean().item()
            bar.set_postfix(loss=f"{loss.item():.3f}", bpc=f"{loss.item() / math.log(2):.2f}",
                            acc=f"{acc:.3f}")
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            save(step + 1)
    bar.close()
    train_time = time.perf_counter() - t0
    if rank != 0:
        return None

    bpc = bits_per_char(model, val, args.block_size, args.eval_windows, args.device)
    baseline = unigram_bits(train, val, len(codec))

    model.eval()
    prompt_text = "def "
    prompt = tt.tensor(codec.encode(prompt_text)[None], device=args.device)  # (1, T0)
    tt.manual_seed(args.seed)
    sample = model.generate(prompt, args.sample_chars, temperature=args.temperature, top_k=20)
    print(f"--- sample (temperature {args.temperature}) ---")
    print(codec.decode(sample[0].tolist()))
    print("---")

    # The cache pays off while everything fits in one context window (generate() refills it when the
    # context slides), so fill exactly one window.
    prompt = tt.tensor(val[None, :16], device=args.device)  # (1, 16)
    n = args.block_size - prompt.shape[1]
    slow, t_slow = timed_generate(model, prompt, n, use_cache=False)
    fast, t_fast = timed_generate(model, prompt, n, use_cache=True)
    same = bool((slow == fast).all().item())
    print(f"greedy generation of {n} characters: without KV cache {t_slow:.2f} s, with KV cache "
          f"{t_fast:.2f} s ({t_slow / t_fast:.1f}x faster); same tokens: {same}")
    if not same:
        raise SystemExit("char_gpt: cached and uncached generation disagree")
    print(f"saved {ckpt}")
    print(f"validation: {bpc:.3f} bits/char, unigram baseline {baseline:.3f} bits/char "
          f"({baseline - bpc:.3f} bits/char better), trained {args.steps - start} steps in "
          f"{train_time:.0f} s on {args.device}")
    return bpc, baseline


if __name__ == "__main__":
    main()
