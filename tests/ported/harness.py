"""Run public PyTorch files on tinytensor after rewriting only their import lines.

The rule (the issue "run real PyTorch code"), applied to each import statement and to nothing else:

    import torch                            ->  import tinytensor as torch
    import torch.nn as nn                   ->  import tinytensor.nn as nn        (the leading torch
    from torch.nn import functional as F    ->  from tinytensor.nn import functional as F   becomes
    from torch import nn                    ->  from tinytensor import nn          tinytensor)
    from torch.utils.data import DataLoader ->  from tinytensor.utils.data import DataLoader
    from einops.layers.torch import Rearrange -> from tinytensor.nn.einops import Rearrange

Every other import stays, ``from einops import rearrange, repeat`` too: einops' functions work on
tinytensor tensors through the backend tinytensor registers with einops (tinytensor/_einops.py); only its
torch layers have tinytensor counterparts. ``import torch.nn`` without ``as`` binds the name ``torch`` to
the real package, which the rule cannot express: the rewriter refuses it rather than guess.

``load(FILES[key], "tinytensor")`` executes the rewritten file as a fresh module; ``load(..., "torch")``
executes the same file unmodified. Line numbers are kept, so a traceback points at the stored file's own
line. The stored files live under tests/ported/<folder>/ at their repository paths, byte for byte as
published (``Stored.check`` compares their SHA-256); they are not committed (tests/ported/README.md).
Those also published byte-identical in an archive on PyPI are fetched from it where absent
(``Stored.ensure``).
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LIBS = ("torch", "tinytensor")


# ---- the stored files ---------------------------------------------------------------------------

class FetchError(RuntimeError):
    """pip could not download an archive (no network, no such release, timeout): pip's message."""


@dataclass(frozen=True)
class Archive:
    """A release's archive on PyPI that holds stored files byte for byte."""

    name: str
    version: str
    kind: str  # "wheel" or "sdist"
    sha256: str  # the archive's own
    licence: str | None = None  # the member that is the repository's LICENSE, where the archive ships one

    def download(self, into: str, timeout: float = 300) -> Path:
        """``pip download`` of exactly this archive into the folder ``into``; its path, after checking
        its SHA-256. FetchError where pip fails, ValueError where the archive is not the recorded one."""
        only = "--only-binary" if self.kind == "wheel" else "--no-binary"
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", only, ":all:",
               f"{self.name}=={self.version}", "-d", into]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FetchError(f"`{' '.join(cmd[1:])}` took over {timeout:.0f} s") from None
        if done.returncode:
            raise FetchError(f"`{' '.join(cmd[1:])}` failed: {done.stderr.strip()[-2000:]}")
        (archive,) = Path(into).iterdir()
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise ValueError(f"{archive.name} from PyPI has sha256 {digest[:12]}…, expected "
                             f"{self.sha256[:12]}…: not the archive the stored files were checked against")
        return archive


def _member(archive: Path, member: str) -> bytes:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        return t.extractfile(member).read()


def _write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or is as it was: written to a temporary file beside it, then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp's file is the owner's only
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def fetch_from_pypi(archive: Archive, files: dict[str, Path], timeout: float = 300) -> None:
    """Download ``archive``, check its SHA-256 and write each of its members ``files`` names (member ->
    path) to its path; nothing is written unless the archive is the recorded one."""
    with tempfile.TemporaryDirectory() as tmp:
        downloaded = archive.download(tmp, timeout)
        data = {path: _member(downloaded, member) for member, path in files.items()}
    for path, content in data.items():
        _write_atomically(path, content)


