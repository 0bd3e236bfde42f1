"""Starts one local rank for `phalanx launch`, so that neither the rank nor anything it starts
outlives the launcher, however the launcher dies (the OOM killer's SIGKILL included).

Not imported by the launcher: procs.py runs this file's source as `python -I -S -c SOURCE
LAUNCHER_PID FD rank-command...` in a new session, and it becomes the rank by exec (the rank
keeps this pid, which the launcher reports and signals). Before that it sets up two things:

- PR_SET_PDEATHSIG: Linux SIGKILLs the rank itself when the launcher dies (survives exec).
- A guard: a small process left in the rank's process group, holding nothing but the read
  end of a pipe whose write end only the launcher has. When the launcher dies the pipe reads
  end of file and the guard SIGKILLs the whole group: the rank and every process it started
  that stayed in its group (a process that moves to a session of its own has left on
  purpose). The death signal alone would orphan those. The guard is forked twice so it is
  not the rank's child (a rank that waits for any child must never collect it); it ignores
  SIGTERM, SIGINT and SIGHUP (only the launcher's end of the pipe, or SIGKILL to the group
  when the launcher stops the rank, ends it) and holds none of the rank's output pipes.
"""

import os
import signal
import sys


def _set_parent_death_signal() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the guard alone stands
        pass


def _guard(fd: int) -> None:
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    for std in (0, 1, 2):  # the launcher waits for the end of the rank's output pipes
        os.dup2(devnull, std)
    os.close(devnull)
    while True:
        try:
            if not os.read(fd, 1):  # only the launcher holds the write end: it is gone
                break
        except InterruptedError:
            continue
    os.killpg(0, signal.SIGKILL)


def _start_guard(fd: int) -> None:
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the middle process exits at once
        return
    try:
        if os.fork() == 0:
            _guard(fd)
    finally:
        os._exit(0)


def main(argv) -> None:
    launcher, fd, command = int(argv[0]), int(argv[1]), argv[2:]
    _set_parent_death_signal()
    if os.getppid() != launcher:  # the launcher died before the death signal was set
        os._exit(1)
    _start_guard(fd)
    os.close(fd)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
