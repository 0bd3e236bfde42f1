"""The command line of `phalanx launch`: the argument parser, the checks that turn bad input
into a UsageError (exit status 2, nothing started), and main(), which hands the checked
arguments and rank plan to the Launcher.

The user manual (the --help epilog) is the docstring of phalanx.distributed.launch, the
public entry point, so it is passed in as `manual` rather than duplicated here.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import shutil
import sys

from .common import PROG, UsageError
from .elastic import ElasticLauncher
from .elastic import check_args as check_elastic_args
from .hosts import read_hosts
from .output import Console
from .plan import plan_ranks, route_address
from .supervisor import Launcher

DEFAULT_KILL_TIMEOUT = 10.0
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser(prog: str = PROG, manual: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; `manual` is the user manual whose sections from "Where the ranks
    run:" on become the --help epilog."""
    # The manual's first lines (title, usage) would repeat what argparse already prints.
    epilog = manual[manual.index("Where the ranks run:") :] if manual else None
    p = _Parser(
        prog=prog,
        description="Start a phalanx.distributed job: N local ranks (--nproc) or one rank\n"
        "per slot of each host over ssh (--hosts), like torchrun / horovodrun.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--nproc", type=int, metavar="N", help="ranks on this machine (default 1)")
    where.add_argument(
        "--hosts",
        metavar="FILE",
        help="hosts file: one 'host[:slots]' or 'user@host' a line, optional slots=N port=N "
        "addr=A switch=S link=R uplink=R latency_us=U fields, # comments; one rank per slot, "
        "started over ssh (--elastic: slots added to it during the run start ranks that join)",
    )
    p.add_argument(
        "--master-addr",
        metavar="ADDR",
        help="address ranks use to reach the launcher's store (default: 127.0.0.1 for "
        "--nproc, this machine's address toward the hosts for --hosts)",
    )
    p.add_argument(
        "--master-port", type=int, default=0, metavar="PORT", help="store port (default: free)"
    )
    p.add_argument("--job-id", metavar="ID", help="PHALANX_JOB_ID (default: random)")
    p.add_argument(
        "--token", metavar="SECRET", help="PHALANX_TOKEN (default: $PHALANX_TOKEN, else random)"
    )
    p.add_argument(
        "--ssh",
        default=os.environ.get("PHALANX_SSH", "ssh"),
        metavar="CMD",
        help="ssh command (default: $PHALANX_SSH, else ssh)",
    )
    p.add_argument(
        "--ssh-opts",
        default="",
        metavar="OPTS",
        help="ssh options, placed before the defaults -o BatchMode=yes -o "
        "ServerAliveInterval=5 -o ServerAliveCountMax=3 (e.g. --ssh-opts='-i key')",
    )
    p.add_argument(
        "--python", default="python3", metavar="CMD", help="interpreter on the hosts (python3)"
    )
    p.add_argument(
        "--cwd",
        metavar="DIR",
        help="directory the ranks run in (default: this one for --nproc, the ssh login "
        "directory for --hosts)",
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for every rank (repeatable)",
    )
    p.add_argument(
        "--kill-timeout",
        type=float,
        default=DEFAULT_KILL_TIMEOUT,
        metavar="SECONDS",
        help=f"grace between SIGTERM and SIGKILL when stopping ranks (default "
        f"{DEFAULT_KILL_TIMEOUT:g})",
    )
    p.add_argument(
        "--elastic",
        action="store_true",
        help="a lost rank does not stop the job: the others continue (phalanx.distributed."
        "elastic, docs/elastic.md)",
    )
    p.add_argument(
        "--min-nproc", type=int, metavar="M", help="--elastic: fewer ranks stop the job (1)"
    )
    p.add_argument(
        "--max-nproc",
        type=int,
        metavar="N",
        help="--elastic: most ranks running at once, replacements and hosts added to the "
        "--hosts file during the run included (default: the ranks with --nproc; no limit with "
        "--hosts, whose added hosts all join)",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        metavar="K",
        help="--elastic: replacements started for lost ranks, in total (default 0)",
    )
    p.add_argument(
        "--restart-delay",
        type=float,
        metavar="SECONDS",
        help="--elastic: wait before starting a replacement (default 1)",
    )
    p.add_argument("--max-time", type=float, metavar="SECONDS", help="stop the job after this long")
    p.add_argument("--no-prefix", action="store_true", help="no '[rank N] ' line prefixes")
    p.add_argument("--log-dir", metavar="DIR", help="also write DIR/rank<N>.{stdout,stderr}.log")
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no launcher messages except failures; with --log-dir, rank output goes only "
        "to the files",
    )
    p.add_argument(
        "-m",
        "--module",
        action="store_true",
        help="run the target as a module (python -m), like torchrun -m",
    )
    p.add_argument("script", metavar="script.py|module", help="what every rank runs")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")
    return p


