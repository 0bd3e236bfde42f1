"""DistributedDataParallel: synchronous data-parallel training of one module across ranks.

Every rank runs the same model on its own part of the global batch; when ``loss.backward()``
returns, every parameter's ``.grad`` holds the same average across ranks, so identical
optimizer steps keep the replicas identical. Gradients travel in buckets all-reduced on the
communication thread while backward still computes (see _reducer.py).

Differences from torch.nn.parallel.DistributedDataParallel, on purpose:
- Unused parameters need no flag: a rank that produced no gradient for a parameter
  contributes zeros (``find_unused_parameters`` is accepted for compatibility).
- ``batch_weighting="local_batch"`` weights each rank's gradient by its share of the global
  batch (phones of different speeds get different batch sizes; the last batch of an epoch is
  short); the default "uniform" averages like PyTorch.
- Communication hooks return the sum over ranks; DDP does the weighting
  (see phalanx.distributed.algorithms.ddp_comm_hooks).
- ``balance=sampler`` (a BalancedDistributedSampler) sizes each rank's share of the global
  batch from its measured speed, re-balancing as ranks slow down (see _balance.py and
  docs/heterogeneous.md); ``batch_weighting="run_time"`` is the wimpy-nodes paper's weighting.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys

import numpy as np

from ... import _C
from ... import distributed as dist
from ..._timeline import recorder as _timeline
from ...autograd import no_grad
from ...distributed.algorithms.ddp_comm_hooks import allreduce_hook
from ..modules.module import Module
from ..modules.syncbatchnorm import SyncBatchNorm
from . import _allreduce_choice
from ._balance import Balancer
from ._reducer import Reducer

__all__ = ["DistributedDataParallel"]

_BROADCAST_BUCKET_BYTES = 64 * 1024 * 1024


def _coalesced(tensors, fn) -> None:
    """Applies fn to flat buffers holding `tensors` (grouped by dtype, at most
    _BROADCAST_BUCKET_BYTES each) and copies the buffers' new contents back."""
    groups: dict = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    for dtype, members in groups.items():
        chunk, size = [], 0
        for t in members + [None]:
            nbytes = 0 if t is None else t.numel() * t.element_size()
            if chunk and (t is None or size + nbytes > _BROADCAST_BUCKET_BYTES):
                _apply_flat(chunk, dtype, fn)
                chunk, size = [], 0
            if t is not None:
                chunk.append(t)
                size += nbytes


def _apply_flat(tensors, dtype, fn) -> None:
    total = sum(t.numel() for t in tensors)
    flat = _C.zeros(total, dtype=dtype)
    offset = 0
    for t in tensors:
        n = t.numel()
        flat[offset : offset + n].copy_(t.reshape(n))
        offset += n
    fn(flat)
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view(*t.shape))
        offset += n


def _batch_size(inputs, kwargs) -> int:
    for value in list(inputs) + list(kwargs.values()):
        if isinstance(value, _C.Tensor) and value.dim() > 0:
            return value.shape[0]
    raise ValueError(
        "DistributedDataParallel(batch_weighting='local_batch'): the forward call has no "
        "tensor argument whose first dimension is the batch"
    )


