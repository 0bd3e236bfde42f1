"""Ranks on other hosts for `phalanx launch --hosts`: the ssh command line and the watchdog
that runs on the host between sshd and the rank.

ssh alone cannot deliver a signal to the remote process, so the launcher's only lever is the
session itself: closing the ssh client's stdin (or the connection dropping) tells the
watchdog (watchdog.py) to SIGTERM, then SIGKILL, the rank's process group. Everything sent
is quoted for a POSIX shell, since that is what sshd hands the command to.
"""

from __future__ import annotations

import shlex

from .common import program_source, target
from .hosts import HostEntry

# ssh options added after --ssh-opts (ssh keeps the first value it sees, so the user's win):
# never prompt (ranks have no terminal), and notice a vanished host within ~15 s.
DEFAULT_SSH_OPTS = [
    "-o",
    "BatchMode=yes",
    "-o",
    "ServerAliveInterval=5",
    "-o",
    "ServerAliveCountMax=3",
]

# The watchdog run on each host between sshd and the rank (watchdog.py), sent as source text:
# the host needs an interpreter, not phalanx.
WATCHDOG_SOURCE = program_source("watchdog")


def remote_command(args, env: dict[str, str]) -> str:
    """The shell command line run on a host: `cd DIR && exec env K=V ... python3 -c
    WATCHDOG grace python3 -u script args`, every word quoted for a POSIX shell."""
    q = shlex.quote
    python = shlex.split(args.python)
    words = ["exec", "env"] + [q(f"{k}={v}") for k, v in env.items()]
    words += [q(p) for p in python] + ["-c", q(WATCHDOG_SOURCE), q(f"{args.kill_timeout:g}")]
    words += [q(p) for p in python] + ["-u"] + [q(a) for a in target(args)]
    line = " ".join(words)
    return f"cd {q(args.cwd)} && {line}" if args.cwd else line


def ssh_command(args, host: HostEntry, remote: str) -> list[str]:
    cmd = shlex.split(args.ssh) + shlex.split(args.ssh_opts) + DEFAULT_SSH_OPTS
    if host.port is not None:
        cmd += ["-p", str(host.port)]
    return cmd + [host.destination, remote]
