"""Ranks on other hosts for `phalanx launch --hosts`: the ssh command line and the watchdog
that runs on the host between sshd and the rank.

ssh alone cannot deliver a signal to the remote process, so the launcher's only lever is the
session itself: closing the ssh client's stdin (or the connection dropping) tells the
watchdog to SIGTERM, then SIGKILL, the rank's process group. Everything sent is quoted for a
POSIX shell, since that is what sshd hands the command to.
"""

from __future__ import annotations

import shlex

from .common import target
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

# Runs on each remote host between sshd and the rank: the rank gets its own process group;
# when the ssh session's stdin closes (the launcher asks to stop, or the connection dropped)
# or the watchdog gets SIGTERM/SIGHUP/SIGINT, the group gets SIGTERM, then SIGKILL after the
# grace period. Exit status: the rank's, or 128+N for signal N. No single quotes inside, so
# the quoted command line stays readable.
REMOTE_WATCHDOG = """\
import os, signal, subprocess, sys, threading, time
grace = float(sys.argv[1])
stop = threading.Event()
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
    signal.signal(s, lambda *a: stop.set())
child = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, start_new_session=True)
def watch_stdin():
    while os.read(0, 4096):
        pass
    stop.set()
threading.Thread(target=watch_stdin, daemon=True).start()
def kill(sig):
    try:
        os.killpg(child.pid, sig)
    except OSError:
        pass
while child.poll() is None and not stop.wait(0.1):
    pass
if child.poll() is None:
    kill(signal.SIGTERM)
    end = time.monotonic() + grace
    while child.poll() is None and time.monotonic() < end:
        time.sleep(0.05)
kill(signal.SIGKILL)
code = child.wait()
sys.exit(128 - code if code < 0 else code)
"""


def remote_command(args, env: dict[str, str]) -> str:
    """The shell command line run on a host: `cd DIR && exec env K=V ... python3 -c
    WATCHDOG grace python3 -u script args`, every word quoted for a POSIX shell."""
    q = shlex.quote
    python = shlex.split(args.python)
    words = ["exec", "env"] + [q(f"{k}={v}") for k, v in env.items()]
    words += [q(p) for p in python] + ["-c", q(REMOTE_WATCHDOG), q(f"{args.kill_timeout:g}")]
    words += [q(p) for p in python] + ["-u"] + [q(a) for a in target(args)]
    line = " ".join(words)
    return f"cd {q(args.cwd)} && {line}" if args.cwd else line


def ssh_command(args, host: HostEntry, remote: str) -> list[str]:
    cmd = shlex.split(args.ssh) + shlex.split(args.ssh_opts) + DEFAULT_SSH_OPTS
    if host.port is not None:
        cmd += ["-p", str(host.port)]
    return cmd + [host.destination, remote]
