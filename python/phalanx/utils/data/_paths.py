"""The file paths data sets and readers are given, checked once where they come in."""

from __future__ import annotations

import os


def fs_path(path, what: str):
    """os.fspath(path), refusing a NUL byte as open() does.

    The OS reads a path only up to its first NUL, so "data\\0x" would name "data"; and
    os.path.isdir/isfile answer False for such paths, which would be misreported as a missing
    file. `what` names the argument in the error ("CIFAR10 root").
    """
    p = os.fspath(path)
    if ("\0" if isinstance(p, str) else b"\0") in p:
        raise ValueError(f"{what}: embedded null byte in path {p!r}")
    return p
