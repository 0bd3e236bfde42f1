"""Local rank processes for `phalanx launch`: the command that starts one (through boot.py,
so it dies with the launcher), and the small, failure-tolerant helpers that signal, probe and close
processes and name signals in messages.

The helpers swallow "already gone" errors on purpose: a rank may exit at any moment between
the launcher deciding to signal it and the signal being sent, and that race is not a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from .common import program_source, target

# The program that starts a local rank (boot.py: parent-death signal and a guard that kills
# the rank's process group when the launcher dies), sent as source text: `python -I` cannot
# import phalanx from a build directory.
BOOT_SOURCE = program_source("boot")


def _interpreter_flags() -> list[str]:
    """The launcher's own interpreter flags (-S, -X ..., -W ...), so local ranks import the
    same phalanx the launcher does."""
    try:
        return subprocess._args_from_interpreter_flags()  # what multiprocessing uses
    except AttributeError:
        return ["-S"] if sys.flags.no_site else []


def local_command(args, guard_fd: int) -> list[str]:
    """The command of a local rank: boot.py, told the launcher's pid and the read end of the
    rank's guard pipe (`guard_fd`, to be passed to the child), then the rank's interpreter."""
    cmd = [sys.executable] + _interpreter_flags() + ["-u"] + target(args)
    boot = [sys.executable, "-I", "-S", "-c", BOOT_SOURCE, str(os.getpid()), str(guard_fd)]
    return boot + cmd


def signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def has_exited(proc: subprocess.Popen) -> bool:
    """True once `proc` has exited, without reaping it where the OS allows (Linux, Android):
    until reaped, its pid and process group id cannot be reused."""
    if proc.returncode is not None:
        return True
    if hasattr(os, "waitid"):
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, proc.pid, flags) is not None
        except ChildProcessError:
            pass
    return proc.poll() is not None


def killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:  # already gone
        pass


def close(f) -> None:
    try:
        if f is not None:
            f.close()
    except OSError:
        pass


def close_fd(fd: int | None) -> None:
    """Closes a file descriptor (None: nothing to close); returns None for `x = close_fd(x)`."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass
