"""Public PyTorch model files on tinytensor: each file runs unmodified on PyTorch and, after the mechanical
rewrite of its import lines (tests/ported/harness.py), on tinytensor, with the same weights (the torch
model's state_dict loaded into the tinytensor one) and the same data. Compared: outputs and losses, every
parameter's gradient, parameters after optimizer steps taken by each library's own optimizer (from the
file's configure_optimizers where it has one), generated tokens (greedy / top_k=1, whose tokens do not
depend on the random stream), the annotated transformer's label smoothing and Noam schedule, and micrograd's
tests with tinytensor in torch's place.

The stored files are not committed (tests/ported/README.md): where one is absent, it is fetched from PyPI if
it is published there (vit-pytorch's, micrograd's), else its tests skip; a failed download skips too, or
fails with TINYTENSOR_REQUIRE_PORTED=1 (CI).
TT_PORTED_REPORT=<file> writes every compared quantity's max |torch - tinytensor| to that file as JSON.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _torch import require_torch
from ported.harness import (
    FILES,
    LABML_NN_DEPS,
    LIBS,
    FetchError,
    Stored,
    compare_named,
    copy_state,
    gradients,
    load,
    max_abs_diff,
    parameters,
)

import tinytensor as tt

torch = require_torch()

# tolerance on max |torch - tinytensor|, relative to max(1, max |torch value|)
TOL = {"float64": 1e-10, "float32": 5e-5}
STEP_TOL = {"float64": 1e-9, "float32": 5e-4}  # parameters after optimizer steps (Adam divides by √v)
DIFFS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_report():
    yield
    path = os.environ.get("TT_PORTED_REPORT")
    if path:
        report = Path(path)
        old = json.loads(report.read_text()) if report.exists() else {}
        report.write_text(json.dumps({**old, **DIFFS}, indent=1, sort_keys=True))


# ---- helpers ------------------------------------------------------------------------------------

def lib_of(lib: str):
    return torch if lib == "torch" else tt


def tensor(lib: str, array: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(array)) if lib == "torch" else tt.tensor(array)


def _scale(want) -> float:
    a = want if isinstance(want, np.ndarray) else np.array(want.detach().numpy())
    return max(1.0, float(np.max(np.abs(a)))) if a.size else 1.0


def check(label: str, want, got, tol: float) -> float:
    """Assert max |want - got| <= tol · max(1, max |want|); record the difference under ``label``."""
    diff = max_abs_diff(want, got)
    DIFFS[label] = max(DIFFS.get(label, 0.0), diff)
    assert diff <= tol * _scale(want), f"{label}: max |torch - tinytensor| = {diff:.3g}"
    return diff


def check_named(label: str, want: dict, got: dict, tol: float) -> None:
    """check() for every name of two name -> array dicts (gradients, parameters)."""
    diffs = compare_named(want, got)
    DIFFS[label] = max([DIFFS.get(label, 0.0), *diffs.values()])
    bad = {k: d for k, d in diffs.items() if want[k] is not None and d > tol * _scale(want[k])}
    assert not bad, f"{label}: max |torch - tinytensor| over tolerance for {bad}"


def logits_loss_and_gradients(label: str, models: dict, idx, y, tol: float) -> None:
    """model(idx, y) -> (logits, loss) on both libraries, backward, and every result compared."""
    out = {}
    for lib, model in models.items():
        logits, loss = model(tensor(lib, idx), tensor(lib, y))
        loss.backward()
        out[lib] = logits, loss
    check(f"{label}: logits", out["torch"][0], out["tinytensor"][0], tol)
    check(f"{label}: loss", out["torch"][1], out["tinytensor"][1], tol)
    check_named(f"{label}: gradients", gradients(models["torch"]), gradients(models["tinytensor"]), tol)


def same_tokens(label: str, want, got) -> None:
    w, g = np.array(want.numpy()), np.array(got.numpy())
    DIFFS[label] = float(np.sum(w != g)) if w.shape == g.shape else float("inf")
    np.testing.assert_array_equal(g, w, err_msg=label)


def pair(make, dtype: str):
    """(torch model, tinytensor model) built by ``make(lib)``, the torch weights and buffers loaded into
    the tinytensor one, both converted to ``dtype``."""
    torch.manual_seed(0)
    tt.manual_seed(0)
    tm, ttm = make("torch"), make("tinytensor")
    copy_state(tm, ttm)
    return tm.to(getattr(torch, dtype)), ttm.to(getattr(tt, dtype))


def _ensure(s: Stored) -> None:
    """The stored file is there (fetched from PyPI if need be), or the test skips; with
    TINYTENSOR_REQUIRE_PORTED=1 a failed download fails it."""
    try:
        s.ensure()
    except FetchError as e:
        if os.environ.get("TINYTENSOR_REQUIRE_PORTED") == "1":
            pytest.fail(f"{s.file} could not be fetched from PyPI: {e}")
        pytest.skip(f"{s.file} is not stored and could not be fetched from PyPI: {e}")
    if not s.available():
        pytest.skip(f"{s.file} is not stored (tests/ported/README.md says where it comes from)")


def stored(key: str, **kw) -> dict:
    """{lib: the stored file loaded for lib}, or a skip where a file it needs is not stored."""
    s = FILES[key]
    for needed in (s, *kw.get("modules", {}).values()):
        _ensure(needed)
    return {lib: load(s, lib, **kw) for lib in LIBS}


def tokens(shape, vocab: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, shape).astype(np.int64)


def train_steps(models: dict, optimizers: dict, step_loss, n: int, label: str, dtype: str, clip=None):
    """``n`` steps (zero_grad, backward, [clip], step) of both libraries; compares each step's loss and
    the parameters after the last."""
    for i in range(n):
        losses = {}
        for lib in LIBS:
            model, opt = models[lib], optimizers[lib]
            loss = step_loss(lib, model, i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                lib_of(lib).nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            losses[lib] = loss.detach()
        check(f"{label}: loss at step {i}", losses["torch"], losses["tinytensor"], STEP_TOL[dtype])
    check_named(f"{label}: parameters after {n} steps", parameters(models["torch"]),
                parameters(models["tinytensor"]), STEP_TOL[dtype])


# ---- every file imports -------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["nanogpt", "mingpt", "nano_gpt", "vit", "annotated", "labml",
                                     "labml_loss", "labml_utils", "micrograd"])
def test_the_rewritten_file_imports(fixture, request):
    mods = request.getfixturevalue(fixture)  # the module fixtures below
    names = {lib: {n for n in vars(m) if not n.startswith("__")} for lib, m in mods.items()}
    assert names["tinytensor"] == names["torch"]


# ---- nanoGPT (karpathy/nanoGPT model.py) ---------------------------------------------------------

V, T, B = 32, 10, 3  # vocabulary, sequence length, batch of the GPTs


@pytest.fixture(scope="module")
def nanogpt():
    return stored("nanogpt")


def nano_model(mods: dict, dtype: str, bias: bool = True, block_size: int = 16):
    def make(lib):
        m = mods[lib]
        return m.GPT(m.GPTConfig(block_size=block_size, vocab_size=V, n_layer=2, n_head=2, n_embd=16,
                                 dropout=0.0, bias=bias))

    return pair(make, dtype)


def nano_targets(seed: int) -> np.ndarray:
    y = tokens((B, T), V, seed)
    y[0, :3] = -1  # ignore_index=-1
    return y


@pytest.mark.parametrize("dtype", TOL)
@pytest.mark.parametrize("bias", [True, False])
def test_nanogpt_logits_loss_and_every_gradient(nanogpt, dtype, bias):
    models = dict(zip(LIBS, nano_model(nanogpt, dtype, bias)))
    idx, y = tokens((B, T), V, 1), nano_targets(2)
    logits_loss_and_gradients(f"nanoGPT {dtype} bias={bias}", models, idx, y, TOL[dtype])


@pytest.mark.parametrize("dtype", TOL)
def test_nanogpt_inference_logits_of_the_last_position(nanogpt, dtype):
    models = dict(zip(LIBS, nano_model(nanogpt, dtype)))
    idx = tokens((B, T), V, 3)
    out = {}
    for lib, model in models.items():
        model.eval()
        with lib_of(lib).no_grad():
            out[lib] = model(tensor(lib, idx))
        assert out[lib][1] is None and tuple(out[lib][0].shape) == (B, 1, V)
    check(f"nanoGPT {dtype}: inference logits", out["torch"][0], out["tinytensor"][0], TOL[dtype])


@pytest.mark.parametrize("dtype", TOL)
def test_nanogpt_manual_attention_path(nanogpt, dtype, monkeypatch):
    """Without F.scaled_dot_product_attention (PyTorch < 2.0) the file masks a tril buffer itself."""
    for F in (torch.nn.functional, tt.nn.functional):
        monkeypatch.delattr(F, "scaled_dot_product_attention")
    models = dict(zip(LIBS, nano_model(nanogpt, dtype)))
    monkeypatch.undo()
    assert not models["tinytensor"].transformer.h[0].attn.flash
    idx, y = tokens((B, T), V, 1), nano_targets(2)
    logits_loss_and_gradients(f"nanoGPT {dtype} manual attention", models, idx, y, TOL[dtype])


def test_nanogpt_parameter_names_and_counts(nanogpt):
    tm, ttm = nano_model(nanogpt, "float32")
    assert [n for n, _ in ttm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(ttm.state_dict()) == list(tm.state_dict())
    assert ttm.get_num_params() == tm.get_num_params()
    assert ttm.get_num_params(non_embedding=False) == tm.get_num_params(non_embedding=False)
    assert ttm.lm_head.weight is ttm.transformer.wte.weight  # weight tying survives
    assert ttm.estimate_mfu(4, 0.5) == tm.estimate_mfu(4, 0.5)


@pytest.mark.parametrize("dtype", TOL)
def test_nanogpt_configure_optimizers_adamw_steps(nanogpt, dtype):
    models = dict(zip(LIBS, nano_model(nanogpt, dtype)))
    opts = {lib: m.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95),
                                        device_type="cpu") for lib, m in models.items()}
    for lib, opt in opts.items():
        assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0], lib
    data = [(tokens((B, T), V, 10 + i), nano_targets(20 + i)) for i in range(3)]

    def step_loss(lib, model, i):
        return model(tensor(lib, data[i][0]), tensor(lib, data[i][1]))[1]

    # train.py clips the gradient norm to 1.0 before each step
    train_steps(models, opts, step_loss, 3, f"nanoGPT {dtype} AdamW", dtype, clip=1.0)


def test_nanogpt_generate_top_k_1_past_the_block_size(nanogpt):
    models = dict(zip(LIBS, nano_model(nanogpt, "float64", block_size=12)))
    idx = tokens((2, 8), V, 4)
    out = {}
    for lib, model in models.items():
        model.eval()
        out[lib] = model.generate(tensor(lib, idx), max_new_tokens=8, top_k=1)  # crops at 12
        assert tuple(out[lib].shape) == (2, 16)
    same_tokens("nanoGPT generate top_k=1: tokens differing", out["torch"], out["tinytensor"])


def test_nanogpt_seeded_sampling_repeats_on_tinytensor(nanogpt):
    _, model = nano_model(nanogpt, "float32")
    model.eval()
    idx = tt.tensor(tokens((2, 4), V, 5))
    runs = []
    for _ in range(2):
        tt.manual_seed(7)
        runs.append(model.generate(idx, max_new_tokens=6, temperature=0.8, top_k=5).numpy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == (2, 10) and runs[0].min() >= 0 and runs[0].max() < V


def test_nanogpt_crop_block_size(nanogpt):
    models = dict(zip(LIBS, nano_model(nanogpt, "float64")))
    idx = tokens((B, 8), V, 6)
    out = {}
    for lib, model in models.items():
        model.crop_block_size(8)
        assert tuple(model.transformer.wpe.weight.shape) == (8, 16)
        out[lib] = model(tensor(lib, idx), tensor(lib, idx))
    check("nanoGPT crop_block_size: logits", out["torch"][0], out["tinytensor"][0], TOL["float64"])


# ---- minGPT (karpathy/minGPT mingpt/model.py) ------------------------------------------------------

@pytest.fixture(scope="module")
def mingpt():
    return stored("mingpt", modules={"mingpt.utils": FILES["mingpt.utils"]})


def min_model(mods: dict, dtype: str, model_type: str | None = None):
    def make(lib):
        m = mods[lib]
        C = m.GPT.get_default_config()
        C.model_type = model_type
        if model_type is None:
            C.n_layer, C.n_head, C.n_embd = 2, 2, 16
        C.vocab_size, C.block_size = V, 16
        C.embd_pdrop = C.resid_pdrop = C.attn_pdrop = 0.0
        return m.GPT(C)

    return pair(make, dtype)


@pytest.mark.parametrize("dtype", TOL)
@pytest.mark.parametrize("model_type", [None, "gpt-nano"])
def test_mingpt_logits_loss_and_every_gradient(mingpt, dtype, model_type):
    models = dict(zip(LIBS, min_model(mingpt, dtype, model_type)))
    idx, y = tokens((B, T), V, 1), nano_targets(2)
    logits_loss_and_gradients(f"minGPT {dtype} {model_type or '2x16'}", models, idx, y, TOL[dtype])


def test_mingpt_parameter_names_and_optimizer_groups(mingpt):
    tm, ttm = min_model(mingpt, "float32")
    assert [n for n, _ in ttm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in ttm.named_modules()] == [n for n, _ in tm.named_modules()]
    groups = {}
    for lib, model in (("torch", tm), ("tinytensor", ttm)):
        names = {id(p): n for n, p in model.named_parameters()}
        config = mingpt[lib].CN(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95))
        opt = model.configure_optimizers(config)
        assert isinstance(opt, lib_of(lib).optim.AdamW)
        groups[lib] = [([names[id(p)] for p in g["params"]], g["weight_decay"]) for g in opt.param_groups]
    assert groups["tinytensor"] == groups["torch"]


@pytest.mark.parametrize("dtype", TOL)
def test_mingpt_configure_optimizers_adamw_steps(mingpt, dtype):
    models = dict(zip(LIBS, min_model(mingpt, dtype)))
    opts = {}
    for lib, model in models.items():  # the trainer's defaults (mingpt/trainer.py), lr raised to move
        train_config = mingpt[lib].CN(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95))
        opts[lib] = model.configure_optimizers(train_config)
    assert [len(g["params"]) for g in opts["tinytensor"].param_groups] == [9, 20]  # decay, no decay
    data = [(tokens((B, T), V, 10 + i), nano_targets(20 + i)) for i in range(3)]

    def step_loss(lib, model, i):
        return model(tensor(lib, data[i][0]), tensor(lib, data[i][1]))[1]

    # the trainer clips the gradient norm to grad_norm_clip=1.0 before each step
    train_steps(models, opts, step_loss, 3, f"minGPT {dtype} AdamW", dtype, clip=1.0)


@pytest.mark.parametrize("how", ["greedy", "sample top_k=1"])
def test_mingpt_generate(mingpt, how):
    models = dict(zip(LIBS, min_model(mingpt, "float64")))
    idx = tokens((2, 8), V, 4)
    kw = dict(do_sample=False) if how == "greedy" else dict(do_sample=True, top_k=1)
    out = {}
    for lib, model in models.items():
        model.eval()
        out[lib] = model.generate(tensor(lib, idx), max_new_tokens=12, **kw)  # crops at 16
        assert tuple(out[lib].shape) == (2, 20)
    same_tokens(f"minGPT generate {how}: tokens differing", out["torch"], out["tinytensor"])


# ---- nano_gpt (allenporter/nano_gpt nano_gpt/model.py, as released in nano-gpt 0.1.0 on PyPI) ------------
# a GPT-2 reproduction after karpathy's build-nanogpt lectures: fused qkv, F.scaled_dot_product_attention
# with is_causal, tanh GELU, tied embeddings, AdamW(fused=...), and top-k sampling with a torch.Generator

NANO_GPT_V = 64  # sample() takes the top 50 tokens: the vocabulary must hold them
NANO_GPT_DEPS = {name: FILES[name] for name in ("nano_gpt.config", "nano_gpt.tokenizer")}
NANO_GPT_STAND_INS = ("transformers", "tiktoken", "datasets")  # imported at the top, never called here


class CharTokenizer:
    """The nano_gpt Tokenizer interface (encode/decode) over characters, without tiktoken."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) % NANO_GPT_V for c in text]

    def decode(self, tokens) -> str:
        return "".join(chr(48 + t) for t in tokens)


