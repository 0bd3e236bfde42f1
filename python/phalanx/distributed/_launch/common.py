"""What every part of `phalanx launch` shares: the program name its messages carry, the error
for bad command-line input, and the argv every rank runs.

They sit in this one small module so that the modules that need them (hosts file, rank
plan, output, remote and local commands, command line) need not import one another for them.
"""

from __future__ import annotations

PROG = "phalanx launch"


class UsageError(Exception):
    """Bad command-line input: reported with exit status 2 before anything starts."""


def target(args) -> list[str]:
    """What a rank's interpreter runs: `script args...` or `-m module args...`; local and
    remote ranks start the same target, only the wrapping around it differs."""
    return (["-m", args.script] if args.module else [args.script]) + list(args.script_args)
