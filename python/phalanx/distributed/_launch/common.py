"""What every part of `phalanx launch` shares: the program name its messages carry, the error
for bad command-line input, the argv every rank runs, and the source of the small programs
that run beside ranks.

They sit in this one small module so that the modules that need them (hosts file, rank
plan, output, remote and local commands, command line) need not import one another for them.
"""

from __future__ import annotations

import os

PROG = "phalanx launch"


class UsageError(Exception):
    """Bad command-line input: reported with exit status 2 before anything starts."""


def target(args) -> list[str]:
    """What a rank's interpreter runs: `script args...` or `-m module args...`; local and
    remote ranks start the same target, only the wrapping around it differs."""
    return (["-m", args.script] if args.module else [args.script]) + list(args.script_args)


def program_source(name: str) -> str:
    """The source of the small program _launch/<name>.py, to run as `python -c SOURCE ...`
    where phalanx may not be importable (on a remote host; under `python -I`)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")) as f:
        return f.read()
