"""``tinytensor.nn``: the tinytensor_nn package under the name PyTorch code imports.

``import torch.nn as nn`` becomes ``import tinytensor.nn as nn``; ``from torch.nn import functional as F``
becomes ``from tinytensor.nn import functional as F``. The objects are tinytensor_nn's own
(``tinytensor.nn.Linear is tinytensor_nn.Linear``), and its submodules are importable by name:
``tinytensor.nn.functional``, ``tinytensor.nn.init``, ``tinytensor.nn.parallel``, ``tinytensor.nn.utils``.
Importing tinytensor alone does not import this package; the first ``tinytensor.nn`` does.
"""
import sys

import tinytensor_nn
from tinytensor_nn import *  # noqa: F403  (every public name of tinytensor_nn)
from tinytensor_nn import functional, init, parallel, utils

SUBMODULES = ("functional", "init", "parallel", "utils")
for _name in SUBMODULES:  # `import tinytensor.nn.functional` finds tinytensor_nn.functional
    sys.modules[f"{__name__}.{_name}"] = getattr(tinytensor_nn, _name)
