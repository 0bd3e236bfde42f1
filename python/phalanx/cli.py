"""The `phalanx` command: `phalanx <command> [options]`. Each command lives in its own module
and is imported only when used. Also reachable as `python -m phalanx ...`."""

from __future__ import annotations

import importlib
import sys

# name: (module, function taking (argv, prog=...), one-line help). One line per command.
COMMANDS = {
    "launch": (
        "phalanx.distributed.launch",
        "main",
        "start a data-parallel job on local processes (--nproc N) or over ssh (--hosts FILE)",
    ),
    "doctor": (
        "phalanx.doctor",
        "main",
        "check this machine (and, with --peer/--hosts, the links) for training; run it first",
    ),
    "cluster": (
        "phalanx.distributed.emulate.cli",
        "main",
        "run a job on emulated phones (CPU, memory and link caps; root only)",
    ),
    "sweep": (
        "phalanx._sweep.cli",
        "main",
        "run a script once per hyperparameter setting and rank the results",
    ),
}


def usage() -> str:
    lines = ["usage: phalanx <command> [options]", "", "commands:"]
    lines += [f"  {name:<9} {text}" for name, (_, _, text) in COMMANDS.items()]
    return "\n".join(lines + ["", "'phalanx <command> --help' describes a command.", ""])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.stderr.write(f"phalanx: unknown command {command!r}\n{usage()}")
        return 2
    module, function, _ = COMMANDS[command]
    return getattr(importlib.import_module(module), function)(rest, prog=f"phalanx {command}")


if __name__ == "__main__":
    sys.exit(main())