@pytest.fixture(scope="module")
def nano_gpt():
    return stored("nano_gpt", modules=NANO_GPT_DEPS, stand_ins=NANO_GPT_STAND_INS)


def nano_gpt_model(mods: dict, dtype: str):
    def make(lib):
        m = mods[lib]
        config = m.GPTConfig(block_size=16, vocab_size=NANO_GPT_V, n_layer=2, n_head=2, n_embd=16)
        return m.GPT(config, tokenizer=CharTokenizer())

    return pair(make, dtype)


@pytest.mark.parametrize("dtype", TOL)
def test_nano_gpt_logits_loss_and_every_gradient(nano_gpt, dtype):
    models = dict(zip(LIBS, nano_gpt_model(nano_gpt, dtype)))
    tm, ttm = models["torch"], models["tinytensor"]
    assert [n for n, _ in ttm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert ttm.lm_head.weight is ttm.transformer.wte.weight  # weight tying survives
    idx, y = tokens((B, T), NANO_GPT_V, 1), tokens((B, T), NANO_GPT_V, 2)
    logits_loss_and_gradients(f"nano_gpt {dtype}", models, idx, y, TOL[dtype])


@pytest.mark.parametrize("use_fused", [False, True])
@pytest.mark.parametrize("dtype", TOL)
def test_nano_gpt_configure_optimizers_adamw_steps(nano_gpt, dtype, use_fused):
    models = dict(zip(LIBS, nano_gpt_model(nano_gpt, dtype)))
    opts = {lib: m.configure_optimizers(weight_decay=0.1, learning_rate=6e-4, use_fused=use_fused)
            for lib, m in models.items()}
    for lib, opt in opts.items():
        assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0], lib
        assert [len(g["params"]) for g in opt.param_groups] == [10, 18], lib  # >= 2 dims decay
    data = [(tokens((B, T), NANO_GPT_V, 10 + i), tokens((B, T), NANO_GPT_V, 20 + i)) for i in range(3)]

    def step_loss(lib, model, i):
        return model(tensor(lib, data[i][0]), tensor(lib, data[i][1]))[1]

    train_steps(models, opts, step_loss, 3, f"nano_gpt {dtype} AdamW fused={use_fused}", dtype, clip=1.0)


