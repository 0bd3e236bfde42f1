"""The gradient reducer behind DistributedDataParallel.

Parameters are packed, in reverse registration order (roughly the order backward produces
their gradients), into flat buckets of at most ``bucket_cap`` bytes, one dtype per bucket. As
backward accumulates a parameter's gradient, a post-accumulate hook copies it into its slot;
when a bucket's last slot is filled — and every earlier bucket has been launched, so all ranks
launch buckets in the same order — the bucket is scaled by this rank's weight and handed to the
communication hook, which starts an asynchronous all-reduce on the process group's
communication thread. Backward carries on computing earlier layers meanwhile. A callback at the
end of backward launches what is left (gradients a rank did not produce count as zeros), waits
for every bucket and copies the sums back into ``param.grad``.

The weight is what makes heterogeneous ranks correct: with ``b_r`` samples on rank r and
``B = sum(b_r)``, the gradient of the global mean loss is ``sum_r (b_r / B) * g_r`` where
``g_r`` is rank r's mean-loss gradient. Uniform weighting (1 / world size) is the special case
of equal batches.
"""

from __future__ import annotations

import functools
import time
import weakref

from ... import _C
from ... import distributed as dist
from ..._timeline import recorder as _timeline
from ...autograd import no_grad


class GradBucket:
    """What a communication hook sees: one flat buffer of gradients and where they came from."""

    def __init__(self, index: int, buffer, params, offsets, is_last: bool):
        self._index = index
        self._buffer = buffer
        self._params = params
        self._offsets = offsets
        self._is_last = is_last

    def index(self) -> int:
        return self._index

    def buffer(self):
        return self._buffer

    def parameters(self) -> list:
        return list(self._params)

    def offsets(self) -> list[int]:
        return list(self._offsets)

    def is_last(self) -> bool:
        return self._is_last

    def __repr__(self) -> str:
        return (
            f"GradBucket(index={self._index}, params={len(self._params)}, "
            f"numel={self._buffer.numel()}, dtype={self._buffer.dtype})"
        )


class _Bucket:
    def __init__(self, index: int, params: list, names: list[str]):
        self.index = index
        self.params = params
        self.names = names
        self.offsets = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p.numel()
        self.numel = total
        self.buffer = _C.zeros(total, dtype=params[0].dtype)
        self.filled = [False] * len(params)
        self.pending = len(params)
        self.future = None

    def slot(self, i: int):
        p = self.params[i]
        start = self.offsets[i]
        return self.buffer[start : start + p.numel()].view(*p.shape)

    def reset(self) -> None:
        self.filled = [False] * len(self.params)
        self.pending = len(self.params)
        self.future = None


def _partition(params: list, cap_bytes: int, first_cap_bytes: int) -> list[list[int]]:
    """Indices of `params` (already in reverse order) grouped into buckets: consecutive,
    one dtype each, closed when the next parameter would pass the cap (a parameter larger
    than the cap gets a bucket of its own). The first bucket uses a smaller cap so the first
    all-reduce starts early in backward."""
    buckets: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, p in enumerate(params):
        nbytes = p.numel() * p.element_size()
        cap = first_cap_bytes if not buckets else cap_bytes
        if current and (size + nbytes > cap or params[current[0]].dtype != p.dtype):
            buckets.append(current)
            current, size = [], 0
        current.append(i)
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


# The live reducer whose hooks are on each parameter, by id (the reducer holds its parameters,
# so an id cannot be reused while its entry exists; the entry is weak, so this table never
# keeps a dropped model alive). A parameter can feed one reducer only:
# when a module is wrapped again (PyTorch users re-wrap after loading a checkpoint), the
# older reducer's hooks would run in the new wrapper's backward too, failing it or
# all-reducing every bucket twice, even after the old wrapper was dropped (its hooks keep it
# alive). So a new reducer retires every reducer that shares a parameter with it.
_owners: weakref.WeakValueDictionary[int, Reducer] = weakref.WeakValueDictionary()

RETIRED = (
    "DistributedDataParallel: this wrapper was retired because its module was wrapped again "
    "by a newer DistributedDataParallel; run forward (and register hooks) through the new one"
)


