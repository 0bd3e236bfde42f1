"""TCPStore: the rendezvous key-value store, torch.distributed.TCPStore-shaped."""

from __future__ import annotations

import datetime
import os

from .. import _C


def _seconds(timeout, default) -> float | None:
    if timeout is None:
        timeout = default
    if timeout is None:
        return None
    if isinstance(timeout, datetime.timedelta):
        return timeout.total_seconds()
    return float(timeout)


class TCPStore:
    """A key-value store over TCP. With is_master=True this process also runs the server
    (port 0 picks a free port, see .port). Values are bytes (str is encoded as UTF-8).

    job_id and token default to PHALANX_JOB_ID and PHALANX_TOKEN; a client whose job id or
    token differs from the server's is refused."""

    def __init__(
        self,
        host_name: str,
        port: int,
        world_size: int | None = None,
        is_master: bool = False,
        timeout: datetime.timedelta | float = datetime.timedelta(seconds=300),
        *,
        job_id: str | None = None,
        token: str | None = None,
    ):
        if job_id is None:
            job_id = os.environ.get("PHALANX_JOB_ID", "phalanx")
        if token is None:
            token = os.environ.get("PHALANX_TOKEN", "")
        self.world_size = world_size
        self._store = _C.dist.TCPStore(
            host_name, int(port), bool(is_master), _seconds(timeout, 300.0), job_id, token
        )

    @property
    def host(self) -> str:
        return self._store.host

    @property
    def job_id(self) -> str:
        """The job this store serves; every key of a job lives under it (see key_prefix)."""
        return self._store.job_id

    @property
    def token(self) -> str:
        """The shared secret a client presents (the watchdog's own connection needs it too)."""
        return self._store.token

    @property
    def native(self):
        """The C++ client (phalanx._C.dist.TCPStore) that process groups rendezvous on."""
        return self._store

    def key_prefix(self, *parts) -> str:
        """The store namespace "<job id>/<part>/<part>...": keeps two jobs sharing one store
        (and successive groups of one job) apart."""
        return "/".join([self.job_id, *(str(p) for p in parts)])

    @property
    def port(self) -> int:
        return self._store.port

    @property
    def timeout(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self._store.timeout)

    def set_timeout(self, timeout: datetime.timedelta | float) -> None:
        self._store.timeout = _seconds(timeout, None)

    def set(self, key: str, value: str | bytes) -> None:
        self._store.set(key, value)

    def get(self, key: str) -> bytes:
        """Blocks until the key exists, up to the store's timeout (TimeoutError names it)."""
        return self._store.get(key)

    def wait(self, keys: list[str], timeout: datetime.timedelta | float | None = None) -> None:
        self._store.wait(list(keys), _seconds(timeout, None))

    def add(self, key: str, amount: int) -> int:
        return self._store.add(key, int(amount))

    def check(self, keys: list[str]) -> bool:
        return self._store.check(list(keys))
