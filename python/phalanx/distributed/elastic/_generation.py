"""Generations of an elastic job: who is in the world after a loss or a join, agreed on the
store, and the new world's process group.

A generation is a numbered membership: a list of member ids (a process's rank in the world
it started in, or the id the launcher gave a joining process), index = rank. Generation 0 is
the world of init_process_group. Its successor is agreed on the store under
``<job>/elastic/gen/<g>/...``:

- every survivor adds 1 to ``arrive`` and sets ``here/<member>`` (with the members it knows
  to be lost); the first to arrive is the decider;
- the decider waits until every old member has arrived or been reported lost (or until the
  settle time passes: a second rank lost at the same moment is not reported by anyone), adds
  the waiting joiners when asked to, and sets ``members`` once: that key is the fence. A
  process that arrives after it is set and is not in it was removed, whatever it believes;
- each member then builds the generation's process group and watchdog under the store
  namespace ``<job>/elastic/pg/<g>``, so nothing of an older generation (its keys, its
  liveness group, its Gloo connections) can be mistaken for the new one.

The store must outlive every rank (the launcher hosts it: PHALANX_STORE_EXTERNAL=1); a store
hosted by rank 0 dies with rank 0, and that loss is not survivable.
"""

from __future__ import annotations

import json
import os
import re
import time

from ... import _C
from .. import ProcessGroup as _ProcessGroup
from .. import _local_address
from ._errors import RemovedFromJob

# (generation, members, member) of a process admitted into a running job, else None.
joined = None

POLL = 0.02  # seconds between store polls while agreeing (a store round trip is ~0.1 ms)


def key(store, *parts) -> str:
    return store.key_prefix("elastic", *parts)


def _get(store, k: str, timeout: float) -> bytes:
    store.wait([k], timeout)
    return store.get(k)


def sealed(store, gen: int) -> list[int] | None:
    """The members of generation `gen` if they are decided, else None (never blocks)."""
    k = key(store, "gen", gen, "members")
    if not store.check([k]):
        return None
    return json.loads(store.get(k).decode())


def lost_ranks(failure: str) -> list[int]:
    """The group ranks a watchdog failure names ("rank 3 (host ...) lost: ...")."""
    return [int(r) for r in re.findall(r"\brank (\d+) \(host [^)]*\) lost", failure)]


def agree(
    store,
    gen: int,
    old: list[int],
    me: int,
    lost: list[int],
    settle: float,
    *,
    admit_joiners: bool = False,
) -> list[int]:
    """The members of generation `gen` (the successor of the generation whose members are
    `old`), as decided by the first arrival. Raises RemovedFromJob if this process is not
    among them."""
    done = sealed(store, gen)
    if done is None:
        arrived = store.add(key(store, "gen", gen, "arrive"), 1)
        store.set(key(store, "gen", gen, "here", me), json.dumps(lost))
        if arrived == 1:
            done = _decide(store, gen, old, settle, admit_joiners)
        else:
            k = key(store, "gen", gen, "members")
            store.wait([k], settle + 30.0)  # the decider seals within `settle`
            done = json.loads(store.get(k).decode())
    if me not in done:
        raise RemovedFromJob(
            f"phalanx elastic: member {me} was removed from the job: the other ranks formed "
            f"generation {gen} without it (members {done}), after it stopped answering "
            "(frozen or too slow to re-rendezvous); it exits instead of rejoining with stale "
            "state"
        )
    return done


def _decide(store, gen: int, old: list[int], settle: float, admit_joiners: bool) -> list[int]:
    deadline = time.monotonic() + settle
    while True:
        here = [m for m in old if store.check([key(store, "gen", gen, "here", m)])]
        reported = set()
        for m in here:
            reported.update(json.loads(store.get(key(store, "gen", gen, "here", m)).decode()))
        if set(here) | reported >= set(old) or time.monotonic() > deadline:
            break
        time.sleep(POLL)
    members = list(here)  # the old order, so the lowest surviving rank stays rank 0
    joiners = take_joiners(store) if admit_joiners else []
    members += joiners
    store.set(key(store, "gen", gen, "members"), json.dumps(members))
    for member in joiners:  # after the seal: a joiner reads the members when admitted
        store.set(key(store, "admitted", member), str(gen))
    return members


