"""The one harness that starts Python processes for the tests: single interpreters, groups of
ranks on loopback (or in network namespaces), and a World of ranks driven case by case.

Every child runs the interpreter of this test with its flags (`PYTHON`: -S under
scripts/run_with_extension.sh) and this test's sys.path (`python_env()`), so it imports the
same phalanx as the test, whether that is a build directory's package or the editable install.

Every wait is bounded. A child runs in its own session (process group), so cleanup reaches
what the child started too: on a timeout, an exception in the test, or leaving a `with`
block, the whole group is killed (after SIGCONT, in case a test froze it).
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
# The interpreter and flags of this test: -S keeps the editable install's site hook from
# replacing the phalanx that scripts/run_with_extension.sh put on sys.path.
PYTHON = [sys.executable] + (["-S"] if sys.flags.no_site else [])

# The waits and wall-clock bounds of the tests assume native speed. Under qemu-aarch64
# (scripts/aarch64_test.sh sets PHALANX_TEST_TIME_SCALE) a Python starts and runs 10-30x
# slower: every bounded wait here, and the timeouts and bounds tests derive with `scaled`, are
# multiplied by this factor there. 1 everywhere else, phones included.
TIME_SCALE = float(os.environ.get("PHALANX_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    """A wall-clock bound of a test, at this machine's speed (TIME_SCALE)."""
    return seconds * TIME_SCALE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie left for an init that does not reap counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def python_env(**extra: str) -> dict[str, str]:
    """This process's environment with PYTHONPATH set to this test's sys.path, plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra)
    return env


def _kill_group(p: subprocess.Popen) -> None:
    """SIGKILLs the session `p` leads (p and everything it started), thawing it first."""
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def start_python(
    args: Sequence[str], *, env: dict[str, str] | None = None, prefix: Sequence[str] = (), **kw
) -> subprocess.Popen:
    """Popen of PYTHON + args (after `prefix`, e.g. `ip netns exec NS`) in a session of its
    own, with python_env() unless `env` is given and stdin from /dev/null unless `stdin=`."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(
        [*prefix, *PYTHON, *args],
        env=python_env() if env is None else env,
        start_new_session=True,
        **kw,
    )


