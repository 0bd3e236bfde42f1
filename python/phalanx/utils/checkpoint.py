"""Checkpoint: save a training run's whole state and resume it bit-for-bit.

    ckpt = Checkpoint("runs/exp1/", model=model, optimizer=opt, scheduler=sched, keep_last=3)
    if ckpt.latest() is not None:
        start = ckpt.load()["step"] + 1
    for step in range(start, steps):
        ...
        ckpt.save(step=step, epoch=epoch, loss=float(loss))

Anything with state_dict()/load_state_dict() can be registered (model, optimizer, scheduler,
data loader, or any keyword). Besides their states a checkpoint holds the random generators
that training consumes: phalanx's default generator (randn, dropout), numpy's global one and
Python's `random`, so a run stopped and resumed draws the same numbers as one that never
stopped. The file is written with phalanx.save: atomic, checksummed, no pickle. Its layout is
the convention documented in csrc/io/checkpoint.proto.
"""

from __future__ import annotations

import errno
import os
import random
import re

import numpy as np

from .. import _C
from ..serialization import load as _load
from ..serialization import save as _save

__all__ = ["Checkpoint"]

_FORMAT = "phalanx.Checkpoint"
_VERSION = 1
_FILE_RE = re.compile(r"^checkpoint-(\d+)\.phx$")


class Checkpoint:
    """Saves and restores registered objects plus the random generators' states.

    `path` is either a file (each save replaces it) or a directory (trailing separator or an
    existing directory) holding ``checkpoint-<step>.phx`` files, of which `keep_last` (if set)
    are kept. With `rng=False` the generators are neither saved nor restored.
    """

    def __init__(
        self,
        path,
        model=None,
        optimizer=None,
        scheduler=None,
        loader=None,
        *,
        keep_last: int | None = None,
        rng: bool = True,
        **extra,
    ):
        self.path = os.fspath(path)
        if "\0" in self.path:  # the OS would see the path only up to the NUL byte
            raise ValueError(f"Checkpoint: embedded null byte in path {self.path!r}")
        self.is_dir = os.path.isdir(self.path) or self.path.endswith((os.sep, "/"))
        if keep_last is not None and (not self.is_dir or keep_last < 1):
            raise ValueError(
                "Checkpoint: keep_last needs a directory path (end it with '/') and "
                f"a count >= 1, got path {self.path!r}, keep_last={keep_last!r}"
            )
        self.keep_last = keep_last
        self.rng = rng
        named = dict(model=model, optimizer=optimizer, scheduler=scheduler, loader=loader, **extra)
        self.objects = {name: obj for name, obj in named.items() if obj is not None}
        for name, obj in self.objects.items():
            if not (
                callable(getattr(obj, "state_dict", None))
                and callable(getattr(obj, "load_state_dict", None))
            ):
                raise TypeError(
                    f"Checkpoint: {name}={type(obj).__name__} has no "
                    "state_dict()/load_state_dict(), so it can't be saved and restored"
                )

    def save(self, step: int | None = None, epoch: int | None = None, **metadata) -> str:
        """Writes a checkpoint and returns its path. `metadata` is free-form (saveable values)."""
        target = self._next_path(step)
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        tree = {
            "format": _FORMAT,
            "version": _VERSION,
            "step": step,
            "epoch": epoch,
            "state": {name: obj.state_dict() for name, obj in self.objects.items()},
            "rng": _rng_state() if self.rng else None,
            "metadata": metadata,
        }
        _save(tree, target)
        self._prune()
        return target

    def load(self, path=None) -> dict:
        """Restores every registered object (and the generators) from `path`, or the latest
        checkpoint; returns {"step", "epoch", **metadata} as given to save()."""
        path = os.fspath(path) if path is not None else self.latest()
        if path is None:
            raise FileNotFoundError(
                errno.ENOENT, "Checkpoint: no checkpoint-<step>.phx file in", self.path
            )
        tree = _load(path)
        _check_layout(tree, path, with_rng=self.rng)  # before anything is restored
        states = tree["state"]
        missing = [name for name in self.objects if name not in states]
        if missing:
            raise ValueError(
                f"Checkpoint: '{path}' holds no state for {missing} (it has {list(states)})"
            )
        for name, obj in self.objects.items():  # registration order: model before optimizer
            obj.load_state_dict(states[name])
        if self.rng:
            _set_rng_state(tree["rng"])
        return {"step": tree["step"], "epoch": tree["epoch"], **tree["metadata"]}

    restore = load

    def latest(self) -> str | None:
        """The checkpoint load() would read, or None if there is none yet."""
        if not self.is_dir:
            return self.path if os.path.isfile(self.path) else None
        found = self._existing()
        return found[-1][1] if found else None

    def _existing(self) -> list[tuple[int, str]]:
        if not os.path.isdir(self.path):
            return []
        files = ((_FILE_RE.match(name), name) for name in os.listdir(self.path))
        return sorted((int(m.group(1)), os.path.join(self.path, name)) for m, name in files if m)

    def _next_path(self, step: int | None) -> str:
        if not self.is_dir:
            return self.path
        if step is None:  # without a step, number the files in order
            found = self._existing()
            step = found[-1][0] + 1 if found else 0
        if step < 0:
            raise ValueError(f"Checkpoint: step must be >= 0 to name a file, got {step}")
        return os.path.join(self.path, f"checkpoint-{step:08d}.phx")

    def _prune(self) -> None:
        if self.keep_last is None:
            return
        for _, old in self._existing()[: -self.keep_last]:
            os.remove(old)


def _check_layout(tree, path: str, with_rng: bool) -> None:
    """ValueError naming `path` and the entry unless `tree` has Checkpoint's layout: a file
    edited, produced by another tool or by a buggy save must fail here with a message, not
    with a KeyError deep inside a restore."""
    if not (isinstance(tree, dict) and tree.get("format") == _FORMAT):
        raise ValueError(f"Checkpoint: '{path}' was written by phalanx.save, not by Checkpoint")

    def bad(entry: str, expected: str, value) -> ValueError:
        return ValueError(
            f"Checkpoint: '{path}' is malformed: {entry} should be {expected}, "
            f"got {_describe(value)}"
        )

    version = tree.get("version")
    if type(version) is not int:
        raise bad("'version'", "an int", version)
    if version > _VERSION:
        raise ValueError(
            f"Checkpoint: '{path}' has layout version {version}; "
            f"this phalanx reads up to {_VERSION}"
        )
    for key, kinds, expected in (
        ("state", dict, "a dict"),
        ("metadata", dict, "a dict"),
        ("step", (int, type(None)), "an int or None"),
        ("epoch", (int, type(None)), "an int or None"),
    ):
        if key not in tree:
            raise ValueError(f"Checkpoint: '{path}' is malformed: it has no '{key}' entry")
        if not isinstance(tree[key], kinds):
            raise bad(f"'{key}'", expected, tree[key])
    if not with_rng:
        return
    rng = tree.get("rng")
    if rng is None:
        raise ValueError(
            f"Checkpoint: '{path}' was saved without generator states; pass rng=False to restore it"
        )
    if not isinstance(rng, dict):
        raise bad("'rng'", "a dict of generator states", rng)
    missing = [name for name in ("phalanx", "numpy", "python") if name not in rng]
    if missing:
        raise ValueError(
            f"Checkpoint: '{path}' is malformed: its 'rng' entry lacks the generator state of "
            f"{missing} (it has {sorted(rng, key=str)}); pass rng=False to restore the rest"
        )
    if not isinstance(rng["phalanx"], bytes):
        raise bad("rng['phalanx']", "bytes", rng["phalanx"])
    numpy_state = rng["numpy"]
    if not (
        isinstance(numpy_state, (tuple, list))
        and len(numpy_state) == 5
        and all(isinstance(v, t) for v, t in zip(numpy_state, (str, bytes, int, int, float)))
    ):
        raise bad("rng['numpy']", "(str, bytes, int, int, float)", numpy_state)
    python_state = rng["python"]
    if not (isinstance(python_state, (tuple, list)) and len(python_state) == 3):
        raise bad("rng['python']", "a 3-tuple from random.getstate()", python_state)


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _rng_state() -> dict:
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "phalanx": _C.default_generator().get_state(),
        "numpy": (kind, key.astype("<u4").tobytes(), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    _C.default_generator().set_state(state["phalanx"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(
        (kind, np.frombuffer(key, dtype="<u4").astype(np.uint32), pos, has_gauss, gauss)
    )
    random.setstate(state["python"])
