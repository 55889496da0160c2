"""The encoder-decoder Transformer of "Attention Is All You Need" learns to reverse digit sequences.

    python examples/transformer_reverse.py            # ~1,500 steps; reaches >= 99% exact match

The source is a random string of 1-12 digits; the target is the same digits reversed. Everything the
paper uses is here: token embeddings scaled by sqrt(d_model) plus sinusoidal positional encodings,
padding masks on the source, a causal mask on the target, label smoothing, the Noam learning-rate
schedule (with a linear cool-down over the last 40% of steps), and greedy decoding. The last line
printed is the exact-match accuracy on 1,000 held-out sequences.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor_nn.optim import Adam
from tinytensor_nn.optim.lr_scheduler import LambdaLR
from tinytensor_nn.utils import clip_grad_norm_

PAD, BOS, EOS = 0, 1, 2  # digits 0-9 are tokens 3-12
VOCAB = 13


def make_batch(rng: np.random.Generator, n: int, max_len: int):
    """(src, tgt_in, tgt_out) as int64 arrays of shape (n, max_len + 1), padded with PAD."""
    lengths = rng.integers(1, max_len + 1, size=n)
    src = np.full((n, max_len + 1), PAD, dtype=np.int64)
    tgt_in, tgt_out = src.copy(), src.copy()
    for i, length in enumerate(lengths):
        digits = rng.integers(3, VOCAB, size=length)
        src[i, :length], src[i, length] = digits, EOS
        tgt_in[i, 0], tgt_in[i, 1 : length + 1] = BOS, digits[::-1]
        tgt_out[i, :length], tgt_out[i, length] = digits[::-1], EOS
    return src, tgt_in, tgt_out


class Reverser(nn.Module):
    """Embeddings + sinusoidal positions -> nn.Transformer -> a linear head over the vocabulary."""

    def __init__(self, d_model: int, nhead: int, num_layers: int, dim_feedforward: int, max_len: int):
        super().__init__()
        self.d_model = d_model
        self.embed = nn.Embedding(VOCAB, d_model, padding_idx=PAD)
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len)
        self.transformer = nn.Transformer(
            d_model, nhead, num_layers, num_layers, dim_feedforward, dropout=0.0, batch_first=True
        )
        self.head = nn.Linear(d_model, VOCAB)

    def embed_tokens(self, tokens):
        return self.pos(self.embed(tokens) * math.sqrt(self.d_model))  # (B, T, C)

    def encode(self, src):
        src_pad = src == PAD  # True = padding, masked out (nn.Transformer's convention)
        return self.transformer.encoder(self.embed_tokens(src), src_key_padding_mask=src_pad), src_pad

    def decode(self, tgt_in, memory, src_pad):
        T = tgt_in.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(T, device=tgt_in.device)
        h = self.transformer.decoder(
            self.embed_tokens(tgt_in), memory, tgt_mask=causal, tgt_is_causal=True,
            tgt_key_padding_mask=tgt_in == PAD, memory_key_padding_mask=src_pad,
        )
        return self.head(h)  # (B, T, VOCAB)

    def forward(self, src, tgt_in):
        memory, src_pad = self.encode(src)
        return self.decode(tgt_in, memory, src_pad)

    @tt.no_grad()
    def greedy_decode(self, src, max_steps: int):
        """Feed back the most likely token, one position at a time, starting from BOS."""
        memory, src_pad = self.encode(src)
        ys = tt.full((src.shape[0], 1), BOS, dtype=tt.int64, device=src.device)
        for _ in range(max_steps):
            next_token = self.decode(ys, memory, src_pad)[:, -1].argmax(-1)  # (B,)
            ys = tt.cat([ys, next_token.unsqueeze(1)], dim=1)
        return ys[:, 1:]


def exact_match(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A row counts if every token up to and including EOS is right (PAD positions are free)."""
    return ((pred == target) | (target == PAD)).all(axis=1)


def noam_with_cooldown(d_model: int, warmup: int, total: int, factor: float = 1.0):
    """The paper's lr = factor · d^-0.5 · min(s^-0.5, s · warmup^-1.5), then linearly to 0 over the
    last 40% of the steps."""
    def lr(step: int) -> float:
        s = max(step, 1)
        noam = factor * d_model**-0.5 * min(s**-0.5, s * warmup**-1.5)
        return noam * min(1.0, (total - step) / (0.4 * total))
    return lr


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (tt.set_num_threads); 1 by default: on 2 cores this small model "
                        "trained faster on one (benchmarks/bench_examples.py)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-len", type=int, default=12, help="longest digit string")
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--nhead", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dim-feedforward", type=int, default=256)
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--checkpoint", default="checkpoints/transformer_reverse.safetensors")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    args = p.parse_args(argv)

    tt.set_num_threads(args.threads)
    tt.manual_seed(args.seed)
    data_rng = np.random.default_rng(args.seed)
    test_rng = np.random.default_rng(10_000 + args.seed)  # a separate stream: held out from training
    test_src, _, test_out = make_batch(test_rng, args.test_size, args.max_len)

    model = Reverser(args.d_model, args.nhead, args.layers, args.dim_feedforward, args.max_len + 2)
    for prm in model.parameters():
        if prm.ndim > 1:
            nn.init.xavier_uniform_(prm)
    model.to(args.device)
    opt = Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    sched = LambdaLR(opt, noam_with_cooldown(args.d_model, args.warmup, args.steps))

    start = 0
    ckpt = Path(args.checkpoint)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    if args.resume:
        extra = nn.load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, device=args.device)
        start = extra["step"]
        data_rng.bit_generator.state = extra["data_rng"]
        print(f"resumed from {ckpt} at step {start}")

    def save(step):
        nn.save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched,
                           extra={"step": step, "data_rng": data_rng.bit_generator.state})

    t0 = time.perf_counter()
    bar = tqdm(range(start, args.steps), initial=start, total=args.steps, desc="train", mininterval=1.0)
    for step in bar:
        batch = make_batch(data_rng, args.batch_size, args.max_len)
        src, tgt_in, tgt_out = (tt.tensor(a, device=args.device) for a in batch)
        logits = model(src, tgt_in)  # (B, T, VOCAB)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt_out.reshape(-1), ignore_index=PAD,
                               label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 10 == 0:
            hit = (logits.argmax(-1) == tgt_out).numpy()[tgt_out.numpy() != PAD].mean()
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{hit:.3f}")
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps:
            save(step + 1)
    bar.close()
    train_time = time.perf_counter() - t0

    model.eval()
    pred = model.greedy_decode(tt.tensor(test_src, device=args.device), args.max_len + 1).numpy()
    ok = exact_match(pred, test_out)
    def digits(row) -> str:  # the digits before the first EOS
        row = list(row)
        return "".join(str(t - 3) for t in row[: row.index(EOS) if EOS in row else None] if t >= 3)

    for i in range(3):
        print(f"  {digits(test_src[i]):>12} -> {digits(pred[i]):<12} {'ok' if ok[i] else 'WRONG'}")
    print(f"held-out exact-match accuracy: {ok.mean():.1%} ({ok.sum()}/{len(ok)}), "
          f"trained {args.steps - start} steps in {train_time:.0f} s on {args.device}")
    return ok.mean()


if __name__ == "__main__":
    main()
