"""A reusable world of rank processes: started once, then driven case by case.

Starting interpreters (and joining a process group) costs far more than a small collective, so
a test module starts one World and sends it many cases. Every rank runs `serve(cases)` from
the module named at start: it joins the group, then for each command line on stdin runs
`cases[name](rank, world, *args)` and answers one line "RESULT <json>". A case reports
mismatches in its return value instead of raising, so all ranks stay in step; an exception is
reported too, but may leave peers blocked in a collective, so the World is then restarted
(`World.broken`).

Ranks are fresh interpreters on this test's sys.path (and -S flag), so this works under
scripts/run_with_extension.sh and under an editable install alike. A prefix per rank (e.g.
`ip netns exec ...`) runs ranks in network namespaces.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence

from _spawn import free_port

HERE = os.path.dirname(os.path.abspath(__file__))


class World:
    """`size` rank processes of `module` (importable from `path`), each serving cases."""

    def __init__(
        self,
        module: str,
        size: int,
        *,
        path: str = HERE,
        env: dict[str, str] | None = None,
        rank_env: Sequence[dict[str, str]] | None = None,
        prefixes: Sequence[list[str]] | None = None,
        master_addr: str = "127.0.0.1",
        start_timeout: float = 60,
    ) -> None:
        self.size = size
        self.broken = False
        port = free_port()
        base = dict(os.environ)
        base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        base.update(MASTER_ADDR=master_addr, MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        base.update(PHALANX_JOB_ID=f"world-{os.getpid()}-{port}", WORLD_SIZE=str(size))
        base.update(env or {})
        interp = [sys.executable] + (["-S"] if sys.flags.no_site else [])
        code = f"import sys; sys.path.insert(0, {path!r}); import {module} as m; m._serve()"
        self.procs: list[subprocess.Popen] = []
        self._lines: list[queue.Queue] = []
        self._errs = []
        try:
            for r in range(size):
                e = dict(base, RANK=str(r), LOCAL_RANK=str(r))
                e.update(rank_env[r] if rank_env else {})
                err = tempfile.TemporaryFile(mode="w+")
                self._errs.append(err)
                p = subprocess.Popen(
                    (list(prefixes[r]) if prefixes else []) + interp + ["-c", code],
                    env=e,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    bufsize=1,
                )
                self.procs.append(p)
                q: queue.Queue = queue.Queue()
                threading.Thread(target=_pump, args=(p.stdout, q), daemon=True).start()
                self._lines.append(q)
            self._collect("start", start_timeout)
        except BaseException:
            self.close()
            raise

    def run(self, case: str, *args, timeout: float = 60) -> list:
        """Runs `case` on every rank; returns each rank's return value. Raises AssertionError
        with every rank's report when a rank raised, died or ran past `timeout`."""
        if self.broken:
            raise RuntimeError("this World is broken by an earlier failure; start a new one")
        line = json.dumps({"case": case, "args": list(args)}) + "\n"
        for p in self.procs:
            try:
                p.stdin.write(line)
                p.stdin.flush()
            except OSError:
                pass  # reported below as a dead rank
        return self._collect(case, timeout)

    def _collect(self, what: str, timeout: float) -> list:
        deadline = time.monotonic() + timeout
        replies: list[dict | None] = []
        for q in self._lines:
            try:
                replies.append(q.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                replies.append(None)
        if all(r is not None and "error" not in r for r in replies):
            return [r["value"] for r in replies]
        self.broken = True
        report = []
        for r, reply in enumerate(replies):
            if reply is None:
                state = f"no reply (timed out or died, exit {self.procs[r].poll()})"
            elif "error" in reply:
                state = reply["error"]
            else:
                state = "ok"
            report.append(f"--- rank {r}: {state}\n{self.stderr(r)[-3000:]}")
        self.close()
        raise AssertionError(f"{what} failed on the world of {self.size}:\n" + "\n".join(report))

    def stderr(self, r: int) -> str:
        f = self._errs[r]
        try:
            f.flush()
            f.seek(0)
            return f.read()
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """Asks ranks to leave (stdin closed), kills what is left after a grace period."""
        for p in self.procs:
            try:
                p.stdin.close()
            except OSError:
                pass
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        for f in self._errs:
            f.close()


def _pump(stream, q: queue.Queue) -> None:
    """Moves RESULT lines of a rank's stdout to a queue; other output is ignored."""
    for line in stream:
        if line.startswith("RESULT "):
            q.put(json.loads(line[len("RESULT ") :]))


# --------------------------------------------------------------------------- rank side


def serve(cases: dict[str, Callable], init: Callable[[], None], fini: Callable[[], None]):
    """The rank's loop: init(), then one case per stdin line until stdin closes, then fini()."""
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    def reply(**kw) -> None:
        sys.stdout.write("RESULT " + json.dumps(kw) + "\n")
        sys.stdout.flush()

    try:
        init()
    except BaseException as e:
        reply(error=f"init: {type(e).__name__}: {e}\n{traceback.format_exc()}")
        return
    reply(value=None)
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            reply(value=cases[cmd["case"]](rank, size, *cmd["args"]))
        except BaseException as e:
            reply(error=f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    fini()
