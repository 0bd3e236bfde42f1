"""`phalanx doctor --hosts FILE`: the doctor run on every host of a launcher hostfile over ssh
(with the launcher's ssh command and options), each host also measuring its link to this
machine through a doctor store served here, and all answers printed as one table."""

from __future__ import annotations

import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

from ..distributed._launch.hosts import HostEntry, read_hosts
from ..distributed._launch.plan import route_address
from ..distributed._launch.remote import DEFAULT_SSH_OPTS
from .checks import FAIL, Check


def _remote_line(python: str, peer: str) -> str:
    return (
        " ".join(shlex.quote(w) for w in shlex.split(python))
        + " -m phalanx doctor --json --peer "
        + shlex.quote(peer)
    )


def _ask(
    host: HostEntry, ssh: str, ssh_opts: str, python: str, peer: str, timeout: float
) -> list[Check]:
    cmd = shlex.split(ssh) + shlex.split(ssh_opts) + DEFAULT_SSH_OPTS
    if host.port is not None:
        cmd += ["-p", str(host.port)]
    cmd += [host.destination, _remote_line(python, peer)]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return [
            Check(
                "ssh",
                f"no answer within {timeout:g} s",
                FAIL,
                f"check that {host.host} is up and sshd runs",
            )
        ]
    except OSError as e:
        return [Check("ssh", f"cannot run {cmd[0]}: {e}", FAIL, "install openssh or pass --ssh")]
    try:
        rows = json.loads(done.stdout)["checks"]
        return [Check(**row) for row in rows]
    except (ValueError, KeyError, TypeError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        fix = (
            "install phalanx on that host"
            if "No module named" in done.stderr
            else "run `phalanx doctor` on that host"
        )
        return [Check("ssh", f"exit {done.returncode}: {tail}", FAIL, fix)]


def check_hosts(path: str, ssh: str, ssh_opts: str, python: str, timeout: float, port: int = 0):
    """{host label: [Check]} for every host of the file (each listed once, whatever its slots)."""
    from ..distributed import TCPStore
    from .link import JOB_ID

    hosts = list({h.host: h for h in read_hosts(path)}.values())
    store = TCPStore("0.0.0.0", port, is_master=True, timeout=30, job_id=JOB_ID, token="")
    peer = f"{route_address(hosts)}:{store.port}"
    with ThreadPoolExecutor(max_workers=min(32, len(hosts))) as pool:
        answers = pool.map(lambda h: _ask(h, ssh, ssh_opts, python, peer, timeout), hosts)
        result = {h.host: rows for h, rows in zip(hosts, answers)}
    # Each host names the peer it measured by this machine's address; one row name for all.
    for rows in result.values():
        for row in rows:
            if row.name == f"peer {peer}":
                row.name = "link to launcher"
    return result
