"""Module attributes keep their kind (PyTorch's __setattr__ rules), loading is all or nothing (model,
optimizer, checkpoint: on any error nothing has changed), and saved files behave like files written with
open(): umask and modes, symlinks followed, no temporary file left behind."""
import os
import signal
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.numpy
from _torch import require_torch

import tinytensor as tt
import tinytensor_nn as nn
import tinytensor_nn.functional as F
from tinytensor_nn import optim, serialization
from tinytensor_nn.serialization import CheckpointError, MissingEntryError

# ---- Module attributes ------------------------------------------------------------------------------

class WithEverything(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.scale = nn.Parameter(tt.ones(2))
        self.register_buffer("running", tt.zeros(2))
        self.register_buffer("cache", tt.zeros(2), persistent=False)


def test_a_tensor_assigned_to_a_parameter_raises_and_keeps_the_parameter():
    lin = nn.Linear(3, 2)
    w = lin.weight
    with pytest.raises(TypeError, match=r"cannot assign 'Tensor' as parameter 'weight' \(Parameter or None"):
        lin.weight = lin.weight * 1.0
    with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'weight'"):
        lin.weight = 3
    with pytest.raises(TypeError, match="cannot assign 'Linear' as parameter 'bias'"):
        lin.bias = nn.Linear(1, 1)
    assert lin.weight is w and [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    lin.bias = None  # None clears the slot and keeps it registered
    assert lin.bias is None and "bias" in lin._parameters and list(lin.state_dict()) == ["weight"]
    with pytest.raises(TypeError, match="as parameter 'bias'"):
        lin.bias = tt.zeros(2)  # an empty slot is still a parameter slot
    lin.bias = nn.Parameter(tt.zeros(2))
    assert list(lin.state_dict()) == ["weight", "bias"]


def test_buffers_and_submodules_keep_their_kind():
    m = WithEverything()
    m.running = tt.ones(2)  # a Tensor replaces a buffer ...
    m.cache = tt.ones(2)
    assert "running" in m._buffers and "cache" in m._buffers
    assert list(m.state_dict()) == ["scale", "running", "lin.weight", "lin.bias"]  # ... and keeps persistence
    with pytest.raises(TypeError, match=r"cannot assign 'float' as buffer 'running' \(Tensor or None"):
        m.running = 1.0
    with pytest.raises(TypeError, match=r"cannot assign 'Tensor' as child module 'lin' \(Module or None"):
        m.lin = tt.ones(2)
    assert isinstance(m.lin, nn.Linear)
    m.running = None
    assert "running" in m._buffers and m.running is None
    m.cache = nn.Parameter(tt.ones(2))  # a Parameter takes the name over (as PyTorch)
    assert "cache" in m._parameters and "cache" not in m._buffers and "cache" in m.state_dict()
    m.lin = None
    assert m.lin is None and "lin" in m._modules
    m.lin = nn.Parameter(tt.ones(1))
    assert "lin" in m._parameters and "lin" not in m._modules
    m.plain = tt.ones(1)  # a new name with a plain Tensor is a plain attribute
    assert "plain" in m.__dict__ and "plain" not in m._buffers
    del m.scale
    assert "scale" not in m._parameters and not hasattr(m, "scale")


def test_register_checks_names_and_types():
    m = WithEverything()
    with pytest.raises(TypeError, match="cannot assign 'list' as buffer 'b'"):
        m.register_buffer("b", [1.0])
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'p'"):
        m.register_parameter("p", tt.ones(1))
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        m.add_module("sub", 3)
    with pytest.raises(KeyError, match="contain no '.'"):
        m.register_buffer("a.b", tt.ones(1))
    with pytest.raises(KeyError, match="attribute 'running' already exists"):
        m.register_parameter("running", None)
    with pytest.raises(KeyError, match="attribute 'scale' already exists"):
        m.register_buffer("scale", tt.ones(2))
    m.register_buffer("cache", tt.ones(2))  # re-registering as persistent makes it persistent
    assert "cache" in m.state_dict()

    class Early(nn.Module):
        def __init__(self):
            self.n = 3  # a plain attribute before super().__init__() is fine (PyTorch)
            with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
                self.w = nn.Parameter(tt.ones(1))
            super().__init__()

    assert Early().n == 3


def test_attribute_rules_match_pytorch():
    torch = require_torch()

    def outcomes(mod, param, module, tensor):
        cases = {"param=tensor": ("weight", tensor), "param=int": ("weight", 3),
                 "param=module": ("weight", module), "param=None": ("bias", None),
                 "buffer=tensor": ("buf", tensor), "buffer=str": ("buf", "x"), "buffer=param": ("buf", param),
                 "module=tensor": ("sub", tensor), "module=None": ("sub", None),
                 "module=param": ("sub2", param), "new=tensor": ("fresh", tensor)}
        out = {}
        for case, (name, value) in cases.items():
            m = mod()
            try:
                setattr(m, name, value)
                kind = [k for k, store in (("param", m._parameters), ("buffer", m._buffers),
                                           ("module", m._modules)) if name in store]
                out[case] = kind[0] if kind else "plain"
            except TypeError:
                out[case] = "TypeError"
        return out

    def ours():
        m = nn.Linear(2, 2)
        m.register_buffer("buf", tt.ones(1))
        m.sub, m.sub2 = nn.Linear(1, 1), nn.Linear(1, 1)
        return m

    def theirs():
        m = torch.nn.Linear(2, 2)
        m.register_buffer("buf", torch.ones(1))
        m.sub, m.sub2 = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
        return m

    got = outcomes(ours, nn.Parameter(tt.ones(1)), nn.Linear(1, 1), tt.ones(1))
    want = outcomes(theirs, torch.nn.Parameter(torch.ones(1)), torch.nn.Linear(1, 1), torch.ones(1))
    assert got == want


# ---- Module.load_state_dict: all or nothing --------------------------------------------------------

class Tail(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(tt.ones(2))
        self.register_buffer("idx", tt.tensor([1, 2, 3]))
        self.register_buffer("flag", tt.tensor([True, False]))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        self.tail = Tail()  # its entries come last in the state dict


def snapshot(model):
    return {k: (v.dtype, v.numpy().tobytes()) for k, v in model.state_dict().items()}


def other_state(model):
    """A state dict in which every entry differs from the model's (so a partial write would show)."""
    return {k: (v + 1 if v.dtype is not tt.bool else ~v) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("bad", ["shape", "device", "float_into_int", "int_into_bool", "not_a_tensor"])
def test_load_state_dict_with_one_bad_entry_late_changes_nothing(bad):
    tt.manual_seed(0)
    net = Net()
    before = snapshot(net)
    versions = [p._version[0] for p in net.parameters()]
    state = other_state(net)
    assert list(state)[-3:] == ["tail.w", "tail.idx", "tail.flag"]  # after every other entry
    if bad == "shape":
        state["tail.w"], match = tt.zeros(3), r"size mismatch for tail.w: checkpoint \(3,\) vs model \(2,\)"
    elif bad == "device":
        state["tail.w"], match = tt.zeros(2, device="strict"), "tail.w is on strict but the model is on cpu"
    elif bad == "float_into_int":
        state["tail.idx"], match = tt.tensor([1.5, 2.0, 3.0]), "idx: dtype tinytensor.float32 cannot be"
    elif bad == "int_into_bool":
        state["tail.flag"], match = tt.tensor([1, 0]), "flag: dtype tinytensor.int64 cannot be loaded into"
    else:
        state["tail.w"], match = "zeros", "tail.w: expected a Tensor, got str"
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=match):
            net.load_state_dict(state, strict=strict)
        assert snapshot(net) == before  # bitwise, every parameter and buffer
        assert [p._version[0] for p in net.parameters()] == versions


def test_load_on_every_device_is_all_or_nothing(device):
    tt.manual_seed(0)
    net = Net().to(device)
    before = snapshot(net)
    elsewhere = "strict" if net.tail.w.device == "cpu" else "cpu"
    state = other_state(net)
    state["tail.flag"] = state["tail.flag"].to(elsewhere)
    with pytest.raises(RuntimeError, match=f"tail.flag is on {elsewhere} but the model is on"):
        net.load_state_dict(state)
    assert snapshot(net) == before
    state["tail.flag"] = state["tail.flag"].to(net.tail.w.device)
    net.load_state_dict(state)
    assert snapshot(net) == {k: (v.dtype, v.numpy().tobytes()) for k, v in state.items()}
    opt = optim.Adam(net.parameters(), lr=0.1)
    (net.body(tt.randn(2, 3, device=device)).sum() + net.tail.w.sum()).backward()
    opt.step()
    cpu_state = {"state": {i: {k: (v.to("cpu") if isinstance(v, tt.Tensor) else v) for k, v in s.items()}
                           for i, s in opt.state_dict()["state"].items()},
                 "param_groups": opt.state_dict()["param_groups"]}
    twin = optim.Adam(net.parameters(), lr=0.1)
    twin.load_state_dict(cpu_state)  # state tensors move to each parameter's device
    for p in net.parameters():
        assert twin.state[p]["exp_avg"].device == p.device
        np.testing.assert_array_equal(twin.state[p]["exp_avg"].numpy(), opt.state[p]["exp_avg"].numpy())


def test_load_state_dict_reports_every_problem_at_once():
    net = Net()
    state = dict(other_state(net), **{"body.0.weight": tt.zeros(1), "extra": tt.ones(1)})
    del state["tail.idx"]
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    assert "size mismatch for body.0.weight" in msg and "missing keys: ['tail.idx']" in msg
    assert "unexpected keys: ['extra']" in msg and "nothing was loaded" in msg


def test_load_state_dict_strict_false_and_casts():
    tt.manual_seed(0)
    net = Net()
    state = other_state(net)
    del state["tail.idx"]
    state["extra"] = tt.ones(1)
    state["body.0.weight"] = state["body.0.weight"].to(tt.float64)  # floating widths cast (PyTorch)
    state["body.0.bias"] = tt.tensor([1, 2, 3, 4])  # integers into a floating tensor too
    res = net.load_state_dict(state, strict=False)
    assert res.missing_keys == ["tail.idx"] and res.unexpected_keys == ["extra"]
    assert net.body[0].weight.dtype is tt.float32 and isinstance(net.body[0].weight, nn.Parameter)
    np.testing.assert_array_equal(net.body[0].weight.numpy(), state["body.0.weight"].numpy().astype("f4"))
    np.testing.assert_array_equal(net.body[0].bias.numpy(), [1, 2, 3, 4])
    np.testing.assert_array_equal(net.tail.flag.numpy(), [False, True])
    np.testing.assert_array_equal(net.tail.idx.numpy(), [1, 2, 3])  # missing: untouched


# ---- Optimizer.load_state_dict: all or nothing -----------------------------------------------------

def trained(amsgrad=False, seed=0, steps=2):
    tt.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    opt = optim.Adam([{"params": net[0].parameters()}, {"params": net[1].parameters(), "lr": 0.5}],
                     lr=0.1, amsgrad=amsgrad)
    for _ in range(steps):
        opt.zero_grad()
        net(tt.randn(5, 3)).sum().backward()
        opt.step()
    return net, opt


def opt_snapshot(opt):
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    state = {id(p): {k: (v.numpy().tobytes() if isinstance(v, tt.Tensor) else v) for k, v in s.items()}
             for p, s in opt.state.items()}
    return groups, state


@pytest.mark.parametrize("bad", ["missing_tensor", "missing_step", "shape", "int_state", "amsgrad"])
def test_optimizer_load_with_one_bad_entry_late_changes_nothing(bad):
    _, source = trained(amsgrad=bad != "amsgrad", seed=1, steps=3)
    sd = source.state_dict()
    sd["param_groups"][0]["lr"] = 123.0  # a hyper-parameter early in the order
    last = sd["state"][3]  # the last parameter (group 1)
    if bad == "missing_tensor":
        del last["exp_avg_sq"]
        match = r"state\[3\]\['exp_avg_sq'\] \(group 1, parameter of shape \(2,\)\) is missing"
    elif bad == "missing_step":
        del last["step"]
        match = r"state\[3\]\['step'\] .* is missing"
    elif bad == "shape":
        last["exp_avg"] = tt.zeros(3)
        match = r"state\[3\]\['exp_avg'\] has shape \(3,\), its parameter \(2,\)"
    elif bad == "int_state":
        last["exp_avg"] = tt.tensor([1, 2])
        match = r"state\[3\]\['exp_avg'\] .* must be a floating-point Tensor, got tinytensor.int64"
    else:  # amsgrad is switched on in the loaded groups: its running max must be in the state
        sd["param_groups"][1]["amsgrad"] = True
        match = r"state\[2\]\['max_exp_avg_sq'\] .* is missing"
    _, opt = trained(seed=2)
    before = opt_snapshot(opt)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    assert opt_snapshot(opt) == before


def test_optimizer_load_rejects_state_of_unknown_parameters():
    _, opt = trained()
    sd = opt.state_dict()
    sd["state"][7] = {"step": 1}
    with pytest.raises(ValueError, match=r"state holds parameters \[7\] that no param group lists"):
        trained(seed=1)[1].load_state_dict(sd)


def test_optimizer_without_state_loads_and_sgd_buffers_are_optional():
    _, opt = trained()
    fresh = trained(steps=0)[1]
    opt.load_state_dict(fresh.state_dict())
    assert opt.state == {}
    tt.manual_seed(0)
    net = nn.Linear(2, 2)
    sgd = optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    groups = sgd.state_dict()["param_groups"]
    sgd.load_state_dict({"state": {0: {"momentum_buffer": None}}, "param_groups": groups})
    net(tt.ones(1, 2)).sum().backward()
    sgd.step()  # the buffer starts at the first step


# ---- load_checkpoint: all or nothing, errors that name the file and entry ------------------------

def make(seed=0):
    tt.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 3))
    opt = optim.AdamW([{"params": net[0].parameters()},
                       {"params": list(net[1].parameters()) + list(net[2].parameters()), "lr": 0.5}],
                      lr=1.0, amsgrad=True)
    sched = optim.NoamLR(opt, d_model=8, warmup_steps=3)
    return net, opt, sched


def train(net, opt, sched, steps):
    for _ in range(steps):
        loss = F.cross_entropy(net(tt.randn(6, 4)), tt.randint(0, 3, (6,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def everything(net, opt, sched):
    return snapshot(net), opt_snapshot(opt), sched.state_dict(), tt.get_rng_state()


@pytest.fixture
def ckpt(tmp_path):
    net, opt, sched = make()
    train(net, opt, sched, 3)
    path = tmp_path / "ckpt.safetensors"
    nn.save_checkpoint(path, model=net, optimizer=opt, scheduler=sched, extra={"epoch": 1})
    return path


def rewrite(path, drop=(), arrays=None, **meta_changes):
    """The checkpoint at path rewritten: entries dropped or replaced, metadata entries changed."""
    tensors = safetensors.numpy.load_file(path)
    meta = serialization.load_metadata(path)
    for k in drop:
        del tensors[k]
    tensors.update(arrays or {})
    meta.update(meta_changes)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))


def load_fails(path, exc, match):
    """load_checkpoint raises exc (matching, and naming the file) and changes nothing."""
    net, opt, sched = make(seed=7)
    train(net, opt, sched, 1)
    before = everything(net, opt, sched)
    with pytest.raises(exc, match=match) as info:
        nn.load_checkpoint(path, model=net, optimizer=opt, scheduler=sched)
    assert os.fspath(path) in str(info.value)
    assert everything(net, opt, sched) == before
    return info.value


def test_checkpoint_missing_one_optimizer_tensor_fails_at_load(ckpt):
    last = max(k for k in safetensors.numpy.load_file(ckpt) if k.startswith("optimizer.state.5."))
    assert last == "optimizer.state.5.max_exp_avg_sq"
    rewrite(ckpt, drop=[last])
    load_fails(ckpt, ValueError, r"optimizer.state.5.max_exp_avg_sq \(group 1, parameter of shape \(3,\)\) "
                                 r"is missing")


def test_checkpoint_with_a_wrong_optimizer_tensor(ckpt):
    rewrite(ckpt, arrays={"optimizer.state.5.exp_avg": np.zeros(4, np.float32)})
    load_fails(ckpt, ValueError, r"optimizer.state.5.exp_avg has shape \(4,\), its parameter \(3,\)")
    rewrite(ckpt, arrays={"optimizer.state.x.exp_avg": np.zeros(3, np.float32)})
    load_fails(ckpt, CheckpointError, "the entry 'optimizer.state.x.exp_avg' is not named")


@pytest.mark.parametrize("entry", ["optimizer", "scheduler", "rng", "extra"])
def test_corrupt_metadata_names_the_file_and_entry(ckpt, entry):
    rewrite(ckpt, **{entry: '{"truncated": '})
    err = load_fails(ckpt, CheckpointError, f"the metadata entry '{entry}' is corrupt")
    assert isinstance(err, ValueError) and "not JSON" in str(err)


def test_corrupt_rng_and_scheduler_state(ckpt):
    rewrite(ckpt, rng='{"bit_generator": "nonsense"}')
    load_fails(ckpt, CheckpointError, "the metadata entry 'rng' is corrupt")
    rewrite(ckpt, rng=serialization._dumps("rng", tt.get_rng_state()), scheduler='{"last_epoch": 3}')
    load_fails(ckpt, CheckpointError, r"the scheduler state holds \['last_epoch'\], NoamLR has")


def test_checkpoint_model_mismatch_changes_nothing(ckpt):
    rewrite(ckpt, arrays={"model.2.bias": np.zeros(5, np.float32)})  # the last model entry
    load_fails(ckpt, RuntimeError, r"from '.*ckpt.safetensors': size mismatch for 2.bias")
    rewrite(ckpt, arrays={"model.2.bias": np.zeros(3, np.float32)}, drop=["model.0.weight"])
    load_fails(ckpt, RuntimeError, r"missing keys: \['0.weight'\]")


def test_checkpoint_missing_sections_and_bad_files(ckpt, tmp_path):
    net, opt, sched = make()
    nn.save_checkpoint(tmp_path / "model_only.safetensors", model=net)
    with pytest.raises(MissingEntryError, match="holds no optimizer state") as info:
        nn.load_checkpoint(tmp_path / "model_only.safetensors", model=net, optimizer=opt)
    assert isinstance(info.value, KeyError) and isinstance(info.value, CheckpointError)
    assert str(info.value).startswith("load_checkpoint:")  # not quoted as KeyError would
    rewrite(ckpt, version="2")
    load_fails(ckpt, CheckpointError, "has version '2'; this tinytensor reads version 1")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"x" * 16)
    with pytest.raises(CheckpointError, match="junk.safetensors' is not a valid safetensors file"):
        nn.load_checkpoint(tmp_path / "junk.safetensors", model=net)


def test_good_checkpoint_still_loads_everything(ckpt):
    net, opt, sched = make(seed=3)
    assert nn.load_checkpoint(ckpt, model=net, optimizer=opt, scheduler=sched) == {"epoch": 1}
    ref, ref_opt, ref_sched = make()
    train(ref, ref_opt, ref_sched, 3)
    assert snapshot(net) == snapshot(ref) and sched.state_dict() == ref_sched.state_dict()
    assert [len(s) for s in opt.state.values()] == [4] * 6


# ---- files -----------------------------------------------------------------------------------------

@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o000])
def test_new_file_mode_follows_the_umask(tmp_path, umask, mask):
    umask(mask)
    nn.save({"w": tt.ones(2)}, tmp_path / "w.safetensors")
    with open(tmp_path / "plain", "wb"):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "w.safetensors").st_mode) == 0o666 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "plain").st_mode) == 0o666 & ~mask


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "w.safetensors"
    nn.save({"w": tt.ones(2)}, path)
    for mode in (0o640, 0o604, 0o600):
        os.chmod(path, mode)
        nn.save({"w": tt.zeros(3)}, path)
        assert stat.S_IMODE(os.stat(path).st_mode) == mode
    np.testing.assert_array_equal(nn.load(path)["w"].numpy(), [0, 0, 0])


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_saving_through_a_symlink_writes_its_target(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.safetensors"
    nn.save({"w": tt.ones(1)}, target)
    os.chmod(target, 0o640)
    link = tmp_path / "latest.safetensors"
    os.symlink(os.path.join("store", "real.safetensors"), link)  # relative, as `ln -s` makes them
    nn.save({"w": tt.zeros(2)}, link)
    assert os.path.islink(link) and os.readlink(link) == os.path.join("store", "real.safetensors")
    np.testing.assert_array_equal(nn.load(target)["w"].numpy(), [0, 0])
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["latest.safetensors", "store"]
    assert os.listdir(tmp_path / "store") == ["real.safetensors"]
    dangling = tmp_path / "dangling.safetensors"
    os.symlink("new.safetensors", dangling)  # a link to a file not yet there: open() would create it
    nn.save({"w": tt.ones(3)}, dangling)
    assert os.path.islink(dangling) and nn.load(tmp_path / "new.safetensors")["w"].shape == (3,)


def test_file_and_directory_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fsync", record)
    nn.save({"w": tt.ones(10)}, tmp_path / "w.safetensors")
    assert synced[0] == os.path.getsize(tmp_path / "w.safetensors")  # the whole file, before the rename
    assert synced[1:] == ["dir"] or os.name != "posix"


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    nn.save({"w": tt.ones(1)}, path)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nn.save({"w": tt.zeros(1000)}, path)
    assert os.listdir(tmp_path) == ["w.safetensors"]
    np.testing.assert_array_equal(nn.load(path)["w"].numpy(), [1])


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid probes")
def test_temp_file_of_a_killed_writer_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "w.safetensors"
    nn.save({"w": tt.ones(1)}, path)
    writer = textwrap.dedent(f"""
        import os, sys, time
        import tinytensor as tt, tinytensor_nn as nn
        def hang(src, dst):
            print("written", flush=True)
            time.sleep(60)
        os.replace = hang
        nn.save({{"w": tt.zeros(10000)}}, {os.fspath(path)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "written"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = [n for n in os.listdir(tmp_path) if n != "w.safetensors"]
    assert len(left) == 1 and left[0].startswith(".w.safetensors.") and left[0].endswith(".tmp")
    assert f".{child.pid}." in left[0] and os.path.getsize(tmp_path / left[0]) > 40000  # recognisable
    alive = tmp_path / left[0].replace(f".{child.pid}.", f".{os.getpid()}.")  # a live writer's: kept
    alive.write_bytes(b"")
    unrelated = tmp_path / ".w.safetensors.notes.tmp"
    unrelated.write_bytes(b"")
    nn.save({"w": tt.ones(2)}, path)
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, unrelated.name, "w.safetensors"])
