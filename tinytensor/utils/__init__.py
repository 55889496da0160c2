"""``tinytensor.utils``: PyTorch's ``torch.utils`` names (``data``: datasets and loaders; ``checkpoint``:
activation checkpointing).

Loaded on the first ``tinytensor.utils``; ``tt.utils.data.DataLoader`` then works without importing
``tinytensor.utils.data`` by name, as ``torch.utils.data.DataLoader`` does.
"""
from . import checkpoint, data
