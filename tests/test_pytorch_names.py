"""PyTorch's module and dtype names on tinytensor: the import lines of PyTorch code, rewritten by the
rule ``torch`` -> ``tinytensor``, resolve to tinytensor_nn's objects (issue: running PyTorch code)."""
import subprocess
import sys

import tinytensor as tt
import tinytensor_nn


def test_import_tinytensor_does_not_import_the_nn_package():
    code = "import sys, tinytensor; print('tinytensor_nn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_rewritten_import_lines_resolve():
    import tinytensor.nn.functional
    import tinytensor.optim.lr_scheduler as lr_scheduler
    from tinytensor.optim.lr_scheduler import LambdaLR

    import tinytensor as torch
    import tinytensor.nn as nn
    import tinytensor.optim as optim
    from tinytensor import nn as nn2
    from tinytensor.nn import functional as F
    from tinytensor.nn import init

    assert nn is nn2 is torch.nn and F is torch.nn.functional is tinytensor.nn.functional
    assert nn.Linear is tinytensor_nn.Linear and nn.MultiheadAttention is tinytensor_nn.MultiheadAttention
    assert F.scaled_dot_product_attention is tinytensor_nn.functional.scaled_dot_product_attention
    assert init.normal_ is tinytensor_nn.init.normal_ and torch.nn.init.normal_ is init.normal_
    assert optim.AdamW is torch.optim.AdamW is tinytensor_nn.optim.AdamW
    assert lr_scheduler is tinytensor_nn.optim.lr_scheduler and LambdaLR is lr_scheduler.LambdaLR


def test_a_model_written_with_pytorch_names_trains():
    import tinytensor.nn.functional as F

    import tinytensor as torch
    import tinytensor.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    losses = []
    for _ in range(100):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses[::10]


def test_pytorch_dtype_names():
    assert (tt.long, tt.int, tt.float, tt.double, tt.half) == (tt.int64, tt.int32, tt.float32, tt.float64,
                                                              tt.float16)
    assert tt.tensor([1, 2]).to(tt.float).dtype is tt.float32 and tt.zeros(2, dtype=tt.long).dtype is tt.int64
    assert tt.bool.name == "bool"
