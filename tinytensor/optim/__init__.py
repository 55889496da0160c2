"""``tinytensor.optim``: tinytensor_nn's optimizers and schedules under PyTorch's name.

``import torch.optim as optim`` becomes ``import tinytensor.optim as optim``;
``tinytensor.optim.lr_scheduler`` is importable by name.
"""
import sys

import tinytensor_nn.optim
from tinytensor_nn.optim import *  # noqa: F403
from tinytensor_nn.optim import lr_scheduler

sys.modules[f"{__name__}.lr_scheduler"] = lr_scheduler
