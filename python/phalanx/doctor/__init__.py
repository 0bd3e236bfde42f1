"""`phalanx doctor`: what a phone user runs first. Prints a table of what matters for training
on this machine (versions, oneDNN's ISA, threads, big and little cores, temperatures, wake lock,
network) and, with --peer or --hosts, the links to other machines; exits non-zero when a check
fails, each failure with its fix. `--serve` runs the other end of a --peer measurement."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .checks import FAIL, Check, local_checks
from .link import measure, serve

__all__ = ["main", "run_checks", "Check"]


def build_parser(prog: str = "phalanx doctor") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="measure the link to a peer running `phalanx doctor --serve` (repeatable)",
    )
    p.add_argument(
        "--hosts",
        metavar="FILE",
        help="run the doctor on every host of a launcher hostfile over ssh; one table",
    )
    p.add_argument(
        "--serve", action="store_true", help="serve the other end of --peer measurements"
    )
    p.add_argument(
        "--port", type=int, default=29555, help="port for --serve (default 29555; 0 picks one)"
    )
    p.add_argument(
        "--serve-seconds",
        type=float,
        default=None,
        help="stop serving after this long (default: until Ctrl-C)",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument(
        "--ssh",
        default=os.environ.get("PHALANX_SSH", "ssh"),
        help="ssh command for --hosts (default: $PHALANX_SSH, else ssh)",
    )
    p.add_argument("--ssh-opts", default="", help="ssh options for --hosts")
    p.add_argument("--python", default="python3", help="interpreter on the hosts (default python3)")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for each host (default 120)"
    )
    return p


def run_checks(peers: list[str] = ()) -> list[Check]:
    return local_checks() + [measure(peer) for peer in peers]


def render(columns: dict[str, list[Check]]) -> str:
    """One row per check, one column per host; a cell is the value, marked when not ok."""
    names = list(dict.fromkeys(row.name for rows in columns.values() for row in rows))
    cells = {
        host: {
            row.name: (row.value if row.status in ("ok", "info") else f"[{row.status}] {row.value}")
            for row in rows
        }
        for host, rows in columns.items()
    }
    header = ["check"] + list(columns)
    table = [header] + [[n] + [cells[h].get(n, "-") for h in columns] for n in names]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    fixes = [
        f"{host}: {row.name}: {row.fix}"
        for host, rows in columns.items()
        for row in rows
        if row.fix and row.status != "ok"
    ]
    if fixes:
        lines += ["", "to do:"] + [f"  {f}" for f in fixes]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "phalanx doctor") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.serve:
        serve(args.port, args.serve_seconds)
        return 0
    if args.hosts:
        from ..distributed._launch.common import UsageError
        from .fleet import check_hosts

        try:
            columns = check_hosts(args.hosts, args.ssh, args.ssh_opts, args.python, args.timeout)
        except (UsageError, OSError) as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 2
        columns = {"this machine": run_checks(args.peer), **columns}
    else:
        columns = {"this machine": run_checks(args.peer)}
    if args.json:
        print(
            json.dumps(
                {"checks": [r.as_dict() for r in columns["this machine"]]}
                if len(columns) == 1
                else {h: [r.as_dict() for r in rows] for h, rows in columns.items()}
            )
        )
    else:
        print(render(columns))
    failed = any(row.status == FAIL for rows in columns.values() for row in rows)
    return 1 if failed else 0