class Done(NamedTuple):
    """How a child ended: output decoded as is (a progress line's \\r stays \\r)."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_python(
    args: Sequence[str],
    *,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    cwd: str | None = None,
) -> Done:
    """Runs PYTHON + args to its end. Past `timeout` its whole process group is killed and
    AssertionError raised with what it printed. After a normal end nothing is killed: tests
    check that a program leaves nothing behind."""
    t0 = time.monotonic()
    timeout = scaled(timeout)
    p = start_python(
        args, env=env, prefix=prefix, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p)
        out, err = p.communicate()
        raise AssertionError(
            f"{shlex.join([*PYTHON, *args])} ran longer than {timeout:g} s; killed\n"
            f"stdout:\n{out.decode(errors='replace')[-3000:]}\n"
            f"stderr:\n{err.decode(errors='replace')[-3000:]}"
        ) from None
    return Done(
        p.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        time.monotonic() - t0,
    )


def call(module: str, func: str, *, timeout: float = 60, env: dict[str, str] | None = None) -> Done:
    """Runs module.func() (a module of tests/python) in a fresh interpreter, to its end."""
    return run_python(["-c", _code(module, func, HERE)], timeout=timeout, env=env)


def _code(module: str, func: str, path: str) -> str:
    return f"import sys; sys.path.insert(0, {path!r}); import {module} as m; m.{func}()"


# --------------------------------------------------------------------------- groups of ranks


class Ranks:
    """`world` ranks, each a fresh interpreter running module.func() with sys.argv[1:] =
    `argv` and the usual variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT on
    a free port, a PHALANX_JOB_ID of its own). `env` is added for all, `rank_env[r]` for rank
    r (it may override WORLD_SIZE), `prefixes[r]` goes before rank r's interpreter.

    Output goes to files (no rank ever blocks on a full pipe); with `pipes=True` stdin and
    stdout are pipes instead, for a World. Use as a context manager: leaving it kills every
    rank's process group, whatever happened.
    """

    def __init__(
        self,
        module: str,
        func: str,
        world: int,
        *,
        argv: Sequence[str] = (),
        env: dict[str, str] | None = None,
        rank_env: Sequence[dict[str, str]] | None = None,
        prefixes: Sequence[Sequence[str]] | None = None,
        master_addr: str = "127.0.0.1",
        path: str = HERE,
        pipes: bool = False,
    ) -> None:
        self.port = free_port()
        base = python_env(
            MASTER_ADDR=master_addr,
            MASTER_PORT=str(self.port),
            WORLD_SIZE=str(world),
            OMP_NUM_THREADS="1",
            PHALANX_JOB_ID=f"test-{os.getpid()}-{self.port}",
        )
        base.update(env or {})
        args = ["-c", _code(module, func, path), *argv]
        self.procs: list[subprocess.Popen] = []
        self._closed = False
        self._out: list = []
        self._err: list = []
        self._t0 = time.monotonic()
        try:
            for r in range(world):
                e = dict(base, RANK=str(r), LOCAL_RANK=str(r))
                e.update(rank_env[r] if rank_env else {})
                out = None if pipes else tempfile.TemporaryFile()
                err = tempfile.TemporaryFile()
                self._out.append(out)
                self._err.append(err)
                pipe = {"stdin": subprocess.PIPE, "text": True, "bufsize": 1} if pipes else {}
                self.procs.append(
                    start_python(
                        args,
                        env=e,
                        prefix=prefixes[r] if prefixes else (),
                        stdout=subprocess.PIPE if pipes else out,
                        stderr=err,
                        **pipe,
                    )
                )
        except BaseException:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self.procs)

    def stdout(self, r: int) -> str:
        return _read(self._out[r])

    def stderr(self, r: int) -> str:
        return _read(self._err[r])

    def finish(self, ranks: Sequence[int] | None = None, timeout: float = 60) -> dict[int, Done]:
        """Waits for `ranks` (all by default) to end, `timeout` seconds for all of them
        together; a rank still running then is killed (its stderr says so). Returns
        {rank: Done}, seconds counted from this call."""
        t0 = time.monotonic()
        timeout = scaled(timeout)
        done = {}
        for r in range(len(self.procs)) if ranks is None else ranks:
            p = self.procs[r]
            note = ""
            try:
                p.wait(timeout=max(0.5, t0 + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(p)
                p.wait()
                note = f"\n[killed by the test: still running after {timeout:g} s]"
            seconds = time.monotonic() - t0
            done[r] = Done(p.returncode, self.stdout(r), self.stderr(r) + note, seconds)
        return done

    def wait_files(self, paths: Sequence[str], timeout: float = 60) -> None:
        """Waits until paths[r] exists for every rank r (a rank says "I am ready" by creating
        it). A rank that ends without its file, or running out of time, fails with output."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while not all(os.path.exists(p) for p in paths):
            for r, p in enumerate(self.procs):
                if p.poll() is not None and not os.path.exists(paths[r]):
                    raise AssertionError(
                        f"rank {r} exited {p.returncode} early:\n{self.stdout(r)}\n{self.stderr(r)}"
                    )
            if time.monotonic() > deadline:
                missing = [r for r in range(len(paths)) if not os.path.exists(paths[r])]
                raise AssertionError(f"ranks {missing} were not ready within {timeout:g} s")
            time.sleep(0.05)

    def close(self) -> None:
        """Kills every rank's process group and reaps the ranks; once only (a reaped rank's
        pid may be reused)."""
        if self._closed:
            return
        self._closed = True
        for p in self.procs:
            _kill_group(p)
        for p in self.procs:
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:  # unkillable (D state): nothing more to do
                pass

    def __enter__(self) -> Ranks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        for f in self._out + self._err:
            if f is not None:
                f.close()


