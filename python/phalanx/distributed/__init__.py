"""phalanx.distributed: process groups over Gloo TCP, shaped like torch.distributed.

Ranks meet through a TCP key-value store (hosted by rank 0 unless PHALANX_STORE_EXTERNAL=1
says a launcher hosts it), then connect a Gloo full mesh. Collectives run in order on one
communication thread per group; ``async_op=True`` returns a work handle so communication
overlaps compute.

Environment, as torchrun sets it: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK.
phalanx adds PHALANX_ADDR (this rank's address for Gloo) or PHALANX_IFACE (an interface
name), PHALANX_JOB_ID (keeps two jobs on one network apart) and PHALANX_TOKEN (a shared
secret a joining rank must present). The hostname is never used: on Android it resolves to
localhost.

Failure detection: every process heartbeats to the store on its own connection (a C++
watchdog thread). When a rank is lost (silent for PHALANX_HEARTBEAT_TIMEOUT seconds, default
10, or its process died without a goodbye) or the store's host is gone, every other rank's
process groups are aborted: the pending and later operations raise an error naming the lost
rank and its host. PHALANX_HEARTBEAT_INTERVAL (default 1 s) sets the heartbeat period; 0 in
either variable (or the init_process_group arguments) disables the watchdog. A rank leaving
through destroy_process_group, or a script that ends normally, says goodbye and is never
reported lost.
"""

from __future__ import annotations

import atexit
import datetime
import os
import socket
import sys
import time
from urllib.parse import urlparse

from .. import _C
from .._timeline import recorder as _timeline
from ._store import TCPStore, _seconds

ReduceOp = _C.dist.ReduceOp
Work = _C.dist.Work

__all__ = [
    "GroupMember",
    "ProcessGroup",
    "RankError",
    "ReduceOp",
    "TCPStore",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_reduce",
    "barrier",
    "broadcast",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "irecv",
    "is_available",
    "is_initialized",
    "isend",
    "new_group",
    "recv",
    "reduce_scatter",
    "run",
    "send",
]

DEFAULT_TIMEOUT = datetime.timedelta(seconds=60)
DEFAULT_HEARTBEAT_INTERVAL = 1.0  # seconds
DEFAULT_HEARTBEAT_TIMEOUT = 10.0  # seconds


class ProcessGroup:
    """A set of ranks with its own Gloo context and communication threads."""

    def __init__(self, impl, ranks: list[int]):
        self._impl = impl
        self.ranks = list(ranks)  # global rank of each group rank

    def rank(self) -> int:
        return self._impl.rank()

    def size(self) -> int:
        return self._impl.size()

    def _group_rank(self, global_rank: int, what: str) -> int:
        try:
            return self.ranks.index(global_rank)
        except ValueError:
            raise ValueError(
                f"{what} rank {global_rank} is not a member of this group (ranks {self.ranks})"
            ) from None

    def __repr__(self) -> str:
        return f"ProcessGroup(rank={self.rank()}, size={self.size()}, ranks={self.ranks})"


class GroupMember:
    WORLD = None  # the default group, as in torch.distributed
    NON_GROUP_MEMBER = object()


class _State:
    def __init__(self, store: TCPStore, world: ProcessGroup, rank: int, timeout: float):
        self.store = store
        self.world = world
        self.rank = rank
        self.timeout = timeout
        self.groups: list[ProcessGroup] = [world]
        self.next_group = 1
        # Store namespace of this initialization (under the job id, see TCPStore.key_prefix):
        # (group name, generation); group i's keys live under key_prefix(*namespace, i).
        self.namespace: tuple = ()
        self.watchdog = None  # _C.dist.Watchdog, None when disabled
        # For elastic generations, which build their own watchdog: (interval, timeout) in
        # seconds (None when detection is disabled) and who hosts the store.
        self.heartbeat: tuple[float, float] | None = None
        self.store_owner = "rank 0"


_state: _State | None = None
_generation = 0  # distinguishes the store keys of successive init_process_group calls


def is_available() -> bool:
    return True


def is_initialized() -> bool:
    return _state is not None


