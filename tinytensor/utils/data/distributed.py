"""``DistributedSampler``: each process of a data-parallel job reads its own share of the dataset.

The order is PyTorch's, index for index: with ``shuffle=True`` every epoch is a permutation drawn the
way ``torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))`` draws it on the CPU, so
a tinytensor run and a PyTorch run see the same samples on the same ranks. That permutation is a
Fisher-Yates shuffle driven by raw 32-bit draws of a Mersenne Twister with its classic seeding:

    r = [0, 1, ..., n - 1]
    for i in 0 .. n - 2:  swap r[i] and r[i + draw() % (n - i)]

NumPy's ``MT19937`` with its legacy seeding is that generator.
"""
from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np

from .sampler import Sampler

# Above this size PyTorch switches to 64-bit draws; the permutations here were checked below it.
_RANDPERM_32BIT_LIMIT = (2**32 - 1) // 20


def torch_randperm(n: int, seed: int) -> list[int]:
    """The permutation of ``range(n)`` that ``torch.randperm(n)`` gives on the CPU from a generator
    seeded with ``seed`` (``torch.Generator().manual_seed(seed)``)."""
    if n >= _RANDPERM_32BIT_LIMIT:
        raise ValueError(f"torch_randperm: n={n} is at or above {_RANDPERM_32BIT_LIMIT}, where PyTorch "
                         f"draws 64-bit numbers; only smaller permutations are reproduced")
    bits = np.random.MT19937()
    bits._legacy_seeding(seed & 0xFFFFFFFF)  # PyTorch's mt19937 keeps the low 32 bits of the seed
    draws = bits.random_raw(max(n - 1, 0)).tolist()
    r = list(range(n))
    for i, draw in enumerate(draws):
        j = i + draw % (n - i)
        r[i], r[j] = r[j], r[i]
    return r


class DistributedSampler(Sampler[int]):
    """PyTorch's ``DistributedSampler``: rank ``rank`` of ``num_replicas`` gets every
    ``num_replicas``-th index of one (shuffled) pass, starting at ``rank``.

    Without ``drop_last`` the pass is padded with its own first indices to a multiple of
    ``num_replicas``; with it, the tail is dropped. Call ``set_epoch(epoch)`` before each epoch for a
    new order (the seed is ``seed + epoch``); every rank must use the same ``seed``.
    ``num_replicas`` and ``rank`` default to the process group's (``tinytensor.distributed``).
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from tinytensor import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "tinytensor.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        indices = torch_randperm(n, self.seed + self.epoch) if self.shuffle else list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        elif indices:
            padding = self.total_size - len(indices)
            indices += (indices * math.ceil(padding / len(indices)))[:padding]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``seed + epoch`` for the next pass: every rank must call it with the same epoch."""
        self.epoch = epoch
