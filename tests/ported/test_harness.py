"""The ported-file harness: the import rewrite on the rule's examples, the definition selection, loading
(dependencies, line numbers), fetching from PyPI and the comparison helpers. Needs neither torch nor the
stored files; the one test of the real PyPI download skips where pip cannot reach it (unless
TINYTENSOR_REQUIRE_PORTED=1)."""
import hashlib
import os
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from ported.harness import (
    FILES,
    HERE,
    Archive,
    FetchError,
    Stored,
    compare_named,
    load,
    max_abs_diff,
    rewrite_imports,
    select_definitions,
)


@pytest.mark.parametrize("line, want", [
    ("import torch", "import tinytensor as torch"),
    ("import torch.nn as nn", "import tinytensor.nn as nn"),
    ("import torch as th", "import tinytensor as th"),
    ("from torch.nn import functional as F", "from tinytensor.nn import functional as F"),
    ("from torch import nn", "from tinytensor import nn"),
    ("from torch.utils.data import DataLoader", "from tinytensor.utils.data import DataLoader"),
    ("from torch.nn.functional import log_softmax, pad",
     "from tinytensor.nn.functional import log_softmax, pad"),
    ("from torch.optim.lr_scheduler import LambdaLR", "from tinytensor.optim.lr_scheduler import LambdaLR"),
    ("from einops.layers.torch import Rearrange", "from tinytensor.nn.einops import Rearrange"),
    ("import torch  # the reference", "import tinytensor as torch  # the reference"),
])
def test_the_rule_on_its_examples(line, want):
    assert rewrite_imports(line + "\n") == want + "\n"
    assert rewrite_imports("if True:\n    " + line + "\n") == "if True:\n    " + want + "\n"


@pytest.mark.parametrize("line", [
    "import math", "import numpy as np", "from torchvision import models", "import torchtext.datasets as d",
    "from einops_exts import x", "from .torch import y", "import einops",
    "from einops import rearrange, repeat", "import einops.layers.torch as L",
    "from einops.layers import RearrangeMixin", "from mingpt.utils import CfgNode as CN",
])
def test_other_imports_are_left_alone(line):
    assert rewrite_imports(line + "\n") == line + "\n"


def test_only_import_statements_change():
    source = textwrap.dedent('''\
        """A docstring that says
        import torch
        """
        import math; import torch
        from torch import (
            nn,
            optim,
        )
        x = "from torch import nn"


        def f():
            from torch.nn import functional as F  # inside a function too
            return F
    ''')
    out = rewrite_imports(source)
    assert out.splitlines()[1] == "import torch"  # the docstring
    assert out.splitlines()[3] == "import math; import tinytensor as torch"
    assert out.splitlines()[4] == "from tinytensor import ("
    assert 'x = "from torch import nn"' in out
    assert "    from tinytensor.nn import functional as F  # inside a function too" in out
    assert out.count("\n") == source.count("\n")
    changed = [i for i, (a, b) in enumerate(zip(source.splitlines(), out.splitlines())) if a != b]
    assert changed == [3, 4, 12]


@pytest.mark.parametrize("line, match", [
    ("import torch.nn", "binds the name `torch`"),
    ("import torch, math", "one import a line"),
])
def test_forms_the_rule_cannot_express_are_refused(line, match):
    with pytest.raises(ValueError, match=match):
        rewrite_imports(line + "\n")


NOTEBOOK = textwrap.dedent('''\
    import os
    import math
    import pandas as pd
    from torch.nn.functional import log_softmax, pad


    def helper(x):
        return math.sqrt(x)


    @staticmethod
    def decorated():
        return log_softmax


    def plot():
        return pd.DataFrame()


    plot()
''')


def test_select_definitions_keeps_named_defs_and_the_imports_they_use():
    out, removed = select_definitions(NOTEBOOK, ["helper", "decorated"])
    assert out.count("\n") == NOTEBOOK.count("\n")  # line numbers are the file's own
    kept = [line for line in out.splitlines() if line]
    assert kept == ["import math", "from torch.nn.functional import log_softmax, pad", "def helper(x):",
                    "    return math.sqrt(x)", "@staticmethod", "def decorated():", "    return log_softmax"]
    assert removed == ["line 1: import os", "line 3: import pandas as pd", "line 16: def plot():",
                       "line 20: plot()"]
    with pytest.raises(ValueError, match="no top-level definition named"):
        select_definitions(NOTEBOOK, ["nope"])


def _stored(tmp_path, rel: str, text: str) -> Stored:
    import hashlib

    file = tmp_path / "pkg" / rel
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    stored = Stored("pkg", rel, "someone/repo", "0" * 40, hashlib.sha256(text.encode()).hexdigest())
    return stored


def test_load_installs_dependencies_only_while_the_file_runs(tmp_path, monkeypatch):
    import ported.harness as harness

    monkeypatch.setattr(harness, "HERE", tmp_path)
    util = _stored(tmp_path, "lib/util.py", "import torch\nVALUE = torch.__name__\n")
    main = _stored(tmp_path, "lib/main.py",
                   "from lib.util import VALUE\n\n\ndef fail():\n    raise RuntimeError(VALUE)\n")
    for lib, want in (("torch", "torch"), ("tinytensor", "tinytensor")):
        if lib == "torch":
            pytest.importorskip("torch")
        mod = load(main, lib, modules={"lib.util": util}, name="main")
        assert mod.VALUE == want and "lib.util" not in sys.modules and "lib" not in sys.modules
        with pytest.raises(RuntimeError) as info:
            mod.fail()
        frame = info.traceback[-1]
        assert frame.path == tmp_path / "pkg" / "lib" / "main.py" and frame.lineno + 1 == 5


