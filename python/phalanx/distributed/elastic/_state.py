"""State: what an elastic job keeps in memory to continue after a rank is lost or joins.

commit() snapshots the model's parameters and buffers, the optimizer's state, the sampler's
position and shares, and the extras (any picklable values, e.g. the step counter). It costs
one copy of the model in memory and nothing on disk. restore() puts the snapshot back;
sync() makes every rank equal to the lowest rank of the current generation (one broadcast of
the tensors, one of a pickled description of the rest), which is how a joiner gets the state
and how survivors that committed at different moments (a collective can end on one rank and
fail on another) agree again.

After a generation change the sampler is fitted to the new world: the same global batch split
into new equal shares (the default), or, with global_batch="shrink", the global batch scaled
with the number of ranks and every learning rate scaled by the same factor (the linear
scaling rule), both relative to the values when the State was built.
"""

from __future__ import annotations

import copy
import os
import pickle

import numpy as np

import phalanx

from ... import distributed as dist
from ...autograd import no_grad
from . import _generation

POLICIES = ("keep", "shrink")


class _MembershipChange(Exception):
    """Raised by commit() on every rank when joiners wait; run() admits them."""


def _to_numpy(tree):
    """A copy of `tree` (dicts, lists, tuples, tensors, plain values) with tensors as numpy
    arrays, for pickling."""
    if isinstance(tree, phalanx.Tensor):
        return _TensorBox(np.array(tree.detach().numpy(), copy=True))
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_numpy(v) for v in tree)
    return copy.deepcopy(tree)


def _from_numpy(tree):
    if isinstance(tree, _TensorBox):
        return phalanx.tensor(tree.array)
    if isinstance(tree, dict):
        return {k: _from_numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_from_numpy(v) for v in tree)
    return tree


class _TensorBox:
    """Marks an array that was a tensor (optimizer state may hold numpy arrays of its own)."""

    def __init__(self, array):
        self.array = array


