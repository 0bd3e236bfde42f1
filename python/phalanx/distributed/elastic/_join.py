"""A process joining a running elastic job (started by `phalanx launch --elastic` to replace a
lost rank): its init_process_group asks to join on the store, waits until the running ranks
admit it at their next commit, and enters that generation's world. The state comes with the
first call of the @elastic.run function (State.sync from rank 0).

Between init_process_group and that call a joiner may build its model, DistributedDataParallel
(whose set-up collectives the running ranks mirror), optimizer, sampler and State, but run no
other collective: the running ranks are waiting in sync()."""

from __future__ import annotations

import os

from .. import TCPStore, _master_from, _State
from . import _generation


def join(init_method, timeout: float, heartbeat, owner: str) -> _State:
    raw = os.environ.get("PHALANX_ELASTIC_MEMBER", "")
    try:
        member = int(raw)
    except ValueError:
        raise ValueError(
            f"environment variable PHALANX_ELASTIC_MEMBER={raw!r} is not an integer (a joining "
            "process needs the member id the launcher gives it)"
        ) from None
    if heartbeat is None:
        raise ValueError(
            "elastic training needs failure detection: heartbeat interval/timeout 0 "
            "(PHALANX_HEARTBEAT_*) disables it"
        )
    wait = float(os.environ.get("PHALANX_ELASTIC_JOIN_TIMEOUT", "600"))
    host, port = _master_from(init_method)
    store = TCPStore(host, port, None, is_master=False, timeout=timeout)
    _generation.announce_joiner(store, member)
    gen = _generation.wait_admitted(store, member, wait)
    members = _generation.sealed(store, gen)  # sealed before the admission was written
    st = _State(store, None, -1, timeout)
    st.groups = []
    st.heartbeat = heartbeat
    st.store_owner = owner
    _generation.enter(st, gen, members, member, heartbeat, _generation.connect_timeout(st))
    _generation.joined = (gen, members, member)
    return st
