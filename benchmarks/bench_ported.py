"""Ported PyTorch files: one training step of each, unmodified on PyTorch and import-rewritten on tinytensor.

    python benchmarks/bench_ported.py [--threads 1,2] [--repeat 10] [--warmup 3] [--rounds 2]
                                      [--models nanogpt,mingpt,vit,annotated,labml] [--quick]

The models are the public files stored under tests/ported/ (tests/ported/README.md; a model whose file is
not stored is left out), run through tests/ported/harness.py: on PyTorch as published, on tinytensor after
the mechanical rewrite of their import lines. One step = forward, loss, zero_grad, backward, optimizer
step, float32, dropout off:

* ``nanogpt``: karpathy/nanoGPT GPT (2 layers, 4 heads, n_embd 64, vocab 256, block 64), batch 8 x 64
  tokens, its configure_optimizers' AdamW (lr 6e-4, weight decay 0.1), the gradient norm clipped to 1.0.
* ``mingpt``: karpathy/minGPT GPT at the same size, its configure_optimizers' AdamW, clipped to 1.0.
* ``nano_gpt``: allenporter/nano_gpt GPT (nano-gpt 0.1.0 on PyPI) at the same size, its
  configure_optimizers' AdamW (use_fused=False), clipped to 1.0.
* ``vit``: lucidrains' ViT (32x32x3 images, patch 4, dim 64, depth 2, 4 heads of 16, mlp 128, 10 classes),
  batch 16, cross-entropy, AdamW (lr 1e-3).
* ``annotated``: the Annotated Transformer's make_model (N=2, d_model 64, d_ff 128, 4 heads, vocabulary
  32), batch 16 x 16 tokens of the copy task, label smoothing 0.1 (KL divergence), Adam with the Noam
  schedule through LambdaLR; eval() mode, as its attention keeps dropout 0.1.
* ``labml``: labml_nn's EncoderDecoder (labml-nn 0.5.1 on PyPI) at the annotated transformer's size (2
  pre-norm layers each side, d_model 64, d_ff 128, 4 heads, vocabulary 32, sinusoidal positions, dropout 0),
  16 x 16 tokens in its [seq, batch] layout, its LabelSmoothingLoss (0.1) of the log-softmax, Adam (lr 1e-3).

Each (model, implementation, thread count) runs in a process of its own with the same environment
(benchmarks/_common.py: OMP/MKL/OPENBLAS_NUM_THREADS, and torch.set_num_threads in the torch worker);
``--rounds`` alternate the implementations and keep each one's best median. Both workers start from the
same weights (a function of each parameter's name) and data: the first step's loss must agree. A model
that fails on tinytensor (a feature still missing) shows the error instead of a time. ``--quick`` (a smoke
run): one round, one warm-up and two timed steps, 1 thread.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT, os.path.join(ROOT, "tests")]  # _common, tinytensor, ported.harness
from _common import blas_summary, fmt_ms, report, run_worker, table, time_it  # noqa: E402
from bench_nn import param_value  # noqa: E402
from ported.harness import FILES, LABML_NN_DEPS, FetchError, load  # noqa: E402

MODELS = ("nanogpt", "mingpt", "nano_gpt", "vit", "annotated", "labml")
STORED = {"labml": "labml_nn.models"}  # the harness.FILES key of a model named otherwise
IMPLS = ("torch", "tinytensor")
GPT = dict(n_layer=2, n_head=4, n_embd=64, vocab_size=256, block_size=64, batch=8)
VIT = dict(image_size=32, patch_size=4, num_classes=10, dim=64, depth=2, heads=4, dim_head=16, mlp_dim=128)
VIT_BATCH = 16
ANN = dict(vocab=32, N=2, d_model=64, d_ff=128, h=4, batch=16, length=16)
ANNOTATED_KEEP = ["EncoderDecoder", "Generator", "clones", "Encoder", "LayerNorm", "SublayerConnection",
                  "EncoderLayer", "Decoder", "DecoderLayer", "subsequent_mask", "attention",
                  "MultiHeadedAttention", "PositionwiseFeedForward", "Embeddings", "PositionalEncoding",
                  "make_model", "Batch", "rate", "LabelSmoothing", "SimpleLossCompute"]


# ---- one model in either library ----------------------------------------------------------------

def library(impl: str, threads: int):
    """(library, make-tensor) for ``impl``."""
    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
        if torch.get_num_interop_threads() != 1:
            torch.set_num_interop_threads(1)
        return torch, lambda a: torch.from_numpy(np.ascontiguousarray(a))
    import tinytensor

    return tinytensor, tinytensor.tensor


def set_weights(lib, model) -> None:
    """Every parameter := param_value(its name) (the same in both libraries)."""
    with lib.no_grad():
        for name, p in model.named_parameters():
            p.copy_(lib_tensor(lib, param_value(name, tuple(p.shape))))


def lib_tensor(lib, array):
    return lib.from_numpy(array) if lib.__name__ == "torch" else lib.tensor(array)


def make_step(impl: str, model_name: str, threads: int):
    """A function running one training step and returning its loss (a Python float)."""
    lib, make = library(impl, threads)
    rng = np.random.default_rng(0)
    if model_name in ("nanogpt", "mingpt", "nano_gpt"):
        g = GPT
        if model_name == "nano_gpt":
            deps = {n: FILES[n] for n in ("nano_gpt.config", "nano_gpt.tokenizer")}
            mod = load(FILES["nano_gpt"], impl, modules=deps,
                       stand_ins=("transformers", "tiktoken", "datasets"))
            model = mod.GPT(mod.GPTConfig(block_size=g["block_size"], vocab_size=g["vocab_size"],
                                          n_layer=g["n_layer"], n_head=g["n_head"], n_embd=g["n_embd"]), None)
            opt = model.configure_optimizers(0.1, 6e-4, use_fused=False)
        elif model_name == "nanogpt":
            mod = load(FILES["nanogpt"], impl)
            model = mod.GPT(mod.GPTConfig(block_size=g["block_size"], vocab_size=g["vocab_size"],
                                          n_layer=g["n_layer"], n_head=g["n_head"], n_embd=g["n_embd"],
                                          dropout=0.0, bias=True))
            opt = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cpu")
        else:
            mod = load(FILES["mingpt"], impl, modules={"mingpt.utils": FILES["mingpt.utils"]})
            C = mod.GPT.get_default_config()
            C.model_type, C.n_layer, C.n_head, C.n_embd = None, g["n_layer"], g["n_head"], g["n_embd"]
            C.vocab_size, C.block_size = g["vocab_size"], g["block_size"]
            C.embd_pdrop = C.resid_pdrop = C.attn_pdrop = 0.0
            model = mod.GPT(C)
            opt = model.configure_optimizers(mod.CN(weight_decay=0.1, learning_rate=6e-4, betas=(0.9, 0.95)))
        shape = (g["batch"], g["block_size"])
        idx = make(rng.integers(0, g["vocab_size"], shape).astype(np.int64))
        targets = make(rng.integers(0, g["vocab_size"], shape).astype(np.int64))

        def loss_fn():
            return model(idx, targets)[1]

        clip = 1.0
    elif model_name == "vit":
        mod = load(FILES["vit"], impl)
        model = mod.ViT(**VIT)
        opt = lib.optim.AdamW(model.parameters(), lr=1e-3)
        x = make(rng.standard_normal((VIT_BATCH, 3, VIT["image_size"], VIT["image_size"]), dtype=np.float32))
        y = make(rng.integers(0, VIT["num_classes"], (VIT_BATCH,)).astype(np.int64))

        def loss_fn():
            return lib.nn.functional.cross_entropy(model(x), y)

        clip = None
    elif model_name == "annotated":
        a = ANN
        mod = load(FILES["annotated"], impl, keep=ANNOTATED_KEEP)
        model = mod.make_model(a["vocab"], a["vocab"], N=a["N"], d_model=a["d_model"], d_ff=a["d_ff"],
                               h=a["h"], dropout=0.0).eval()
        opt = lib.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
        sched = lib.optim.lr_scheduler.LambdaLR(opt, lambda step: mod.rate(step, a["d_model"], 1.0, 400))
        data = rng.integers(1, a["vocab"], (a["batch"], a["length"])).astype(np.int64)
        data[:, 0] = 1
        batch = mod.Batch(make(data), make(data), 0)
        compute = mod.SimpleLossCompute(model.generator, mod.LabelSmoothing(a["vocab"], 0, 0.1))

        def loss_fn():
            out = model.forward(batch.src, batch.tgt, batch.src_mask, batch.tgt_mask)
            return compute(out, batch.tgt_y, batch.ntokens)[1]

        clip = None
    elif model_name == "labml":
        a = ANN
        mod = load(FILES["labml_nn.models"], impl, modules=LABML_NN_DEPS)
        smoothing = load(FILES["labml_nn.label_smoothing_loss"], impl)
        masks = load(FILES["labml_nn.transformers.utils"], impl)

        def layer(cross: bool):
            return mod.TransformerLayer(
                d_model=a["d_model"], self_attn=mod.MultiHeadAttention(a["h"], a["d_model"], 0.0),
                src_attn=mod.MultiHeadAttention(a["h"], a["d_model"], 0.0) if cross else None,
                feed_forward=mod.FeedForward(a["d_model"], a["d_ff"], 0.0), dropout_prob=0.0)
        embed = mod.EmbeddingsWithPositionalEncoding
        model = mod.EncoderDecoder(mod.Encoder(layer(False), a["N"]), mod.Decoder(layer(True), a["N"]),
                                   embed(a["d_model"], a["vocab"], 64), embed(a["d_model"], a["vocab"], 64),
                                   mod.Generator(a["vocab"], a["d_model"]))
        opt = lib.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
        src = make(rng.integers(1, a["vocab"], (a["length"], a["batch"])).astype(np.int64))
        tgt = make(rng.integers(1, a["vocab"], (a["length"], a["batch"])).astype(np.int64))
        src_mask, tgt_mask = lib.ones(1, a["length"], a["batch"]), masks.subsequent_mask(a["length"])
        criterion = smoothing.LabelSmoothingLoss(a["vocab"], 0, 0.1)

        def loss_fn():
            logits = model.generator(model(src, tgt, src_mask, tgt_mask))
            log_probs = lib.nn.functional.log_softmax(logits, dim=-1).reshape(-1, a["vocab"])
            return criterion(log_probs, tgt.reshape(-1))

        clip = None
    else:
        raise ValueError(f"unknown model {model_name!r}; expected one of {MODELS}")
    set_weights(lib, model)

    def step() -> float:
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            lib.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if model_name == "annotated":
            sched.step()
        return float(loss.item())

    return step


# ---- workers and the table ------------------------------------------------------------------------

def worker(args) -> None:
    try:
        step = make_step(args.worker, args.model, args.threads)
        first = step()  # from the shared weights: compared between the implementations
        timing = time_it(step, warmup=args.warmup, repeat=args.repeat)
    except Exception as e:  # a feature tinytensor still lacks: reported in the table
        frame = traceback.extract_tb(e.__traceback__)[-1]
        report({"error": f"{type(e).__name__}: {e}"[:120], "where": f"{os.path.basename(frame.filename)}:"
                f"{frame.lineno}"})
        return
    report({**timing, "loss": first, "blas": blas_summary()})


def render(res: dict, models: list[str], threads: list[int]) -> str:
    rows = []
    for m in models:
        for n in threads:
            p, t = res[m, "torch", n], res[m, "tinytensor", n]
            if "error" in p or "error" in t:
                bad = t if "error" in t else p
                who = "tinytensor" if "error" in t else "torch"
                rows.append([m, n, fmt_ms(p["median"]) if "median" in p else "-", "-", "-",
                             f"{who} fails at {bad['where']}: {bad['error']}"])
                continue
            agree = abs(p["loss"] - t["loss"]) <= 2e-3 * max(1.0, abs(p["loss"]))
            rows.append([m, n, fmt_ms(p["median"]), fmt_ms(t["median"]), f"{t['median'] / p['median']:.2f}x",
                         "agree" if agree else f"MISMATCH ({t['loss']:.6g} vs {p['loss']:.6g})"])
    return table(["model", "threads", "torch step", "tt step", "tt/torch", "first-step loss"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--repeat", type=int, default=10, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every worker this many times, alternating the implementations, and "
                             "keep each one's best median")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round, 1 warm-up, 2 timed steps, 1 thread (unless --threads)")
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.warmup, args.repeat = 1, 1, 2
        if "--threads" not in sys.argv:
            args.threads = "1"
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)

    threads = [int(n) for n in args.threads.split(",")]
    wanted = [m for m in args.models.split(",") if m]
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; expected some of {MODELS}")
    for m in wanted:  # each model's harness.FILES entry; those on PyPI are fetched where absent
        try:
            FILES[STORED.get(m, m)].ensure()
        except FetchError as e:
            print(f"{m}: {e}", file=sys.stderr)
    models = [m for m in wanted if FILES[STORED.get(m, m)].available()]
    for m in set(wanted) - set(models):
        print(f"{m}: {FILES[STORED.get(m, m)].file} is not stored (tests/ported/README.md); left out",
              file=sys.stderr)
    here = os.path.abspath(__file__)
    res = {}
    for r in range(args.rounds):
        for n in threads:
            for m in models:
                for impl in (IMPLS if r % 2 == 0 else IMPLS[::-1]):
                    print(f"  {m:10s} {impl:10s} threads {n} ...", file=sys.stderr, flush=True)
                    out = run_worker(here, ["--worker", impl, "--model", m, "--threads", str(n),
                                            "--repeat", str(args.repeat), "--warmup", str(args.warmup)], n)
                    best = res.get((m, impl, n))
                    if best is None or ("median" in out and out["median"] < best.get("median", float("inf"))):
                        res[m, impl, n] = out
    print("ported PyTorch files: one training step (forward, loss, backward, optimizer step), float32")
    print(f"  gpt: {GPT}; vit: {VIT}, batch {VIT_BATCH}; annotated and labml: {ANN}")
    blas = next((v["blas"] for (_, impl, _), v in res.items() if impl == "tinytensor" and "blas" in v), "-")
    print(f"BLAS (tinytensor worker): {blas}")
    print(f"times: median of {args.repeat} steps after {args.warmup} warm-up steps, the best of "
          f"{args.rounds} rounds; each implementation, model and thread count in its own process; "
          f"load average {os.getloadavg()[0]:.2f}")
    print()
    print(render(res, models, threads))


if __name__ == "__main__":
    main()
