"""``DataLoader`` (PyTorch's): batches from a dataset, in the main process.

    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=tt.Generator().manual_seed(0))
    for xb, yb in loader:        # (32, ...) tensors on x's and y's device
        ...

Each ``iter(loader)`` is a new pass (a new shuffle, drawn from ``generator`` or the global
generator). Loading runs in the calling process: ``num_workers`` must be 0 (worker processes are
not implemented), and ``pin_memory`` is accepted and does nothing. Batches stay on the device the
dataset's tensors are on; move them yourself (``xb.to("cuda")``) where you want them elsewhere.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, TypeVar

from tinytensor import tensor
from tinytensor.dtypes import int64
from tinytensor.random import Generator

from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

T_co = TypeVar("T_co", covariant=True)


def get_worker_info() -> None:
    """PyTorch's worker information for the code of a dataset; always None here, as in PyTorch's
    main process (tinytensor loads every batch in the process that iterates the loader)."""
    return None


def _gathers(dataset, collate_fn) -> bool:
    """Whether a batch of ``dataset`` can be gathered whole: a TensorDataset (its own __getitem__)
    collated by default_collate gives ``[t[indices] for t in tensors]``, in two ops instead of 2B + 2."""
    return (isinstance(dataset, TensorDataset) and type(dataset).__getitem__ is TensorDataset.__getitem__
            and not hasattr(dataset, "__getitems__") and collate_fn is default_collate)


class _InfiniteConstantSampler(Sampler[None]):
    """The "sampler" of an IterableDataset: None for ever (the dataset decides where it ends)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader(Generic[T_co]):
    """Iterate over ``dataset`` in batches of ``batch_size`` samples, merged by ``collate_fn``.

    ``shuffle=True`` draws a new order every pass; ``sampler`` (indices) or ``batch_sampler`` (lists of
    indices) choose the samples instead; ``batch_size=None`` yields single samples unbatched;
    ``drop_last`` drops a last, short batch. PyTorch's arguments and their errors; the differences:
    ``num_workers > 0`` raises NotImplementedError, and ``timeout``, ``prefetch_factor``,
    ``persistent_workers`` and ``multiprocessing_context`` (worker options) are refused as PyTorch
    refuses them without workers."""

    _frozen = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")
    _initialized = False

    def __init__(self, dataset: Dataset[T_co], batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None, batch_sampler: Sampler | Iterable | None = None,
                 num_workers: int = 0, collate_fn: Callable[[list], Any] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable[[int], None] | None = None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True) -> None:
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if num_workers > 0:
            raise NotImplementedError(
                f"DataLoader: num_workers={num_workers} is not supported; tinytensor loads batches in the "
                f"main process, use num_workers=0"
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if timeout > 0:
            raise ValueError(f"DataLoader: timeout={timeout} applies to worker processes; with num_workers=0 "
                             f"leave timeout=0")
        if prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let "
                             "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to "
                             "None.")
        if persistent_workers:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if multiprocessing_context is not None:
            raise ValueError("multiprocessing_context can only be used with multi-process loading "
                             f"(num_workers > 0), but got num_workers={num_workers}")

        if isinstance(dataset, IterableDataset):
            if shuffle not in {False, None}:
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle option, but "
                                 f"got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler option, but "
                                 f"got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified batch_sampler "
                                 f"option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")

        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.num_workers = num_workers
        self.collate_fn = collate_fn or (default_collate if batch_sampler is not None else default_convert)
        self.pin_memory, self.pin_memory_device = pin_memory, pin_memory_device
        self.timeout, self.worker_init_fn, self.prefetch_factor = timeout, worker_init_fn, prefetch_factor
        self.multiprocessing_context, self.persistent_workers = multiprocessing_context, persistent_workers
        self.in_order = in_order
        self._initialized = True

    def __setattr__(self, name, value) -> None:
        if self._initialized and name in self._frozen:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        """What is iterated: lists of indices (batching) or single indices."""
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        """One pass over the data (a fresh sampler iteration: a new shuffle)."""
        if isinstance(self.dataset, IterableDataset):
            return self._iterate_stream()
        return self._iterate_map()

    def _iterate_map(self):
        dataset, collate_fn = self.dataset, self.collate_fn
        if not self._auto_collation:
            for index in self.sampler:
                yield collate_fn(dataset[index])
            return
        if _gathers(dataset, collate_fn):
            # the same batch as B samples stacked by default_collate, by one gather per tensor
            for indices in self.batch_sampler:
                yield [t[tensor(indices, dtype=int64, device=t.device)] for t in dataset.tensors]
            return
        getitems = getattr(dataset, "__getitems__", None)
        for indices in self.batch_sampler:
            samples = getitems(indices) if callable(getitems) else [dataset[i] for i in indices]
            yield collate_fn(samples)

    def _iterate_stream(self):
        stream = iter(self.dataset)
        if not self._auto_collation:
            for sample in stream:
                yield self.collate_fn(sample)
            return
        while True:
            batch = [sample for _, sample in zip(range(self.batch_size), stream)]
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield self.collate_fn(batch)
            if len(batch) < self.batch_size:  # the stream has ended
                return

    def __len__(self) -> int:
        """The number of batches (samples for batch_size=None) a pass yields."""
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # TypeError for a stream without __len__, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)