class Reducer:
    def __init__(self, named_params, group, world_size, cap_bytes, first_cap_bytes, hook, state):
        named = list(reversed(named_params))
        params = [p for _, p in named]
        for old in {id(r): r for p in params if (r := _owners.get(id(p)))}.values():
            old.retire()
        self.retired = False
        self._group = group
        self._world_size = world_size
        self._hook = hook
        self._state = state
        self._buckets: list[_Bucket] = []
        self._handles = []
        for index, members in enumerate(_partition(params, cap_bytes, first_cap_bytes)):
            bucket = _Bucket(index, [params[i] for i in members], [named[i][0] for i in members])
            self._buckets.append(bucket)
            for slot, i in enumerate(members):
                hook = functools.partial(self._on_grad, bucket, slot)
                self._handles.append(params[i].register_post_accumulate_grad_hook(hook))
                _owners[id(params[i])] = self
        self._armed = False
        self._local = False  # a no_sync() forward ran: gradients stay local
        self._callback_queued = False
        self._next_launch = 0
        self._weight = 1.0 / world_size
        self._weight_pending = None  # (count tensor, work, local batch) for batch weighting
        self._weight_fn = None  # or a callable giving this rank's weight at the first launch
        # For the balancer: seconds this backward spent waiting for communication, when the
        # backward's computation ended, and callables run after the gradients are written.
        self.comm_wait = 0.0
        self.backward_end = 0.0
        self.after_finish: list = []

    # -- configuration ------------------------------------------------------------------

    def set_hook(self, hook, state) -> None:
        self.check_live()
        self._hook = hook
        self._state = state

    def bucket_names(self) -> list[list[str]]:
        return [list(b.names) for b in self._buckets]

    def retire(self) -> None:
        """Removes this reducer's gradient hooks for good (a newer reducer took over its
        parameters); using it afterwards raises RuntimeError."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for b in self._buckets:
            for p in b.params:
                if _owners.get(id(p)) is self:
                    del _owners[id(p)]
        self.retired = True
        self._armed = self._local = False

    def check_live(self) -> None:
        """Raises RuntimeError once retired."""
        if self.retired:
            raise RuntimeError(RETIRED)

    # -- one iteration ------------------------------------------------------------------

    def prepare(self, local_batch: int | None, weight_fn=None) -> None:
        """Called by forward when the coming backward must synchronise gradients.
        local_batch (batch weighting only): this rank's sample count; the global count is
        summed asynchronously now, while forward runs. weight_fn (instead): called at the
        first bucket launch for this rank's weight (the run-time weighting)."""
        self.check_live()
        for b in self._buckets:
            b.reset()
        self._next_launch = 0
        self._callback_queued = False
        self._armed = True
        self._local = False
        self.comm_wait = 0.0
        self._weight_fn = weight_fn
        if local_batch is None:
            self._weight = 1.0 / self._world_size
            self._weight_pending = None
        else:
            count = _C.zeros(1, dtype=_C.dtype.int64)
            count.fill_(int(local_batch))
            work = dist.all_reduce(count, dist.ReduceOp.SUM, group=self._group, async_op=True)
            self._weight_pending = (count, work, local_batch)

    def _current_weight(self) -> float:
        if self._weight_pending is not None:
            count, work, local = self._weight_pending
            start = time.perf_counter()
            work.wait()
            self.comm_wait += time.perf_counter() - start
            total = count.item()
            self._weight = local / total if total > 0 else 0.0
            self._weight_pending = None
        elif self._weight_fn is not None:
            self._weight = self._weight_fn()
            self._weight_fn = None
        return self._weight

    def prepare_local(self) -> None:
        """Called by a forward under no_sync(): the coming backward accumulates locally."""
        self.check_live()
        self._armed = False
        self._local = True

    def _on_grad(self, bucket: _Bucket, slot: int, param) -> None:
        if not self._armed:
            if self._local:
                return
            raise RuntimeError(
                f"DistributedDataParallel: parameter '{bucket.names[slot]}' got a gradient "
                "outside a synchronised iteration (backward ran twice after one forward, or "
                "the wrapped module was called directly); its gradient would differ between "
                "ranks. Run each forward through the DDP wrapper, use no_sync() for local "
                "accumulation"
            )
        if not self._callback_queued:
            _C._queue_backward_callback(self._finish)
            self._callback_queued = True
        with no_grad():
            bucket.slot(slot).copy_(param.grad)
        bucket.filled[slot] = True
        bucket.pending -= 1
        self._launch_ready()

    def _launch_ready(self) -> None:
        while self._next_launch < len(self._buckets):
            bucket = self._buckets[self._next_launch]
            if bucket.pending:
                return
            self._launch(bucket)
            self._next_launch += 1

    def _launch(self, bucket: _Bucket) -> None:
        with no_grad():
            weight = self._current_weight()
            if weight != 1.0:
                bucket.buffer.mul_(weight)
            grad_bucket = GradBucket(
                bucket.index,
                bucket.buffer,
                bucket.params,
                bucket.offsets,
                bucket.index == len(self._buckets) - 1,
            )
            t0 = _timeline.now() if _timeline.ACTIVE else 0
            bucket.future = self._hook(self._state, grad_bucket)
            if t0:
                _timeline.bucket_launched(bucket.index, bucket.numel, t0)

    def _finish(self) -> None:
        """End of backward: launch the rest (missing gradients count as zeros), wait, write
        the results into param.grad."""
        self.backward_end = time.perf_counter()
        self._armed = False
        self._local = False
        with no_grad():
            for bucket in self._buckets[self._next_launch :]:
                for slot, filled in enumerate(bucket.filled):
                    if not filled:
                        bucket.slot(slot).zero_()
                bucket.pending = 0
            self._launch_ready()
            for bucket in self._buckets:
                t0 = _timeline.now() if _timeline.ACTIVE else 0
                result = bucket.future.wait()
                if t0:
                    _timeline.bucket_waited(bucket.index, t0)
                bucket.future = None
                if result is not bucket.buffer:
                    if result.numel() != bucket.numel:
                        raise RuntimeError(
                            f"DistributedDataParallel: the communication hook returned "
                            f"{result.numel()} elements for bucket {bucket.index}, expected "
                            f"{bucket.numel}"
                        )
                    bucket.buffer.copy_(result.reshape(bucket.numel))
                for slot, p in enumerate(bucket.params):
                    reduced = bucket.slot(slot)
                    if p.grad is None:
                        p.grad = reduced.clone()
                    else:
                        p.grad.copy_(reduced)
        for fn in self.after_finish:
            fn()
