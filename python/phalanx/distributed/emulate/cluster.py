"""PhoneCluster: N emulated phones on this machine, and jobs launched on them.

A phone is a network namespace on a bridge (its link shaped by tc tbf: rate, burst,
latency), plus cgroups capping its CPU (a fraction of one core, changeable while a job
runs) and memory. Jobs start through `phalanx launch --hosts`: the launcher runs inside the
bridge namespace (so its rendezvous store is reachable from every phone at .254), reads a
hostfile of the phones, and reaches each one through shim.py instead of ssh.

Everything made carries the prefix phx<owner pid>s<set> and is removed by close(): on
leaving the with-block (also by an exception or Ctrl-C), at interpreter exit, on SIGTERM or
SIGHUP (turned into SystemExit while a cluster is open), and, for an owner killed outright,
by the next cluster created on the machine (or `phalanx cluster clean`).
"""

from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence

from . import _cgroups, _netns
from ._units import (
    format_rate,
    format_size,
    parse_bytes,
    parse_cpu,
    parse_rate,
    parse_seconds,
    parse_size,
    per_phone,
)

SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.py")
_live: set[PhoneCluster] = set()
_old_handlers: dict = {}  # signal -> handler replaced while clusters are open
_closing: list[PhoneCluster] = []  # clusters being removed right now


class MissingCapability(RuntimeError):
    """This machine cannot emulate phones; `.capability` names what is missing."""

    def __init__(self, capability: str) -> None:
        super().__init__(f"cannot emulate phones here: {capability}")
        self.capability = capability


def missing_capability(*, memory: bool = True) -> str | None:
    """What this machine lacks to emulate phones (root, iproute2, nsenter, the cgroup v1 cpu
    and, when `memory`, memory controllers), or None when nothing is missing. Tests skip
    with this text as the reason."""
    reason = _netns.skip_reason()
    if reason:
        return reason
    if shutil.which("nsenter") is None:
        return "util-linux's `nsenter` (to start the launcher in the bridge namespace) is missing"
    for controller in ("cpu", "memory") if memory else ("cpu",):
        reason = _cgroups.missing(controller)
        if reason:
            return reason
    return None


def sweep() -> list[str]:
    """Removes what clusters of owners that are gone left behind (namespaces, cgroups, the
    processes inside them); returns their names."""
    return _netns.remove_stale() + _cgroups.remove_stale()