class DistributedDataParallel(Module):
    """Wraps `module` for data-parallel training over `process_group` (default: the world).

    Wrapping a module again (e.g. after loading a checkpoint into it) retires the older
    wrapper of its parameters: its gradient hooks are removed and using it raises
    RuntimeError.

    Args:
        module: the model; every rank must build the same architecture. Its parameters and
            buffers are overwritten with rank 0's at construction.
        bucket_cap_mb: bucket size for the gradient all-reduce (the first bucket is smaller,
            ``first_bucket_cap_mb``, so communication starts early in backward).
        broadcast_buffers: broadcast rank 0's buffers (BatchNorm statistics) before every
            forward, so all ranks normalise with the same statistics and checkpoints agree.
        batch_weighting: "uniform" (average, like PyTorch) or "local_batch" (weight each
            rank's gradient by its share of the global batch, taken from the first tensor
            argument's first dimension at every forward; costs one 8-byte all-reduce that
            overlaps the forward pass), or "run_time" (equal batches, each rank's gradient
            weighted by its measured speed relative to the others: the wimpy-smartphone-nodes
            method; not the global-batch gradient, see docs/heterogeneous.md).
        balance: a phalanx.utils.data.BalancedDistributedSampler whose shares DDP sets from
            the ranks' measured speeds (implies "local_batch" weighting, so every update is
            the global batch's gradient). The measurements and decisions are in
            ``self.balancer`` (``shares``, ``speeds``, ``step_times``, ``metrics()``).
        balance_interval: steps between re-balancing proposals (a throttling hint from a
            rank's CPU clock or temperature brings one forward).
        balance_hysteresis: a proposal is adopted only if it shortens the predicted step
            time by at least this fraction (plus a margin for the measured noise).
        max_samples_per_rank: this rank's largest share (a phone with little memory); ranks
            may pass different values.
        min_samples_per_rank: this rank's least share from the balancer, where the global
            batch allows it (hand-set shares are the caller's). Default: 2 when the module
            has a BatchNorm that is not a SyncBatchNorm and the global batch holds 2 per
            rank, else 1 (a very slow rank given a single sample would make BatchNorm fail
            on a 1x1 map in training: "expected more than 1 value per channel").
        telemetry_root: where to read /sys for the CPU clock and temperature (None: not at all).
        allreduce: "auto" (default): the hierarchical all-reduce of
            phalanx.distributed.algorithms.hierarchical when every rank declares a switch
            (PHALANX_SWITCH, the hostfile's ``switch=``) and phalanx.perfmodel predicts a gain
            for this model's buckets on the declared links (PHALANX_LINK, PHALANX_UPLINK,
            PHALANX_LINK_LATENCY_US), else the flat all-reduce; the ranks gather each other's
            declarations, so all choose alike. "flat" or "hierarchical" forces one;
            register_comm_hook overrides "auto". The choice and its reason are in
            ``self.allreduce_decision`` (rank 0 prints it when switches are declared).
    """

    def __init__(
        self,
        module: Module,
        device_ids=None,
        output_device=None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group=None,
        bucket_cap_mb: float = 25.0,
        find_unused_parameters: bool = False,
        *,
        first_bucket_cap_mb: float = 1.0,
        batch_weighting: str = "uniform",
        init_sync: bool = True,
        balance=None,
        balance_interval: int = 5,
        balance_hysteresis: float = 0.05,
        max_samples_per_rank: int | None = None,
        min_samples_per_rank: int | None = None,
        telemetry_root: str | None = "/",
        allreduce: str = "auto",
    ):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel wraps a phalanx.nn.Module, got {type(module).__name__}"
            )
        if device_ids not in (None, []) or output_device is not None:
            raise ValueError("DistributedDataParallel: phalanx runs on CPU; leave device_ids unset")
        if dim != 0:
            raise ValueError("DistributedDataParallel: only dim=0 (batch-major inputs) works")
        if batch_weighting not in ("uniform", "local_batch", "run_time"):
            raise ValueError(
                "batch_weighting must be 'uniform', 'local_batch' or 'run_time', got "
                f"{batch_weighting!r}"
            )
        if balance is not None:
            if batch_weighting == "run_time":
                raise ValueError(
                    "balance= sets shares so that each update is the global batch's gradient; "
                    "it cannot be combined with batch_weighting='run_time' (equal batches)"
                )
            batch_weighting = "local_batch"  # balance= implies weighting by share
        if allreduce not in _allreduce_choice.CHOICES:
            raise ValueError(
                f"allreduce must be 'auto', 'flat' or 'hierarchical', got {allreduce!r}"
            )
        if allreduce == "hierarchical" and process_group is not None:
            raise ValueError(
                "allreduce='hierarchical' groups the ranks of the default group by switch; "
                "it cannot be combined with an explicit process_group"
            )
        if allreduce != "flat":
            _allreduce_choice.local_row()  # a bad PHALANX_SWITCH/LINK fails here, not mid-gather
        if bucket_cap_mb <= 0 or first_bucket_cap_mb <= 0:
            raise ValueError(
                f"bucket sizes must be positive, got bucket_cap_mb={bucket_cap_mb}, "
                f"first_bucket_cap_mb={first_bucket_cap_mb}"
            )
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.batch_weighting = batch_weighting
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self._world_size = dist.get_world_size(process_group)
        self._rank = dist.get_rank(process_group)
        # Checks its arguments before any collective: a bad one fails alone, not mid-handshake.
        self.balancer = None
        if min_samples_per_rank is not None and balance is None:
            raise ValueError("min_samples_per_rank needs balance= (the balancer sets shares)")
        if balance is not None or batch_weighting == "run_time":
            self.balancer = Balancer(
                balance,
                process_group,
                self._world_size,
                self._rank,
                interval=balance_interval,
                hysteresis=balance_hysteresis,
                max_samples_per_rank=max_samples_per_rank,
                min_samples_per_rank=1 if min_samples_per_rank is None else min_samples_per_rank,
                telemetry_root=telemetry_root,
                other_waits=self._sync_bn_seconds,
            )
            if balance is not None:  # a valid sampler now
                total = balance.global_batch_size
                if min_samples_per_rank is None:
                    self.balancer.floor = _default_min_share(module, total, self._world_size)
                elif min_samples_per_rank * self._world_size > total:
                    raise ValueError(
                        f"min_samples_per_rank={min_samples_per_rank} over {self._world_size} "
                        f"ranks needs a global batch of at least "
                        f"{min_samples_per_rank * self._world_size}; the sampler's is {total}"
                    )

        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._verify_same_model(named)
        if init_sync and self._world_size > 1:
            with no_grad():
                states = [p for _, p in module.named_parameters()] + list(module.buffers())
                _coalesced(states, self._broadcast_from_root)
        self.reducer = Reducer(
            named,
            process_group,
            self._world_size,
            int(bucket_cap_mb * 1024 * 1024),
            int(first_bucket_cap_mb * 1024 * 1024),
            allreduce_hook,
            process_group,
        )
        self._hook_registered = False
        self.allreduce = allreduce
        self._choose_allreduce()
        self._sync_bns = [m for m in module.modules() if isinstance(m, SyncBatchNorm)]
        for m in self._sync_bns:  # it weights its statistics' gradients as we weight ours
            m._grad_weight = self.reducer._current_weight
        if self.balancer is not None:
            self.reducer.after_finish.append(self._balancer_step_done)

    # -- set-up checks --------------------------------------------------------------------

    def _broadcast_from_root(self, flat) -> None:
        root = 0 if self.process_group is None else self.process_group.ranks[0]
        dist.broadcast(flat, root, group=self.process_group)

    def _verify_same_model(self, named) -> None:
        """Every rank must hold the same parameter names, shapes and dtypes, or the buckets
        would not line up; compare a digest of them (one small all-gather)."""
        if self._world_size == 1:
            return
        desc = ";".join(f"{n}:{tuple(p.shape)}:{p.dtype}" for n, p in named)
        digest = int.from_bytes(hashlib.sha256(desc.encode()).digest()[:7], "little")
        mine = _C._from_numpy(np.array([digest], dtype=np.int64))
        every = _C.zeros(self._world_size, dtype=_C.dtype.int64)
        dist.all_gather_into_tensor(every, mine, group=self.process_group)
        others = [r for r, d in enumerate(every.tolist()) if d != digest]
        if others:
            raise ValueError(
                f"DistributedDataParallel: rank {self._rank}'s model differs from rank(s) "
                f"{others} (parameter names, shapes or dtypes; {len(named)} parameters here). "
                "Every rank must build the same model"
            )

    def _choose_allreduce(self) -> None:
        """Sets the bucket all-reduce from self.allreduce (see _allreduce_choice). A
        collective when there is more than one rank, so every rank calls it at the same point:
        construction, and the set-up of a generation that admits a joiner (whose new wrapper
        chooses before its script registers a hook again; the others keep theirs but run the
        same collectives)."""
        self._decided_in = dist._state.namespace  # the generation
        decision = self._decide()
        self.hierarchy = None
        if decision.algorithm == "hierarchical":
            from ...distributed.algorithms.hierarchical import Hierarchy, hierarchical_hook

            hierarchy = Hierarchy(decision.switches)  # new_group: every rank, same order
        if self._hook_registered:
            return
        self.allreduce_decision = decision
        if decision.algorithm == "hierarchical":
            self.hierarchy = hierarchy
            self.reducer.set_hook(hierarchical_hook, hierarchy)
        else:
            self.reducer.set_hook(allreduce_hook, self.process_group)
        if self._rank == 0 and decision.switches is not None:
            sys.stderr.write(f"phalanx DDP: {decision.algorithm} all-reduce: {decision.reason}\n")

    def _decide(self) -> _allreduce_choice.Decision:
        if self.allreduce == "flat":
            return _allreduce_choice.Decision("flat", "allreduce='flat'")
        if self.process_group is not None or self._world_size == 1:
            why = "one rank" if self._world_size == 1 else "an explicit process_group"
            return _allreduce_choice.Decision("flat", why)
        mine = _C._from_numpy(np.array(_allreduce_choice.local_row(), dtype=np.int64))
        every = _C.zeros(self._world_size * 4, dtype=_C.dtype.int64)
        dist.all_gather_into_tensor(every, mine)
        values = every.tolist()
        rows = [values[i : i + 4] for i in range(0, len(values), 4)]
        nbytes = [b.numel * b.buffer.element_size() for b in self.reducer._buckets]
        decision = _allreduce_choice.decide(rows, nbytes)
        if self.allreduce == "auto":
            return decision
        switches = [max(int(r[0]), 0) for r in rows]  # undeclared: switch 0, as from_env
        return _allreduce_choice.Decision(
            "hierarchical",
            f"allreduce='hierarchical' (auto would say: {decision.reason})",
            switches,
        )

    def _rebind_to_default_group(self, setup: bool = False) -> None:
        """Elastic training replaced the default group by a new generation's (see
        phalanx.distributed.elastic): take the new world size and rank, and drop a half-done
        iteration. setup=True also runs the set-up collectives of a new wrapper (model check,
        broadcast from rank 0, the all-reduce choice), the ones a process joining the job runs
        when it wraps its model."""
        if self.process_group is not None:
            raise RuntimeError(
                "elastic training re-binds DistributedDataParallel to the default group only; "
                "this wrapper uses an explicit process_group"
            )
        self._world_size = dist.get_world_size()
        self._rank = dist.get_rank()
        r = self.reducer
        r._world_size = self._world_size
        r._armed = r._local = False
        r._weight_pending = None
        if setup:
            named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
            self._verify_same_model(named)
            if self._world_size > 1:
                with no_grad():
                    states = [p for _, p in self.module.named_parameters()]
                    _coalesced(states + list(self.module.buffers()), self._broadcast_from_root)
            self._choose_allreduce()
        elif self.hierarchy is not None and self._decided_in != dist._state.namespace:
            # The hierarchy's groups belong to the old generation, and choosing again takes
            # collectives that only a generation admitting a joiner runs on every member
            # alike: the flat all-reduce until then.
            self.hierarchy = None
            self.reducer.set_hook(allreduce_hook, self.process_group)
            self.allreduce_decision = _allreduce_choice.Decision(
                "flat", "the world changed; the choice is made again when a process joins"
            )
            if self._rank == 0:
                sys.stderr.write(
                    f"phalanx DDP: flat all-reduce: {self.allreduce_decision.reason}\n"
                )

    # -- training -------------------------------------------------------------------------

    @_timeline.traced("forward", "compute")
    def forward(self, *inputs, **kwargs):
        self.reducer.check_live()  # before the buffer broadcast, a collective
        if self.broadcast_buffers and self._world_size > 1:
            buffers = list(self.module.buffers())
            if buffers:
                with no_grad():
                    _coalesced(buffers, self._broadcast_from_root)
        if _C.is_grad_enabled():
            if self.require_backward_grad_sync:
                measured = self.batch_weighting != "uniform"
                local = _batch_size(inputs, kwargs) if measured else None
                if self.batch_weighting == "run_time":
                    self.reducer.prepare(None, weight_fn=self.balancer.run_time_weight)
                else:
                    self.reducer.prepare(local)
                if self.balancer is not None:
                    self.balancer.start_step(local)  # last: its clock starts here
            else:
                self.reducer.prepare_local()
        return self.module(*inputs, **kwargs)

    def _sync_bn_seconds(self) -> float:
        return sum(m.comm_seconds for m in self._sync_bns)

    def _balancer_step_done(self) -> None:
        self.balancer.finish_step(self.reducer.backward_end, self.reducer.comm_wait)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside accumulate gradients locally without communication; the
        first backward after the block all-reduces the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def register_comm_hook(self, state, hook) -> None:
        """Replaces the bucket all-reduce: hook(state, bucket) -> phalanx.futures.Future of
        the bucket's sum over ranks. Call once, before training."""
        self.reducer.check_live()
        if self._hook_registered:
            raise RuntimeError("register_comm_hook may only be called once")
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        if self.allreduce == "hierarchical":
            raise RuntimeError(
                "register_comm_hook: this wrapper was built with allreduce='hierarchical'; "
                "build it with allreduce='auto' or 'flat' to use a hook of your own"
            )
        self.reducer.set_hook(hook, state)
        self._hook_registered = True
        self.hierarchy = None  # the hook overrides the automatic choice (no collective)
        name = getattr(hook, "__name__", type(hook).__name__)
        self.allreduce_decision = _allreduce_choice.Decision("hook", f"register_comm_hook({name})")


def _default_min_share(module: Module, global_batch: int, world_size: int) -> int:
    """2 samples per rank when the module normalises each rank's batch by itself (a
    BatchNorm, not a SyncBatchNorm) and the global batch allows it, else 1."""
    from ..modules.batchnorm import _BatchNorm

    per_rank_bn = any(
        isinstance(m, _BatchNorm) and not isinstance(m, SyncBatchNorm) for m in module.modules()
    )
    return 2 if per_rank_bn and global_batch >= 2 * world_size else 1
