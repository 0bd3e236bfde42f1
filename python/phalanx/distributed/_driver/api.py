"""phalanx.distributed.run: run a function on every rank of a job from a notebook or a script.

The ranks are started by the launcher (`phalanx launch`'s own supervisor: local processes for
nproc=N, one rank per slot of each host over ssh for hosts=FILE), never by forking this
interpreter: a Jupyter kernel holds threads, sockets and OpenMP state that a fork would
copy half-alive, and multiprocessing's spawn cannot import what a notebook defined. Instead
the function and its arguments are pickled by value (cloudpickle) and fetched by each rank
from the launcher's store; each rank runs `python -m phalanx.distributed._driver.rank`.
"""

from __future__ import annotations

import linecache
import math
import os
import pickle
import re
import signal
import sys
import tempfile

from .._launch.common import UsageError
from . import transport
from .code_origins import code_origins, restore_files
from .launcher import DriverConsole, DriverLauncher

RANK_MODULE = "phalanx.distributed._driver.rank"
OUTPUTS = ("rank0", "all", "none")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RankError(RuntimeError):
    """A rank of phalanx.distributed.run failed. `rank` and `host` say which; `remote_traceback`
    is its traceback as text; `exception` is the original exception when it could be sent
    back (also this error's __cause__), else None; `type_name` names its class."""

    def __init__(
        self,
        message: str,
        rank: int,
        host: str,
        remote_traceback: str = "",
        exception: BaseException | None = None,
        type_name: str | None = None,
    ):
        super().__init__(message)
        self.rank = rank
        self.host = host
        self.remote_traceback = remote_traceback
        self.exception = exception
        self.type_name = type_name

    def __reduce__(self):  # picklable (BaseException's default passes the message alone)
        args = (self.args[0], self.rank, self.host, self.remote_traceback, None, self.type_name)
        return type(self), args


RankError.__module__ = "phalanx.distributed"  # where users import it from