def test_nano_gpt_sample_with_a_seeded_generator(nano_gpt):
    """sample(): top-50 filtering, multinomial with a seeded torch.Generator, gather and cat. The two
    libraries' random streams differ, so the tokens are compared where the next-token distribution is
    one-hot (the embeddings scaled until softmax underflows to 0 off the top token: any draw picks it),
    and the seed's repeatability is checked on the model as initialised."""
    models = dict(zip(LIBS, nano_gpt_model(nano_gpt, "float32")))
    out = {}
    for lib, model in models.items():
        model.eval()
        with lib_of(lib).no_grad():
            model.transformer.wte.weight.mul_(400.0)  # also lm_head's (tied)
        out[lib] = nano_gpt[lib].sample(model, CharTokenizer(), "tiny", num_return_sequences=3, max_length=14,
                                        device="cpu", seed=5)
        assert len(out[lib]) == 3 and all(len(s) == 14 for s in out[lib])
    DIFFS["nano_gpt sample (one-hot): sequences differing"] = float(sum(
        a != b for a, b in zip(out["torch"], out["tinytensor"])))
    assert out["tinytensor"] == out["torch"]
    _, model = nano_gpt_model(nano_gpt, "float32")
    model.eval()
    sample = nano_gpt["tinytensor"].sample
    runs = [sample(model, CharTokenizer(), "tiny", 2, 12, "cpu", seed=9) for _ in range(2)]
    assert runs[0] == runs[1] and all(len(s) == 12 for s in runs[0])


