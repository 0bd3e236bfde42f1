"""Constructor argument checks for layers: a bad value is refused when the layer is built,
naming the argument and its value, rather than at the first forward (or by oneDNN)."""

from __future__ import annotations

from ... import _C

# oneDNN keeps window geometry in 32-bit integers: the C++ ops' limit (csrc/ops/window_args.h).
MAX_WINDOW_ARG = _C.nn.max_window_arg


def _values(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def check_window(layer: str, name: str, value, minimum: int) -> None:
    """Each of `value` (an int or a pair) lies in [minimum, MAX_WINDOW_ARG]."""
    for v in _values(value):
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
        if v < minimum or v > MAX_WINDOW_ARG:
            kind = "positive" if minimum > 0 else "non-negative"
            raise ValueError(
                f"{layer}: {name} must be {kind} and at most {MAX_WINDOW_ARG}, got {value!r}"
            )


def check_count(layer: str, name: str, value) -> None:
    """A feature or channel count: a non-negative int."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative int, got {value!r}")


def check_pool_padding(layer: str, kernel_size, padding) -> None:
    """PyTorch's rule: padding at most half the kernel, so every window sees some input."""
    kernels, pads = _values(kernel_size), _values(padding)
    if len(kernels) == 1:
        kernels = kernels * len(pads)
    if len(pads) == 1:
        pads = pads * len(kernels)
    for k, p in zip(kernels, pads):
        if p > k // 2:
            raise ValueError(
                f"{layer}: padding should be at most half of kernel size, "
                f"but got padding={padding!r} and kernel_size={kernel_size!r}"
            )
