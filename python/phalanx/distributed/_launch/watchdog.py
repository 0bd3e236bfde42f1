"""The watchdog that runs on each remote host between sshd and the rank.

Not imported by the launcher: remote.py sends this file's source to the host (`python3 -c
SOURCE GRACE python3 -u script args...`), so the host needs no phalanx. ssh cannot deliver a
signal to a remote process; the launcher's one lever is the session itself. The rank runs in
a process group of its own; when the ssh session's stdin closes (the launcher asks the rank
to stop, is killed, or the connection dropped) or this watchdog gets SIGTERM, SIGHUP or
SIGINT, the group gets SIGTERM, then SIGKILL after GRACE seconds. Exit status: the rank's, or
128+N when signal N ended it.

It runs under the host's python3, which may be older than the launcher's: nothing here
needs more than Python 3.6 (no annotations that are evaluated, no newer library calls).
"""

import os
import signal
import subprocess
import sys
import threading
import time


def _watch_stdin(stop: threading.Event) -> None:
    while os.read(0, 4096):
        pass
    stop.set()


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except OSError:  # the group is gone already
        pass


def main(argv) -> int:
    grace = float(argv[0])
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, lambda *a: stop.set())
    child = subprocess.Popen(argv[1:], stdin=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    while child.poll() is None and not stop.wait(0.1):
        pass
    if child.poll() is None:
        _killpg(child.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        while child.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
    _killpg(child.pid, signal.SIGKILL)  # the rank, or whatever it left behind in its group
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
