"""Saving tensors and training checkpoints in the safetensors format (never pickle).

    save(model.state_dict(), "model.safetensors")
    model.load_state_dict(load("model.safetensors", device="cuda"))

    save_checkpoint("ckpt.safetensors", model=model, optimizer=opt, scheduler=sched, extra={"epoch": 3})
    extra = load_checkpoint("ckpt.safetensors", model=model, optimizer=opt, scheduler=sched)

A checkpoint is one safetensors file: the model's tensors under "model.<name>", the optimizer's state
tensors under "optimizer.state.<index>.<name>", and everything else (optimizer hyper-parameters and step
counts, the scheduler, tinytensor's random-generator state, ``extra``) as JSON in the file's metadata.
Restoring all of it makes training continue exactly as if it had never stopped.

In a job of several processes (``tinytensor.distributed``) every rank calls ``save_checkpoint``: rank 0
writes the file, the others wait until it is written (and raise rank 0's error if it failed), and the
file keeps every rank's RNG state, so that resuming on the same number of ranks continues exactly.
Every rank then reads the same file with ``load_checkpoint``.

Every write is atomic: the bytes go to a temporary file in the same directory, are flushed to disk, and
the temporary file then replaces the target in one step (the directory is flushed too). A crash leaves the
old file untouched. The new file gets the permissions a plain ``open(path, "w")`` would give (0666 less the
umask), a replaced file keeps its own; a symbolic link is followed, so its target is replaced and the link
stays. A writer that fails removes its temporary file; one killed outright (SIGKILL, power loss) leaves it
as ``.<name>.<host>.<pid>.<random>.tmp``, which the next save to the same path deletes once that process is
gone.

Loading is all or nothing: ``load_checkpoint`` checks the model's, the optimizer's and the scheduler's
state (every key, shape, dtype and device), the RNG state and ``extra`` before it writes anything, and on
any error nothing has changed. A file that is not a valid checkpoint raises ``CheckpointError`` (a
ValueError) naming the file and the entry.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import stat

import numpy as np
import safetensors.numpy

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.backends import for_device
from tinytensor.dtypes import DTYPES

FORMAT = "tinytensor.checkpoint"
VERSION = 1


# ---- files --------------------------------------------------------------------------------------

class CheckpointError(ValueError):
    """A file that is not a valid (tinytensor) safetensors file or checkpoint; names the file and entry."""


class MissingEntryError(CheckpointError, KeyError):
    """A checkpoint without the section or entry asked for (also a KeyError)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _tmp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}."


def _remove_stale_temps(path: str) -> None:
    """Delete the temporary files that writers to ``path`` on this host left when they were killed."""
    if os.name != "posix":  # os.kill(pid, 0) only probes on POSIX
        return
    directory, prefix, host = os.path.dirname(path), _tmp_prefix(path), socket.gethostname()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix):-len(".tmp")].rsplit(".", 2)  # host, pid, random
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
            continue  # the writer is alive (perhaps writing right now)
        except ProcessLookupError:
            pass
        except (OSError, OverflowError):  # PermissionError: alive, another user's; or not a pid
            continue
        try:
            os.unlink(os.path.join(directory, name))
        except OSError:
            pass


def _atomic_write(path, data: bytes) -> None:
    """Write data to path so that readers see either the old file or the whole new one."""
    path = os.path.realpath(os.fspath(path))  # through a symlink: replace its target, keep the link
    directory = os.path.dirname(path)
    _remove_stale_temps(path)
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    tmp = os.path.join(directory, f"{_tmp_prefix(path)}{socket.gethostname()}.{os.getpid()}."
                                  f"{secrets.token_hex(4)}.tmp")
    # O_EXCL: never follow or reuse another file; mode 0o666 is reduced by the umask, as open() does
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None:  # a replaced file keeps its permissions (and owner, where allowed)
                os.chmod(tmp, stat.S_IMODE(old.st_mode))
                if hasattr(os, "chown") and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
                    try:
                        os.chown(tmp, old.st_uid, old.st_gid)
                    except OSError:
                        pass
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); not possible everywhere, and not needed for safety
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _to_host(name: str, value) -> np.ndarray:
    if not isinstance(value, Tensor):
        raise TypeError(f"save: {name!r} is a {type(value).__name__}, expected a Tensor")
    return np.require(value.numpy(), requirements="C")  # (ascontiguousarray would make 0-d arrays 1-d)


def save(state_dict: dict, path, metadata: dict | None = None) -> None:
    """Write {name: Tensor} to path as safetensors (atomically); metadata is {str: str}."""
    arrays = {}
    for name, value in state_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        arrays[name] = _to_host(name, value)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise TypeError("save: metadata must map strings to strings (encode other values with json.dumps)")
    _atomic_write(path, safetensors.numpy.save(arrays, metadata=metadata))


