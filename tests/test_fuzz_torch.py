"""The differential fuzzer against PyTorch (tinytensor/testing/fuzz.py), on every device.

Each public op starts chains of one to three ops on hypothesis-drawn inputs; values, dtypes,
requires_grad, every gradient (random upstream gradients, sometimes with inf/NaN) and which side raises
must agree with PyTorch. Examples are derandomized: a run is the same run on every machine.

How many examples: TINYTENSOR_FUZZ_EXAMPLES per device in total, spread over the ops (default 1000, the CI
bound; the long mode is ``TINYTENSOR_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_torch.py``).
Failures are reported as drawn; TINYTENSOR_FUZZ_SHRINK=1 lets hypothesis shrink them (slow).
A failure prints the discrepancy and a reproducer for both libraries. The coverage tests fail when a public
op of ``tinytensor.ops.__all__`` (or a public Tensor method) has neither a fuzz entry nor a commented
exclusion in fuzz.py.
"""
import os

import pytest
from _torch import require_torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tinytensor.ops as tt_ops
from tinytensor.autograd.tensor_core import TensorCore
from tinytensor.tensor import Tensor
from tinytensor.testing import fuzz

require_torch()

TOTAL = int(os.environ.get("TINYTENSOR_FUZZ_EXAMPLES", "1000"))
PER_OP = max(3, TOTAL // len(fuzz.OPS))
# shrinking a failure can take minutes; TINYTENSOR_FUZZ_SHRINK=1 asks hypothesis for a minimal example
SHRINK = bool(os.environ.get("TINYTENSOR_FUZZ_SHRINK"))
PHASES = (Phase.explicit, Phase.generate) + ((Phase.shrink,) if SHRINK else ())
# entries for Tensor syntax rather than named ops or methods: x[i] and x[i] = v
SYNTAX = {"getitem", "setitem"}


def _tensor_attrs() -> set:
    """Public Tensor attributes that are not one of the public ops under another name."""
    op_ids = {id(getattr(tt_ops, n)) for n in tt_ops.__all__}
    names = {n for n in dir(Tensor) + dir(TensorCore) if not n.startswith("_")}
    return {n for n in names if id(getattr(Tensor, n, None)) not in op_ids}


def test_every_public_op_has_a_fuzz_entry():
    missing = sorted(set(tt_ops.__all__) - set(fuzz.OPS) - set(fuzz.EXCLUDED_OPS))
    assert not missing, f"public ops without a fuzz entry in tinytensor/testing/fuzz.py: {missing}"


def test_every_tensor_method_has_a_fuzz_entry():
    missing = sorted(_tensor_attrs() - set(fuzz.OPS) - set(fuzz.EXCLUDED_TENSOR_ATTRS))
    assert not missing, f"Tensor methods without a fuzz entry or a listed exclusion: {missing}"


def test_fuzz_entries_name_public_ops():
    known = set(tt_ops.__all__) | _tensor_attrs() | SYNTAX
    stale = sorted(set(fuzz.OPS) - known)
    assert not stale, f"fuzz entries for names that are not public ops or Tensor methods: {stale}"
    both = sorted(set(fuzz.OPS) & (set(fuzz.EXCLUDED_OPS) | set(fuzz.EXCLUDED_TENSOR_ATTRS)))
    assert not both, f"fuzzed and excluded at once: {both}"


@pytest.mark.parametrize("op", sorted(fuzz.OPS))
@settings(max_examples=PER_OP, derandomize=True, deadline=None, database=None, phases=PHASES,
          report_multiple_bugs=False, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzz_against_torch(device, op, data):
    prog = fuzz.draw_program(data, device, first=op)
    fuzz.check_program(prog)