def interpreter() -> list[str]:
    """This interpreter and its flags (-S, -X ...), so ranks import the phalanx we did."""
    try:
        flags = subprocess._args_from_interpreter_flags()
    except AttributeError:
        flags = ["-S"] if sys.flags.no_site else []
    return [sys.executable, *flags]


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment with PYTHONPATH = our sys.path (the phalanx we import,
    even from a build directory), plus `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.update(extra or {})
    return env


def _die_with_parent() -> list[str]:
    """A prefix giving the launcher a parent-death signal: SIGTERM when the owner dies (even
    by SIGKILL), so a killed owner's job stops with it. setpriv sets it and execs (as does
    nsenter), so it reaches the launcher; no preexec_fn, which is unsafe in a process with
    threads (a notebook kernel). Without setpriv the next cluster's sweep stops the job."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "SIGTERM"] if setpriv else []


class Job:
    """A `phalanx launch` run on the cluster: a Popen of the launcher (in a session of its
    own) with its output in files unless other streams were given."""

    def __init__(self, cmd: list[str], env: dict, cwd: str | None, stdout, stderr) -> None:
        self.cmd = cmd
        self._files = []
        if stdout is None:
            stdout = tempfile.TemporaryFile()
            self._files.append(stdout)
        if stderr is None:
            stderr = tempfile.TemporaryFile()
            self._files.append(stderr)
        self._out, self._err = stdout, stderr
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        """The launcher's exit status; past `timeout` the job is stopped (stop()) and
        TimeoutError raised with its output so far."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(
                f"the job ran longer than {timeout} s; stopped\nstdout:\n{self.stdout()[-3000:]}"
                f"\nstderr:\n{self.stderr()[-3000:]}"
            ) from None

    def stop(self, grace: float = 5.0) -> int:
        """Asks the launcher to stop (SIGTERM: it stops every rank and prints its summary),
        then kills its session after `grace` seconds."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(grace)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
        return self.proc.returncode

    def stdout(self) -> str:
        return _read(self._out)

    def stderr(self) -> str:
        return _read(self._err)

    def close(self) -> None:
        """Stops the job (its output stays readable until the Job is dropped)."""
        self.stop(grace=2.0)


def _read(f) -> str:
    if not hasattr(f, "seek") or getattr(f, "closed", True):
        return ""
    try:
        f.flush()
        pos = f.tell()
        f.seek(0)
        data = f.read()
        f.seek(pos)
        return data.decode(errors="replace") if isinstance(data, bytes) else data
    except (OSError, ValueError):
        return ""


class PhoneCluster:
    """`phones` emulated phones; use as a context manager.

        with PhoneCluster(3, cpu=[1.0, 1.0, 0.3], link="100mbit", mem="1G") as c:
            job = c.launch("train.py", ["--epochs", "1"])
            time.sleep(20); c.set_cpu(2, 0.15)       # phone 2 throttles
            assert job.wait(timeout=300) == 0

    cpu: cores per phone (a fraction of one core; None = uncapped), one value or a list.
    link: link rate per phone ("100mbit", "1gbit", a number of Mbit/s; None = unshaped).
    mem: memory cap per phone ("1G", "512M", bytes; None = uncapped).
    burst / latency: the token bucket's size (bytes or "64k"; default ~4 ms of traffic,
    at least 32 KiB) and queueing limit ("50ms") of every shaped link.
    subnet: phone i gets address 10.213.<subnet>.<i+1> (namespaces are private, so two
    clusters may use the same subnet).
    switches / uplink: the switch each phone hangs off (a list of integers) and the rate of
    every switch's uplink to the core ("100mbit"; None = unshaped); the hostfile then says
    `switch=N`, so ranks get PHALANX_SWITCH (hierarchical all-reduce, docs/scale.md).

    Raises MissingCapability (naming what is missing) where phones cannot be emulated.
    """

    def __init__(
        self,
        phones: int,
        *,
        cpu=None,
        link=None,
        mem=None,
        burst=None,
        latency="50ms",
        subnet: int = 0,
        switches=None,
        uplink=None,
    ) -> None:
        if isinstance(phones, bool) or not isinstance(phones, int) or not 1 <= phones <= 200:
            raise ValueError(f"PhoneCluster: phones={phones!r} must be an int within [1, 200]")
        self.n = phones
        self.cpu = per_phone(cpu, phones, parse_cpu, "cpu")
        self.link = per_phone(link, phones, parse_rate, "link")
        self.mem = per_phone(mem, phones, parse_size, "mem")
        self.burst = None if burst is None else parse_bytes(burst, "burst")
        self.latency = parse_seconds(latency, "latency")
        reason = missing_capability(memory=any(m is not None for m in self.mem))
        if reason:
            raise MissingCapability(reason)
        self.net = _netns.NetNamespaces(
            phones,
            subnet=subnet,
            rates=self.link,
            burst=self.burst,
            latency_ms=self.latency * 1e3,
            switches=None if switches is None else list(switches),
            uplink_bits=parse_rate(uplink, "uplink"),
        )
        self.names = self.net.names
        self.addrs = self.net.addrs
        self.master_addr = self.net.bridge_addr
        self.groups = [
            _cgroups.PhoneCgroups(name, c, m) for name, c, m in zip(self.names, self.cpu, self.mem)
        ]
        self.dir: str | None = None
        self.hostfile: str | None = None
        self.phone_table: str | None = None
        self.jobs: list[Job] = []
        self._open = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> PhoneCluster:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """Creates every phone; on any failure removes what was made, then raises."""
        if self._open:
            raise RuntimeError("this PhoneCluster is open already")
        sweep()
        _live.add(self)
        self._open = True
        _catch_signals()
        try:
            self.net.create()
            for g in self.groups:
                g.create()
            self._write_files()
        except BaseException:
            self.close()
            raise

    def _write_files(self) -> None:
        self.dir = tempfile.mkdtemp(prefix=self.names[0][: -len("r0")] + "-")
        self.hostfile = os.path.join(self.dir, "hosts")
        with open(self.hostfile, "w") as f:
            f.write("# phalanx emulated phones: namespace, then the phone's address\n")
            for i, (name, addr) in enumerate(zip(self.names, self.addrs)):
                switch = "" if self.net.switches is None else f" switch={self.net.switches[i]}"
                f.write(f"{name} addr={addr}{switch}\n")
        self.phone_table = os.path.join(self.dir, "phones.json")
        table = {
            name: {
                "cgroups": [c.path for c in g.groups],
                "exec": self.net.exec_prefix(i),
                "env": self._phone_env(i),
            }
            for i, (name, g) in enumerate(zip(self.names, self.groups))
        }
        with open(self.phone_table, "w") as f:
            json.dump(table, f, indent=1)

    def _phone_env(self, i: int) -> dict[str, str]:
        """Variables a phone's processes start with: as many OpenMP threads as the phone has
        whole cores (at least 1), unless already set. The machine's default would start one
        thread per core of this machine, and threads that spin-wait inside a small CPU quota
        burn it."""
        cap = self.cpu[i]
        return {} if cap is None else {"OMP_NUM_THREADS": str(max(1, int(cap)))}

    def close(self) -> None:
        """Stops every job, kills every process left on a phone, removes the phones. Safe to
        call more than once; raises (after doing all it can) if something would not go."""
        if not self._open:
            return
        self._open = False
        _closing.append(self)  # a SIGTERM now must not cut the cleanup short
        try:
            self._remove()
        finally:
            _closing.remove(self)

    def _remove(self) -> None:
        errors = []
        for job in self.jobs:
            job.close()
        for g in self.groups:
            try:
                g.remove()
            except OSError as e:
                errors.append(str(e))
        self.net.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        _live.discard(self)
        if not _live:
            _restore_signals()
        if errors:
            raise RuntimeError("PhoneCluster.close: " + "; ".join(errors))

    # ------------------------------------------------------------------ phones

    def _phone(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.n:
            raise IndexError(f"phone={i!r} is not a phone of this cluster (0..{self.n - 1})")
        if not self._open:
            raise RuntimeError("the PhoneCluster is not open (use it in a with-block)")
        return i

    def set_cpu(self, i: int, cores) -> None:
        """Caps phone i at `cores` (a fraction of one core; None lifts the cap) from now on,
        also while a job runs."""
        self.groups[self._phone(i)].set_cpu(parse_cpu(cores, "cores"))
        self.cpu[i] = self.groups[i].cpu_cap

    def throttling(self, i: int) -> dict:
        """How often phone i's CPU cap held it back: periods, throttled_periods,
        throttled_seconds (from cpu.stat)."""
        return self.groups[self._phone(i)].throttling()

    def cpu_seconds(self, i: int) -> float | None:
        """CPU time phone i's processes have used so far (None where cpuacct is missing):
        on a busy machine a phone gets less than its cap, and this says how much less."""
        return self.groups[self._phone(i)].cpu_seconds()

    def oom_kills(self, i: int) -> int:
        """Processes on phone i the OOM killer ended for going over its memory cap."""
        return self.groups[self._phone(i)].oom_kills()

    def memory_peak(self, i: int) -> int | None:
        """The most memory phone i's processes used at once (None: not capped)."""
        return self.groups[self._phone(i)].memory_peak()

    def pids(self, i: int) -> list[int]:
        """Processes now running on phone i."""
        return self.groups[self._phone(i)].pids()

    def prefix(self, i: int) -> list[str]:
        """Command prefix that runs a program on phone i: moved into its cgroups, then
        exec'd inside its namespace (the Popen pid stays the program's own). For harnesses
        that start ranks themselves instead of through launch()."""
        g = self.groups[self._phone(i)]
        defaults = "".join(f'export {k}="${{{k}:-{v}}}" && ' for k, v in self._phone_env(i).items())
        enter = f'{g.enter_command()} && {defaults}exec "$@"'
        return ["sh", "-c", enter, "phone"] + self.net.exec_prefix(i)

    def describe(self) -> str:
        """One line per phone: name, address, CPU, link, memory."""
        lines = [f"bridge {self.net.bridge_ns} at {self.master_addr}"]
        for i in range(self.n):
            cpu = "uncapped" if self.cpu[i] is None else f"{self.cpu[i]:g} core"
            lines.append(
                f"phone {i}: {self.names[i]} {self.addrs[i]} cpu {cpu}, link "
                f"{format_rate(self.link[i])}, mem {format_size(self.mem[i])}"
            )
        return "\n".join(lines)

    def report(self) -> str:
        """What the caps did: per phone, CPU throttling and any OOM kills (with the cap)."""
        lines = []
        for i in range(self.n):
            t = self.groups[i].throttling()
            used = self.groups[i].cpu_seconds()
            text = f"phone {i}: "
            text += "" if used is None else f"cpu used {used:.1f} s, "
            text += f"held back by its cap {t['throttled_seconds']:.1f} s"
            kills = self.oom_kills(i)
            if kills:
                text += (
                    f"; the OOM killer ended {kills} process(es) for going over the "
                    f"{format_size(self.mem[i])} memory cap"
                )
            lines.append(text)
        return "\n".join(lines)

    # ------------------------------------------------------------------ jobs

    def launch_command(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        module: bool = False,
        launch_args: Sequence[str] = (),
        python: Sequence[str] | None = None,
    ) -> list[str]:
        """The command line launch() runs: nsenter into the bridge namespace, then
        `phalanx launch --hosts HOSTFILE --ssh SHIM ...` with one rank per phone."""
        if not self._open:
            raise RuntimeError("the PhoneCluster is not open (use it in a with-block)")
        own = interpreter()  # the launcher needs the phalanx we import
        py = list(python) if python is not None else own
        shim = shlex.join([sys.executable, "-I", "-S", SHIM, "--phones", self.phone_table])
        return [
            *_die_with_parent(),
            shutil.which("nsenter") or "nsenter",
            f"--net=/run/netns/{self.net.bridge_ns}",
            "--",
            *own,
            "-m",
            "phalanx.distributed.launch",
            "--hosts",
            self.hostfile,
            "--ssh",
            shim,
            "--python",
            shlex.join(py),
            "--master-addr",
            self.master_addr,
            *launch_args,
            *(["-m"] if module else []),
            script,
            *args,
        ]

    def launch(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        module: bool = False,
        launch_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        python: Sequence[str] | None = None,
        cwd: str | None = None,
        stdout=None,
        stderr=None,
    ) -> Job:
        """Starts `script args` (or `-m module` with module=True) with rank i on phone i,
        through `phalanx launch` (`launch_args` go to it, e.g. ["--max-time", "60"]). The
        ranks run in `cwd` (default: this one) with job_env(env) and `python` (default:
        this interpreter and flags; the launcher always runs on this one). Output goes to
        files read by Job.stdout()/stderr() unless `stdout`/`stderr` are given. The job
        is stopped by close() at the latest."""
        cmd = self.launch_command(
            script, args, module=module, launch_args=launch_args, python=python
        )
        job = Job(cmd, job_env(env), cwd, stdout, stderr)
        self.jobs.append(job)
        return job


def _exit_on_signal(signum, frame) -> None:
    if not _closing:  # already on the way out: let the cleanup finish
        raise SystemExit(128 + signum)


def _catch_signals() -> None:
    """SIGTERM / SIGHUP would end Python without unwinding, so nothing would be removed:
    while any cluster is open they raise SystemExit(128 + signal) instead (main thread
    only, and only where the default action was in force)."""
    if threading.current_thread() is not threading.main_thread() or _old_handlers:
        return
    for s in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) == signal.SIG_DFL:
            _old_handlers[s] = signal.signal(s, _exit_on_signal)


def _restore_signals() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for s, handler in _old_handlers.items():
        signal.signal(s, handler)
    _old_handlers.clear()


@atexit.register
def _close_all() -> None:
    for c in list(_live):
        try:
            c.close()
        except Exception as e:  # at exit, say what is left rather than mask other errors
            sys.stderr.write(f"phalanx cluster: {e}\n")
