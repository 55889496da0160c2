"""Every public op is checked: the conformance catalogue against ``tinytensor.ops.__all__``.

A public op has a differentiable catalogue entry (forward against NumPy, float64 gradient check, second
order where claimed, on every device: tests/test_ops.py runs the suite), or it is declared in
``NON_DIFFERENTIABLE`` with a reason and has a forward-only entry (forward against NumPy on every
device; its results never require grad). See docs/adding-an-op.md.
"""
import numpy as np
import pytest

import tinytensor as tt
from tinytensor import ops
from tinytensor.testing import Draw, suite
from tinytensor.testing.catalogue import NON_DIFFERENTIABLE, OPS
from tinytensor.testing.checks import as_list, make_inputs

PUBLIC = set(ops.__all__)
HOW_TO = "see docs/adding-an-op.md"


def coverage_problems(public: set, specs: list, declared: dict) -> list[str]:
    """What breaks the rule, one message per problem (empty: every public op is checked)."""
    problems = []
    by_op: dict = {}
    for spec in specs:
        by_op.setdefault(spec.op, []).append(spec)
        if spec.op.startswith("Tensor."):
            if not hasattr(tt.Tensor, spec.op.removeprefix("Tensor.")):
                problems.append(f"entry {spec.name!r} checks {spec.op!r}, which tinytensor.Tensor lacks")
        elif spec.op not in public:
            problems.append(f"entry {spec.name!r} checks {spec.op!r}, which is not a public op (not in "
                            f"tinytensor.ops.__all__); make it public or set op= to the public name")
    for name in sorted(public):
        entries = by_op.get(name, [])
        graded = [s.name for s in entries if s.differentiable]
        if name in declared:
            if not entries:
                problems.append(f"{name!r} is declared non-differentiable but has no forward-only entry")
            if graded:
                problems.append(f"{name!r} is declared non-differentiable, but entries {graded} check a "
                                f"gradient")
        elif not entries:
            problems.append(f"public op {name!r} has no catalogue entry and is not declared in "
                            f"NON_DIFFERENTIABLE ({HOW_TO})")
        elif not graded:
            problems.append(f"public op {name!r} has only forward-only entries: give one a gradient check, "
                            f"or declare it in NON_DIFFERENTIABLE with the reason")
    for name, reason in declared.items():
        if name not in public:
            problems.append(f"NON_DIFFERENTIABLE names {name!r}, which is not a public op")
        if not (isinstance(reason, str) and reason.strip()):
            problems.append(f"NON_DIFFERENTIABLE[{name!r}]: give the reason")
    names = [s.name for s in specs]
    problems += [f"two entries are named {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
    return problems


def test_every_public_op_is_checked():
    problems = coverage_problems(PUBLIC, OPS, NON_DIFFERENTIABLE)
    assert not problems, "\n".join(problems)


def test_the_rule_fails_for_an_op_in_neither_place_and_for_an_entry_of_no_op():
    from dataclasses import replace

    exp = next(s for s in OPS if s.name == "exp")
    argmax = next(s for s in OPS if s.name == "argmax")
    (new_op,) = coverage_problems(PUBLIC | {"frobnicate"}, OPS, NON_DIFFERENTIABLE)
    assert "'frobnicate' has no catalogue entry" in new_op
    (stray,) = coverage_problems(PUBLIC, OPS + [replace(exp, name="exp_copy", op="expo")], NON_DIFFERENTIABLE)
    assert "'expo', which is not a public op" in stray
    (graded,) = coverage_problems(PUBLIC, OPS + [replace(argmax, name="argmax2", differentiable=True)],
                                  NON_DIFFERENTIABLE)
    assert "'argmax' is declared non-differentiable, but entries ['argmax2']" in graded
    undeclared = {k: v for k, v in NON_DIFFERENTIABLE.items() if k != "argmin"}
    (forward_only,) = coverage_problems(PUBLIC, OPS, undeclared)
    assert "'argmin' has only forward-only entries" in forward_only


def _parametrized_specs(test):
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return [s.name for s in mark.args[1]]


def test_the_suite_runs_every_entry_and_every_claimed_check():
    """Nothing in the catalogue is left out of the suite tests/test_ops.py runs on every device."""
    assert _parametrized_specs(suite.test_op_forward) == [s.name for s in OPS]
    assert _parametrized_specs(suite.test_op_gradient) == [s.name for s in OPS if s.differentiable]
    assert _parametrized_specs(suite.test_op_jvp) == [s.name for s in OPS if s.differentiable]
    assert _parametrized_specs(suite.test_op_vmap) == [s.name for s in OPS]
    assert _parametrized_specs(suite.test_op_second_order) == [
        s.name for s in OPS if s.differentiable and s.second_order]


def test_the_op_tests_run_the_suite():
    import test_ops

    for name in ("test_op_forward", "test_op_gradient", "test_op_jvp", "test_op_vmap",
                 "test_op_second_order"):
        assert getattr(test_ops, name) is getattr(suite, name)


@pytest.mark.parametrize("spec", OPS, ids=[s.name for s in OPS])
def test_integer_and_bool_results_never_require_grad(spec, device):
    """Whatever its inputs require, an op's integer or bool outputs carry no graph (and a declared
    non-differentiable op's outputs carry none at all)."""
    for k in range(4):
        sample = spec.sample(Draw(seed=k))
        tensors = make_inputs(sample, device, "float64", requires_grad=True)
        if not any(t.requires_grad for t in tensors):
            continue
        try:
            outs = as_list(spec.fn(*tensors, **sample.params))
        except NotImplementedError:
            if spec.optional:
                pytest.skip(f"{spec.name}: declared unsupported on {device}")
            raise
        for i, o in enumerate(outs):
            if spec.op in NON_DIFFERENTIABLE or not o.dtype.is_floating_point:
                assert not o.requires_grad, (
                    f"{spec.name} output {i} ({o.dtype.name}) requires grad: {sample.describe()}")


# ---- dropout: the mask is random ------------------------------------------------------------
# The catalogue seeds dropout's generator so that its reference can draw the same mask; what a
# fixed seed cannot show is checked here.

def test_dropout_draws_a_fresh_mask_with_the_right_rate(device):
    x = tt.ones(4000, dtype=tt.float64, device=device)
    tt.manual_seed(0)
    a, b = tt.dropout(x, 0.25).numpy(), tt.dropout(x, 0.25).numpy()
    assert set(np.unique(a)) <= {0.0, 1 / 0.75}, "kept entries are scaled by 1/(1-p)"
    assert abs((a == 0).mean() - 0.25) < 0.03 and abs((b == 0).mean() - 0.25) < 0.03
    assert (a != b).any(), "two calls drew the same mask"
    tt.manual_seed(0)
    np.testing.assert_array_equal(tt.dropout(x, 0.25).numpy(), a)  # the seed fixes the mask
    assert tt.dropout(x, 0.25, training=False) is x


# ---- broadcast_shapes on shapes that do not broadcast ---------------------------------------

@pytest.mark.parametrize("shapes", [((2,), (3,)), ((2, 1), (1, 3), (4, 1, 1), (5,)), ((0,), (2,))])
def test_broadcast_shapes_refuses_what_numpy_refuses(shapes):
    with pytest.raises(ValueError) as ours:
        tt.broadcast_shapes(*shapes)
    with pytest.raises(ValueError):
        np.broadcast_shapes(*shapes)
    assert all(str(s) in str(ours.value) for s in shapes), "the message names every shape"