def run(
    fn,
    args=(),
    kwargs=None,
    *,
    nproc: int | None = None,
    hosts=None,
    env=None,
    timeout: float | None = None,
    output: str = "rank0",
    kill_timeout: float = 10.0,
    ssh: str | None = None,
    ssh_opts: str = "",
    python: str = "python3",
    cwd: str | None = None,
    master_addr: str | None = None,
    log_dir: str | None = None,
) -> list:
    """Runs ``fn(*args, **kwargs)`` on every rank of a new job, inside an initialised process
    group (``phalanx.distributed.init_process_group()`` has been called), and returns the
    list of the ranks' return values, rank 0's first.

    nproc: ranks on this machine (default 1). hosts: a hosts file as ``phalanx launch
    --hosts`` reads it, or a list of its lines (``["192.168.1.20:4", "phone2 port=8022"]``);
    one rank per slot, started over ssh (``ssh``, ``ssh_opts``, ``python``, ``cwd`` and
    ``master_addr`` as the launcher's options of those names).
    env: extra environment variables for every rank. timeout: seconds the whole job may take;
    then every rank is stopped and TimeoutError raised. output: whose output is shown live
    on sys.stdout/sys.stderr (a notebook cell): "rank0" (default), "all" (every line
    prefixed ``[rank N] ``) or "none". kill_timeout: grace between SIGTERM and SIGKILL when
    ranks are stopped. log_dir: also write each rank's raw output to
    DIR/rank<N>.{stdout,stderr}.log.

    fn, args and kwargs are sent by value with cloudpickle, so functions, closures and
    classes defined in a notebook or a script's __main__ work; phalanx tensors travel as
    arrays. Every rank must run the same Python minor version as this interpreter.
    Return values come back the same way.

    Raises RankError when a rank fails (raises, crashes, cannot start), with its rank, host
    and traceback; the other ranks are stopped first. KeyboardInterrupt (Ctrl-C, a Jupyter
    interrupt) stops every rank and is re-raised once none is left. TypeError / ValueError
    for bad arguments, before anything starts.
    """
    _check_arguments(fn, args, kwargs, nproc, hosts, env, timeout, output, kill_timeout, cwd)
    try:
        call = transport.dumps((fn, tuple(args), dict(kwargs or {})))
    except Exception as e:
        raise TypeError(
            f"run: fn, args or kwargs cannot be sent to the ranks (pickling failed): "
            f"{type(e).__name__}: {e}"
        ) from e
    payload = pickle.dumps(
        {"python": tuple(sys.version_info[:2]), "call": call},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    origins = code_origins(fn)  # to name "<dynamic-code>" frames of a rank's traceback
    hosts_path, temporary = _hosts_path(hosts)
    try:
        launcher = _make_launcher(
            payload, nproc, hosts_path, env, timeout, output, kill_timeout, ssh, ssh_opts,
            python, cwd, master_addr, log_dir,
        )  # fmt: skip
        code = launcher.run()
    finally:
        if temporary:
            os.unlink(hosts_path)
    return _outcome(launcher, code, timeout, origins)


# ---------------------------------------------------------------------------- arguments


def _check_arguments(fn, args, kwargs, nproc, hosts, env, timeout, output, kill_timeout, cwd):
    if not callable(fn):
        raise TypeError(f"run: fn must be callable, got {type(fn).__name__} {fn!r:.80}")
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"run: args must be a tuple or list, got {type(args).__name__}")
    if kwargs is not None:
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise TypeError(f"run: kwargs must be a dict with str keys, got {kwargs!r:.80}")
    if nproc is not None and hosts is not None:
        raise ValueError(f"run: give nproc or hosts, not both (nproc={nproc!r}, hosts={hosts!r})")
    if nproc is not None:
        if isinstance(nproc, bool) or not isinstance(nproc, int):
            raise TypeError(f"run: nproc must be an int, got {type(nproc).__name__} {nproc!r}")
        if nproc < 1:
            raise ValueError(f"run: nproc must be at least 1, got {nproc}")
    if hosts is not None and not isinstance(hosts, (str, os.PathLike, list, tuple)):
        raise TypeError(
            "run: hosts must be a hosts file path or a list of its lines, got "
            f"{type(hosts).__name__}"
        )
    if isinstance(hosts, (list, tuple)) and not all(isinstance(h, str) for h in hosts):
        raise TypeError(f"run: hosts lines must be str, got {hosts!r:.80}")
    if isinstance(hosts, (list, tuple)):
        from .._launch.hosts import parse_hosts

        try:  # here, so the message names the list, not the temporary file made from it
            parse_hosts("\n".join(hosts), "hosts")
        except ValueError as e:
            raise ValueError(f"run: {e}") from None
    if env is not None:
        if not isinstance(env, dict):
            raise TypeError(f"run: env must be a dict of str to str, got {type(env).__name__}")
        for k, v in env.items():
            if not isinstance(k, str) or not _ENV_KEY.match(k):
                raise ValueError(f"run: env key {k!r} is not an environment variable name")
            if not isinstance(v, str):
                raise TypeError(f"run: env[{k!r}] must be a str, got {type(v).__name__} {v!r}")
    for name, value, allow_zero in (
        ("timeout", timeout, False),
        ("kill_timeout", kill_timeout, True),
    ):
        if value is None and name == "timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"run: {name} must be a number of seconds, got {value!r}")
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            raise ValueError(
                f"run: {name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}"
            )
    if output not in OUTPUTS:
        raise ValueError(f"run: output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    if cwd is not None and hosts is None and not os.path.isdir(cwd):
        raise ValueError(f"run: cwd {cwd!r} is not a directory")


def _hosts_path(hosts) -> tuple[str | None, bool]:
    """The hosts file to give the launcher, and whether it is a temporary one to delete."""
    if hosts is None or isinstance(hosts, (str, os.PathLike)):
        return (None if hosts is None else os.fspath(hosts)), False
    fd, path = tempfile.mkstemp(prefix="phalanx-run-hosts-", text=True)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(hosts) + "\n")
    return path, True


