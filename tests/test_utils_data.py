"""tinytensor.utils.data against torch.utils.data: datasets, random_split, samplers, DataLoader and
default_collate give the same lengths, batch structure, dtypes, shapes and errors wherever PyTorch's
result is deterministic; random orders are checked for being permutations, deterministic per seed and
new each pass (their stream is NumPy's PCG64, not torch's)."""
import collections
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import tinytensor as tt
import tinytensor.utils.data as ttd

Point = collections.namedtuple("Point", "x y")


# ---- helpers ---------------------------------------------------------------------------------------

def assert_same(ours, theirs, path="batch"):
    """ours (tinytensor objects) has theirs' (torch objects) structure, types, dtypes, shapes, values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, tt.Tensor), f"{path}: {type(ours).__name__}, torch has a Tensor"
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch."), f"{path}: dtype"
        assert tuple(ours.shape) == tuple(theirs.shape), f"{path}: shape"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=path)
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs), f"{path}: dict"
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{path}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), f"{path}: {type(ours)} {type(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{path}[{i}]")
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{path}: {ours!r} != {theirs!r}"


def to_torch(obj):
    """The same sample with torch tensors in place of tinytensor tensors."""
    if isinstance(obj, tt.Tensor):
        return torch.from_numpy(obj.numpy().copy())
    if isinstance(obj, Point):
        return Point(*map(to_torch, obj))
    if isinstance(obj, dict):
        return {k: to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(map(to_torch, obj))
    return obj


def data(n=10, device="cpu"):
    """x (n, 3) float32, y (n,) int64: tinytensor and torch copies of the same numbers."""
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64) * 10
    return (tt.tensor(x, device=device), tt.tensor(y, device=device)), (torch.tensor(x), torch.tensor(y))


def raises_like(exc, fn_ours, fn_torch, match=None):
    """Both raise ``exc`` (the type torch raises), ours with a message matching ``match``."""
    with pytest.raises(exc):
        fn_torch()
    with pytest.raises(exc, match=match):
        fn_ours()


class Squares(ttd.Dataset):
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i

    def __len__(self):
        return self.n


def stream_class(base):
    class Stream(base):
        def __init__(self, n, sized=True):
            self.n, self.sized = n, sized

        def __iter__(self):
            return iter(range(self.n))

        def __len__(self):
            if not self.sized:
                raise TypeError("no length")
            return self.n
    return Stream


OurStream, TorchStream = stream_class(ttd.IterableDataset), stream_class(tud.IterableDataset)


# ---- names ---------------------------------------------------------------------------------------

def test_utils_data_reached_as_torch_utils_data():
    code = ("import sys, tinytensor as tt; assert 'tinytensor.utils' not in sys.modules; "
            "print(tt.utils.data.DataLoader)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "DataLoader" in out.stdout, out.stderr


def test_torch_names_import():
    import tinytensor
    from tinytensor.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split  # noqa: F401
    assert tinytensor.utils.data.DataLoader is ttd.DataLoader  # tinytensor.utils loads on first use
    # torch's names but the DataPipe machinery (deprecated in PyTorch) and private ones
    left_out = {"DFIterDataPipe", "DataChunk", "IterDataPipe", "MapDataPipe", "functional_datapipe",
                "argument_validation", "guaranteed_datapipes_determinism", "non_deterministic",
                "runtime_validation", "runtime_validation_disabled", "_DatasetKind"}
    assert sorted(set(tud.__all__) - left_out) == sorted(n for n in ttd.__all__ if hasattr(tud, n)
                                                         and n in tud.__all__)
    assert all(hasattr(ttd, n) for n in set(tud.__all__) - left_out)
    assert ttd.get_worker_info() is None is tud.get_worker_info()


# ---- datasets ---------------------------------------------------------------------------------------

def test_tensor_dataset_matches_torch():
    (x, y), (tx, ty) = data()
    ours, theirs = ttd.TensorDataset(x, y), tud.TensorDataset(tx, ty)
    assert len(ours) == len(theirs) == 10
    for i in (0, 3, -1, np.int64(4)):
        assert_same(ours[i], theirs[i])
    assert_same(ours[[1, 5, 2]], theirs[[1, 5, 2]])
    assert_same(ours[2:5], theirs[2:5])
    assert ours.tensors[0] is x


def test_tensor_dataset_size_mismatch_as_torch():
    (x, y), (tx, ty) = data()
    raises_like(AssertionError, lambda: ttd.TensorDataset(x, y[:4]), lambda: tud.TensorDataset(tx, ty[:4]),
                match=r"Size mismatch between tensors.*\[10, 4\]")


def test_dataset_base_and_concat():
    raises_like(NotImplementedError, lambda: ttd.Dataset()[0], lambda: tud.Dataset()[0],
                match="should implement __getitem__")

    class Typed(ttd.Dataset[tuple]):  # generic, as torch's: Dataset[T] in class statements and hints
        pass
    assert isinstance(Typed(), ttd.Dataset) and ttd.Sampler[int] is not None
    ours = Squares(3) + Squares(4) + Squares(2)
    torch_parts = [tud.Subset(list(range(n)), list(range(n))) for n in (3, 4, 2)]
    theirs = torch_parts[0] + torch_parts[1] + torch_parts[2]
    assert isinstance(ours, ttd.ConcatDataset) and len(ours) == len(theirs) == 9
    assert ours.cumulative_sizes == theirs.cumulative_sizes == [7, 9]  # (a + b) + c
    assert [ours[i] for i in range(-9, 9)] == [theirs[i] ** 2 for i in range(-9, 9)]
    raises_like(ValueError, lambda: ours[-10], lambda: theirs[-10], match="should not exceed")
    raises_like(IndexError, lambda: ours[9], lambda: theirs[9])
    raises_like(AssertionError, lambda: ttd.ConcatDataset([]), lambda: tud.ConcatDataset([]),
                match="empty iterable")
    raises_like(AssertionError, lambda: ttd.ConcatDataset([OurStream(3)]),
                lambda: tud.ConcatDataset([TorchStream(3)]), match="IterableDataset")


def test_iterable_dataset_chains():
    ours, theirs = OurStream(3) + OurStream(2), TorchStream(3) + TorchStream(2)
    assert type(ours).__name__ == type(theirs).__name__ == "ChainDataset"
    assert list(ours) == list(theirs) == [0, 1, 2, 0, 1]
    assert len(ours) == len(theirs) == 5
    raises_like(AssertionError, lambda: list(ttd.ChainDataset([Squares(2)])),
                lambda: list(tud.ChainDataset([tud.TensorDataset(torch.zeros(2))])), match="only supports")


def test_subset_and_stack_dataset():
    (x, y), (tx, ty) = data()
    ours = ttd.Subset(ttd.TensorDataset(x, y), [7, 2, 9])
    theirs = tud.Subset(tud.TensorDataset(tx, ty), [7, 2, 9])
    assert len(ours) == len(theirs) == 3
    assert_same(ours[1], theirs[1])
    assert_same(ours[[0, 2]], theirs[[0, 2]])
    assert_same(ours.__getitems__([2, 0]), theirs.__getitems__([2, 0]))
    ours, theirs = ttd.StackDataset(a=Squares(3), b=Squares(3)), tud.StackDataset(a=Squares(3), b=Squares(3))
    assert ours[2] == theirs[2] == {"a": 4, "b": 4} and len(ours) == len(theirs) == 3
    assert ttd.StackDataset(Squares(2), Squares(2))[1] == (1, 1)
    raises_like(ValueError, lambda: ttd.StackDataset(Squares(2), Squares(3)),
                lambda: tud.StackDataset(Squares(2), Squares(3)), match="Size mismatch")
    raises_like(ValueError, lambda: ttd.StackDataset(), lambda: tud.StackDataset(), match="At least one")


# ---- random_split ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n, lengths", [
    (10, [3, 7]), (10, [0, 10]), (10, [0.3, 0.7]), (10, [0.25, 0.25, 0.5]), (11, [0.5, 0.5]),
    (7, [0.2, 0.2, 0.2, 0.2, 0.2]), (30, [0.3, 0.3, 0.4]), (5, [1.0]), (3, [0.1, 0.1, 0.8]),
    (1000, [0.333, 0.333, 0.334]),
], ids=str)
def test_random_split_lengths_as_torch(n, lengths):
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = ttd.random_split(Squares(n), lengths, generator=tt.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as torch_warned:
        warnings.simplefilter("always")
        theirs = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert len(ours_warned) == len(torch_warned)  # a warning per empty split, as torch
    picked = [i for s in ours for i in s.indices]
    assert sorted(picked) == list(range(n))  # disjoint, and together the whole dataset
    assert all(isinstance(i, int) for i in picked)
    assert [ours[0][k] for k in range(len(ours[0]))] == [i * i for i in ours[0].indices]


@pytest.mark.parametrize("lengths, exc, match", [
    ([3, 6], ValueError, "Sum of input lengths"),
    ([0.5, 0.6], ValueError, "Sum of input lengths"),
    ([1.5, -0.5], ValueError, "Fraction at index 0 is not between 0 and 1"),
    ([0.2, 0.2], ValueError, "Sum of input lengths"),
], ids=str)
def test_random_split_errors_as_torch(lengths, exc, match):
    raises_like(exc, lambda: ttd.random_split(Squares(10), lengths),
                lambda: tud.random_split(range(10), lengths), match=match)


def test_random_split_is_deterministic_per_seed():
    def split(seed):
        g = tt.Generator().manual_seed(seed)
        return [s.indices for s in ttd.random_split(Squares(20), [5, 15], generator=g)]
    assert split(1) == split(1)
    assert split(1) != split(2)
    tt.manual_seed(3)
    first = [s.indices for s in ttd.random_split(Squares(20), [0.5, 0.5])]
    tt.manual_seed(3)
    assert [s.indices for s in ttd.random_split(Squares(20), [0.5, 0.5])] == first
    with pytest.raises(TypeError, match="tinytensor.Generator"):
        ttd.random_split(Squares(4), [2, 2], generator=torch.Generator())
    for make in (lambda g: ttd.DataLoader(Squares(4), shuffle=True, generator=g),
                 lambda g: ttd.SubsetRandomSampler([0, 1], generator=g),
                 lambda g: ttd.WeightedRandomSampler([1.0, 2.0], 2, generator=g)):
        with pytest.raises(TypeError, match="generator must be a tinytensor.Generator, got Generator"):
            make(torch.Generator())  # when built, not at the first batch


# ---- samplers -----------------------------------------------------------------------------------

def test_sequential_and_batch_samplers_as_torch():
    assert list(ttd.SequentialSampler(range(5))) == list(tud.SequentialSampler(range(5)))
    for n in (0, 1, 7, 8, 9):
        for bs in (1, 3, 8, 20):
            for drop in (False, True):
                ours = ttd.BatchSampler(ttd.SequentialSampler(range(n)), bs, drop)
                theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
                assert list(ours) == list(theirs) and len(ours) == len(theirs), (n, bs, drop)
    assert list(ttd.BatchSampler(iter(range(5)), 2, False)) == [[0, 1], [2, 3], [4]]  # any iterable


@pytest.mark.parametrize("kwargs", [dict(batch_size=0, drop_last=False),
                                    dict(batch_size=True, drop_last=False),
                                    dict(batch_size=2.0, drop_last=False), dict(batch_size=2, drop_last=1)],
                         ids=str)
def test_batch_sampler_errors_as_torch(kwargs):
    raises_like(ValueError, lambda: ttd.BatchSampler(range(3), **kwargs),
                lambda: tud.BatchSampler(range(3), **kwargs), match="should be a")


@pytest.mark.parametrize("replacement, num_samples", [(False, None), (False, 3), (False, 23), (True, None),
                                                      (True, 40)], ids=str)
def test_random_sampler(replacement, num_samples):
    n = 10
    ours = ttd.RandomSampler(range(n), replacement, num_samples, generator=tt.Generator().manual_seed(0))
    theirs = tud.RandomSampler(range(n), replacement, num_samples, generator=torch.Generator().manual_seed(0))
    assert len(ours) == len(theirs) == ours.num_samples == theirs.num_samples
    first, second = list(ours), list(ours)
    assert len(first) == len(second) == len(ours) and first != second  # a new draw per pass
    assert all(isinstance(i, int) and 0 <= i < n for i in first)
    if not replacement:  # permutations, chained, then a part of one
        for k in range(0, len(first), n):
            block = first[k:k + n]
            assert len(set(block)) == len(block)
    again = ttd.RandomSampler(range(n), replacement, num_samples, generator=tt.Generator().manual_seed(0))
    assert list(again) == first and list(again) == second  # deterministic per seed, pass after pass


def test_random_sampler_global_generator_and_errors():
    tt.manual_seed(5)
    first = list(ttd.RandomSampler(range(30)))
    tt.manual_seed(5)
    assert list(ttd.RandomSampler(range(30))) == first and sorted(first) == list(range(30))
    raises_like(TypeError, lambda: ttd.RandomSampler(range(3), replacement=1),
                lambda: tud.RandomSampler(range(3), replacement=1), match="replacement should be a boolean")
    for bad in (0, -1, 2.5):
        raises_like(ValueError, lambda bad=bad: ttd.RandomSampler(range(3), num_samples=bad),
                    lambda bad=bad: tud.RandomSampler(range(3), num_samples=bad),
                    match="num_samples should be a positive")
    raises_like(ValueError, lambda: ttd.RandomSampler([]), lambda: tud.RandomSampler([]), match="num_samples")


def test_subset_random_and_weighted_samplers():
    ours = ttd.SubsetRandomSampler([3, 8, 5, 1], generator=tt.Generator().manual_seed(0))
    assert len(ours) == len(tud.SubsetRandomSampler([3, 8, 5, 1])) == 4
    orders = {tuple(ours) for _ in range(20)}
    assert len(orders) > 1 and all(sorted(o) == [1, 3, 5, 8] for o in orders)

    w = [0.0, 1.0, 3.0, 0.0, 2.0]
    g = tt.Generator().manual_seed(0)
    ours = ttd.WeightedRandomSampler(w, 500, generator=g)
    theirs = tud.WeightedRandomSampler(w, 500)
    assert len(ours) == len(theirs) == 500
    drawn = list(ours)
    assert set(drawn) == {1, 2, 4}  # zero weights never drawn
    counts = np.bincount(drawn, minlength=5) / 500
    np.testing.assert_allclose(counts[[1, 2, 4]], [1 / 6, 1 / 2, 1 / 3], atol=0.08)
    assert list(ttd.WeightedRandomSampler(w, 500, generator=tt.Generator().manual_seed(0))) == drawn
    for _ in range(5):
        once = list(ttd.WeightedRandomSampler(w, 4, replacement=False))
        assert sorted(once[:3]) == [1, 2, 4] and once[3] in (0, 3)  # zero weights last, as torch
        theirs_once = list(tud.WeightedRandomSampler(w, 4, replacement=False))
        assert sorted(theirs_once[:3]) == [1, 2, 4] and theirs_once[3] in (0, 3)
    first_draws = [next(iter(ttd.WeightedRandomSampler(w, 1, replacement=False))) for _ in range(600)]
    np.testing.assert_allclose(np.bincount(first_draws, minlength=5)[[1, 2, 4]] / 600, [1 / 6, 1 / 2, 1 / 3],
                               atol=0.08)
    assert ours.weights.dtype is tt.float64 and str(theirs.weights.dtype) == "torch.float64"
    for kwargs in (dict(num_samples=0), dict(num_samples=True), dict(num_samples=2, replacement=0)):
        raises_like(ValueError, lambda kwargs=kwargs: ttd.WeightedRandomSampler(w, **kwargs),
                    lambda kwargs=kwargs: tud.WeightedRandomSampler(w, **kwargs), match="should be a")
    raises_like(ValueError, lambda: ttd.WeightedRandomSampler([[1.0, 2.0]], 2),
                lambda: tud.WeightedRandomSampler([[1.0, 2.0]], 2), match="1d sequence")
    # torch raises these when iterated, tinytensor when built
    raises_like(RuntimeError, lambda: ttd.WeightedRandomSampler(w, 6, replacement=False),
                lambda: list(tud.WeightedRandomSampler(w, 6, replacement=False)), match="without replacement")
    for bad in ([1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]):
        raises_like(RuntimeError, lambda bad=bad: ttd.WeightedRandomSampler(bad, 1),
                    lambda bad=bad: list(tud.WeightedRandomSampler(bad, 1)), match="non-negative")


# ---- DataLoader ----------------------------------------------------------------------------------

# (batch_size, drop_last); None with drop_last is an error, tested with the others
BATCHINGS = [(1, False), (1, True), (3, False), (3, True), (8, False), (8, True), (None, False)]


@pytest.mark.parametrize("n", [1, 7, 8, 10])
@pytest.mark.parametrize("batch_size, drop_last", BATCHINGS, ids=str)
def test_loader_batches_as_torch(n, batch_size, drop_last):
    (x, y), (tx, ty) = data(n)
    ours = ttd.DataLoader(ttd.TensorDataset(x, y), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(tud.TensorDataset(tx, ty), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    ours_batches, torch_batches = list(ours), list(theirs)
    assert len(ours_batches) == len(ours)
    assert_same(ours_batches, torch_batches)
    assert_same(list(ours), torch_batches)  # a second pass is the same (no shuffle)


def test_loader_shuffle_is_a_new_permutation_each_epoch_and_deterministic():
    (x, y), _ = data(20)
    ds = ttd.TensorDataset(x, y)

    def epochs(seed, count=3):
        loader = ttd.DataLoader(ds, batch_size=6, shuffle=True, generator=tt.Generator().manual_seed(seed))
        return [[int(v) // 10 for b in loader for v in b[1].tolist()] for _ in range(count)]

    first = epochs(0)
    assert all(sorted(e) == list(range(20)) for e in first)
    assert first[0] != first[1] != first[2]
    assert epochs(0) == first
    assert epochs(1) != first
    loader = ttd.DataLoader(ds, batch_size=6, shuffle=True, generator=tt.Generator().manual_seed(0))
    sizes = [len(b[1]) for b in loader]
    assert sizes == [6, 6, 6, 2] and len(loader) == 4
    for xb, yb in loader:  # rows stay paired with their labels
        np.testing.assert_array_equal(xb.numpy()[:, 0] / 3 * 10, yb.numpy())


def test_loader_shuffle_uses_global_seed_without_generator():
    def epoch():
        return [v for _, yb in ttd.DataLoader(ttd.TensorDataset(*data(12)[0]), batch_size=5, shuffle=True)
                for v in yb.tolist()]
    tt.manual_seed(7)
    first = epoch()
    tt.manual_seed(7)
    assert epoch() == first and sorted(first) == [10 * i for i in range(12)]


def test_loader_gathered_batches_equal_stacked_samples(device):
    """A TensorDataset's batches are gathered whole (one index per tensor): they equal the general path's
    stacked samples, stay on the dataset's device, and carry gradients back to the dataset's tensors."""
    (x, y), _ = data(9, device)
    x.requires_grad_(True)
    ds = ttd.TensorDataset(x, y)
    sampler = ttd.RandomSampler(ds, generator=tt.Generator().manual_seed(0))
    fast = list(ttd.DataLoader(ds, batch_size=4, sampler=sampler))
    sampler.generator.manual_seed(0)
    general = list(ttd.DataLoader(ds, batch_size=4, sampler=sampler,
                                  collate_fn=lambda b: ttd.default_collate(b)))
    for (xf, yf), (xg, yg) in zip(fast, general):
        for a, b in ((xf, xg), (yf, yg)):
            assert a.device == b.device == x.device and a.dtype is b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    sum((xb * xb).sum() for xb, _ in fast).backward()
    grad_fast = x.grad.numpy().copy()
    x.grad = None
    sum((xb * xb).sum() for xb, _ in general).backward()
    np.testing.assert_array_equal(grad_fast, x.grad.numpy())
    np.testing.assert_array_equal(grad_fast, 2 * x.detach().numpy())


def test_loader_batch_size_none_and_samplers_as_torch():
    (x, y), (tx, ty) = data(5)
    assert_same(list(ttd.DataLoader(ttd.TensorDataset(x, y), batch_size=None)),
                list(tud.DataLoader(tud.TensorDataset(tx, ty), batch_size=None)))
    assert_same(list(ttd.DataLoader(Squares(5), batch_size=None)),
                list(tud.DataLoader(Squares(5), batch_size=None)))
    assert_same(list(ttd.DataLoader(Squares(7), batch_size=3, sampler=[6, 0, 4, 2])),
                list(tud.DataLoader(Squares(7), batch_size=3, sampler=[6, 0, 4, 2])))
    ours = ttd.DataLoader(Squares(7), batch_sampler=[[1, 2], [6], [0, 3, 5]])
    theirs = tud.DataLoader(Squares(7), batch_sampler=[[1, 2], [6], [0, 3, 5]])
    assert len(ours) == len(theirs) == 3 and ours.batch_size is theirs.batch_size is None
    assert_same(list(ours), list(theirs))


def test_loader_custom_collate_and_getitems():
    class Batched(Squares):
        def __getitems__(self, indices):
            self.calls.append(list(indices))
            return [i * i for i in indices]

    ds = Batched(5)
    ds.calls = []
    out = list(ttd.DataLoader(ds, batch_size=2, collate_fn=lambda batch: batch))
    assert out == [[0, 1], [4, 9], [16]] and ds.calls == [[0, 1], [2, 3], [4]]
    assert list(ttd.DataLoader(ttd.Subset(ds, [4, 0]), batch_size=2, collate_fn=list)) == [[16, 0]]


@pytest.mark.parametrize("batch_size, drop_last", BATCHINGS, ids=str)
def test_loader_iterable_dataset_as_torch(batch_size, drop_last):
    ours = ttd.DataLoader(OurStream(7), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(TorchStream(7), batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert_same(list(ours), list(theirs))
    assert_same(list(ours), list(theirs))  # a new pass restarts the stream
    unsized = ttd.DataLoader(OurStream(3, sized=False), batch_size=batch_size, drop_last=drop_last)
    with pytest.raises(TypeError):
        len(unsized)
    assert len(list(unsized)) == len(list(tud.DataLoader(TorchStream(3, sized=False), batch_size=batch_size,
                                                          drop_last=drop_last)))


LOADER_ERRORS = [
    (dict(num_workers=-1), ValueError, "non-negative"),
    (dict(timeout=-1), ValueError, "non-negative"),
    (dict(prefetch_factor=2), ValueError, "prefetch_factor"),
    (dict(persistent_workers=True), ValueError, "persistent_workers"),
    (dict(multiprocessing_context="spawn"), ValueError, "multiprocessing_context"),
    (dict(shuffle=True, sampler=[0, 1]), ValueError, "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError, "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], shuffle=True), ValueError, "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], sampler=[0]), ValueError, "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), ValueError, "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), ValueError, "disables auto-batching"),
    (dict(batch_size=0), ValueError, "batch_size should be a positive"),
    (dict(batch_size=2, drop_last="yes"), ValueError, "drop_last should be a boolean"),
]


@pytest.mark.parametrize("kwargs, exc, match", LOADER_ERRORS, ids=[str(k) for k, _, _ in LOADER_ERRORS])
def test_loader_errors_as_torch(kwargs, exc, match):
    raises_like(exc, lambda: ttd.DataLoader(Squares(3), **kwargs),
                lambda: tud.DataLoader(Squares(3), **kwargs), match=match)


def test_loader_errors_of_iterable_datasets_and_workers():
    for kwargs in (dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])):
        raises_like(ValueError, lambda kwargs=kwargs: ttd.DataLoader(OurStream(3), **kwargs),
                    lambda kwargs=kwargs: tud.DataLoader(TorchStream(3), **kwargs),
                    match="DataLoader with IterableDataset")
    with pytest.raises(NotImplementedError, match="num_workers=0"):
        ttd.DataLoader(Squares(3), num_workers=2)
    with pytest.raises(ValueError, match="timeout"):
        ttd.DataLoader(Squares(3), timeout=5)  # torch fails when iterating: timeout needs workers
    loader, theirs = ttd.DataLoader(Squares(3)), tud.DataLoader(Squares(3))
    for name in ("batch_size", "sampler", "dataset", "drop_last"):
        raises_like(ValueError, lambda name=name: setattr(loader, name, None),
                    lambda name=name: setattr(theirs, name, None),
                    match="should not be set after DataLoader is initialized")
    loader.collate_fn = list  # other attributes stay writable, as in torch
    ours = ttd.DataLoader(Squares(3), shuffle=False, pin_memory=True)  # pin_memory: accepted, no effect
    assert [b.tolist() for b in ours] == [[0], [1], [4]]


# ---- default_collate and default_convert ---------------------------------------------------------------

def samples_of(kind):
    rng = np.random.default_rng(0)
    if kind == "tensors":
        return [tt.tensor(rng.standard_normal((2, 3)).astype(np.float32)) for _ in range(4)]
    if kind == "float64 tensors":
        return [tt.tensor(rng.standard_normal(3)) for _ in range(4)]
    if kind == "bool tensors":
        return [tt.tensor(rng.standard_normal(3) > 0) for _ in range(3)]
    if kind == "0-d tensors":
        return [tt.tensor(3), tt.tensor(4)]
    if kind == "floats":
        return [1.5, 2.0, -3.25]
    if kind == "ints":
        return [1, 2, -3]
    if kind == "bools":
        return [True, False, True]
    if kind == "ints and floats":
        return [1, 2.5]
    if kind == "strings":
        return ["a", "bc", "d"]
    if kind == "bytes":
        return [b"a", b"bc"]
    if kind.startswith("numpy array "):
        dtype = kind.split()[-1]
        return [rng.standard_normal((2, 2)).astype(dtype) for _ in range(3)]
    if kind == "numpy scalars":
        return [np.float32(1.5), np.float32(2)]
    if kind == "numpy float64 scalars":
        return [np.float64(1.5), np.float64(2)]
    if kind == "numpy int32 scalars":
        return [np.int32(1), np.int32(2)]
    if kind == "tuples":
        return [(tt.tensor([1.0, 2.0]), 3, "x"), (tt.tensor([3.0, 4.0]), 5, "y")]
    if kind == "lists":
        return [[1, 2.0], [3, 4.0]]
    if kind == "dicts":
        return [{"image": tt.tensor(rng.standard_normal((2, 2))), "label": i, "name": f"s{i}", "w": 0.5 * i}
                for i in range(3)]
    if kind == "namedtuples":
        return [Point(tt.tensor([i, i + 1]), float(i)) for i in range(3)]
    if kind == "nested":
        return [{"a": (i, [tt.tensor(i * 1.0), {"b": True}]), "c": Point(i, i * 2)} for i in range(2)]
    raise AssertionError(kind)


COLLATE_KINDS = ["tensors", "float64 tensors", "bool tensors", "0-d tensors", "floats", "ints", "bools",
                 "ints and floats", "strings", "bytes", "numpy array float32", "numpy array float64",
                 "numpy array int32", "numpy array int64", "numpy array bool", "numpy scalars",
                 "numpy float64 scalars", "numpy int32 scalars", "tuples", "lists", "dicts", "namedtuples",
                 "nested"]


@pytest.mark.parametrize("kind", COLLATE_KINDS)
def test_default_collate_as_torch(kind):
    batch = samples_of(kind)
    ours = ttd.default_collate(batch)
    theirs = tud.default_collate(to_torch(batch))
    assert_same(ours, theirs)


@pytest.mark.parametrize("kind", COLLATE_KINDS)
def test_default_convert_as_torch(kind):
    sample = samples_of(kind)[0]
    assert_same(ttd.default_convert(sample), tud.default_convert(to_torch(sample)))


def test_default_collate_python_floats_are_float64():
    assert ttd.default_collate([0.5, 1.5]).dtype is tt.float64  # PyTorch's default_collate, not tt.tensor's
    assert ttd.default_collate([1, 2]).dtype is tt.int64
    assert ttd.default_collate([True, False]).dtype is tt.bool


COLLATE_ERRORS = [
    ("tensor sizes", lambda tensor: [tensor([1.0, 2.0, 3.0]), tensor([1.0, 2.0])], RuntimeError,
     r"equal size, but got \[3\] at entry 0 and \[2\] at entry 1"),
    ("sequence sizes", lambda tensor: [(1, 2), (1, 2, 3)], RuntimeError, "of equal size"),
    ("unknown type", lambda tensor: [object(), object()], TypeError, "batch must contain tensors"),
    ("numpy strings", lambda tensor: [np.array(["a"]), np.array(["b"])], TypeError, "batch must contain"),
    ("missing key", lambda tensor: [{"a": 1, "b": 2}, {"a": 3}], KeyError, "sample 1 lacks keys"),
]


@pytest.mark.parametrize("what, make, exc, match", COLLATE_ERRORS, ids=[e[0] for e in COLLATE_ERRORS])
def test_default_collate_errors_as_torch(what, make, exc, match):
    raises_like(exc, lambda: ttd.default_collate(make(tt.tensor)),
                lambda: tud.default_collate(make(torch.tensor)), match=match)


def test_default_collate_keeps_the_device(device):
    batch = [tt.tensor([1.0, 2.0], device=device), tt.tensor([3.0, 4.0], device=device)]
    out = ttd.default_collate([(t, i) for i, t in enumerate(batch)])
    assert out[0].device == batch[0].device and out[0].shape == (2, 2)
    np.testing.assert_array_equal(out[0].numpy(), [[1, 2], [3, 4]])
    if device != "cpu":
        with pytest.raises(RuntimeError, match="different devices"):
            ttd.default_collate([batch[0], tt.tensor([1.0, 2.0])])


def test_loader_on_every_device(device):
    (x, y), (tx, ty) = data(7, device)
    for collate_fn in (None, lambda b: ttd.default_collate(b)):
        ours = list(ttd.DataLoader(ttd.TensorDataset(x, y), batch_size=3, collate_fn=collate_fn))
        theirs = list(tud.DataLoader(tud.TensorDataset(tx, ty), batch_size=3))
        assert all(t.device == x.device for b in ours for t in b)
        assert_same(ours, theirs)
    assert math.ceil(7 / 3) == len(ours)