@dataclass(frozen=True)
class Stored:
    """A third-party file kept verbatim at tests/ported/<folder>/<path> (``path``: its repository path)."""

    folder: str
    path: str
    repo: str
    commit: str | None  # the repository's HEAD when the file was taken; None: known by its PyPI release only
    sha256: str
    archive: Archive | None = None  # where PyPI publishes the same bytes, as the archive's ``member``
    member: str | None = None

    @property
    def file(self) -> Path:
        return HERE / self.folder / self.path

    def available(self) -> bool:
        return self.file.is_file()

    def ensure(self) -> None:
        """Fetch the file from its PyPI archive where it is absent, with the archive's other stored files
        and its licence (as <folder>/LICENSE) where those are absent too; then check it. Nothing to do
        where the file is there or has no PyPI source. FetchError / ValueError: see Archive.download."""
        if self.available() or self.archive is None:
            return
        same = [s for s in FILES.values() if s.archive == self.archive and not s.available()]
        files = {s.member: s.file for s in [self, *same]}
        licence = HERE / self.folder / "LICENSE"
        if self.archive.licence and not licence.exists():
            files[self.archive.licence] = licence
        fetch_from_pypi(self.archive, files)
        self.check()

    def check(self) -> str:
        """The file's text, after checking that it is the published one."""
        data = self.file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.sha256:
            where = (f"{self.repo}@{self.commit[:7]}" if self.commit else
                     f"{self.archive.name}=={self.archive.version} ({self.repo})")
            raise ValueError(f"{self.file} is not the file published at {where}:{self.path} (sha256 "
                             f"{digest[:12]}…, expected {self.sha256[:12]}…): stored files are kept "
                             "verbatim; fetch it again instead of editing it")
        return data.decode()


VIT_WHEEL = Archive("vit-pytorch", "1.26.14", "wheel",
                    "419f16be5718c6e50073caaefbbef05797b518708fd4e8467818655fa658ce68",
                    licence="vit_pytorch-1.26.14.dist-info/licenses/LICENSE")
MICROGRAD_SDIST = Archive("micrograd", "0.1.0", "sdist",  # the wheel lacks test/; no licence file in it
                          "81797b796bef809fb1ac3fd83a7e01e007aecb8d056fba07c0e24931e043845d")
NANO_GPT_WHEEL = Archive("nano-gpt", "0.1.0", "wheel",  # its repository's commit is not recorded in it
                         "6ec83e405723d5d831d466b82e754c14677990487ce3238230b1603fef46edb9",
                         licence="nano_gpt-0.1.0.dist-info/licenses/LICENSE")
LABML_NN_WHEEL = Archive("labml-nn", "0.5.1", "wheel",  # no licence file in it: its metadata says MIT
                         "ba6b6d4efb2590636f237aa6204ffe789b3ec484088226248890393e225a5761")


def _labml_nn(path: str, sha256: str) -> Stored:
    """One of labml_nn's files, taken from its PyPI wheel (the repository's commit is not recorded in it)."""
    return Stored("labml_nn", path, "labmlai/annotated_deep_learning_paper_implementations", None, sha256,
                  LABML_NN_WHEEL, path)