def test_a_stored_file_that_was_edited_is_refused(tmp_path, monkeypatch):
    import ported.harness as harness

    monkeypatch.setattr(harness, "HERE", tmp_path)
    stored = _stored(tmp_path, "m.py", "x = 1\n")
    stored.file.write_text("x = 2\n")
    with pytest.raises(ValueError, match="kept verbatim"):
        load(stored, "tinytensor")


def test_every_stored_file_is_described():
    for key, s in FILES.items():
        # a file known by its PyPI release only (no commit recorded in the archive) names that release
        assert (len(s.commit) == 40 if s.commit else s.archive is not None), key
        assert len(s.sha256) == 64 and "/" in s.repo, key
        assert (HERE / s.folder / "README.md").is_file(), key
        assert (s.archive is None) == (s.member is None), key
        if s.archive is not None:
            assert s.archive.kind in ("wheel", "sdist") and len(s.archive.sha256) == 64, key
            assert s.member.endswith(s.path), key


# ---- fetching from PyPI -------------------------------------------------------------------------

MODULE = b"x = 1\n"


def _local_index(tmp_path, monkeypatch) -> Archive:
    """A wheel fakepkg 1.0 holding fakepkg/m.py, which the real `pip download` finds in a local folder
    (PIP_NO_INDEX, PIP_FIND_LINKS); its Archive record, with the right SHA-256."""
    links = tmp_path / "links"
    links.mkdir()
    wheel = links / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("fakepkg/m.py", MODULE)
        z.writestr("fakepkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.0\n")
        z.writestr("fakepkg-1.0.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("fakepkg-1.0.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    return Archive("fakepkg", "1.0", "wheel", hashlib.sha256(wheel.read_bytes()).hexdigest())


def test_fetching_checks_the_archive_and_writes_the_member(tmp_path, monkeypatch):
    import ported.harness as harness

    monkeypatch.setattr(harness, "HERE", tmp_path / "stored")
    right = _local_index(tmp_path, monkeypatch)
    digest = hashlib.sha256(MODULE).hexdigest()
    for archive, error in ((Archive("fakepkg", "1.0", "wheel", "0" * 64), "not the archive"),
                           (Archive("fakepkg", "2.0", "wheel", right.sha256), "failed")):
        stored = Stored("pkg", "m.py", "someone/repo", "0" * 40, digest, archive, "fakepkg/m.py")
        with pytest.raises(ValueError if error == "not the archive" else FetchError, match=error):
            stored.ensure()
        assert not (tmp_path / "stored").exists()  # nothing written, not even a temporary file
    stored = Stored("pkg", "m.py", "someone/repo", "0" * 40, digest, right, "fakepkg/m.py")
    stored.ensure()
    assert stored.file.read_bytes() == MODULE and os.listdir(stored.file.parent) == ["m.py"]
    stored.ensure()  # there: nothing to do


@pytest.mark.parametrize("key", ["vit", "micrograd.engine", "labml_nn.models"])
def test_fetching_from_pypi_restores_the_stored_file(key, tmp_path, monkeypatch):
    """The real download: into an empty folder, the file (and its archive's other stored files and
    licence) as stored, byte for byte."""
    import ported.harness as harness

    here = HERE
    monkeypatch.setattr(harness, "HERE", tmp_path)
    s = FILES[key]
    assert not s.available()
    try:
        s.ensure()
    except FetchError as e:
        if os.environ.get("TINYTENSOR_REQUIRE_PORTED") == "1":
            raise
        pytest.skip(f"pip cannot download from PyPI here: {e}")
    for other in FILES.values():
        if other.archive == s.archive:
            assert hashlib.sha256(other.file.read_bytes()).hexdigest() == other.sha256
            local = here / other.folder / other.path
            if local.is_file():
                assert other.file.read_bytes() == local.read_bytes()
    licence = tmp_path / s.folder / "LICENSE"
    assert licence.is_file() == (s.archive.licence is not None)
    if licence.is_file() and (here / s.folder / "LICENSE").is_file():
        assert licence.read_bytes() == (here / s.folder / "LICENSE").read_bytes()


def test_comparison_helpers():
    a, b = np.array([1.0, 2.0]), np.array([1.0, 2.5])
    assert max_abs_diff(a, b) == 0.5 and max_abs_diff(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    with pytest.raises(AssertionError, match="shapes differ"):
        max_abs_diff(a, np.zeros(3))
    assert compare_named({"w": a, "b": None}, {"w": b, "b": None}) == {"w": 0.5, "b": 0.0}
    with pytest.raises(AssertionError, match="only torch"):
        compare_named({"w": a, "v": a}, {"w": a})
    with pytest.raises(AssertionError, match="w: torch a gradient, tinytensor none"):
        compare_named({"w": a}, {"w": None})


def test_stand_in_modules_resolve_names_and_refuse_calls():
    from ported.harness import stand_in

    mod = stand_in("somepkg")
    thing = mod.Model.from_pretrained  # names (and annotations) resolve
    with pytest.raises(ModuleNotFoundError, match="somepkg.Model.from_pretrained: its package is a stand-in"):
        thing("gpt2")
    assert not hasattr(mod, "__file__")  # the module protocol is a plain module's: inspect is not fooled
