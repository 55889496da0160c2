"""Optimizers and learning-rate schedules (PyTorch's names): SGD, Adam, AdamW, LambdaLR, NoamLR,
WarmupCosineLR."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import LambdaLR, LRScheduler, NoamLR, WarmupCosineLR
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "LRScheduler", "LambdaLR", "NoamLR",
           "WarmupCosineLR"]
