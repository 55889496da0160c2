"""The ported-file harness: the import rewrite on the rule's examples, the definition selection, loading
(dependencies, line numbers) and the comparison helpers. Needs neither torch nor the stored files."""
import sys
import textwrap

import numpy as np
import pytest
from ported.harness import (
    FILES,
    HERE,
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
        assert len(s.commit) == 40 and len(s.sha256) == 64 and "/" in s.repo, key
        assert (HERE / s.folder / "README.md").is_file(), key


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
