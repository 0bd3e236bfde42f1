"""run: the elastic training loop around the user's train(state).

A lost rank makes the survivors' collective fail (the watchdog aborts every group, naming
the rank). run() catches that failure, agrees with the other survivors on the next
generation, builds its process group, restores the last commit, synchronises it from the new
rank 0, and calls train(state) again: train() continues from the committed step, read from
the state (``while state.step < steps``). No process restarts and nothing is read from disk.
"""

from __future__ import annotations

import functools
import os
import sys
import time

from ... import distributed as dist
from . import _generation
from ._errors import ElasticError, TooFewRanks
from ._state import POLICIES, State, _MembershipChange


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def run(func=None, *, global_batch: str = "keep", min_nproc: int | None = None, settle=None):
    """Decorator: ``@run def train(state): ...`` (or ``@run(global_batch="shrink")``).

    Args:
        global_batch: "keep" (the default: the same global batch split over the ranks left)
            or "shrink" (per-rank batches kept, the global batch and learning rates scaled
            with the number of ranks).
        min_nproc: fewer ranks than this stop the job on every rank (default
            PHALANX_ELASTIC_MIN_NPROC, else 1).
        settle: seconds the first survivor waits for the others to re-rendezvous before
            leaving out the ones missing (default: the heartbeat timeout).
    """
    if global_batch not in POLICIES:
        raise ValueError(
            f"elastic.run: global_batch must be one of {POLICIES}, got {global_batch!r}"
        )
    if func is None:
        return functools.partial(run, global_batch=global_batch, min_nproc=min_nproc, settle=settle)
    if not callable(func):
        raise TypeError(f"elastic.run decorates a function, got {type(func).__name__}")

    @functools.wraps(func)
    def wrapper(state, *args, **kwargs):
        if not isinstance(state, State):
            raise TypeError(
                f"{func.__name__}: the first argument must be a phalanx.distributed.elastic."
                f"State, got {type(state).__name__}"
            )
        st = dist._require_init()
        if st.heartbeat is None:
            raise ValueError(
                "elastic training needs failure detection: heartbeat interval/timeout 0 "
                "(PHALANX_HEARTBEAT_*) disables it"
            )
        floor = min_nproc if min_nproc is not None else _env_int("PHALANX_ELASTIC_MIN_NPROC", 1)
        if floor < 1:
            raise ValueError(f"elastic.run: min_nproc must be >= 1, got {floor}")
        wait = st.heartbeat[1] if settle is None else float(settle)
        state.global_batch = global_batch
        if state._needs_sync:  # a joiner: take the running ranks' state (they sync now too)
            state.sync()
            state._take_snapshot()
            state._needs_sync = False
        state._fit_world()
        while True:
            try:
                return func(state, *args, **kwargs)
            except _MembershipChange:
                _next_generation(state, [], floor, wait, admit=True)
            except ElasticError:
                raise
            except Exception as error:
                lost = _lost_members(state, error)
                _next_generation(state, lost, floor, wait, admit=False)

    return wrapper


def _lost_members(state: State, error: BaseException) -> list[int]:
    """The members this rank knows lost, once its watchdog names one (or the others already
    formed a newer generation). Re-raises `error` if no rank was lost: it was a bug or bad
    input, not a failure to survive."""
    st = dist._require_init()
    interval, timeout = st.heartbeat
    deadline = time.monotonic() + timeout + 2 * interval + 1.0
    while time.monotonic() < deadline:
        failure = st.watchdog.failure
        if failure:
            ranks = _generation.lost_ranks(failure)
            return [state.members[r] for r in ranks if 0 <= r < len(state.members)]
        if _generation.sealed(st.store, state.generation + 1) is not None:
            return []
        time.sleep(0.05)
    raise error


def _next_generation(state: State, lost: list[int], floor: int, settle: float, admit: bool):
    st = dist._require_init()
    gen = state.generation + 1
    started = time.monotonic()
    before = state.members
    while True:
        members = _generation.agree(
            st.store, gen, before, state.member, lost, settle, admit_joiners=admit
        )
        if len(members) < floor:
            raise TooFewRanks(
                f"phalanx elastic: generation {gen} has {len(members)} rank(s) (members "
                f"{members}; before: {before}), fewer than min_nproc={floor}; member "
                f"{state.member} stops"
            )
        try:
            _generation.enter(
                st, gen, members, state.member, st.heartbeat, _generation.connect_timeout(st)
            )
            break
        except TimeoutError as e:  # a member was lost while the generation formed
            sys.stderr.write(
                f"phalanx elastic: generation {gen} did not form ({e}); forming the next "
                "without the members that did not come\n"
            )
            before, gen, lost, admit = members, gen + 1, [], False
    state.generation, state.members = gen, members
    if dist.get_rank() == 0:
        _generation.publish_generation(st.store, gen)
    if admit:  # the set-up collectives a joiner's new DistributedDataParallel runs
        rebind = getattr(state.model, "_rebind_to_default_group", None)
        if rebind is not None:
            rebind(setup=True)
    else:
        state.restore()
    state.sync()
    state._take_snapshot()
    why = "joiners admitted" if admit else f"lost members {lost}"
    sys.stderr.write(
        f"phalanx elastic: member {state.member} is rank {dist.get_rank()} of "
        f"{dist.get_world_size()} in generation {gen} (members {members}; {why}; "
        f"{time.monotonic() - started:.2f} s to re-form)\n"
    )
