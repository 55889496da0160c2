"""safetensors save/load (every dtype and device, atomic writes that survive a crash mid-write) and
training checkpoints that resume bit-identically."""
import json
import os

import numpy as np
import pytest

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor_nn import optim, serialization


def test_save_load_round_trip(tmp_path, device):
    rng = np.random.default_rng(0)
    state = {
        "f32": tt.tensor(rng.standard_normal((3, 4)), dtype=tt.float32, device=device),
        "f64": tt.tensor(rng.standard_normal(5), dtype=tt.float64, device=device),
        "i64": tt.tensor([1, -2, 3], device=device),
        "i32": tt.tensor([7], dtype=tt.int32, device=device),
        "b": tt.tensor([True, False], device=device),
        "scalar": tt.tensor(2.5, device=device),
        "empty": tt.zeros(0, 3, device=device),
        "transposed": tt.tensor(rng.standard_normal((2, 3)), device=device).T,
    }
    try:  # float16 where the backend has it (array_api_strict does not)
        state["f16"] = tt.tensor(rng.standard_normal(2), dtype=tt.float16, device=device)
    except TypeError:
        assert device == "strict"
    path = tmp_path / "s.safetensors"
    nn.save(state, path)
    for target in ("cpu", device):
        back = nn.load(path, device=target)
        assert sorted(back) == sorted(state)
        for k, v in state.items():
            assert back[k].dtype is v.dtype and back[k].shape == v.shape, k
            assert back[k].device == tt.zeros(1, device=target).device, k
            np.testing.assert_array_equal(back[k].numpy(), v.numpy(), err_msg=k)


def test_model_state_round_trip(tmp_path, device):
    tt.manual_seed(0)
    net = nn.Sequential(nn.Embedding(5, 4, padding_idx=0), nn.LayerNorm(4), nn.Linear(4, 2)).to(device)
    nn.save(net.state_dict(), tmp_path / "m.safetensors")
    tt.manual_seed(1)
    other = nn.Sequential(nn.Embedding(5, 4, padding_idx=0), nn.LayerNorm(4), nn.Linear(4, 2)).to(device)
    other.load_state_dict(nn.load(tmp_path / "m.safetensors", device=device))
    idx = tt.tensor([[0, 3, 4]], device=device)
    np.testing.assert_array_equal(net(idx).numpy(), other(idx).numpy())