def _require_init() -> _State:
    if _state is None:
        raise RuntimeError(
            "phalanx.distributed is not initialized: call init_process_group() first"
        )
    return _state


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise ValueError(f"environment variable {name} is not set (needed by init_method env://)")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def _master_from(init_method: str | None) -> tuple[str, int]:
    if init_method is None or init_method == "env://":
        host = os.environ.get("MASTER_ADDR")
        if not host:
            raise ValueError("environment variable MASTER_ADDR is not set (init_method env://)")
        return host, _env_int("MASTER_PORT")
    url = urlparse(init_method)
    if url.scheme != "tcp" or not url.hostname or url.port is None:
        raise ValueError(
            f"init_method {init_method!r} is not supported: use 'env://' or 'tcp://host:port'"
        )
    return url.hostname, url.port


def _local_address(master_host: str, master_port: int) -> str:
    """This rank's address for Gloo: PHALANX_ADDR, else the local address that routes to the
    master (a UDP connect sends nothing; no hostname or interface lookup involved)."""
    if os.environ.get("PHALANX_ADDR"):
        return os.environ["PHALANX_ADDR"]
    try:
        infos = socket.getaddrinfo(master_host, master_port, socket.AF_INET, socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(infos[0][4])
            addr = s.getsockname()[0]
        if addr and addr != "0.0.0.0":
            return addr
    except OSError:
        pass
    return "127.0.0.1"


def _heartbeat_setting(value, env: str, default: float) -> float:
    """The argument, else the environment variable, else the default, in seconds (checked,
    together with the other setting, by _C.dist.check_heartbeat_settings)."""
    if value is None:
        raw = os.environ.get(env)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"environment variable {env}={raw!r} is not a number") from None
    return _seconds(value, None)


def _start_watchdog(
    store: TCPStore,
    group_key: str,
    rank: int,
    address: str,
    owner: str,
    interval: float,
    timeout: float,
):
    """The heartbeat thread of this process (settings already checked and enabled)."""
    return _C.dist.Watchdog(
        store.host,
        store.port,
        store.job_id,
        store.token,
        group_key,
        rank,
        address,
        owner,
        interval,
        timeout,
    )


def _all_started(store: TCPStore, prefix: str, rank: int, world_size: int, left: float) -> None:
    """Returns once every rank has its connections and its watchdog: a rank that finished its
    own part of the rendezvous may otherwise return, finish its work and exit (taking rank 0's
    store, or its end of a connection, with it) while a slower peer is still connecting."""
    count_key, done_key = prefix + "/started", prefix + "/started/all"
    if store.add(count_key, 1) == world_size:
        store.set(done_key, b"1")
    try:
        store.wait([done_key], timeout=max(left, 0.001))
    except TimeoutError:
        started = store.add(count_key, 0)
        raise TimeoutError(
            f"init_process_group: rank {rank}: only {started} of {world_size} ranks finished "
            f"starting (connections and failure detection) within the timeout"
        ) from None


