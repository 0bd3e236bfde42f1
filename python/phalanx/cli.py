"""The `phalanx` command: `phalanx launch [options] script.py [args...]` starts a distributed
job (see phalanx.distributed.launch). Also reachable as `python -m phalanx launch ...`."""

from __future__ import annotations

import sys

USAGE = """\
usage: phalanx <command> [options]

commands:
  launch    start a data-parallel job on local processes (--nproc N) or over ssh (--hosts FILE)
  cluster   run a job on emulated phones (CPU, memory and link caps; root only)

'phalanx <command> --help' describes a command.
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "launch":
        from .distributed.launch import main as launch

        return launch(rest, prog="phalanx launch")
    if command == "cluster":
        from .distributed.emulate.cli import main as cluster

        return cluster(rest)
    sys.stderr.write(f"phalanx: unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