def _make_launcher(
    payload, nproc, hosts, env, timeout, output, kill_timeout, ssh, ssh_opts, python, cwd,
    master_addr, log_dir,
) -> DriverLauncher:  # fmt: skip
    from .._launch.cli import parse_args

    argv = ["--nproc", str(nproc or 1)] if hosts is None else ["--hosts", hosts]
    env = dict(env or {})
    if hosts is None:
        # Local ranks import what this interpreter imports: the same phalanx (a build
        # directory's, say) and the modules a notebook imported from its folder.
        path = os.pathsep.join(p for p in sys.path if p)
        env.setdefault("PYTHONPATH", path)
    argv += [f"--env={k}={v}" for k, v in env.items()]
    argv += [f"--kill-timeout={kill_timeout!r}", f"--python={python}", f"--ssh-opts={ssh_opts}"]
    if ssh is not None:
        argv.append(f"--ssh={ssh}")
    if timeout is not None:
        argv.append(f"--max-time={timeout!r}")
    if cwd is not None:
        argv.append(f"--cwd={cwd}")
    if master_addr is not None:
        argv.append(f"--master-addr={master_addr}")
    if log_dir is not None:
        argv.append(f"--log-dir={log_dir}")
    if output != "all":
        argv.append("--no-prefix")
    argv += ["--quiet", "-m", RANK_MODULE]
    try:
        parsed, specs = parse_args(argv, prog="phalanx.distributed.run")
    except UsageError as e:
        raise ValueError(f"run: {e}") from None
    return DriverLauncher(parsed, specs, DriverConsole(), payload, output)


# ---------------------------------------------------------------------------- outcome


def _outcome(launcher: DriverLauncher, code: int, timeout, origins) -> list:
    if launcher.got_signal is not None:
        signum = launcher.got_signal
        if signum == signal.SIGINT:
            raise KeyboardInterrupt("phalanx.distributed.run: interrupted; every rank stopped")
        signal.raise_signal(signum)  # the default action (or the caller's handler) now
        raise RuntimeError(f"run: got {signal.Signals(signum).name}; every rank stopped")
    if launcher.timed_out:
        raise TimeoutError(
            f"run: the job ran longer than timeout={timeout:g} s; every rank was stopped"
        )
    if code == 0:
        missing = [r for r in launcher.ranks if r.spec.rank not in launcher.results]
        if missing:
            r = missing[0]
            raise RankError(
                f"rank {r.spec.rank} (host {r.spec.host_label}) exited 0 without sending a "
                "return value (did fn call os._exit?)",
                r.spec.rank,
                r.spec.host_label,
            )
        return [transport.loads(launcher.results[r.spec.rank]) for r in launcher.ranks]
    if launcher.errors:
        records = [pickle.loads(b) for b in launcher.errors.values()]
        raise _rank_error(launcher, min(records, key=lambda rec: rec["order"]), origins)
    first = [r for r in launcher.ranks if r.failed_first]
    if first:
        r = first[0]
        tail = launcher.tails[r.spec.rank].text() if r.spec.rank in launcher.tails else ""
        text = f"{r.describe()} {r.outcome(launcher.args.kill_timeout)}"
        if tail:
            text += f"\nLast lines of its stderr:\n{tail}"
        raise RankError(text, r.spec.rank, r.spec.host_label)
    reason = launcher.stop_reason or (launcher.console.messages or ["the job did not start"])[-1]
    raise RuntimeError(f"run: {reason}")


def _rank_error(launcher: DriverLauncher, record: dict, origins) -> RankError:
    rank = record["rank"]
    spec = launcher.specs[rank]
    host = spec.host_label
    exception = None
    if record["exception"] is not None:
        try:
            exception = transport.loads(record["exception"])
        except Exception:  # a class the driver cannot import: the text says it all
            exception = None
    tb = _with_source_lines(restore_files(record["traceback"], origins))
    short = record["type"].removeprefix("builtins.")
    message = (
        f"rank {rank} (host {host}) failed while {record['stage']}: {short}: "
        f"{record['message']}\n\nRemote traceback of rank {rank} (host {host}):\n{tb}"
    )
    error = RankError(message, rank, host, tb, exception, record["type"])
    error.__cause__ = exception
    return error


_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in .*$')


def _with_source_lines(tb: str) -> str:
    """The remote traceback with the source lines the rank could not show filled in from
    this interpreter (a notebook cell's code exists only in the kernel's linecache)."""
    lines = tb.splitlines()
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        m = _FRAME.match(line)
        has_source = i + 1 < len(lines) and lines[i + 1].startswith("    ")
        if m and not has_source:
            source = linecache.getline(m["file"], int(m["line"])).strip()
            if source:
                out.append(f"    {source}")
    return "\n".join(out) + "\n"
