"""A Vision Transformer learns scikit-learn's handwritten digits (8×8 images, 10 classes).

    python examples/vit_digits.py               # 40 epochs, 2-3 minutes on a 2-core CPU; ~99% test

Each 8×8 image is cut into 16 patches of 2×2 pixels; a linear map turns every patch into a 64-wide
token, a learned class token goes in front, learned position embeddings are added, and four pre-norm
Transformer encoder layers mix the 17 tokens. The class token's final state is the image's summary:
a linear head reads the digit from it. Training: AdamW, a linear warm-up over the first 10% of steps
then a cosine down to 0, label smoothing 0.1, dropout 0.1, no augmentation (shifting an 8×8 digit
by one pixel changes it too much).

Data: the 1,797 digits of ``sklearn.datasets.load_digits`` (bundled with scikit-learn, nothing to
download), pixel values / 16, split 80/20 by ``train_test_split(test_size=0.2, random_state=0,
stratify=y)``: 1,437 training and 360 test images, the same split on every machine. The last line
printed is the test accuracy.
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
from tinytensor_nn.optim import AdamW
from tinytensor_nn.optim.lr_scheduler import LambdaLR


def warmup_cosine(warmup: int, total: int):
    """lr factor: a linear rise over the first ``warmup`` steps, then a cosine from 1 down to 0 at ``total``.

    A function of the step alone, rebuilt from the arguments: a run resumed with more --epochs follows
    the longer schedule from the step it stopped at.
    """
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


def load_digits_split():
    """(x_train, y_train, x_test, y_test): images (N, 1, 8, 8) float32 in [0, 1], labels int64."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)  # (1797,)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return x_tr, y_tr, x_te, y_te


@tt.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, device: str, batch_size: int = 512) -> float:
    """Fraction of images whose highest logit is the right digit (model in eval mode: no dropout)."""
    was_training = model.training
    model.eval()
    hits = 0
    for i in range(0, len(x), batch_size):
        logits = model(tt.tensor(x[i : i + batch_size], device=device))  # (B, 10)
        hits += int((logits.argmax(-1).numpy() == y[i : i + batch_size]).sum())
    model.train(was_training)
    return hits / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=float, default=0.1, help="fraction of the steps spent warming up")
    p.add_argument("--patch-size", type=int, default=2)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp-dim", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=5, help="show test accuracy every N epochs")
    p.add_argument("--checkpoint", default="checkpoints/vit_digits.safetensors")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (tt.set_num_threads); 1 by default: on 2 cores this small model "
                        "trained faster on one (benchmarks/bench_examples.py)")
    args = p.parse_args(argv)
    tt.set_num_threads(args.threads)

    tt.manual_seed(args.seed)
    x_tr, y_tr, x_te, y_te = load_digits_split()
    steps_per_epoch = -(-len(x_tr) // args.batch_size)
    total = args.epochs * steps_per_epoch

    model = nn.VisionTransformer(
        image_size=8, patch_size=args.patch_size, in_channels=1, num_classes=10, embed_dim=args.dim,
        depth=args.depth, num_heads=args.heads, mlp_ratio=args.mlp_dim / args.dim, dropout=args.dropout,
        pos_embedding="learned", pool="cls", activation="gelu",
    ).to(args.device)
    opt = AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = LambdaLR(opt, warmup_cosine(int(args.warmup * total), total))

    ckpt = Path(args.checkpoint)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    start_epoch = 0
    if args.resume:
        extra = nn.load_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, device=args.device)
        start_epoch = extra["epoch"]
        print(f"resumed from {ckpt} at epoch {start_epoch}")

    t0 = time.perf_counter()
    bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, desc="train", mininterval=1.0)
    test_acc = None
    for epoch in range(start_epoch, args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(x_tr))  # resumable shuffle
        seen = hits = 0
        for i in range(0, len(x_tr), args.batch_size):
            idx = order[i : i + args.batch_size]
            x, y = tt.tensor(x_tr[idx], device=args.device), tt.tensor(y_tr[idx], device=args.device)
            logits = model(x)  # (B, 10)
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            hits += int((logits.argmax(-1).numpy() == y_tr[idx]).sum())
            bar.update(1)
            post = dict(epoch=epoch + 1, loss=f"{loss.item():.3f}", acc=f"{hits / seen:.3f}")
            if test_acc is not None:
                post["test_acc"] = f"{test_acc:.3f}"
            bar.set_postfix(post, refresh=False)
        if (epoch + 1) % args.eval_every == 0:
            test_acc = accuracy(model, x_te, y_te, args.device)
        nn.save_checkpoint(ckpt, model=model, optimizer=opt, scheduler=sched, extra={"epoch": epoch + 1})
    bar.close()
    train_time = time.perf_counter() - t0

    test_acc = accuracy(model, x_te, y_te, args.device)
    print(f"saved {ckpt}")
    print(f"test accuracy: {test_acc:.1%} ({round(test_acc * len(x_te))}/{len(x_te)}), "
          f"trained {args.epochs - start_epoch} epochs in {train_time:.0f} s on {args.device}")
    return test_acc


if __name__ == "__main__":
    main()