def init_process_group(
    backend: str | None = "gloo",
    init_method: str | None = None,
    timeout: datetime.timedelta | float | None = None,
    world_size: int = -1,
    rank: int = -1,
    store: TCPStore | None = None,
    group_name: str = "",
    *,
    heartbeat_interval: datetime.timedelta | float | None = None,
    heartbeat_timeout: datetime.timedelta | float | None = None,
) -> None:
    """Joins this process to the default group; blocks until every rank has joined.

    heartbeat_interval / heartbeat_timeout (seconds; default PHALANX_HEARTBEAT_INTERVAL or 1,
    PHALANX_HEARTBEAT_TIMEOUT or 10; 0 disables) configure failure detection: a rank silent
    for heartbeat_timeout, or gone without a goodbye, aborts every rank's process groups."""
    global _state, _generation
    started = time.monotonic()  # `timeout` bounds the store connect and the rendezvous together
    if _state is not None:
        raise RuntimeError("init_process_group was already called; destroy_process_group first")
    if backend not in (None, "gloo"):
        raise ValueError(f"backend {backend!r} is not supported: phalanx uses 'gloo'")
    if rank is None or rank < 0:
        rank = _env_int("RANK")
    if world_size is None or world_size < 0:
        world_size = _env_int("WORLD_SIZE")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is out of range for world_size {world_size}")
    seconds = _seconds(timeout, DEFAULT_TIMEOUT)
    interval = _heartbeat_setting(
        heartbeat_interval, "PHALANX_HEARTBEAT_INTERVAL", DEFAULT_HEARTBEAT_INTERVAL
    )
    hb_timeout = _heartbeat_setting(
        heartbeat_timeout, "PHALANX_HEARTBEAT_TIMEOUT", DEFAULT_HEARTBEAT_TIMEOUT
    )
    # Checked before anything connects; False when either setting is 0 (detection disabled).
    heartbeat = _C.dist.check_heartbeat_settings(interval, hb_timeout)
    if os.environ.get("PHALANX_ELASTIC_JOIN") == "1" and store is None:
        # A process the elastic launcher started to join a running job (elastic/_join.py).
        from .elastic._join import join

        external = os.environ.get("PHALANX_STORE_EXTERNAL") == "1"
        _state = join(
            init_method,
            seconds,
            (interval, hb_timeout) if heartbeat else None,
            "the launcher" if external else "rank 0",
        )
        return
    owner = "rank 0"
    if store is None:
        if init_method is not None and init_method.startswith("file://"):
            raise ValueError("init_method file:// is not supported: use env:// or tcp://")
        host, port = _master_from(init_method)
        external = os.environ.get("PHALANX_STORE_EXTERNAL") == "1"
        master = rank == 0 and not external
        owner = "the launcher" if external else "rank 0"
        store = TCPStore(host, port, world_size, is_master=master, timeout=seconds)
    else:
        host, port = store.host, store.port
    iface = os.environ.get("PHALANX_IFACE", "")
    local = _local_address(host, port)
    address = "" if iface else local
    namespace = (group_name or "default_pg", _generation)
    prefix = store.key_prefix(*namespace, 0)
    left = max(seconds - (time.monotonic() - started), 0.001)
    impl = _C.dist.ProcessGroup(
        store.native, rank, world_size, address, iface, seconds, prefix, connect_timeout=left
    )
    _generation += 1
    try:
        watchdog = (
            _start_watchdog(store, prefix + "/liveness", rank, local, owner, interval, hb_timeout)
            if heartbeat
            else None
        )
    except BaseException:
        impl.shutdown()
        raise
    if watchdog is not None:
        watchdog.watch(impl)
    try:
        _all_started(store, prefix, rank, world_size, seconds - (time.monotonic() - started))
    except BaseException:
        impl.shutdown()
        if watchdog is not None:
            watchdog.goodbye()
        raise
    _state = _State(store, ProcessGroup(impl, range(world_size)), rank, seconds)
    _state.namespace = namespace
    _state.watchdog = watchdog
    _state.heartbeat = (interval, hb_timeout) if heartbeat else None
    _state.store_owner = owner
    if _timeline.ACTIVE:  # put this rank's timeline on rank 0's clock
        from .._timeline import session

        session.joined()


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Finishes queued operations and closes the group's connections (all groups if None)."""
    global _state
    if _state is None:
        return
    if group is None or group is _state.world:
        if _timeline.ACTIVE:  # the group's last moment: gather and write the timeline
            _stop_timeline()
        st, _state = _state, None
        for g in st.groups:
            g._impl.shutdown()  # the watchdog still runs: it can abort a stuck operation
        if st.watchdog is not None:
            st.watchdog.goodbye()
    elif group is not GroupMember.NON_GROUP_MEMBER:
        group._impl.shutdown()
        _state.groups.remove(group)


def _stop_timeline() -> None:
    from .._timeline import session

    try:
        session.stop()
    except Exception as e:  # a trace is not worth failing the job's shutdown for
        sys.stderr.write(f"phalanx timeline: could not write the trace: {e}\n")


def new_group(
    ranks: list[int] | None = None,
    timeout: datetime.timedelta | float | None = None,
    backend: str | None = None,
):
    """A group of some ranks. Every rank must call it, in the same order, as in PyTorch; ranks
    outside `ranks` get GroupMember.NON_GROUP_MEMBER."""
    st = _require_init()
    world = st.world.size()
    ranks = sorted(set(range(world) if ranks is None else ranks))
    if not ranks or ranks[0] < 0 or ranks[-1] >= world:
        raise ValueError(f"new_group: ranks {ranks} must be within [0, {world})")
    index = st.next_group
    st.next_group += 1
    if st.rank not in ranks:
        return GroupMember.NON_GROUP_MEMBER
    seconds = _seconds(timeout, st.timeout)
    iface = os.environ.get("PHALANX_IFACE", "")
    address = "" if iface else _local_address(st.store.host, st.store.port)
    prefix = st.store.key_prefix(*st.namespace, index)
    impl = _C.dist.ProcessGroup(
        st.store.native, ranks.index(st.rank), len(ranks), address, iface, seconds, prefix
    )
    if st.watchdog is not None:
        st.watchdog.watch(impl)
    group = ProcessGroup(impl, ranks)
    st.groups.append(group)
    return group


