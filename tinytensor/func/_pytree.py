"""Nested arguments (tuples, lists, dicts of tensors) as a flat list of leaves and back."""
from __future__ import annotations


def flatten(tree) -> tuple[list, object]:
    """The leaves of ``tree`` in order, and the structure to rebuild it with ``unflatten``."""
    if isinstance(tree, (tuple, list)):
        leaves, specs = [], []
        for item in tree:
            sub, spec = flatten(item)
            leaves += sub
            specs.append((len(sub), spec))
        return leaves, (type(tree), specs)
    if isinstance(tree, dict):
        leaves, specs = [], []
        for key, item in tree.items():
            sub, spec = flatten(item)
            leaves += sub
            specs.append((key, len(sub), spec))
        return leaves, (dict, specs)
    return [tree], None


def unflatten(leaves: list, spec):
    """The tree ``flatten`` took apart, with ``leaves`` in its places."""
    if spec is None:
        return leaves[0]
    kind, specs = spec
    if kind is dict:
        out, i = {}, 0
        for key, n, sub in specs:
            out[key] = unflatten(leaves[i:i + n], sub)
            i += n
        return out
    items, i = [], 0
    for n, sub in specs:
        items.append(unflatten(leaves[i:i + n], sub))
        i += n
    return kind(items) if kind in (tuple, list) else kind(*items)  # a named tuple takes fields


def broadcast_prefix(prefix, tree, what: str) -> list:
    """A value per leaf of ``tree`` from ``prefix``: one value for a whole subtree, or a tree of the
    same structure down to some depth (vmap's in_dims, PyTorch's rule)."""
    if not isinstance(prefix, (tuple, list, dict)):
        return [prefix] * len(flatten(tree)[0])
    if isinstance(prefix, dict) != isinstance(tree, dict) or len(prefix) != len(tree) or not isinstance(
            tree, (tuple, list, dict)):
        raise ValueError(f"{what}: {prefix!r} does not match the structure of the inputs "
                         f"({_describe(tree)})")
    if isinstance(prefix, dict):
        return [v for k in tree for v in broadcast_prefix(prefix[k], tree[k], what)]
    return [v for p, t in zip(prefix, tree) for v in broadcast_prefix(p, t, what)]


def _describe(tree) -> str:
    if isinstance(tree, (tuple, list)):
        return f"a {type(tree).__name__} of {len(tree)}"
    if isinstance(tree, dict):
        return f"a dict with keys {list(tree)}"
    return type(tree).__name__