def test_nano_gpt_stand_in_packages_refuse_to_be_used(nano_gpt):
    """transformers is a stand-in (not installed): from_pretrained, which would need it, says so."""
    m = nano_gpt["tinytensor"]
    config = m.GPTConfig(block_size=16, vocab_size=NANO_GPT_V, n_layer=1, n_head=2, n_embd=16)
    with pytest.raises(ModuleNotFoundError, match="from_pretrained: its package is a stand-in"):
        m.GPT.from_pretrained("gpt2", CharTokenizer(), config)


# ---- ViT (lucidrains/vit-pytorch vit_pytorch/vit.py) -------------------------------------------------

VIT = dict(image_size=8, patch_size=4, num_classes=5, dim=16, depth=2, heads=2, dim_head=8, mlp_dim=32)


@pytest.fixture(scope="module")
def vit():
    return stored("vit")


def vit_model(mods: dict, dtype: str, **kw):
    return pair(lambda lib: mods[lib].ViT(**{**VIT, **kw}), dtype)


def images(seed: int, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((B, channels, 8, 8))


@pytest.mark.parametrize("dtype", TOL)
@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_vit_logits_loss_and_every_gradient(vit, dtype, pool):
    models = dict(zip(LIBS, vit_model(vit, dtype, pool=pool)))
    x, y = images(1), tokens((B,), VIT["num_classes"], 2)
    out = {}
    for lib, model in models.items():
        L = lib_of(lib)
        logits = model(tensor(lib, x).to(getattr(L, dtype)))
        loss = L.nn.functional.cross_entropy(logits, tensor(lib, y))
        loss.backward()
        out[lib] = logits, loss
    label = f"ViT {dtype} pool={pool}"
    check(f"{label}: logits", out["torch"][0], out["tinytensor"][0], TOL[dtype])
    check(f"{label}: loss", out["torch"][1], out["tinytensor"][1], TOL[dtype])
    check_named(f"{label}: gradients", gradients(models["torch"]), gradients(models["tinytensor"]),
                TOL[dtype])


def test_vit_features_without_a_head(vit):
    models = dict(zip(LIBS, vit_model(vit, "float64", num_classes=0, channels=1)))
    x = images(3, channels=1)
    out = {lib: m(tensor(lib, x)) for lib, m in models.items()}
    assert tuple(out["tinytensor"].shape) == (B, 5, VIT["dim"])  # cls + 4 patches
    check("ViT features (num_classes=0)", out["torch"], out["tinytensor"], TOL["float64"])


@pytest.mark.parametrize("dtype", TOL)
def test_vit_adamw_steps(vit, dtype):
    models = dict(zip(LIBS, vit_model(vit, dtype)))
    opts = {lib: lib_of(lib).optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.05)
            for lib, m in models.items()}
    data = [(images(10 + i), tokens((B,), VIT["num_classes"], 20 + i)) for i in range(3)]

    def step_loss(lib, model, i):
        L = lib_of(lib)
        logits = model(tensor(lib, data[i][0]).to(getattr(L, dtype)))
        return L.nn.functional.cross_entropy(logits, tensor(lib, data[i][1]))

    train_steps(models, opts, step_loss, 3, f"ViT {dtype} AdamW", dtype)


