"""``tinytensor.utils``: PyTorch's ``torch.utils`` names (``data``: datasets and loaders)."""
