"""Saving tensors and training checkpoints in the safetensors format (never pickle).

    save(model.state_dict(), "model.safetensors")
    model.load_state_dict(load("model.safetensors", device="cuda"))

    save_checkpoint("ckpt.safetensors", model=model, optimizer=opt, scheduler=sched, extra={"epoch": 3})
    extra = load_checkpoint("ckpt.safetensors", model=model, optimizer=opt, scheduler=sched)

A checkpoint is one safetensors file: the model's tensors under "model.<name>", the optimizer's state
tensors under "optimizer.state.<index>.<name>", and everything else (optimizer hyper-parameters and step
counts, the scheduler, tinytensor's random-generator state, ``extra``) as JSON in the file's metadata.
Restoring all of it makes training continue exactly as if it had never stopped.

Every write is atomic: the bytes go to a temporary file in the same directory, are flushed to disk, and
the temporary file then replaces the target in one step. A crash leaves the old file untouched.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import safetensors.numpy

import tinytensor as tt
from tinytensor import Tensor
from tinytensor.backends import for_device

FORMAT = "tinytensor.checkpoint"
VERSION = 1


# ---- files --------------------------------------------------------------------------------------

def _atomic_write(path, data: bytes) -> None:
    """Write data to path so that readers see either the old file or the whole new one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
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
    except Exception as e:
        raise ValueError(f"load: {os.fspath(path)!r} is not a valid safetensors file ({e})") from e
    return arrays, header.get("__metadata__") or {}


def _tensor(name: str, array: np.ndarray, device) -> Tensor:
    if array.dtype.name not in ("float16", "float32", "float64", "int32", "int64", "bool"):
        raise TypeError(f"load: tensor {name!r} has dtype {array.dtype}, which tinytensor does not support")
    backend = for_device(device)
    try:
        return Tensor(backend.from_host(np.require(array, requirements="C")), backend)
    except TypeError as e:
        raise TypeError(
            f"load: tensor {name!r} ({array.dtype}) cannot be placed on {backend.device}: {e}"
        ) from e


def load(path, device="cpu") -> dict:
    """Read a safetensors file into {name: Tensor} on device."""
    arrays, _ = _read(path)
    return {name: _tensor(name, a, device) for name, a in arrays.items()}


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


def save_checkpoint(path, model=None, optimizer=None, scheduler=None, extra: dict | None = None) -> None:
    """Save model, optimizer and scheduler state, tinytensor's RNG state and ``extra`` (JSON) to one file."""
    tensors: dict[str, Tensor] = {}
    meta = {"format": FORMAT, "version": str(VERSION), "rng": _dumps("the RNG state", tt.get_rng_state())}
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
    save(tensors, path, metadata=meta)


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, strict: bool = True,
                    restore_rng: bool = True, device=None):
    """Restore what save_checkpoint stored into the given objects; returns ``extra`` (or None).

    Model tensors are loaded onto ``device`` (default: where the model's parameters are).
    """
    arrays, meta = _read(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} is not a tinytensor checkpoint (use load())")
    if model is not None:
        if "model" not in meta:
            raise KeyError(f"load_checkpoint: {os.fspath(path)!r} holds no model state")
        if device is None:
            first = next(iter(model.state_dict().values()), None)
            device = first.device if first is not None else "cpu"
        state = {k[len("model."):]: _tensor(k, a, device)
                 for k, a in arrays.items() if k.startswith("model.")}
        model.load_state_dict(state, strict=strict)
    if optimizer is not None:
        if "optimizer" not in meta:
            raise KeyError(f"load_checkpoint: {os.fspath(path)!r} holds no optimizer state")
        info = _decode(json.loads(meta["optimizer"]))
        state: dict = {int(i): dict(s) for i, s in info["scalars"].items()}
        for k, a in arrays.items():
            if k.startswith("optimizer.state."):
                idx, name = k[len("optimizer.state."):].split(".", 1)
                state.setdefault(int(idx), {})[name] = _tensor(k, a, "cpu")
        optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    if scheduler is not None:
        if "scheduler" not in meta:
            raise KeyError(f"load_checkpoint: {os.fspath(path)!r} holds no scheduler state")
        scheduler.load_state_dict(_decode(json.loads(meta["scheduler"])))
    if restore_rng:
        tt.set_rng_state(json.loads(meta["rng"]))
    return _decode(json.loads(meta["extra"])) if "extra" in meta else None


__all__ = ["save", "load", "load_metadata", "save_checkpoint", "load_checkpoint"]
