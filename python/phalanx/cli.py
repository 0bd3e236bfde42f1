"""The `phalanx` command: `phalanx launch [options] script.py [args...]` starts a distributed
job (see phalanx.distributed.launch); `phalanx sweep` runs a hyperparameter sweep.
Also reachable as `python -m phalanx launch ...`."""

from __future__ import annotations

import sys

USAGE = """\
usage: phalanx <command> [options]

commands:
  launch    start a data-parallel job on local processes (--nproc N) or over ssh (--hosts FILE)
  sweep     run a script once per hyperparameter setting and rank the results

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
    if command == "sweep":
        from ._sweep.cli import main as sweep

        return sweep(rest, prog="phalanx sweep")
    sys.stderr.write(f"phalanx: unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