# ---- The Annotated Transformer (harvardnlp/annotated-transformer) -----------------------------------

# the definitions executed (tests/ported/annotated_transformer/README.md lists what is left out)
ANNOTATED = [
    "DummyOptimizer", "DummyScheduler", "EncoderDecoder", "Generator", "clones", "Encoder", "LayerNorm",
    "SublayerConnection", "EncoderLayer", "Decoder", "DecoderLayer", "subsequent_mask", "attention",
    "MultiHeadedAttention", "PositionwiseFeedForward", "Embeddings", "PositionalEncoding", "make_model",
    "inference_test", "Batch", "TrainState", "run_epoch", "rate", "LabelSmoothing", "data_gen",
    "SimpleLossCompute", "greedy_decode", "example_simple_model",
]
AV, AD = 11, 32  # vocabulary (the file's copy task), d_model


@pytest.fixture(scope="module")
def annotated():
    return stored("annotated", keep=ANNOTATED)


def ann_model(mods: dict, dtype: str):
    """make_model at a small size; eval() because its attention keeps dropout 0.1 (make_model passes no
    dropout to MultiHeadedAttention), whose random stream cannot match."""
    tm, ttm = pair(lambda lib: mods[lib].make_model(AV, AV, N=2, d_model=AD, d_ff=64, h=4, dropout=0.0),
                   dtype)
    return {"torch": tm.eval(), "tinytensor": ttm.eval()}


def copy_task(seed: int, batch: int = 4, length: int = 10) -> np.ndarray:
    """data_gen's sequences (1, then tokens 1..V-1), with padding (0) at the ends of two rows."""
    data = np.random.default_rng(seed).integers(1, AV, (batch, length)).astype(np.int64)
    data[:, 0] = 1
    data[1, -3:] = 0
    data[2, -1:] = 0
    return data


def batch_of(mod, lib: str, data: np.ndarray):
    return mod.Batch(tensor(lib, data), tensor(lib, data), 0)  # as data_gen makes them


