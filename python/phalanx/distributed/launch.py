"""phalanx launch: start a data-parallel job on local processes or over ssh, like torchrun.

Usage::

    phalanx launch [options] script.py [script args...]
    phalanx launch [options] -m package.module [module args...]
    python -m phalanx.distributed.launch [options] script.py [script args...]

Where the ranks run:

  --nproc N        N ranks on this machine (default 1), with this interpreter and its flags.
  --hosts FILE     one rank per slot of each host, started over ssh. One host a line::

                       # comments and blank lines are allowed
                       192.168.1.20:4            # host:slots
                       u0_a123@192.168.1.21      # user@host, 1 slot
                       phone3 slots=2 port=8022 addr=192.168.1.22

                   Optional fields: slots=N, port=N (ssh port; Termux's sshd listens on
                   8022), addr=A (the IPv4 address that host's ranks use for Gloo; defaults
                   to the host itself when it is an IPv4 address), switch=S (the switch the
                   host hangs off, PHALANX_SWITCH for its ranks: see
                   phalanx.distributed.algorithms.hierarchical). Ranks are numbered in file
                   order. Every entry, localhost included, is reached through ssh, running
                   `--python` (default python3) in `--cwd` (default: the ssh login
                   directory) with `env K=V ...` for the variables below.

The launcher hosts the rendezvous store (a phalanx.distributed.TCPStore) itself, so the store
outlives any rank, and gives every rank MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, PHALANX_JOB_ID, PHALANX_TOKEN,
PHALANX_STORE_EXTERNAL=1, PYTHONUNBUFFERED=1, PHALANX_PROGRESS (and PHALANX_ADDR for hosts
with an address), plus every --env KEY=VALUE. PHALANX_PROGRESS tells phalanx.utils.progress
how to show progress: `bar` (tqdm) when the launcher's stdout is a terminal and there is no
--log-dir, `lines` (a whole line every 30 s) otherwise, or the launcher's own
PHALANX_PROGRESS. Local ranks also inherit the launcher's environment; when several
share this machine and OMP_NUM_THREADS is unset it becomes cores / local ranks. MASTER_ADDR is
127.0.0.1 for --nproc and, for --hosts, this machine's address on the route to the hosts
(never its hostname, which Android resolves to localhost); --master-addr overrides it.

Output: every line a rank writes goes to the launcher's stdout or stderr with a prefix
(`[rank 3] `, or `[rank 3 host] ` with --hosts), whole lines only, so ranks never interleave
mid-line. Carriage-return updates (progress bars) of rank 0 are forwarded live when the
launcher's stdout is a terminal; otherwise (a pipe, a log file), and for other ranks, only
completed lines appear. --log-dir DIR also writes each rank's raw output to
DIR/rank<N>.stdout.log and DIR/rank<N>.stderr.log.

Failures: when a rank exits non-zero or dies of a signal, the launcher reports it (`rank 2
(host 127.0.0.1, pid 1234) exited with code 1`), sends SIGTERM to the other ranks (to each
local rank's whole process group; remote ranks are stopped by closing their ssh session's
stdin, which a small watchdog on the host turns into SIGTERM), and SIGKILL after
--kill-timeout seconds. A summary lists the failed and stopped ranks, first failure first.
Ctrl-C, SIGTERM or SIGHUP to the launcher stops every rank the same way (a second Ctrl-C
kills at once). If the launcher itself is killed (even by SIGKILL, as the OOM killer does),
every rank dies with it, together with the processes it started in its own process group
(a process that moves to a session of its own is beyond reach): a small guard beside each
local rank notices, and on a remote host the watchdog notices the ssh session ending.

Elastic (--elastic, docs/elastic.md): a rank that exits or dies does not stop the job; the
others continue in place (phalanx.distributed.elastic). --min-nproc M (default 1): fewer ranks
stop the job, every rank's exit reason in the summary. --max-restarts K (default 0) starts up
to K replacements for lost ranks, each --restart-delay seconds (default 1) after the loss, at
most --max-nproc (default --nproc) running at once; a replacement joins at the running ranks'
next commit. Ranks get PHALANX_ELASTIC=1, PHALANX_ELASTIC_MIN_NPROC and PHALANX_ELASTIC_MEMBER
(the id output prefixes show: a rank's first rank, or the next free number for a replacement).
The job succeeds (status 0) when a rank completed and the launcher did not have to stop it.

Exit status: 0 if every rank exited 0; otherwise the first failure's exit code (128+N for
signal N), 128+N when the launcher got signal N (130 for Ctrl-C), 124 when --max-time ran
out, 2 for bad command-line input (nothing started), 1 when the store could not start.
"""

# This module is the public face of the launcher: its docstring is the user manual (the
# --help epilog), and it holds main() and the `python -m` entry point. The implementation
# lives in the private package phalanx.distributed._launch, one concern a module; it is not
# re-exported here, so the public API is just these three functions.

from __future__ import annotations

import sys

from ._launch import cli as _cli
from ._launch.common import PROG

__all__ = ["build_parser", "main", "parse_args"]


# The three command-line functions pass this module's docstring along as the manual, so the
# manual has a single home and --help shows it whichever way the launcher is started.


def build_parser(prog: str = PROG):
    """The `phalanx launch` argument parser, with the manual above as its --help epilog."""
    return _cli.build_parser(prog, __doc__)


def parse_args(argv: list[str], prog: str = PROG):
    """Parses and checks the command line; UsageError says what is wrong."""
    return _cli.parse_args(argv, prog, __doc__)


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """Runs `phalanx launch` with these arguments; returns the exit status."""
    return _cli.main(argv, prog, __doc__)


if __name__ == "__main__":
    sys.exit(main())
