"""Samplers (PyTorch's ``torch.utils.data`` classes): iterables of dataset indices, or of lists of them.

Random samplers draw from ``generator`` (a ``tt.Generator``) or, without one, from the global
generator that ``tt.manual_seed`` seeds, once per pass: each ``iter()`` gives a new order, and the
same seed gives the same sequence of orders. The numbers are NumPy's PCG64 stream, not PyTorch's:
``RandomSampler(d, generator=tt.Generator().manual_seed(0))`` visits ``d`` in another order than
PyTorch's sampler with ``torch.Generator().manual_seed(0)``.
"""
from __future__ import annotations

import itertools
from typing import Generic, Iterable, Iterator, Sequence, Sized, TypeVar

import numpy as np

from tinytensor import tensor
from tinytensor.random import Generator, host_generator

T_co = TypeVar("T_co", covariant=True)


class Sampler(Generic[T_co]):
    """Base class: subclasses write ``__iter__`` (and ``__len__`` where the length is known)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass  # PyTorch's signature; the argument is unused

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A random order of the indices (each once per permutation; ``num_samples`` beyond the length
    chains permutations), or ``num_samples`` indices drawn uniformly with ``replacement``."""

    def __init__(self, data_source: Sized, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        host_generator(generator)  # a generator of the wrong type fails here, not at the first batch
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        """How many indices one pass yields: ``num_samples`` if given, else the length of the data source."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, rng = len(self.data_source), host_generator(self.generator)
        if self.replacement:
            yield from rng.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from rng.permutation(n).tolist()
        yield from rng.permutation(n)[: self.num_samples % n].tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator
        host_generator(generator)  # a generator of the wrong type fails here

    def __iter__(self) -> Iterator[int]:
        for i in host_generator(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices into ``weights``, index i with probability weights[i] / Σ weights
    (without ``replacement``: each at most once, zero weights only after all others). Weights that
    PyTorch refuses when iterated (negative, not finite, all zero) are refused here when built."""

    def __init__(self, weights: Sequence[float], num_samples: int, replacement: bool = True,
                 generator: Generator | None = None) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        w = np.asarray(weights.numpy() if hasattr(weights, "numpy") else weights, dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape {tuple(w.shape)}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise RuntimeError("WeightedRandomSampler: weights must be finite, non-negative and not all "
                               f"zero, got {w.tolist()[:8]}{' ...' if w.size > 8 else ''}")
        if not replacement and num_samples > w.size:
            raise RuntimeError(f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                               f"replacement from {w.size} weights")
        self.weights = tensor(w, device="cpu")  # float64, as PyTorch's
        self._p = w / w.sum()
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator
        host_generator(generator)  # a generator of the wrong type fails here

    def __iter__(self) -> Iterator[int]:
        rng = host_generator(self.generator)
        if self.replacement:
            yield from rng.choice(len(self._p), size=self.num_samples, p=self._p).tolist()
            return
        # without replacement: the exponential race (the first num_samples of E_i / w_i, E_i ~ Exp(1)),
        # which draws as successive weighted picks do; zero weights come last, in a random order, as in
        # PyTorch once the non-zero ones are used up
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=self._p.size) / self._p
        order = np.lexsort((rng.random(self._p.size), keys))
        yield from order[: self.num_samples].tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Lists of ``batch_size`` indices from ``sampler``; the last is shorter, or dropped with
    ``drop_last``."""

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.sampler)
        while batch := list(itertools.islice(it, self.batch_size)):
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
