"""Devices as PyTorch scripts name them, with honest answers: phalanx computes on the CPU only.

The universal preamble ``device = torch.device("cuda" if torch.cuda.is_available() else "cpu")``
runs unchanged and picks the CPU; asking for any other device raises the error PyTorch's CPU
build raises (AssertionError), which is here also a RuntimeError.
"""

from __future__ import annotations

import re

_KNOWN_TYPES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "mkldnn", "ipu", "privateuseone")


class DeviceUnavailableError(AssertionError, RuntimeError, ValueError):
    """A device other than the CPU was asked for. PyTorch's CPU build raises AssertionError;
    phalanx raised ValueError before; RuntimeError is what scripts catch around device moves."""


class device:  # noqa: N801 - PyTorch's name
    """``device("cpu")``, ``device("cuda:1")``, ``device("cuda", 0)``; only "cpu" holds tensors."""

    __slots__ = ("_type", "_index")

    def __init__(self, type, index: int | None = None):  # noqa: A002 - PyTorch's name
        if isinstance(type, device):
            self._type, self._index = type._type, type._index
            return
        if isinstance(type, int) and not isinstance(type, bool):
            raise RuntimeError(
                f"device({type}): an integer names a CUDA device, which phalanx has not"
            )
        if not isinstance(type, str):
            raise TypeError(f"device() expects a string such as 'cpu', got {_kind(type)}")
        m = re.fullmatch(r"([a-z_]+)(?::(\d+))?", type)
        if m is None or m.group(1) not in _KNOWN_TYPES:
            raise RuntimeError(
                f"Expected one of {', '.join(_KNOWN_TYPES)} device type at start of device "
                f"string: {type}"
            )
        if m.group(2) is not None and index is not None:
            raise RuntimeError(f"device(): type (string) {type!r} must not include an index")
        self._type = m.group(1)
        self._index = int(m.group(2)) if m.group(2) is not None else index

    @property
    def type(self) -> str:
        return self._type

    @property
    def index(self) -> int | None:
        return self._index

    def __str__(self) -> str:
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __repr__(self) -> str:
        if self._index is None:
            return f"device(type='{self._type}')"
        return f"device(type='{self._type}', index={self._index})"

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, device) and self._type == other._type and self._index == other._index
        )

    def __hash__(self) -> int:
        return hash((self._type, self._index))

    def __reduce__(self):
        return (device, (self._type, self._index))


CPU = device("cpu")


def _kind(value) -> str:
    """A value's type for a message: never its repr, which for a tensor is thousands of
    characters."""
    return type(value).__name__


def check_device(value, op: str) -> None:
    """Accepts None, "cpu", "cpu:0", device("cpu"); raises for any other device."""
    if value is None:
        return
    d = value if isinstance(value, device) else device(value)
    if d.type != "cpu":
        raise DeviceUnavailableError(
            f"{op}: phalanx runs on the CPU only, cannot use device '{d}' "
            "(phalanx.cuda.is_available() is False: pick the device with it, as PyTorch "
            "scripts do)"
        )


class _Accelerator:
    """phalanx.accelerator: the CPU is not an accelerator, so there is none."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def current_accelerator(check_available: bool = False):
        return None

    @staticmethod
    def device_count() -> int:
        return 0


accelerator = _Accelerator()