@atexit.register
def _goodbye_at_exit() -> None:
    """A script that ends without destroy_process_group leaves cleanly too; one that dies of
    an unhandled exception does not, so the other ranks hear of it at once."""
    st = _state
    if st is None or st.watchdog is None:
        return
    if getattr(sys, "last_value", None) is not None:  # set when an exception ended the script
        st.watchdog.stop()
    else:
        st.watchdog.goodbye()


def _group(group) -> ProcessGroup:
    st = _require_init()
    if group is None:
        return st.world
    if group is GroupMember.NON_GROUP_MEMBER:
        raise ValueError("this rank is not a member of the group")
    return group


def get_rank(group: ProcessGroup | None = None) -> int:
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _group(group).rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _group(group).size()


def get_backend(group: ProcessGroup | None = None) -> str:
    _group(group)
    return "gloo"


def _finish(work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


_ALGORITHMS = {
    None: _C.dist.AllreduceAlgorithm.AUTO,
    "ring": _C.dist.AllreduceAlgorithm.RING,
    "bcube": _C.dist.AllreduceAlgorithm.BCUBE,
}


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False, *, algorithm=None):
    """Reduces `tensor` across the group in place.

    `algorithm` overrides the choice by message and world size (None: ring for 2 ranks or a
    per-rank share of 16 MiB and more, else bcube; the rule and its reasons are in
    choose_allreduce_algorithm, callable as _C.dist.choose_allreduce_algorithm): "ring" or
    "bcube". Both give the same results up to the order of floating-point additions."""
    if algorithm not in _ALGORITHMS:
        names = ", ".join(repr(k) for k in _ALGORITHMS if k)
        raise ValueError(f"all_reduce: algorithm {algorithm!r} is not one of {names}")
    impl = _group(group)._impl
    return _finish(impl.all_reduce(tensor, op, None, _ALGORITHMS[algorithm]), async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    """Copies `tensor` of global rank `src` into `tensor` on every rank."""
    g = _group(group)
    return _finish(g._impl.broadcast(tensor, g._group_rank(src, "broadcast: src")), async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """Fills tensor_list[i] with rank i's `tensor`."""
    return _finish(_group(group)._impl.all_gather(list(tensor_list), tensor), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """Gathers every rank's input into one tensor, rank order, stacked along dim 0."""
    return _finish(_group(group)._impl.all_gather([output_tensor], input_tensor), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces input_list[i] across ranks into `output` of rank i."""
    return _finish(_group(group)._impl.reduce_scatter(output, list(input_list), op), async_op)


def barrier(group=None, async_op: bool = False, timeout=None):
    return _finish(_group(group)._impl.barrier(_seconds(timeout, None)), async_op)


def isend(tensor, dst: int, group=None, tag: int = 0):
    g = _group(group)
    return g._impl.send(tensor, g._group_rank(dst, "send: dst"), tag)


def irecv(tensor, src: int | None = None, group=None, tag: int = 0):
    if src is None:
        raise ValueError("recv from any source is not supported: pass src")
    g = _group(group)
    return g._impl.recv(tensor, g._group_rank(src, "recv: src"), tag)


def send(tensor, dst: int, group=None, tag: int = 0) -> None:
    isend(tensor, dst, group, tag).wait()


def recv(tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    irecv(tensor, src, group, tag).wait()
    return src


# phalanx.distributed.run (the notebook driver) and its RankError, imported on first use: they
# need cloudpickle, which a rank that never uses them should not have to import.
_DRIVER_NAMES = ("RankError", "run")


def __getattr__(name: str):
    if name in _DRIVER_NAMES:
        from ._driver import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