FILES = {
    "nanogpt": Stored("nanogpt", "model.py", "karpathy/nanoGPT",
                      "3adf61e154c3fe3fca428ad6bc3818b27a3b8291",
                      "7c01703240dbec5d554527dc666e35b3df8391d0b117fddc07afcf325a21d11c"),
    "mingpt": Stored("mingpt", "mingpt/model.py", "karpathy/minGPT",
                     "37baab71b9abea1b76ab957409a1cc2fbfba8a26",
                     "3586d4a957722864f7a790689a094478d3ee0b7de34d7456cb635923e4779576"),
    "mingpt.utils": Stored("mingpt", "mingpt/utils.py", "karpathy/minGPT",
                           "37baab71b9abea1b76ab957409a1cc2fbfba8a26",
                           "243dd4f91c68ea45421bcd4a82fa7fe9e0ee01bf90d52b5feefdb777db6e0568"),
    "annotated": Stored("annotated_transformer", "the_annotated_transformer.py",
                        "harvardnlp/annotated-transformer", "debc9fd747bb2123160a98046ad1c2d4da44a567",
                        "9562df56fc29a172dd9284e0d2ba68443b25e8733981fedf854d1f36cbc2e74b"),
    "vit": Stored("vit_pytorch", "vit_pytorch/vit.py", "lucidrains/vit-pytorch",
                  "69d24fe9e3024c0d4b02761123b8583a24ebed1e",
                  "60c502dc805bffa20ef03ecf22537491576b08d8082fd542b624af1f945ba578",
                  VIT_WHEEL, "vit_pytorch/vit.py"),
    "micrograd.test": Stored("micrograd", "test/test_engine.py", "karpathy/micrograd",
                             "c911406e5ace8742e5841a7e0df113ecb5d54685",
                             "27142177f5badd0f3aa0ae1a78ae91b0017cd08d9e44a3e0f774142c0f53d531",
                             MICROGRAD_SDIST, "micrograd-0.1.0/test/test_engine.py"),
    "micrograd.engine": Stored("micrograd", "micrograd/engine.py", "karpathy/micrograd",
                               "c911406e5ace8742e5841a7e0df113ecb5d54685",
                               "95f19fa3734458d868e067d770f0773027763a2f654900bfbc1df8c5413acf84",
                               MICROGRAD_SDIST, "micrograd-0.1.0/micrograd/engine.py"),
    "nano_gpt": Stored("nano_gpt", "nano_gpt/model.py", "allenporter/nano_gpt", None,
                       "41c658e0a755c5653091260ff64d272af0d0fc3029f84bf207c251377f88ac4f",
                       NANO_GPT_WHEEL, "nano_gpt/model.py"),
    "nano_gpt.config": Stored("nano_gpt", "nano_gpt/config.py", "allenporter/nano_gpt", None,
                              "6f429fd2573d1d30ecb3fc1eb28ad7df4686d16d64c51f11cab17035f0c8040c",
                              NANO_GPT_WHEEL, "nano_gpt/config.py"),
    "nano_gpt.tokenizer": Stored("nano_gpt", "nano_gpt/tokenizer.py", "allenporter/nano_gpt", None,
                                 "1712b2fef91697a5a741ca47529a824e2adfc57f18fa9a9c97a5bcc54e8e5d49",
                                 NANO_GPT_WHEEL, "nano_gpt/tokenizer.py"),
    "labml_nn.models": _labml_nn("labml_nn/transformers/models.py",
                                 "1c9bb280756c2df5409771f498117001841589b912129ec9a2128f5375e87e1e"),
    "labml_nn.mha": _labml_nn("labml_nn/transformers/mha.py",
                              "9b2e9ac1fd487701e7384bd47a15843f9f5bc880b35ba189f2a7ae00f0aaa0ad"),
    "labml_nn.feed_forward": _labml_nn("labml_nn/transformers/feed_forward.py",
                                       "877cc8421aff6fb057369d433aed60e14925e7232b0cf681ed580db593ffece5"),
    "labml_nn.positional_encoding": _labml_nn(
        "labml_nn/transformers/positional_encoding.py",
        "c89d3f8999a5a312be5f42f5a118b624beff5608431e20e0ff8d2e159c6c1ef3"),
    "labml_nn.label_smoothing_loss": _labml_nn(
        "labml_nn/transformers/label_smoothing_loss.py",
        "2f50e19d6948ea2d71f39267934e2535ea33bc09d8501d90811036fc08a44959"),
    "labml_nn.transformers.utils": _labml_nn("labml_nn/transformers/utils.py",
                                             "8d3060687ed8daf620d5b669257ebcc975d88832e0deb00565e759978ede16a2"),
    "labml_nn.utils": _labml_nn("labml_nn/utils/__init__.py",
                                "cf9211b64649fdd3199031076273fb1da105d2926571e8b8baaf9456f2ec24da"),
}

# the stored files labml_nn's models.py imports by name (its relative imports and labml_nn.utils)
LABML_NN_DEPS = {**{f"labml_nn.transformers.{n}": FILES[f"labml_nn.{n}"]
                    for n in ("feed_forward", "mha", "positional_encoding")},
                 "labml_nn.utils": FILES["labml_nn.utils"]}


# ---- the import rewrite ---------------------------------------------------------------------------

def renamed_module(name: str, from_import: bool = False) -> str | None:
    """The module tinytensor code imports instead of ``name``, or None when the rule leaves it alone
    (einops' torch layers are renamed in ``from einops.layers.torch import`` statements only)."""
    if name == "torch" or name.startswith("torch."):
        return "tinytensor" + name[len("torch"):]
    if from_import and name == "einops.layers.torch":
        return "tinytensor.nn.einops"
    return None