def test_annotated_make_model_parameter_names_and_initialisation(annotated):
    tm, ttm = ann_model(annotated, "float32").values()
    assert [n for n, _ in ttm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(ttm.state_dict()) == list(tm.state_dict())
    tt.manual_seed(0)
    fresh = annotated["tinytensor"].make_model(AV, AV, N=2, d_model=AD, d_ff=64, h=4, dropout=0.0)
    for name, p in fresh.named_parameters():  # xavier_uniform_ on every matrix: |w| <= √(6/(fan_in+fan_out))
        if p.dim() > 1:
            assert np.abs(p.numpy()).max() <= np.sqrt(6 / sum(p.shape)) + 1e-7, name


def test_annotated_positional_encoding_buffer(annotated):
    pe = {lib: annotated[lib].PositionalEncoding(AD, 0.0, max_len=50).pe for lib in LIBS}
    assert tuple(pe["tinytensor"].shape) == (1, 50, AD)
    check("annotated: PositionalEncoding.pe", pe["torch"], pe["tinytensor"], 1e-5)  # float32 sin and cos


def test_annotated_masks(annotated):
    masks = {lib: annotated[lib].subsequent_mask(6) for lib in LIBS}
    assert masks["tinytensor"].dtype == tt.bool
    np.testing.assert_array_equal(masks["tinytensor"].numpy(), masks["torch"].numpy())
    b = {lib: batch_of(annotated[lib], lib, copy_task(0)) for lib in LIBS}
    for name in ("src_mask", "tgt_mask"):
        want = getattr(b["torch"], name).numpy()
        np.testing.assert_array_equal(getattr(b["tinytensor"], name).numpy(), want, err_msg=name)
    assert int(b["tinytensor"].ntokens) == int(b["torch"].ntokens)


@pytest.mark.parametrize("dtype", TOL)
def test_annotated_forward_label_smoothed_loss_and_every_gradient(annotated, dtype):
    models = ann_model(annotated, dtype)
    data = copy_task(1)
    out = {}
    for lib, model in models.items():
        mod = annotated[lib]
        batch = batch_of(mod, lib, data)
        criterion = mod.LabelSmoothing(size=AV, padding_idx=0, smoothing=0.1)
        hidden = model.forward(batch.src, batch.tgt, batch.src_mask, batch.tgt_mask)
        compute = mod.SimpleLossCompute(model.generator, criterion)
        loss, loss_node = compute(hidden, batch.tgt_y, batch.ntokens)
        loss_node.backward()
        out[lib] = hidden, loss_node, criterion.true_dist
    label = f"annotated {dtype}"
    check(f"{label}: decoder output", out["torch"][0], out["tinytensor"][0], TOL[dtype])
    check(f"{label}: label-smoothed loss", out["torch"][1], out["tinytensor"][1], TOL[dtype])
    check(f"{label}: true_dist", out["torch"][2], out["tinytensor"][2], TOL[dtype])
    check_named(f"{label}: gradients", gradients(models["torch"]), gradients(models["tinytensor"]),
                TOL[dtype])


def test_annotated_label_smoothing(annotated):
    predict = np.array([[0, 0.2, 0.7, 0.1, 0]] * 5)  # example_label_smoothing's
    target = np.array([2, 1, 0, 3, 3])
    logits = np.random.default_rng(0).standard_normal((5, 5))
    out = {}
    for lib in LIBS:
        L, mod = lib_of(lib), annotated[lib]
        crit = mod.LabelSmoothing(5, 0, 0.4)
        crit(x=tensor(lib, predict).log(), target=tensor(lib, target))
        x = tensor(lib, logits).log_softmax(-1).requires_grad_()
        loss = mod.LabelSmoothing(5, 0, 0.1)(x, tensor(lib, target))
        loss.backward()
        out[lib] = crit.true_dist, loss, x.grad
        assert isinstance(crit.criterion, L.nn.KLDivLoss)
    check("annotated LabelSmoothing: true_dist (the example)", out["torch"][0], out["tinytensor"][0], 1e-15)
    check("annotated LabelSmoothing: loss", out["torch"][1], out["tinytensor"][1], TOL["float64"])
    check("annotated LabelSmoothing: gradient", out["torch"][2], out["tinytensor"][2], TOL["float64"])


def test_annotated_noam_rate_through_lambdalr(annotated):
    lrs = {}
    for lib in LIBS:  # example_learning_schedule, shortened: 60 steps, warmup 20
        L, mod = lib_of(lib), annotated[lib]
        opt = L.optim.Adam(L.nn.Linear(1, 1).parameters(), lr=1, betas=(0.9, 0.98), eps=1e-9)
        sched = mod.LambdaLR(optimizer=opt, lr_lambda=lambda step, mod=mod: mod.rate(step, 512, 1, 20))
        lrs[lib] = []
        for _ in range(60):
            lrs[lib].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    np.testing.assert_allclose(lrs["tinytensor"], lrs["torch"], rtol=1e-15)
    assert np.argmax(lrs["torch"]) == 20


def test_annotated_run_epoch_trains_with_adam_and_the_noam_schedule(annotated):
    models = ann_model(annotated, "float64")
    batches = [copy_task(10 + i) for i in range(3)]
    result, opts = {}, {}
    for lib, model in models.items():  # example_simple_model's optimizer and schedule
        L, mod = lib_of(lib), annotated[lib]
        criterion = mod.LabelSmoothing(size=AV, padding_idx=0, smoothing=0.0)
        opts[lib] = opt = L.optim.Adam(model.parameters(), lr=0.5, betas=(0.9, 0.98), eps=1e-9)
        sched = mod.LambdaLR(optimizer=opt, lr_lambda=lambda step, mod=mod, model=model: mod.rate(
            step, model_size=model.src_embed[0].d_model, factor=1.0, warmup=400))
        state = mod.TrainState()
        result[lib] = mod.run_epoch([batch_of(mod, lib, d) for d in batches], model,
                                    mod.SimpleLossCompute(model.generator, criterion), opt, sched,
                                    mode="train", train_state=state)
        assert state.step == state.accum_step == 3
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * mod.rate(3, AD, 1.0, 400), rel=1e-15)
    check("annotated run_epoch: mean loss", result["torch"][0], result["tinytensor"][0], STEP_TOL["float64"])
    check_named("annotated run_epoch: parameters after 3 steps", parameters(models["torch"]),
                parameters(models["tinytensor"]), STEP_TOL["float64"])
    for lib, model in models.items():  # and an evaluation epoch with the dummies
        mod = annotated[lib]
        crit = mod.LabelSmoothing(size=AV, padding_idx=0, smoothing=0.0)
        result[lib] = mod.run_epoch([batch_of(mod, lib, copy_task(30))], model,
                                    mod.SimpleLossCompute(model.generator, crit), mod.DummyOptimizer(),
                                    mod.DummyScheduler(), mode="eval", train_state=mod.TrainState())
    check("annotated run_epoch eval: mean loss", result["torch"][0], result["tinytensor"][0],
          STEP_TOL["float64"])


def test_annotated_greedy_decode(annotated):
    models = ann_model(annotated, "float64")
    src = np.arange(10, dtype=np.int64)[None]  # example_simple_model's
    out = {}
    for lib, model in models.items():
        L, mod = lib_of(lib), annotated[lib]
        out[lib] = mod.greedy_decode(model, tensor(lib, src), L.ones(1, 1, 10), max_len=10, start_symbol=0)
        assert tuple(out[lib].shape) == (1, 10)
    same_tokens("annotated greedy_decode: tokens differing", out["torch"], out["tinytensor"])


