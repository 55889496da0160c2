"""Pictures of the Transformer: positional encodings, the Noam schedule and the attention of a trained model.

    python examples/transformer_reverse.py      # trains the reversal model (checkpoints/...)
    python examples/attention_maps.py           # draws figures/*.png from it

Figures (PNG, written to --out):

  positional_encoding.png     the sinusoidal table PE[pos, i]: positions × dimensions
  position_dot_products.png   PE[p] · PE[q] for all pairs: it depends on |p - q| only, largest at p = q
  noam_schedule.png           the paper's learning rate for a few (d_model, warmup), and the flagship's
  cross_attention.png         decoder → encoder attention of the reversal model, every layer and head:
                              output position t looks at source position L-1-t, an anti-diagonal
  self_attention.png          encoder and decoder self-attention (averaged over heads)

The model is the one examples/transformer_reverse.py trains, read from its checkpoint
(checkpoints/transformer_reverse.safetensors). If that file does not exist, this script trains it first
by running the flagship's own main() with the same settings (--train-steps, its full 1,500-step recipe
by default: a few minutes on a CPU); ``--resume`` continues an interrupted training from the checkpoint.

The attention weights come from the library's public API: every MultiheadAttention returns them with
need_weights=True. The forward pass is replayed layer by layer, calling each layer's self_attn and
multihead_attn on exactly the inputs the layer gives them, and the replay's logits are checked against
the model's own forward pass. The last line printed is how much cross-attention falls on the mirrored
source position.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import tinytensor as tt
import tinytensor_nn as nn
from tinytensor_nn.optim import Adam
from tinytensor_nn.optim.lr_scheduler import LambdaLR, NoamLR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transformer_reverse as flagship  # the reversal model, its data and its training loop

PAD, BOS, EOS = flagship.PAD, flagship.BOS, flagship.EOS



# ---- replaying the reversal model layer by layer ----------------------------------------------

def replay_encoder_layer(layer: nn.TransformerEncoderLayer, x, src_pad):
    """A post-norm encoder layer step by step: x = LN(x + SelfAttn(x)); x = LN(x + FFN(x)).
    Returns the layer's output and its self-attention weights (B, h, S, S)."""
    a, w = layer.self_attn(x, x, x, key_padding_mask=src_pad, need_weights=True, average_attn_weights=False)
    x = layer.norm1(x + a)
    x = layer.norm2(x + layer.linear2(layer.activation(layer.linear1(x))))
    return x, w


def replay_decoder_layer(layer: nn.TransformerDecoderLayer, y, memory, causal, tgt_pad, src_pad):
    """A post-norm decoder layer step by step; returns its output, the self-attention weights
    (B, h, T, T) and the cross-attention weights (B, h, T, S)."""
    a, w_self = layer.self_attn(y, y, y, attn_mask=causal, key_padding_mask=tgt_pad, is_causal=True,
                                need_weights=True, average_attn_weights=False)
    y = layer.norm1(y + a)
    a, w_cross = layer.multihead_attn(y, memory, memory, key_padding_mask=src_pad, need_weights=True,
                                      average_attn_weights=False)
    y = layer.norm2(y + a)
    y = layer.norm3(y + layer.linear2(layer.activation(layer.linear1(y))))
    return y, w_self, w_cross


@tt.no_grad()
def attention_weights(model: flagship.Reverser, src, tgt_in):
    """(logits, encoder self, decoder self, cross): the weights as lists with one (B, h, ., .) array per
    layer, from the same computation as model(src, tgt_in) (dropout is 0, masks as in the flagship)."""
    tf = model.transformer
    if any(layer.norm_first for layer in list(tf.encoder.layers) + list(tf.decoder.layers)):
        raise ValueError("attention_maps: the replay follows post-norm layers (norm_first=False), as the "
                         "flagship builds them")
    src_pad, tgt_pad = src == PAD, tgt_in == PAD
    x, enc = model.embed_tokens(src), []
    for layer in tf.encoder.layers:
        x, w = replay_encoder_layer(layer, x, src_pad)
        enc.append(w.numpy())
    memory = tf.encoder.norm(x)
    causal = nn.Transformer.generate_square_subsequent_mask(tgt_in.shape[1], device=tgt_in.device)
    y, dec, cross = model.embed_tokens(tgt_in), [], []
    for layer in tf.decoder.layers:
        y, w_self, w_cross = replay_decoder_layer(layer, y, memory, causal, tgt_pad, src_pad)
        dec.append(w_self.numpy())
        cross.append(w_cross.numpy())
    return model.head(tf.decoder.norm(y)), enc, dec, cross


