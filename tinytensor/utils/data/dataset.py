"""Datasets (PyTorch's ``torch.utils.data`` classes): a map from an index to a sample, or a stream.

A map-style dataset has ``__getitem__`` and ``__len__``; an ``IterableDataset`` has ``__iter__``.
The wrappers here (``TensorDataset``, ``Subset``, ``ConcatDataset`` ...) never copy or move data: a
sample of a ``TensorDataset`` is a view of its tensors, on their device.
"""
from __future__ import annotations

import bisect
import itertools
import math
import operator
import warnings
from typing import Generic, Iterable, Iterator, Sequence, TypeVar

from tinytensor import Tensor, tensor
from tinytensor.random import Generator, host_generator

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map from keys (usually 0..len-1) to samples; subclasses write ``__getitem__`` (and ``__len__``,
    which samplers and DataLoader use). ``__getitems__(indices)``, if written, fetches a whole batch."""

    def __getitem__(self, index) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: "Dataset[T_co]") -> "ConcatDataset[T_co]":
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A stream of samples; subclasses write ``__iter__``. ``a + b`` chains two streams."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Dataset[T_co]) -> "ChainDataset":
        return ChainDataset([self, other])


class TensorDataset(Dataset[tuple]):
    """Sample i is ``(t[i] for t in tensors)``: tensors indexed along their first dimension."""

    def __init__(self, *tensors: Tensor) -> None:
        sizes = [t.size(0) for t in tensors]
        if any(n != sizes[0] for n in sizes):
            # AssertionError, as PyTorch raises (code catching it keeps working)
            raise AssertionError(f"Size mismatch between tensors: first dimensions {sizes}; "
                                 f"every tensor needs one entry per sample")
        self.tensors = tensors

    def __getitem__(self, index):
        if isinstance(index, list):  # several samples at once (Subset passes a list)
            return tuple(t[tensor(index, device=t.device)] for t in self.tensors)
        if not isinstance(index, (int, slice, Tensor)) and hasattr(index, "__index__"):
            index = operator.index(index)  # a NumPy integer from a custom sampler
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].size(0)


class StackDataset(Dataset):
    """Sample i is ``(d[i] for d in datasets)``, or ``{key: d[i]}`` for keyword datasets."""

    def __init__(self, *args: Dataset, **kwargs: Dataset) -> None:
        if args and kwargs:
            raise ValueError("Supported either ``tuple``- (via ``args``) or``dict``- (via ``kwargs``) like "
                             "input/output, but both types are given.")
        if not args and not kwargs:
            raise ValueError("At least one dataset should be passed")
        self.datasets = args or kwargs
        parts = args or tuple(kwargs.values())
        self._length = len(parts[0])
        if any(len(d) != self._length for d in parts):
            raise ValueError("Size mismatch between datasets")

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset[T_co]):
    """The samples of several map-style datasets one after the other."""

    @staticmethod
    def cumsum(sequence) -> list[int]:
        """The running totals of the datasets' lengths ([3, 2, 4] → [3, 5, 9]), PyTorch's helper."""
        return list(itertools.accumulate(len(d) for d in sequence))

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise AssertionError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)  # the first dataset ending after idx
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """The samples of several iterable datasets one stream after the other."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise AssertionError("ChainDataset only supports IterableDataset")
            total += len(d)
        return total


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order: ``Subset(d, ix)[i] = d[ix[i]]``."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: Generator | None = None) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping Subsets of the given lengths, or fractions
    of ``len(dataset)`` (summing to 1: each is floor(fraction · len), and the remainder goes one
    by one to the splits in turn, first split first, as PyTorch does).

    The permutation comes from ``generator`` (a ``tt.Generator``) or the global generator
    (``tt.manual_seed``): deterministic per seed, but NumPy's PCG64 stream, not PyTorch's, so the
    same seed picks other samples than ``torch.utils.data.random_split`` does."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        lengths = [math.floor(len(dataset) * frac) for frac in lengths]
        for i in range(len(dataset) - sum(lengths)):  # the remainder, round-robin
            lengths[i % len(lengths)] += 1
        for i, n in enumerate(lengths):
            if n == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
    if sum(lengths) != len(dataset):
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    indices = host_generator(generator).permutation(sum(lengths)).tolist()
    return [Subset(dataset, indices[end - n:end]) for end, n in zip(itertools.accumulate(lengths), lengths)]