def _read(path) -> tuple[dict, dict]:
    """(arrays, metadata) from a safetensors file."""
    with open(os.fspath(path), "rb") as f:
        raw = f.read()
    try:
        arrays = safetensors.numpy.load(raw)
        n = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + n])
    except Exception as e:  # safetensors' own error type, or the header's JSON
        raise CheckpointError(f"load: {os.fspath(path)!r} is not a valid safetensors file ({e})") from e
    return arrays, header.get("__metadata__") or {}


def _tensor(name: str, array: np.ndarray, device, path: str) -> Tensor:
    if array.dtype.name not in DTYPES:
        raise TypeError(f"load: tensor {name!r} in {path!r} has dtype {array.dtype}, which tinytensor "
                        f"does not support")
    backend = for_device(device)
    try:
        return Tensor(backend.from_host(np.require(array, requirements="C")), backend)
    except TypeError as e:
        raise TypeError(
            f"load: tensor {name!r} ({array.dtype}) in {path!r} cannot be placed on {backend.device}: {e}"
        ) from e


def load(path, device="cpu") -> dict:
    """Read a safetensors file into {name: Tensor} on device."""
    arrays, _ = _read(path)
    return {name: _tensor(name, a, device, os.fspath(path)) for name, a in arrays.items()}


def load_metadata(path) -> dict:
    """The {str: str} metadata stored in a safetensors file."""
    return _read(path)[1]


# ---- checkpoints ------------------------------------------------------------------------------

def _encode(value):
    """JSON-ready copy; tuples are tagged so they come back as tuples (Adam's betas)."""
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, Tensor):
        raise TypeError("checkpoint: tensors are only supported in model and optimizer state, not in extra")
    return value


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _dumps(what: str, value) -> str:
    try:
        return json.dumps(_encode(value))
    except TypeError as e:
        raise TypeError(f"save_checkpoint: {what} must be JSON-serializable (numbers, strings, lists, "
                        f"dicts): {e}") from e


def _job():
    """(rank, world size) of the running distributed job, or None outside one (or in a world of one)."""
    import sys

    dist = sys.modules.get("tinytensor.distributed")
    if dist is None or not dist.is_initialized() or dist.get_world_size() == 1:
        return None
    return dist.get_rank(), dist.get_world_size()


def _gather(obj) -> list:
    """Every rank's ``obj``, in rank order (a collective: every rank calls it)."""
    from tinytensor import distributed as dist

    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, obj)
    return everyone


def save_checkpoint(path, model=None, optimizer=None, scheduler=None, extra: dict | None = None) -> None:
    """Save model, optimizer and scheduler state, tinytensor's RNG state and ``extra`` (JSON) to one file.

    In a distributed job every rank calls it; rank 0 writes, with every rank's RNG state."""
    job = _job()
    tensors: dict[str, Tensor] = {}
    meta = {"format": FORMAT, "version": str(VERSION), "rng": _dumps("the RNG state", tt.get_rng_state())}
    if job is not None:
        meta["rng_ranks"] = _dumps("the RNG states", _gather(tt.get_rng_state()))
    if model is not None:
        for name, t in model.state_dict().items():
            tensors[f"model.{name}"] = t
        meta["model"] = "1"
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars = {}
        for idx, state in sd["state"].items():
            for name, v in state.items():
                if isinstance(v, Tensor):
                    tensors[f"optimizer.state.{idx}.{name}"] = v
                else:
                    scalars.setdefault(str(idx), {})[name] = v
        meta["optimizer"] = _dumps("the optimizer state",
                                   {"param_groups": sd["param_groups"], "scalars": scalars})
    if scheduler is not None:
        meta["scheduler"] = _dumps("the scheduler state", scheduler.state_dict())
    if extra is not None:
        meta["extra"] = _dumps("extra", extra)
    if job is None:
        save(tensors, path, metadata=meta)
        return
    error = None
    if job[0] == 0:
        try:
            save(tensors, path, metadata=meta)
        except Exception as e:  # every rank must hear of it, or the others would go on without the file
            error = e
    failure = _gather(None if error is None else f"{type(error).__name__}: {error}")[0]
    if error is not None:
        raise error
    if failure is not None:
        raise CheckpointError(f"save_checkpoint: rank 0 failed to write {os.fspath(path)!r}: {failure}")


