"""``tinytensor.utils.data``: PyTorch's ``torch.utils.data`` (datasets, samplers, DataLoader, collate).

``from torch.utils.data import DataLoader, Dataset, TensorDataset, random_split`` becomes
``from tinytensor.utils.data import ...``. Loading runs in the main process (``num_workers=0``);
batches stay on the device of the dataset's tensors. Random orders (``shuffle``, ``RandomSampler``,
``random_split``) come from a ``tt.Generator`` or the global generator (``tt.manual_seed``):
deterministic per seed, but NumPy's PCG64 stream, not PyTorch's.
"""
from .collate import collate, default_collate, default_collate_fn_map, default_convert
from .dataloader import DataLoader, get_worker_info
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .distributed import DistributedSampler
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "IterableDataset",
    "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset", "SubsetRandomSampler",
    "TensorDataset", "WeightedRandomSampler", "collate", "default_collate", "default_collate_fn_map",
    "default_convert", "get_worker_info", "random_split",
]