def parse_args(argv: list[str], prog: str = PROG, manual: str | None = None):
    """Parses and checks the command line; UsageError says what is wrong."""
    args = build_parser(prog, manual).parse_args(argv)
    if args.nproc is not None and args.nproc < 1:
        raise UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if not 0 <= args.master_port <= 65535:
        raise UsageError(f"--master-port must be from 0 to 65535, got {args.master_port}")
    if not args.kill_timeout >= 0:
        raise UsageError(f"--kill-timeout must be >= 0, got {args.kill_timeout:g}")
    if args.max_time is not None and not args.max_time > 0:
        raise UsageError(f"--max-time must be > 0, got {args.max_time:g}")
    env = {}
    for item in args.env:
        key, eq, value = item.partition("=")
        if not eq or not _ENV_KEY.match(key):
            raise UsageError(f"--env expects KEY=VALUE with KEY a variable name, got {item!r}")
        env[key] = value
    args.env = env
    if not args.script:
        raise UsageError("no script to run")
    hosts = read_hosts(args.hosts) if args.hosts is not None else None
    if hosts is None:
        cwd = args.cwd or os.getcwd()
        if not os.path.isdir(cwd):
            raise UsageError(f"--cwd {args.cwd!r} is not a directory")
        if not args.module and not os.path.isfile(os.path.join(cwd, args.script)):
            raise UsageError(f"script {args.script!r} not found (in {cwd})")
        args.master_addr = args.master_addr or "127.0.0.1"
    else:
        ssh = _split(args.ssh, "--ssh")
        if not ssh or shutil.which(ssh[0]) is None:
            raise UsageError(f"ssh command {args.ssh!r} not found (--ssh / PHALANX_SSH)")
        _split(args.ssh_opts, "--ssh-opts")
        if not _split(args.python, "--python"):
            raise UsageError("--python is empty")
        args.master_addr = args.master_addr or route_address(hosts)
    if args.log_dir:
        try:
            os.makedirs(args.log_dir, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--log-dir {args.log_dir!r}: {e}") from None
    args.job_id = args.job_id or f"phalanx-{secrets.token_hex(4)}"
    args.token = args.token or os.environ.get("PHALANX_TOKEN") or secrets.token_hex(16)
    args.group_world_size = len(dict.fromkeys(h.host for h in hosts)) if hosts else 1
    args.progress = _progress_mode(args)
    specs = plan_ranks(args.nproc, hosts)
    check_elastic_args(args, len(specs), UsageError)
    return args, specs


def _progress_mode(args) -> str:
    """PHALANX_PROGRESS for the ranks (phalanx.utils.progress): their stdout is a pipe, so they
    cannot see whether a person watches. A live bar only when the launcher's own stdout is a
    terminal and nothing is logged to files; whole lines otherwise. The user's value stands."""
    if os.environ.get("PHALANX_PROGRESS"):
        return os.environ["PHALANX_PROGRESS"]
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "bar" if tty and not args.log_dir else "lines"


def _split(value: str, option: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError as e:  # unbalanced quotes
        raise UsageError(f"{option} {value!r}: {e}") from None


def main(argv: list[str] | None = None, prog: str = PROG, manual: str | None = None) -> int:
    """Runs `phalanx launch` with these arguments; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    console = Console()
    try:
        args, specs = parse_args(argv, prog, manual)
    except UsageError as e:
        console.message(f"error: {e}")
        console.message(f"see '{prog} --help'")
        return 2
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    launcher = ElasticLauncher if args.elastic else Launcher
    return launcher(args, specs, console).run()