def _clone_tree(tree):
    if isinstance(tree, phalanx.Tensor):
        return tree.detach().clone()
    if isinstance(tree, dict):
        return {k: _clone_tree(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_clone_tree(v) for v in tree)
    return copy.deepcopy(tree)


def _broadcast_bytes(payload: bytes | None) -> bytes:
    """Rank 0's `payload` on every rank of the current default group."""
    n = phalanx.zeros(1, dtype=phalanx.int64)
    if dist.get_rank() == 0:
        n.fill_(len(payload))
    dist.broadcast(n, 0)
    if dist.get_rank() == 0:
        buf = phalanx.tensor(np.frombuffer(payload, dtype=np.uint8).copy())
    else:
        buf = phalanx.zeros(int(n.item()), dtype=phalanx.uint8)
    if int(n.item()) > 0:
        dist.broadcast(buf, 0)
    return buf.numpy().tobytes()


def _load_sampler(sampler, state: dict) -> None:
    """Loads a sampler state saved in another world (a joiner's sampler was built for the new
    one): it is taken as saved, then State._fit_world fits it to this world."""
    for k in ("num_replicas", "global_batch_size"):
        if k in state and hasattr(sampler, k):
            setattr(sampler, k, int(state[k]))
    if hasattr(sampler, "rank") and hasattr(sampler, "num_replicas"):
        sampler.rank = min(sampler.rank, sampler.num_replicas - 1)
    sampler.load_state_dict(state)


class State:
    """The training state an elastic job commits, restores and synchronises.

    Args:
        model: a phalanx.nn.Module or a DistributedDataParallel (re-bound to each new world).
        optimizer: a phalanx.optim optimizer.
        sampler: a BalancedDistributedSampler (re-split for each new world), or any object
            with state_dict() / load_state_dict().
        **extras: values kept as attributes (``state.step``) and committed with the rest.

    Build it after init_process_group, on every rank. It commits once at construction."""

    def __init__(self, model=None, optimizer=None, sampler=None, **extras):
        if not dist.is_initialized():
            raise RuntimeError("phalanx.distributed.elastic.State: call init_process_group() first")
        reserved = {k for k in extras if k.startswith("_") or hasattr(State, k)}
        if reserved:
            raise ValueError(
                f"elastic.State: extra name(s) {sorted(reserved)} are reserved (private or a "
                "State attribute); choose other names"
            )
        balancer = getattr(model, "balancer", None)
        if balancer is not None:
            raise ValueError(
                "elastic.State: a DistributedDataParallel with balance= or "
                "batch_weighting='run_time' is not supported by elastic training yet "
                "(its balancer is sized for one world)"
            )
        self.model = model
        self.optimizer = optimizer
        self.sampler = sampler
        self._extras = list(extras)
        for k, v in extras.items():
            setattr(self, k, v)
        joined = _generation.joined
        self._needs_sync = joined is not None
        if joined is not None:  # a process admitted into a running job
            self.generation, self.members, self.member = joined
        else:
            self.generation = 0
            self.members = list(range(dist.get_world_size()))
            self.member = dist.get_rank()
        self.global_batch = "keep"  # set by run(global_batch=...)
        # What "shrink" scales from: the job's first world (synchronised from rank 0).
        self._base = {
            "world": dist.get_world_size(),
            "global_batch": getattr(sampler, "global_batch_size", None),
            "lrs": [g["lr"] for g in optimizer.param_groups] if optimizer is not None else [],
        }
        self._snapshot = None
        self._take_snapshot()

    # -- the user's API -------------------------------------------------------------------

    def commit(self) -> None:
        """Snapshots the state in memory. Every rank must call it at the same step; a process
        waiting to join is admitted here (run() handles the switch)."""
        self._take_snapshot()
        if self._joiners_waiting():
            raise _MembershipChange()

    def restore(self) -> None:
        """Puts the last commit back (and fits the sampler and learning rate to the world)."""
        snap = self._snapshot
        with no_grad():
            for p, saved in zip(self._params(), snap["params"]):
                p.copy_(saved)
            for b, saved in zip(self._buffers(), snap["buffers"]):
                b.copy_(saved)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(_clone_tree(snap["optimizer"]))
        if self.sampler is not None:
            _load_sampler(self.sampler, copy.deepcopy(snap["sampler"]))
        for k, v in snap["extras"].items():
            setattr(self, k, copy.deepcopy(v))
        self._fit_world()

    def sync(self) -> None:
        """Makes every rank's state equal to rank 0's (of the current generation)."""
        from ...nn.parallel.distributed import _coalesced

        tensors = self._params() + self._buffers()
        if dist.get_world_size() > 1 and tensors:
            with no_grad():
                _coalesced(tensors, lambda flat: dist.broadcast(flat, 0))
        rest = None
        if dist.get_rank() == 0:
            rest = pickle.dumps(
                {
                    "optimizer": _to_numpy(self.optimizer.state_dict())
                    if self.optimizer is not None
                    else None,
                    "sampler": self.sampler.state_dict() if self.sampler is not None else None,
                    "extras": {k: getattr(self, k) for k in self._extras},
                    "base": self._base,
                }
            )
        if dist.get_world_size() > 1:
            rest = pickle.loads(_broadcast_bytes(rest))
            if dist.get_rank() != 0:
                if self.optimizer is not None:
                    self.optimizer.load_state_dict(_from_numpy(rest["optimizer"]))
                if self.sampler is not None:
                    _load_sampler(self.sampler, rest["sampler"])
                for k, v in rest["extras"].items():
                    setattr(self, k, v)
                self._base = rest["base"]
        self._fit_world()

    @property
    def rank(self) -> int:
        return dist.get_rank()

    @property
    def world_size(self) -> int:
        return dist.get_world_size()

    # -- internals ------------------------------------------------------------------------

    def _params(self) -> list:
        return [p.detach() for p in self.model.parameters()] if self.model is not None else []

    def _buffers(self) -> list:
        return list(self.model.buffers()) if self.model is not None else []

    def _take_snapshot(self) -> None:
        self._snapshot = {
            "params": [p.clone() for p in self._params()],
            "buffers": [b.detach().clone() for b in self._buffers()],
            "optimizer": _clone_tree(self.optimizer.state_dict())
            if self.optimizer is not None
            else None,
            "sampler": copy.deepcopy(self.sampler.state_dict())
            if self.sampler is not None
            else None,
            "extras": {k: copy.deepcopy(getattr(self, k)) for k in self._extras},
        }

    def _joiners_waiting(self) -> bool:
        """Whether a process waits to join, agreed by all ranks (rank 0 asks the store)."""
        if os.environ.get("PHALANX_ELASTIC") != "1":
            return False  # only the elastic launcher starts joiners
        flag = phalanx.zeros(1, dtype=phalanx.int64)
        if dist.get_rank() == 0 and _generation.joiners_waiting(dist._state.store):
            flag.fill_(1)
        dist.all_reduce(flag, dist.ReduceOp.MAX)
        return bool(flag.item())

    def _fit_world(self) -> None:
        """Fits the sampler (and, when shrinking, the learning rates) to the current world."""
        world, rank = dist.get_world_size(), dist.get_rank()
        factor = 1.0
        s = self.sampler
        if s is not None and hasattr(s, "global_batch_size") and hasattr(s, "num_replicas"):
            from ...utils.data.balanced import equal_shares

            batch = s.global_batch_size
            if self.global_batch == "shrink" and self._base["global_batch"]:
                base = self._base["global_batch"]
                batch = max(world, round(base * world / self._base["world"]))
                factor = batch / base
            if batch < world:
                raise ValueError(
                    f"elastic: global batch {batch} is smaller than the {world} ranks left"
                )
            if s.num_replicas != world or s.global_batch_size != batch:
                st = s.state_dict()
                # A changed global batch re-bases the epoch position to whole new batches.
                st["position"] = st["position"] * s.global_batch_size // batch
                st["global_batch_size"] = batch
                st["num_replicas"] = world
                st["changes"] = [[st["step"], equal_shares(batch, world)]]
                s.num_replicas, s.global_batch_size = world, batch
                s.rank = rank
                s.load_state_dict(st)
            s.rank = rank
        elif s is not None and hasattr(s, "num_replicas"):
            s.num_replicas, s.rank = world, rank
        if self.global_batch == "shrink" and self.optimizer is not None:
            for g, lr in zip(self.optimizer.param_groups, self._base["lrs"]):
                g["lr"] = lr * factor
        rebind = getattr(self.model, "_rebind_to_default_group", None)
        if rebind is not None:
            rebind()