def _rewrite_statement(text: str, node: ast.Import | ast.ImportFrom) -> str:
    """``text``: the source from the statement's first character on (its first line); the same text with
    the module name replaced."""
    if isinstance(node, ast.ImportFrom):
        new = renamed_module(node.module or "", from_import=True) if node.level == 0 else None
        if new is None:
            return text
        return re.sub(r"^from\s+" + re.escape(node.module), "from " + new, text, count=1)
    olds = [a for a in node.names if renamed_module(a.name) is not None]
    if not olds:
        return text
    if len(node.names) > 1:
        raise ValueError(f"line {node.lineno}: split `{text.strip()}` into one import a line: the rule "
                         "rewrites `import torch...` statements of one module")
    (alias,) = olds
    new = renamed_module(alias.name)
    if alias.asname is None and alias.name != "torch":
        raise ValueError(f"line {node.lineno}: `{text.strip()}` binds the name `torch` to PyTorch itself; "
                         "the rule has no rewrite for it (write `import torch.x as x`)")
    tail = " as torch" if alias.asname is None else ""
    return re.sub(r"^import\s+" + re.escape(alias.name) + r"\b", "import " + new + tail, text, count=1)


def rewrite_imports(source: str) -> str:
    """``source`` with every import of torch / einops rewritten by the rule; nothing else changes (not
    even the line count)."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            i, col = node.lineno - 1, node.col_offset
            lines[i] = lines[i][:col] + _rewrite_statement(lines[i][col:], node)
    return "".join(lines)


# ---- keeping only some definitions of a notebook export -------------------------------------------

def _bound_names(node: ast.Import | ast.ImportFrom) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for a in node.names}


def select_definitions(source: str, keep: list[str]) -> tuple[str, list[str]]:
    """Keep the top-level functions and classes named in ``keep`` and the import statements binding a
    name they use; blank every other line (so line numbers stay the file's own).

    Returns (source, removed): ``removed`` describes each top-level statement left out, e.g.
    ``"line 1127: example_learning_schedule()"``. For notebook exports whose top level also plots and
    trains; the kept lines are the file's, character for character."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    unknown = [k for k in keep if k not in defs]
    if unknown:
        raise ValueError(f"no top-level definition named {unknown}")
    used = {n.id for k in keep for n in ast.walk(defs[k]) if isinstance(n, ast.Name)}
    kept = [False] * len(lines)
    removed = []
    for node in tree.body:
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        if (is_import and _bound_names(node) & used) or getattr(node, "name", None) in keep:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            kept[start - 1:node.end_lineno] = [True] * (node.end_lineno - start + 1)
        else:
            first = lines[node.lineno - 1].strip()
            removed.append(f"line {node.lineno}: {first[:70]}")
    out = "".join(line if k else "\n" for line, k in zip(lines, kept))
    return out, removed


# ---- loading ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _installed(modules: dict[str, types.ModuleType]):
    """Put ``modules`` (dotted name -> module) and empty parent packages into sys.modules for the
    duration, then restore whatever was there."""
    names = set()
    for dotted in modules:
        parts = dotted.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    saved = {n: sys.modules[n] for n in names if n in sys.modules}
    try:
        for n in sorted(names, key=len):
            if n in modules:
                sys.modules[n] = modules[n]
            else:
                pkg = types.ModuleType(n)
                pkg.__path__ = []
                sys.modules[n] = pkg
        for n in modules:
            parent, _, leaf = n.rpartition(".")
            if parent:
                setattr(sys.modules[parent], leaf, modules[n])
        yield
    finally:
        for n in names:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


def source_for(stored: Stored, lib: str, keep: list[str] | None = None) -> str:
    """The text executed for ``lib``: the stored file (only ``keep``'s definitions, if given), its imports
    rewritten for tinytensor."""
    if lib not in LIBS:
        raise ValueError(f"lib must be one of {LIBS}, got {lib!r}")
    source = stored.check()
    if keep is not None:
        source, _ = select_definitions(source, keep)
    return rewrite_imports(source) if lib == "tinytensor" else source


class _Absent:
    """What a stand-in module hands out for a name: usable in annotations and imports, an error if used."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):  # the protocols (__file__, __path__, ...): a plain object's answer
            raise AttributeError(attr)
        return _Absent(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise ModuleNotFoundError(f"{self._name}: its package is a stand-in in these tests (not installed); "
                                  "the ported tests do not use it")


def stand_in(package: str) -> types.ModuleType:
    """A module for a package a stored file imports but the tested code never calls (a checkpoint
    loader's ``transformers``, a tokenizer's ``tiktoken``): its names resolve, calling one raises."""
    module = types.ModuleType(package)
    module.__getattr__ = _Absent(package).__getattr__
    return module


def load(stored: Stored, lib: str, *, modules: dict[str, Stored] | None = None,
         keep: list[str] | None = None, name: str | None = None,
         stand_ins: tuple[str, ...] = ()) -> types.ModuleType:
    """Execute ``stored`` as a new module for ``lib`` ("torch": unmodified; "tinytensor": rewritten).

    ``modules``: the file's own imports that are stored files too (``{"mingpt.utils": FILES[...]}``),
    loaded the same way and visible in sys.modules only while the file executes; its relative imports
    (``from .config import ...``) resolve against the package its repository path names. ``keep``: see
    select_definitions. ``stand_ins``: third-party packages the files import but the tests never call
    (``stand_in``), in sys.modules while they execute. The module is registered as
    ``ported_<lib>.<name>`` (dataclasses look it up)."""
    with _installed({p: stand_in(p) for p in stand_ins}):
        deps = {dotted: load(s, lib, name=dotted) for dotted, s in (modules or {}).items()}
        name = name or stored.folder
        module = types.ModuleType(f"ported_{lib}.{name}")
        module.__file__ = str(stored.file)
        module.__package__ = ".".join(Path(stored.path).parent.parts)
        code = compile(source_for(stored, lib, keep), str(stored.file), "exec")
        sys.modules[module.__name__] = module
        with _installed(deps):
            exec(code, module.__dict__)
    return module


# ---- comparing the two libraries -------------------------------------------------------------------

def to_numpy(t) -> np.ndarray | None:
    """A torch or tinytensor tensor (or None) as a NumPy array."""
    if t is None:
        return None
    return np.array(t.detach().numpy())


def max_abs_diff(a, b) -> float:
    """max |a - b| over two tensors (torch, tinytensor or NumPy) of one shape."""
    a = a if isinstance(a, np.ndarray) else to_numpy(a)
    b = b if isinstance(b, np.ndarray) else to_numpy(b)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def copy_state(torch_model, tt_model) -> None:
    """Load the torch model's state_dict (parameters and buffers) into the tinytensor model."""
    import tinytensor as tt

    state = {k: tt.tensor(v.detach().numpy()) for k, v in torch_model.state_dict().items()}
    tt_model.load_state_dict(state)


def gradients(model) -> dict[str, np.ndarray | None]:
    """Every parameter's gradient by name, as NumPy."""
    return {name: to_numpy(p.grad) for name, p in model.named_parameters()}


def parameters(model) -> dict[str, np.ndarray]:
    return {name: to_numpy(p) for name, p in model.named_parameters()}


def compare_named(want: dict, got: dict) -> dict[str, float]:
    """max |want - got| per name; a name missing on one side, or a gradient None on one side only, is an
    AssertionError naming it."""
    if want.keys() != got.keys():
        raise AssertionError(f"names differ: only torch {sorted(want.keys() - got.keys())}, "
                             f"only tinytensor {sorted(got.keys() - want.keys())}")
    out = {}
    for k, w in want.items():
        g = got[k]
        if (w is None) != (g is None):
            raise AssertionError(f"{k}: torch {'no' if w is None else 'a'} gradient, tinytensor "
                                 f"{'none' if g is None else 'one'}")
        out[k] = 0.0 if w is None else max_abs_diff(w, g)
    return out
