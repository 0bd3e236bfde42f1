"""Local rank processes for `phalanx launch`: the command that starts one (with the Linux
parent-death wrapper), and the small, failure-tolerant helpers that signal, probe and close
processes and name signals in messages.

The helpers swallow "already gone" errors on purpose: a rank may exit at any moment between
the launcher deciding to signal it and the signal being sent, and that race is not a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from .common import target

# Starts a local rank: asks Linux to SIGKILL it when the launcher dies (the setting survives
# exec), gives up if the launcher is already gone, then execs the rank's command.
_PDEATHSIG_BOOT = """\
import os, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def _interpreter_flags() -> list[str]:
    """The launcher's own interpreter flags (-S, -X ..., -W ...), so local ranks import the
    same phalanx the launcher does."""
    try:
        return subprocess._args_from_interpreter_flags()  # what multiprocessing uses
    except AttributeError:
        return ["-S"] if sys.flags.no_site else []


def local_command(args) -> list[str]:
    cmd = [sys.executable] + _interpreter_flags() + ["-u"] + target(args)
    if sys.platform.startswith(("linux", "android")):
        boot = [sys.executable, "-I", "-S", "-c", _PDEATHSIG_BOOT, str(os.getpid())]
        cmd = boot + cmd
    return cmd


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


def kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass
