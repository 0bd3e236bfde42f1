"""phalanx.save / phalanx.load: torch.save's everyday use, without pickle.

What can be saved: tensors (every dtype, any shape; strided or oneDNN-blocked ones are stored
contiguous), dict (str or int keys; OrderedDict and other subclasses keep their order and load
as dict), list, tuple, str, bytes, int (any size), float (nan, inf and -0.0 exactly), bool,
None, and numpy scalars (loaded as Python numbers). Anything else raises TypeError naming its
type and where it sits (``obj['optim']['state'][0]``). Loading builds data and never runs code.

Tensors are stored as raw bytes with their dtype, shape and requires_grad. The same tensor
object appearing twice is stored once and loads as one object; different tensors that share
storage (views, tied weights made with views) are stored as separate copies and load
unshared. nn.Parameter (or any Tensor subclass) loads as a plain Tensor.

A save is atomic: it writes a temporary file beside the target, syncs it and renames it over
the target, so an interrupted save leaves the previous file intact, also when threads or
processes save the same path concurrently (the last rename wins). On Linux the temporary has
no name until it is complete (O_TMPFILE), so a save killed with SIGKILL leaves nothing behind;
elsewhere it is ``<path>.tmp.<pid>.<n>``, and the next save of the path deletes those whose
process is gone. A path containing a NUL byte raises ValueError, as open() does. The format (one
stream of length-prefixed protobuf records, checksummed) is described in
csrc/io/checkpoint.proto; files may exceed protobuf's 2 GiB message limit.
"""

from __future__ import annotations

import os

from . import _C

__all__ = ["save", "load"]

_DEFAULT_CHUNK_BYTES = 32 << 20


def save(obj, f, *, _chunk_bytes: int = _DEFAULT_CHUNK_BYTES, _named_temp: bool = False) -> None:
    """Saves `obj` to the file path `f` (str or os.PathLike), replacing it atomically.

    Testing only: `_chunk_bytes` caps the bytes of one tensor record (larger tensors are split);
    `_named_temp` uses the named temporary file of systems without O_TMPFILE.
    """
    found = _module_inside(obj, "obj")
    if found is not None:
        where, what = found
        raise TypeError(
            f"phalanx.save: {where} is a {type(what).__name__} object; phalanx saves data, "
            "never code, so a whole model or optimizer cannot be saved. Save its state instead: "
            "phalanx.save(model.state_dict(), path), and later build the model and call "
            "model.load_state_dict(phalanx.load(path)) (the same for an optimizer)"
        )
    _C.io.save(obj, _fs_path(f, "save"), _chunk_bytes, _named_temp)


def _module_inside(obj, path: str, depth: int = 0):
    """(path, object) of the first nn.Module or optimizer in obj's dicts, lists and tuples (a
    few levels deep), or None."""
    from .nn import Module
    from .optim import Optimizer

    if isinstance(obj, (Module, Optimizer)):
        return path, obj
    if depth < 4 and isinstance(obj, dict):
        for k, v in obj.items():
            found = _module_inside(v, f"{path}[{k!r}]", depth + 1)
            if found:
                return found
    if depth < 4 and isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _module_inside(v, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def load(
    f,
    map_location=None,
    pickle_module=None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
    **pickle_load_args,
):
    """Loads what `save` wrote. Dicts come back as plain (insertion-ordered) dicts.

    torch.load's keywords are accepted: `map_location` may be None, "cpu", phalanx.device("cpu"),
    a dict mapping locations to "cpu", or a function (tensors load on the CPU, where phalanx
    computes); `weights_only` is always satisfied (loading never unpickles); `mmap`,
    `pickle_module` and pickle's load arguments have nothing to act on here.
    """
    _check_map_location(map_location)
    return _C.io.load(_fs_path(f, "load"))


def _check_map_location(map_location) -> None:
    from ._device import check_device

    if map_location is None or callable(map_location):
        return
    if isinstance(map_location, dict):
        for target in map_location.values():
            check_device(target, "phalanx.load(map_location=...)")
        return
    if not isinstance(map_location, str) and type(map_location).__name__ != "device":
        raise TypeError(
            "phalanx.load: map_location must be None, a device, a string, a dict or a "
            f"function, got {type(map_location).__name__}"
        )
    check_device(map_location, "phalanx.load(map_location=...)")


def _fs_path(f, op: str) -> bytes:
    # Bytes, not str: any path the OS accepts (undecodable names included) reaches C++ intact.
    if not isinstance(f, (str, bytes, os.PathLike)):
        raise TypeError(
            f"phalanx.{op}: expected a file path (str or os.PathLike), "
            f"got {type(f).__name__}; file objects are not supported"
        )
    return os.fsencode(f)