# ---- labml_nn's Transformer (labmlai/annotated_deep_learning_paper_implementations) ------------------

LV, LD, LS, LT = 11, 16, 7, 6  # vocabulary, d_model, source and target lengths (the batch is B)


@pytest.fixture(scope="module")
def labml():
    return stored("labml_nn.models", modules=LABML_NN_DEPS)


@pytest.fixture(scope="module")
def labml_loss():
    return stored("labml_nn.label_smoothing_loss")


@pytest.fixture(scope="module")
def labml_utils():
    return stored("labml_nn.transformers.utils")


def labml_model(mods: dict, dtype: str, learned: bool = False, gated: bool = False):
    """An encoder-decoder as labml_nn's TransformerConfigs assembles one, at a small size, dropout 0:
    pre-norm layers, sinusoidal (or learned) positions, a ReLU (or gated GELU) feed-forward."""
    def make(lib):
        m, nn = mods[lib], lib_of(lib).nn

        def layer(cross: bool):
            ff = m.FeedForward(LD, 32, 0.0, activation=nn.GELU() if gated else nn.ReLU(), is_gated=gated)
            return m.TransformerLayer(d_model=LD, self_attn=m.MultiHeadAttention(4, LD, 0.0),
                                      src_attn=m.MultiHeadAttention(4, LD, 0.0) if cross else None,
                                      feed_forward=ff, dropout_prob=0.0)
        emb = m.EmbeddingsWithLearnedPositionalEncoding if learned else m.EmbeddingsWithPositionalEncoding
        return m.EncoderDecoder(m.Encoder(layer(False), 2), m.Decoder(layer(True), 2), emb(LD, LV, 50),
                                emb(LD, LV, 50), m.Generator(LV, LD))
    return dict(zip(LIBS, pair(make, dtype)))


def seq2seq_batch(seed: int, pads: tuple[int, ...] = (2, 1)) -> tuple[np.ndarray, ...]:
    """(src, tgt, source key mask) in the file's [seq_len, batch] layout. ``pads[b]``: how many of
    sample b's last source and target positions are padding (0); the padded source keys are masked."""
    rng = np.random.default_rng(seed)
    src, tgt = rng.integers(1, LV, (LS, B)), rng.integers(1, LV, (LT, B))
    for b, n in enumerate(pads):
        if n:
            src[-n:, b] = tgt[-n:, b] = 0
    return src, tgt, (src != 0)[None].astype(np.float64)  # mask[i, j, b]: query i may see key j of b


def labml_forward(lib: str, mods: dict, model, data, dtype: str):
    """(logits, label-smoothed loss, true_dist) of one batch: the decoder's logits under labml_nn's
    subsequent_mask, and its LabelSmoothingLoss (smoothing 0.1, padding 0) of their log-softmax."""
    L = lib_of(lib)
    src, tgt, src_mask = (tensor(lib, a) for a in data)
    tgt_mask = mods["utils"][lib].subsequent_mask(LT)
    logits = model.generator(model(src, tgt, src_mask.to(getattr(L, dtype)), tgt_mask))
    criterion = mods["loss"][lib].LabelSmoothingLoss(LV, padding_idx=0, smoothing=0.1)
    log_probs = L.nn.functional.log_softmax(logits, dim=-1).reshape(-1, LV)
    return logits, criterion(log_probs, tgt.reshape(-1)), criterion.true_dist


@pytest.fixture(scope="module")
def labml_all(labml, labml_loss, labml_utils):
    return {"models": labml, "loss": labml_loss, "utils": labml_utils}