# -- joining --------------------------------------------------------------------------------


def announce_joiner(store, member: int) -> None:
    """A new process asks to join; it is admitted at the running ranks' next commit."""
    n = store.add(key(store, "joiners", "count"), 1)
    store.set(key(store, "joiners", n), str(member))


def joiners_waiting(store) -> bool:
    count = store.add(key(store, "joiners", "count"), 0)
    taken = store.add(key(store, "joiners", "taken"), 0)
    return count > taken


def take_joiners(store) -> list[int]:
    """The waiting joiners' ids, marked taken (decider only; it admits them once sealed)."""
    count = store.add(key(store, "joiners", "count"), 0)
    taken = store.add(key(store, "joiners", "taken"), 0)
    out = [
        int(_get(store, key(store, "joiners", n), 30.0).decode())
        for n in range(taken + 1, count + 1)
    ]
    store.add(key(store, "joiners", "taken"), count - taken)
    return out


def wait_admitted(store, member: int, timeout: float) -> int:
    """Blocks until a generation admits `member`; returns its number."""
    return int(_get(store, key(store, "admitted", member), timeout).decode())


def current_generation(store) -> int:
    """The newest generation the job has sealed (0 when it never changed)."""
    return store.add(key(store, "latest"), 0)


def publish_generation(store, gen: int) -> None:
    """Records `gen` as the newest (rank 0 of that generation, once)."""
    latest = store.add(key(store, "latest"), 0)
    if gen > latest:
        store.add(key(store, "latest"), gen - latest)


# -- the new world --------------------------------------------------------------------------


def connect_timeout(dist_state) -> float:
    """How long a new generation's rendezvous may take: the members are alive and waiting,
    so far less than a first start; a member lost meanwhile costs this much."""
    return min(dist_state.timeout, dist_state.heartbeat[1] + 10.0)


def enter(
    dist_state, gen: int, members: list[int], me: int, heartbeat, connect_timeout: float
) -> None:
    """Builds generation `gen`'s process group and watchdog and makes them the default group
    (get_rank / get_world_size report the new values), then drops the old ones. The old groups
    are shut down only after the new rendezvous, which every member reaches after finishing
    its last collective of the old generation. A member that does not come within
    `connect_timeout` seconds makes this raise TimeoutError (run() then forms the next
    generation without it)."""
    st = dist_state
    store = st.store
    rank, size = members.index(me), len(members)
    iface = os.environ.get("PHALANX_IFACE", "")
    local = _local_address(store.host, store.port)
    prefix = store.key_prefix("elastic", "pg", gen)
    impl = _C.dist.ProcessGroup(
        store.native,
        rank,
        size,
        "" if iface else local,
        iface,
        st.timeout,
        prefix,
        connect_timeout=connect_timeout,
    )
    interval, hb_timeout = heartbeat
    watchdog = _C.dist.Watchdog(
        store.host,
        store.port,
        store.job_id,
        store.token,
        prefix + "/liveness",
        rank,
        local,
        st.store_owner,
        interval,
        hb_timeout,
    )
    watchdog.watch(impl)
    old_groups, old_watchdog = st.groups, st.watchdog
    st.world = _ProcessGroup(impl, range(size))
    st.groups = [st.world]
    st.rank = rank
    st.next_group = 1
    st.namespace = ("elastic", "pg", gen, "sub")
    st.watchdog = watchdog
    for g in old_groups:
        g._impl.abort(f"phalanx elastic: generation {gen} replaced this group")
        g._impl.shutdown()
    if old_watchdog is not None:
        old_watchdog.goodbye()