def mirrored_mass(cross: np.ndarray, src: np.ndarray) -> np.ndarray:
    """(h,): the mean cross-attention weight that the query predicting output digit t puts on source
    position L-1-t (the digit it has to copy), over all digits of all sequences. cross (B, h, T, S)."""
    lengths = (src >= 3).sum(axis=1)  # digits per sequence
    b = np.concatenate([np.full(L, i) for i, L in enumerate(lengths)])
    t = np.concatenate([np.arange(L) for L in lengths])
    s = np.concatenate([L - 1 - np.arange(L) for L in lengths])
    return cross[b, :, t, s].mean(axis=0)


# ---- figures ----------------------------------------------------------------------------------

def plot_positional_encoding(out: Path, positions: int, d_model: int) -> list[Path]:
    pe = nn.sinusoidal_table(positions, d_model, dtype=tt.float64).numpy()  # (P, d)
    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.imshow(pe, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set(xlabel="dimension i (even: sin, odd: cos)", ylabel="position",
           title=f"sinusoidal positional encoding, d_model = {d_model}")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    paths = [out / "positional_encoding.png"]
    fig.savefig(paths[0], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(pe @ pe.T, cmap="viridis", interpolation="nearest")
    ax.set(xlabel="position q", ylabel="position p", title="PE[p] · PE[q]: a function of |p - q|")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    paths.append(out / "position_dot_products.png")
    fig.savefig(paths[1], dpi=120)
    plt.close(fig)
    return paths


def schedule(make_scheduler, steps: int) -> np.ndarray:
    """The learning rate a scheduler sets at steps 0 .. steps-1 (on a throwaway optimizer)."""
    opt = Adam([nn.Parameter(tt.zeros(1))], lr=1.0)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    return np.array(lrs)


def plot_noam(out: Path, args) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for d, w in ((512, 4000), (512, 8000), (256, 4000)):
        left.plot(schedule(lambda opt, d=d, w=w: NoamLR(opt, d_model=d, warmup_steps=w), 20000),
                  label=f"d_model={d}, warmup={w}")
    left.set(xlabel="step", ylabel="learning rate", title="Noam: d^-0.5 · min(s^-0.5, s · warmup^-1.5)")
    left.legend()
    cooldown = flagship.noam_with_cooldown(args.d_model, args.warmup, args.train_steps)
    right.plot(schedule(lambda opt: LambdaLR(opt, cooldown), args.train_steps))
    right.set(xlabel="step", title=f"transformer_reverse.py: d={args.d_model}, warmup={args.warmup},\n"
                                   f"then a linear cool-down over the last 40%")
    fig.tight_layout()
    path = out / "noam_schedule.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def digits_labels(tokens) -> list[str]:
    names = {PAD: "pad", BOS: "<s>", EOS: "</s>"}
    return [names.get(int(t), str(int(t) - 3)) for t in tokens]


def heatmap(ax, w, rows, cols, title):
    ax.imshow(w, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(cols)), cols, fontsize=7, rotation=90)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(title, fontsize=9)


def plot_attention(out: Path, src, tgt_in, enc, dec, cross) -> list[Path]:
    """Maps for sequence 0 of the batch: cross-attention per layer and head, self-attention per layer."""
    src_lab, tgt_lab = digits_labels(src[0]), digits_labels(tgt_in[0])
    layers, heads = len(cross), cross[0].shape[1]
    fig, axes = plt.subplots(layers, heads + 1, figsize=(2.6 * (heads + 1), 2.6 * layers), squeeze=False)
    for i in range(layers):
        for h in range(heads):
            heatmap(axes[i, h], cross[i][0, h], tgt_lab, src_lab, f"decoder layer {i + 1}, head {h + 1}")
        heatmap(axes[i, heads], cross[i][0].mean(0), tgt_lab, src_lab, f"layer {i + 1}, mean of heads")
    for ax in axes[:, 0]:
        ax.set_ylabel("decoder input (query)")
    for ax in axes[-1]:
        ax.set_xlabel("source (key)")
    fig.suptitle("cross-attention of the reversal model: the anti-diagonal copies the source backwards")
    fig.tight_layout()
    paths = [out / "cross_attention.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(2, layers, figsize=(3 * layers, 6), squeeze=False)
    for i in range(layers):
        heatmap(axes[0, i], enc[i][0].mean(0), src_lab, src_lab, f"encoder layer {i + 1}")
        heatmap(axes[1, i], dec[i][0].mean(0), tgt_lab, tgt_lab, f"decoder layer {i + 1} (causal)")
    fig.suptitle("self-attention, mean of the heads")
    fig.tight_layout()
    paths.append(out / "self_attention.png")
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def encode_example(digits: str, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(src, tgt_in) (1, L+1) int64 for a digit string: digits + EOS, and BOS + the digits reversed."""
    if not digits.isdigit() or not 1 <= len(digits) <= max_len:
        raise ValueError(f"attention_maps: --example must be 1 to {max_len} digits, got {digits!r}")
    tokens = [int(c) + 3 for c in digits]
    return np.array([tokens + [EOS]]), np.array([[BOS] + tokens[::-1]])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default="checkpoints/transformer_reverse.safetensors")
    p.add_argument("--out", default="figures", help="folder for the PNG files")
    p.add_argument("--example", default="31415926535", help="the digit string whose attention is drawn")
    p.add_argument("--held-out", type=int, default=500, help="sequences for the anti-diagonal score")
    p.add_argument("--resume", action="store_true", help="continue training the checkpoint first")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads (tt.set_num_threads); 1 by default: on 2 cores this small model "
                        "trained faster on one (benchmarks/bench_examples.py)")
    g = p.add_argument_group("the reversal model (must match the checkpoint; used to train it if missing)")
    g.add_argument("--train-steps", type=int, default=1500)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--max-len", type=int, default=12)
    g.add_argument("--d-model", type=int, default=64)
    g.add_argument("--nhead", type=int, default=4)
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--dim-feedforward", type=int, default=256)
    g.add_argument("--warmup", type=int, default=400)
    args = p.parse_args(argv)
    tt.set_num_threads(args.threads)

    ckpt = Path(args.checkpoint)
    if args.resume or not ckpt.exists():
        print(("continuing the training in" if args.resume else "no checkpoint yet: training") + f" {ckpt}")
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        flagship.main([
            "--device", args.device, "--seed", str(args.seed), "--steps", str(args.train_steps),
            "--batch-size", str(args.batch_size), "--max-len", str(args.max_len), "--d-model",
            str(args.d_model), "--nhead", str(args.nhead), "--layers", str(args.layers), "--dim-feedforward",
            str(args.dim_feedforward), "--warmup", str(args.warmup), "--test-size", "100",
            "--checkpoint", str(ckpt), *(["--resume"] if args.resume else []),
        ])

    tt.manual_seed(args.seed)
    model = flagship.Reverser(args.d_model, args.nhead, args.layers, args.dim_feedforward, args.max_len + 2)
    model.to(args.device)
    nn.load_checkpoint(ckpt, model=model, restore_rng=False, device=args.device)
    model.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # a held-out batch (the flagship's test distribution): replay == forward, accuracy, anti-diagonal
    src, tgt_in, tgt_out = flagship.make_batch(np.random.default_rng(20_000 + args.seed), args.held_out,
                                               args.max_len)
    src_t, tgt_t = tt.tensor(src, device=args.device), tt.tensor(tgt_in, device=args.device)
    logits, _, _, cross = attention_weights(model, src_t, tgt_t)
    with tt.no_grad():
        gap = float(np.abs(logits.numpy() - model(src_t, tgt_t).numpy()).max())
    print(f"replayed forward pass vs model(src, tgt_in): max |difference in logits| = {gap:.1e}")
    if gap > 1e-4:
        raise SystemExit("attention_maps: the layer-by-layer replay does not match the model")
    pred = model.greedy_decode(src_t, args.max_len + 1).numpy()
    exact = flagship.exact_match(pred, tgt_out).mean()
    mass = np.stack([mirrored_mass(c, src) for c in cross])  # (layers, h)
    for i, row in enumerate(mass):
        print(f"decoder layer {i + 1}: attention on the mirrored source digit, per head "
              + " ".join(f"{m:.2f}" for m in row) + f" (mean {row.mean():.2f})")

    paths = plot_positional_encoding(out, 100, args.d_model) + [plot_noam(out, args)]
    ex_src, ex_tgt = encode_example(args.example, args.max_len)
    _, enc, dec, cross_ex = attention_weights(model, tt.tensor(ex_src, device=args.device),
                                              tt.tensor(ex_tgt, device=args.device))
    paths += plot_attention(out, ex_src, ex_tgt, enc, dec, cross_ex)
    for path in paths:
        print(f"wrote {path}")
    best_layer = int(mass.mean(1).argmax())
    print(f"cross-attention on the mirrored source digit: {mass[best_layer].mean():.2f} (decoder layer "
          f"{best_layer + 1}, mean of {mass.shape[1]} heads; best head {mass.max():.2f}); exact match "
          f"{exact:.1%} on {args.held_out} held-out sequences")
    return mass, exact


if __name__ == "__main__":
    main()
