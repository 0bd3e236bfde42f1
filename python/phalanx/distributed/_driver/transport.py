"""What phalanx.distributed.run sends between the driver and its ranks, and how.

Functions, classes and closures go by value with cloudpickle, so what a notebook or a
script's __main__ defines works on the ranks (and a class shipped out and returned comes
back as the driver's own class: cloudpickle tracks classes it sent by id). phalanx tensors
are not picklable (phalanx.save never pickles); here they travel as numpy arrays and are
rebuilt with their dtype, requires_grad and class (Tensor or nn.Parameter).

The bytes move through the launcher's rendezvous store, which already connects the driver
and every rank (locally or over ssh) and checks the job's token. One store value holds at
most 16 MiB, so a blob is stored as numbered chunks plus a count written last: a reader
that sees the count sees every chunk.
"""

from __future__ import annotations

import io
import pickle
import sys

import cloudpickle

CHUNK = 8 << 20  # bytes per store value (the store's maximum is 16 MiB)
# Store keys, under the job's namespace (TCPStore.key_prefix("run", ...)).
PAYLOAD = "payload"  # the driver's (fn, args, kwargs)
FAILURES = "failures"  # counter: the order in which ranks failed


def result_key(rank: int) -> str:
    return f"result/{rank}"


def error_key(rank: int) -> str:
    return f"error/{rank}"


def _rebuild_tensor(array, dtype_name: str, requires_grad: bool, cls):
    import phalanx

    t = phalanx.from_numpy(array)
    if t.dtype.name != dtype_name:  # bfloat16 travels as float32 (numpy has no bfloat16)
        t = t.to(getattr(phalanx, dtype_name))
    if cls is not phalanx.Tensor:  # nn.Parameter
        return cls(t, requires_grad=requires_grad)
    return t.requires_grad_(True) if requires_grad else t


class _Pickler(cloudpickle.CloudPickler):
    def reducer_override(self, obj):
        tensor = _tensor_class()
        if tensor is not None and isinstance(obj, tensor):
            return _reduce_tensor(obj)
        return super().reducer_override(obj)


def _tensor_class():
    phalanx = sys.modules.get("phalanx")  # not imported: no tensor can be in the object
    return getattr(phalanx, "Tensor", None)


def _reduce_tensor(t):
    import phalanx
    from phalanx.nn import Parameter

    if type(t) not in (phalanx.Tensor, Parameter):
        raise pickle.PicklingError(
            f"cannot send a {type(t).__qualname__} (a phalanx.Tensor subclass other than "
            "nn.Parameter); send a plain tensor"
        )
    data = t.detach()
    array = (data.float() if data.dtype == phalanx.bfloat16 else data).numpy().copy()
    return _rebuild_tensor, (array, t.dtype.name, bool(t.requires_grad), type(t))


def dumps(obj) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def loads(data: bytes):
    return pickle.loads(data)


def put(store, key: str, data: bytes) -> None:
    """Stores `data` under `key` as chunks of at most CHUNK bytes, the count last."""
    count = max(1, -(-len(data) // CHUNK))
    for i in range(count):
        store.set(f"{key}/{i}", data[i * CHUNK : (i + 1) * CHUNK])
    store.set(f"{key}/count", str(count))


def has(store, key: str) -> bool:
    return store.check([f"{key}/count"])


def get(store, key: str) -> bytes:
    """The blob put() stored under `key`; waits for it up to the store's timeout."""
    count = int(store.get(f"{key}/count"))
    return b"".join(store.get(f"{key}/{i}") for i in range(count))