def _read(f) -> str:
    if f is None:
        return ""
    try:
        f.flush()
        f.seek(0)
        return f.read().decode(errors="replace")
    except (OSError, ValueError):
        return ""


def run_ranks(module: str, func: str, world: int, args=(), *, timeout: float = 90, env=None):
    """Runs module.func(rank, world, *args) on `world` ranks after init_process_group; returns
    the list of return values by rank. Raises AssertionError with every failing rank's output."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "args.pkl"), "wb") as f:
            pickle.dump(args, f)
        with Ranks("_spawn", "_child", world, argv=[module, func, tmp], env=env) as ranks:
            done = ranks.finish(timeout=timeout)
        failed = [r for r, d in done.items() if d.returncode != 0]
        if failed:
            report = "\n".join(
                f"--- rank {r} (exit {done[r].returncode}):\n{done[r].stdout}{done[r].stderr}"
                for r in failed
            )
            raise AssertionError(f"ranks {failed} failed:\n{report}")
        results = []
        for r in range(world):
            with open(os.path.join(tmp, f"result{r}.pkl"), "rb") as f:
                results.append(pickle.load(f))
        return results


def _child() -> None:
    """Rank side of run_ranks: sys.argv[1:] = module, func, directory of args and results."""
    import importlib

    import phalanx.distributed as dist

    module, func, tmp = sys.argv[1:4]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    with open(os.path.join(tmp, "args.pkl"), "rb") as f:
        args = pickle.load(f)
    fn = getattr(importlib.import_module(module), func)
    dist.init_process_group("gloo", timeout=scaled(60))
    try:
        result = fn(rank, world, *args)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(tmp, f"result{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)


# --------------------------------------------------------------------------- a World


class World:
    """A reusable group of ranks: started once, then driven case by case.

    Starting interpreters (and joining a process group) costs far more than a small
    collective, so a test module starts one World and sends it many cases. Every rank runs
    `module._serve()`, which calls `serve(cases, init, fini)`: it joins the group, then for
    each command line on stdin runs `cases[name](rank, world, *args)` and answers one line
    "RESULT <json>". A case reports mismatches in its return value instead of raising, so all
    ranks stay in step; an exception is reported too, but may leave peers blocked in a
    collective, so the World is then closed and marked `broken` (start a new one).
    """

    def __init__(
        self,
        module: str,
        size: int,
        *,
        path: str = HERE,
        env: dict[str, str] | None = None,
        rank_env: Sequence[dict[str, str]] | None = None,
        prefixes: Sequence[Sequence[str]] | None = None,
        master_addr: str = "127.0.0.1",
        start_timeout: float = 60,
    ) -> None:
        self.size = size
        self.broken = False
        self._ranks = Ranks(
            module,
            "_serve",
            size,
            env=env,
            rank_env=rank_env,
            prefixes=prefixes,
            master_addr=master_addr,
            path=path,
            pipes=True,
        )
        self.procs = self._ranks.procs
        self._lines: list[queue.Queue] = []
        try:
            for p in self.procs:
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
        timeout = scaled(timeout)
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
        return self._ranks.stderr(r)

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
                pass
        self._ranks.close()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self._ranks.__exit__(*exc)


def _pump(stream, q: queue.Queue) -> None:
    """Moves RESULT lines of a rank's stdout to a queue; other output is ignored."""
    try:
        for line in stream:
            if line.startswith("RESULT "):
                q.put(json.loads(line[len("RESULT ") :]))
    except (OSError, ValueError):  # the stream was closed by close()
        pass


def serve(cases: dict[str, Callable], init: Callable[[], None], fini: Callable[[], None]):
    """The World rank's loop: init(), then one case per stdin line until stdin closes, then
    fini()."""
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