def _section(path: str, meta: dict, key: str):
    """The JSON section ``key`` of a checkpoint's metadata, decoded."""
    if key not in meta:
        raise MissingEntryError(f"load_checkpoint: {path!r} holds no {key} state")
    try:
        return _decode(json.loads(meta[key]))
    except (json.JSONDecodeError, TypeError) as e:
        raise CheckpointError(f"load_checkpoint: {path!r}: the metadata entry {key!r} is corrupt "
                              f"(not JSON: {e})") from e


def _optimizer_state(path: str, arrays: dict, meta: dict) -> dict:
    """The optimizer's state_dict as stored: scalars in the metadata, tensors as
    ``optimizer.state.<index>.<name>``."""
    info = _section(path, meta, "optimizer")
    if not (isinstance(info, dict) and isinstance(info.get("param_groups"), list)
            and isinstance(info.get("scalars"), dict)):
        raise CheckpointError(f"load_checkpoint: {path!r}: the metadata entry 'optimizer' is corrupt "
                              f"(expected 'param_groups' and 'scalars')")
    state: dict = {}
    for i, s in info["scalars"].items():
        if not (i.isdigit() and isinstance(s, dict)):
            raise CheckpointError(f"load_checkpoint: {path!r}: the optimizer scalars of {i!r} are corrupt")
        state[int(i)] = dict(s)
    for k, a in arrays.items():
        if k.startswith("optimizer.state."):
            idx, _, name = k[len("optimizer.state."):].partition(".")
            if not (idx.isdigit() and name):
                raise CheckpointError(f"load_checkpoint: {path!r}: the entry {k!r} is not named "
                                      f"optimizer.state.<index>.<name>")
            state.setdefault(int(idx), {})[name] = _tensor(k, a, "cpu", path)
    return {"state": state, "param_groups": info["param_groups"]}


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, strict: bool = True,
                    restore_rng: bool = True, device=None):
    """Restore what save_checkpoint stored into the given objects; returns ``extra`` (or None).

    All or nothing: everything is checked before anything is written. Model tensors are loaded onto
    ``device`` (default: where the model's parameters are)."""
    path = os.fspath(path)
    arrays, meta = _read(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"load_checkpoint: {path!r} is not a tinytensor checkpoint (use load())")
    if meta.get("version") != str(VERSION):
        raise CheckpointError(f"load_checkpoint: {path!r} has version {meta.get('version')!r}; this "
                              f"tinytensor reads version {VERSION}")
    writes = []  # each checked, none run until all are
    if model is not None:
        if "model" not in meta:
            raise MissingEntryError(f"load_checkpoint: {path!r} holds no model state")
        if device is None:
            first = next(iter(model.state_dict().values()), None)
            device = first.device if first is not None else "cpu"
        state = {k[len("model."):]: _tensor(k, a, device, path)
                 for k, a in arrays.items() if k.startswith("model.")}
        writes.append(model._prepare_load(state, strict=strict, source=path))
    if optimizer is not None:
        sd = _optimizer_state(path, arrays, meta)
        writes.append(optimizer._prepare_load(sd, source=path,
                                              entry=lambda idx, name: f"optimizer.state.{idx}.{name}"))
    if scheduler is not None:
        sched = _section(path, meta, "scheduler")
        own = scheduler.state_dict()
        if not isinstance(sched, dict) or sched.keys() != own.keys():
            got = sorted(sched) if isinstance(sched, dict) else type(sched).__name__
            raise CheckpointError(f"load_checkpoint: {path!r}: the scheduler state holds {got}, "
                                  f"{type(scheduler).__name__} has {sorted(own)}")
        writes.append(lambda: scheduler.load_state_dict(sched))
    if restore_rng:
        rng = _section(path, meta, "rng")
        job = _job()
        if job is not None and "rng_ranks" in meta:  # each rank continues with its own stream
            ranks = _section(path, meta, "rng_ranks")
            if not isinstance(ranks, list):
                raise CheckpointError(f"load_checkpoint: {path!r}: the metadata entry 'rng_ranks' is corrupt")
            if len(ranks) == job[1]:
                rng = ranks[job[0]]
        try:  # the state a generator accepts: try it on a scratch one first
            np.random.default_rng().bit_generator.state = rng
        except (TypeError, ValueError, KeyError) as e:
            raise CheckpointError(f"load_checkpoint: {path!r}: the metadata entry 'rng' is corrupt "
                                  f"({e})") from e
        writes.append(lambda: tt.set_rng_state(rng))
    extra = _section(path, meta, "extra") if "extra" in meta else None
    for write in writes:
        write()
    return extra


__all__ = ["save", "load", "load_metadata", "save_checkpoint", "load_checkpoint", "CheckpointError",
           "MissingEntryError"]