def test_file_is_plain_safetensors_not_pickle(tmp_path):
    import safetensors.numpy

    nn.save({"w": tt.ones(2, 2)}, tmp_path / "w.safetensors", metadata={"note": "hi"})
    raw = (tmp_path / "w.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    assert header["w"]["dtype"] == "F32" and header["w"]["shape"] == [2, 2]
    assert header["__metadata__"] == {"note": "hi"}
    assert not raw.startswith(b"\x80")  # no pickle protocol header
    plain = safetensors.numpy.load_file(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(plain["w"], np.ones((2, 2)))
    assert serialization.load_metadata(tmp_path / "w.safetensors") == {"note": "hi"}


def test_atomic_write_survives_a_crash(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    nn.save({"w": tt.ones(3)}, path)
    before = path.read_bytes()

    def crash(fd):  # the machine "dies" after the data was written but before it reached the disk
        raise OSError("simulated crash during fsync")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="simulated crash"):
        nn.save({"w": tt.zeros(1000)}, path)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["model.safetensors"]  # and no temporary file is left behind
    monkeypatch.undo()

    def crash_replace(src, dst):
        raise KeyboardInterrupt  # interrupted at the last moment, also by a BaseException

    monkeypatch.setattr(os, "replace", crash_replace)
    with pytest.raises(KeyboardInterrupt):
        nn.save({"w": tt.zeros(1000)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]
    monkeypatch.undo()
    nn.save({"w": tt.zeros(2)}, path)
    np.testing.assert_array_equal(nn.load(path)["w"].numpy(), [0.0, 0.0])


def test_save_bad_input(tmp_path):
    with pytest.raises(TypeError, match="'w' is a ndarray, expected a Tensor"):
        nn.save({"w": np.ones(2)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="metadata must map strings to strings"):
        nn.save({"w": tt.ones(2)}, tmp_path / "x.safetensors", metadata={"step": 3})
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        nn.load(tmp_path / "junk.safetensors")
    nn.save({"w": tt.ones(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="not a tinytensor checkpoint"):
        nn.load_checkpoint(tmp_path / "plain.safetensors", model=nn.Linear(2, 2))


def test_load_into_model_with_other_shapes(tmp_path):
    nn.save(nn.Linear(3, 2).state_dict(), tmp_path / "l.safetensors")
    with pytest.raises(RuntimeError, match=r"size mismatch for weight: checkpoint \(2, 3\) vs model"):
        nn.Linear(3, 4).load_state_dict(nn.load(tmp_path / "l.safetensors"))


# ---- checkpoints ------------------------------------------------------------------------------

def make(device="cpu", seed=0):
    tt.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.3), nn.LayerNorm(8), nn.Linear(8, 3))
    net.to(device)
    opt = optim.AdamW([{"params": net[0].parameters()},
                       {"params": list(net[3].parameters()) + list(net[4].parameters()), "lr": 0.5}],
                      lr=1.0, betas=(0.8, 0.95), amsgrad=True)
    sched = optim.NoamLR(opt, d_model=8, warmup_steps=3)
    return net, opt, sched


def train(net, opt, sched, steps, device="cpu"):
    for _ in range(steps):
        x = tt.randn(6, 4, device=device)  # data and dropout masks both come from tinytensor's RNG
        y = tt.randint(0, 3, (6,), device=device)
        loss = F.cross_entropy(net(x), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()


@pytest.mark.parametrize("device", ["cpu"])
def test_checkpoint_resumes_bit_identically(tmp_path, device):
    net, opt, sched = make(device)
    train(net, opt, sched, 5, device)
    path = tmp_path / "ckpt.safetensors"
    nn.save_checkpoint(path, model=net, optimizer=opt, scheduler=sched, extra={"epoch": 2, "best": [0.5, 1]})
    train(net, opt, sched, 5, device)
    straight = [p.numpy().copy() for p in net.parameters()]

    net2, opt2, sched2 = make(device, seed=99)  # different weights and a different RNG position
    tt.manual_seed(1234)
    extra = nn.load_checkpoint(path, model=net2, optimizer=opt2, scheduler=sched2)
    assert extra == {"epoch": 2, "best": [0.5, 1]}
    assert sched2.last_epoch == 5
    train(net2, opt2, sched2, 5, device)
    resumed = [p.numpy() for p in net2.parameters()]
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)  # bitwise
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95)  # tuples survive the JSON metadata


def test_checkpoint_restores_state_exactly(tmp_path, device):
    net, opt, sched = make(device)
    train(net, opt, sched, 3, device)
    rng = tt.get_rng_state()
    path = tmp_path / "c.safetensors"
    nn.save_checkpoint(path, model=net, optimizer=opt, scheduler=sched)
    net2, opt2, sched2 = make(device, seed=5)
    nn.load_checkpoint(path, model=net2, optimizer=opt2, scheduler=sched2)
    assert tt.get_rng_state() == rng
    for (n, p), q in zip(net.named_parameters(), net2.parameters()):
        assert q.device == p.device and q.dtype is p.dtype
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=n)
    for p, q in zip(net.parameters(), net2.parameters()):
        s, s2 = opt.state[p], opt2.state[q]
        assert s.keys() == s2.keys() and s["step"] == s2["step"] == 3
        for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert s2[k].device == p.device and s2[k].dtype is p.dtype
            np.testing.assert_array_equal(s[k].numpy(), s2[k].numpy())
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    assert sched2.state_dict() == sched.state_dict()


def test_checkpoint_parts_and_errors(tmp_path):
    net, opt, sched = make()
    path = tmp_path / "model_only.safetensors"
    nn.save_checkpoint(path, model=net)
    assert nn.load_checkpoint(path, model=make(seed=3)[0]) is None
    with pytest.raises(KeyError, match="no optimizer state"):
        nn.load_checkpoint(path, optimizer=opt)
    with pytest.raises(KeyError, match="no scheduler state"):
        nn.load_checkpoint(path, scheduler=sched)
    with pytest.raises(TypeError, match="extra must be JSON-serializable"):
        nn.save_checkpoint(path, model=net, extra={"f": object()})
    with pytest.raises(TypeError, match="tensors are only supported"):
        nn.save_checkpoint(path, model=net, extra={"t": tt.ones(1)})
    smaller = nn.Sequential(nn.Linear(4, 8))
    with pytest.raises(RuntimeError, match="unexpected keys"):
        nn.load_checkpoint(path, model=smaller)
    nn.load_checkpoint(path, model=smaller, strict=False)
    np.testing.assert_array_equal(smaller[0].weight.numpy(), net[0].weight.numpy())