def test_labml_parameter_names_and_xavier_initialisation(labml):
    tm, ttm = labml_model(labml, "float32", learned=True).values()
    assert [n for n, _ in ttm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert list(ttm.state_dict()) == list(tm.state_dict())
    tt.manual_seed(0)  # a fresh model: EncoderDecoder's constructor runs xavier_uniform_ on every p.dim() > 1
    fresh = labml_model(labml, "float32", learned=True)["tinytensor"]
    for name, p in fresh.named_parameters():  # |w| <= √(6 / (fan_in + fan_out)) with PyTorch's fans
        if p.dim() > 1:  # (the learned positions are [max_len, 1, d_model]: fans 1·16 and 50·16)
            bound = np.sqrt(6 / ((p.shape[0] + p.shape[1]) * int(np.prod(p.shape[2:]))))
            w = np.abs(p.numpy())
            assert 0.8 * bound < w.max() <= bound + 1e-7, name


def test_labml_positional_encoding_and_subsequent_mask(labml, labml_utils):
    pe = {lib: labml[lib].get_positional_encoding(LD, 50) for lib in LIBS}
    assert tuple(pe["tinytensor"].shape) == (50, 1, LD) and not pe["tinytensor"].requires_grad
    check("labml_nn: get_positional_encoding", pe["torch"], pe["tinytensor"], 1e-5)  # float32 sin, cos
    masks = {lib: labml_utils[lib].subsequent_mask(LT) for lib in LIBS}
    assert masks["tinytensor"].dtype == tt.bool and tuple(masks["tinytensor"].shape) == (LT, LT, 1)
    np.testing.assert_array_equal(masks["tinytensor"].numpy(), masks["torch"].numpy())


@pytest.mark.parametrize("dtype", TOL)
@pytest.mark.parametrize("variant", ["sinusoidal-relu", "learned-gated"])
def test_labml_logits_label_smoothed_loss_and_every_gradient(labml_all, dtype, variant):
    learned, gated = variant == "learned-gated", variant == "learned-gated"
    models = labml_model(labml_all["models"], dtype, learned=learned, gated=gated)
    data = seq2seq_batch(1)
    out = {}
    for lib, model in models.items():
        logits, loss, true_dist = labml_forward(lib, labml_all, model, data, dtype)
        loss.backward()
        out[lib] = logits, loss, true_dist, model.decoder.layers[1].src_attn.attn
    label = f"labml_nn {dtype} {variant}"
    check(f"{label}: logits", out["torch"][0], out["tinytensor"][0], TOL[dtype])
    check(f"{label}: loss", out["torch"][1], out["tinytensor"][1], TOL[dtype])
    check(f"{label}: true_dist", out["torch"][2], out["tinytensor"][2], TOL[dtype])
    check(f"{label}: cross-attention", out["torch"][3], out["tinytensor"][3], TOL[dtype])
    attn = out["tinytensor"][3].numpy()  # [query, key, batch, head]: padded keys get no weight
    assert np.all(attn[:, -2:, 0] == 0) and np.all(attn[:, -1:, 1] == 0) and np.all(attn[:, :, 2:] > 0)
    check_named(f"{label}: gradients", gradients(models["torch"]), gradients(models["tinytensor"]),
                TOL[dtype])


@pytest.mark.parametrize("pads", [(0, 0), (0, 1), (2, 1)], ids=["no-padding", "one-pad", "three-pads"])
def test_labml_label_smoothing_in_place_writes(labml_loss, pads):
    """LabelSmoothingLoss writes into a clone of its input (fill_, scatter_, a column set, index_fill_
    at nonzero's rows, squeezed: a 0-d index when one token is padding), then detaches it."""
    target = seq2seq_batch(3, pads)[1].reshape(-1)
    logits = np.random.default_rng(4).standard_normal((target.size, LV))
    out = {}
    for lib in LIBS:
        x = tensor(lib, logits).log_softmax(-1).requires_grad_()
        crit = labml_loss[lib].LabelSmoothingLoss(LV, padding_idx=0, smoothing=0.2)
        loss = crit(x, tensor(lib, target))
        loss.backward()
        out[lib] = crit.true_dist, loss, x.grad
    label = f"labml_nn LabelSmoothingLoss {pads}"
    check(f"{label}: true_dist", out["torch"][0], out["tinytensor"][0], 1e-15)
    check(f"{label}: loss", out["torch"][1], out["tinytensor"][1], TOL["float64"])
    check(f"{label}: gradient", out["torch"][2], out["tinytensor"][2], TOL["float64"])
    assert np.all(out["tinytensor"][0].numpy()[target == 0] == 0)


@pytest.mark.parametrize("dtype", ["float64"])
def test_labml_adam_steps(labml_all, dtype):
    """float64 only: the key projections' biases have a zero gradient (a softmax over keys ignores
    q·b, the same for every key), so each library's gradient there is its rounding noise, ~1e-9 in
    float32, which Adam (eps 1e-9) scales up to steps of lr's size in unrelated directions."""
    models = labml_model(labml_all["models"], dtype, learned=True)
    opts = {lib: lib_of(lib).optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
            for lib, m in models.items()}
    data = [seq2seq_batch(10 + i) for i in range(3)]
    train_steps(models, opts, lambda lib, model, i: labml_forward(lib, labml_all, model, data[i], dtype)[1],
                3, f"labml_nn {dtype} Adam", dtype)


def test_labml_greedy_decoding(labml_all):
    """Encode once, then decode token by token (the argmax of the last position) with the file's
    encode / decode / generator: the same tokens on both libraries."""
    models = labml_model(labml_all["models"], "float64")
    src, _, src_mask = seq2seq_batch(5)
    out = {}
    for lib, model in models.items():
        L = lib_of(lib)
        memory = model.encode(tensor(lib, src), tensor(lib, src_mask))
        ys = L.ones(1, B, dtype=L.long)
        for _ in range(LT - 1):
            mask = labml_all["utils"][lib].subsequent_mask(ys.shape[0])
            hidden = model.decode(memory, tensor(lib, src_mask), ys, mask)
            next_token = model.generator(hidden[-1]).argmax(dim=-1)
            ys = L.cat([ys, next_token[None]], dim=0)
        out[lib] = ys
    assert tuple(out["tinytensor"].shape) == (LT, B)
    same_tokens("labml_nn greedy decoding: tokens differing", out["torch"], out["tinytensor"])


# ---- micrograd's tests (karpathy/micrograd test/test_engine.py) --------------------------------------

@pytest.fixture(scope="module")
def micrograd():
    return stored("micrograd.test", modules={"micrograd.engine": FILES["micrograd.engine"]})


MICROGRAD_TESTS = ["test_sanity_check", "test_more_ops"]


@pytest.mark.parametrize("name", MICROGRAD_TESTS)
def test_micrograd_engine_tests_unmodified_on_pytorch(micrograd, name):
    getattr(micrograd["torch"], name)()  # the reference: micrograd against PyTorch


@pytest.mark.parametrize("name", MICROGRAD_TESTS)
def test_micrograd_engine_tests_rewritten_on_tinytensor(micrograd, name):
    getattr(micrograd["tinytensor"], name)()  # micrograd against tinytensor in torch's place
