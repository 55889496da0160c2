"""``tinytensor.device``: PyTorch's ``torch.device``, a device name with ``.type`` and ``.index``."""
from __future__ import annotations


class device(str):
    """A device such as ``device("cpu")``, ``device("cuda", 1)`` or ``device("cuda:1")``.

    It is a ``str`` holding the canonical name (``"cpu"``, ``"cuda:0"``), so it compares equal to that
    name and goes wherever a device string does; its repr is the string's (``'cuda:0'``, where PyTorch
    prints ``device(type='cuda', index=0)``). ``device("cuda")`` is ``cuda:0`` (index 0), where PyTorch
    leaves the index unset and means the current GPU.
    """

    def __new__(cls, type_or_name, index: int | None = None):
        if isinstance(type_or_name, device) and index is None:
            return type_or_name
        name = str(type_or_name)
        kind, sep, given = name.partition(":")
        if index is not None:
            if sep:
                raise RuntimeError(f"device(): type {name!r} already has an index; pass 'cuda' and an index")
            given = str(index)
        if given and not given.isdigit():
            raise RuntimeError(f"device(): invalid device string {name!r} (expected e.g. 'cpu', 'cuda:0')")
        if kind == "cuda":
            given = given or "0"
        elif kind == "cpu":
            given = ""
        return super().__new__(cls, f"{kind}:{given}" if given else kind)

    @property
    def type(self) -> str:
        """The device type: "cpu" or "cuda"."""
        return self.partition(":")[0]

    @property
    def index(self) -> int | None:
        """The device index (``cuda:1`` → 1), None for the CPU."""
        index = self.partition(":")[2]
        return int(index) if index else None

    def __reduce__(self):
        return (device, (str(self),))
