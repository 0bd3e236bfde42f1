"""`phalanx cluster`: emulated phones from the shell.

    phalanx cluster run --phones 4 --cpu 0.6,0.6,0.3,0.15 \\
        --link 1gbit,1gbit,100mbit,100mbit --mem 1G train.py --epochs 1
    phalanx cluster run --phones 3 --cpu 0.5 --throttle 2@30=0.15 --throttle 2@60=0.5 train.py
    phalanx cluster check      # can this machine emulate phones? (else: what is missing)
    phalanx cluster status     # emulated phones on this machine, with their owners
    phalanx cluster clean      # remove what owners that died left behind

`run` creates the phones, runs the script with rank i on phone i through `phalanx launch
--hosts` (its output, prefixed per rank, on this terminal), applies the --throttle changes
while it runs, prints what the caps did, and removes every phone, also on Ctrl-C. There is
no separate up/down: the phones live exactly as long as the command that owns them, so
nothing outlives an interrupted run. Exit status: the launcher's (0 when every rank exited
0); 2 for bad input; 3 when this machine cannot emulate phones.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import time

from . import _cgroups, _netns
from ._names import NAME, is_stale
from ._units import parse_cpu
from .cluster import MissingCapability, PhoneCluster, missing_capability, sweep

PROG = "phalanx cluster"
_THROTTLE = re.compile(r"^(\d+)@([0-9.]+)=(\S+)$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="run|check|status|clean")
    run = sub.add_parser("run", help="run a script on emulated phones")
    run.add_argument("--phones", type=int, required=True, metavar="N", help="number of phones")
    run.add_argument(
        "--cpu",
        metavar="CORES[,...]",
        help="CPU cap per phone, a fraction of one core (one value for all, or one per phone; "
        "'none' = uncapped)",
    )
    run.add_argument(
        "--link", metavar="RATE[,...]", help="link rate per phone: 100mbit, 1gbit, ... (tc tbf)"
    )
    run.add_argument("--mem", metavar="SIZE[,...]", help="memory cap per phone: 1G, 512M, ...")
    run.add_argument("--burst", metavar="BYTES", help="token bucket size (default ~4 ms of rate)")
    run.add_argument("--latency", default="50ms", metavar="TIME", help="tbf queue limit (50ms)")
    run.add_argument(
        "--throttle",
        action="append",
        default=[],
        metavar="PHONE@SECONDS=CORES",
        help="set PHONE's CPU cap to CORES at SECONDS after the start (repeatable)",
    )
    run.add_argument(
        "--launcher-opts",
        default="",
        metavar="OPTS",
        help='options for phalanx launch, e.g. "--max-time 600 --log-dir logs"',
    )
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the job after this")
    run.add_argument("-m", "--module", action="store_true", help="run the target as a module")
    run.add_argument("script", metavar="script.py|module")
    run.add_argument("script_args", nargs=argparse.REMAINDER)
    sub.add_parser("check", help="say whether this machine can emulate phones")
    sub.add_parser("status", help="list emulated phones on this machine")
    sub.add_parser("clean", help="remove leftovers of owners that died")
    return p


def _throttles(items: list[str], phones: int) -> list[tuple[float, int, float | None]]:
    out = []
    for item in items:
        m = _THROTTLE.match(item)
        if not m:
            raise ValueError(f"--throttle {item!r}: expected PHONE@SECONDS=CORES, e.g. 2@30=0.15")
        phone, at = int(m.group(1)), float(m.group(2))
        if phone >= phones:
            raise ValueError(f"--throttle {item!r}: phone {phone} of {phones} (0..{phones - 1})")
        out.append((at, phone, parse_cpu(m.group(3), f"--throttle {item!r}")))
    return sorted(out)


def _say(text: str) -> None:
    sys.stderr.write("".join(f"{PROG}: {line}\n" for line in text.splitlines()))
    sys.stderr.flush()


def run(args) -> int:
    throttles = _throttles(args.throttle, args.phones)
    try:
        launcher_opts = shlex.split(args.launcher_opts)
    except ValueError as e:
        raise ValueError(f"--launcher-opts {args.launcher_opts!r}: {e}") from None
    if args.timeout is not None and not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0, got {args.timeout:g}")
    cluster = PhoneCluster(
        args.phones,
        cpu=args.cpu,
        link=args.link,
        mem=args.mem,
        burst=args.burst,
        latency=args.latency,
    )
    with cluster:
        _say(cluster.describe())
        job = cluster.launch(
            args.script,
            args.script_args,
            module=args.module,
            launch_args=launcher_opts,
            stdout=sys.stdout,
            stderr=sys.stderr,
        )
        started = time.monotonic()
        code = None
        try:
            while code is None:
                now = time.monotonic() - started
                while throttles and throttles[0][0] <= now:
                    _, phone, cores = throttles.pop(0)
                    old = cluster.cpu[phone]
                    cluster.set_cpu(phone, cores)
                    _say(f"t={now:.1f} s: phone {phone} cpu {old} -> {cores} core")
                if args.timeout is not None and now > args.timeout:
                    _say(f"the job ran longer than --timeout {args.timeout:g} s: stopping it")
                    job.stop()
                    code = 124
                    break
                code = job.returncode
                time.sleep(0.1)
        except KeyboardInterrupt:
            _say("interrupted: stopping the job and removing the phones")
            job.stop()
            code = 130
        _say(cluster.report())
    return code


def status() -> int:
    """Prints every emulated phone namespace and cgroup on this machine with its owner."""
    names = []
    for line in _netns.ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if NAME.match(name):
            names.append(("netns", name))
    for controller in _cgroups.CONTROLLERS:
        if _cgroups.missing(controller):
            continue
        parent = _cgroups.parent_dir(controller)
        for name in sorted(os.listdir(parent)):
            if NAME.match(name):
                names.append((f"cgroup {controller}", os.path.join(parent, name)))
    if not names:
        print("no emulated phones on this machine")
    for kind, name in names:
        base = os.path.basename(name)
        owner = NAME.match(base).group(1)
        state = (
            "stale (owner gone; `phalanx cluster clean` removes it)" if is_stale(base) else "live"
        )
        print(f"{kind:14} {name}  owner pid {owner}: {state}")
    return 0


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "check":
            reason = missing_capability()
            print(reason or "this machine can emulate phones (root, netns, tc, cgroup cpu+memory)")
            return 3 if reason else 0
        if args.command == "status":
            return status()
        if args.command == "clean":
            removed = sweep()
            print("\n".join(removed) if removed else "nothing stale to remove")
            return 0
        return run(args)
    except SystemExit as e:  # --help, or SIGTERM/SIGHUP turned into SystemExit by PhoneCluster
        return e.code if isinstance(e.code, int) else 0
    except ValueError as e:
        _say(f"error: {e}")
        _say(f"see '{PROG} --help'")
        return 2
    except MissingCapability as e:
        _say(str(e))
        return 3


if __name__ == "__main__":
    sys.exit(main())
