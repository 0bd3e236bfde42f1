"""The command line of `phalanx sweep` (the options of phalanx.sweep, as flags)."""

from __future__ import annotations

import argparse
import shlex
import sys

from .space import SweepError

USAGE_EPILOG = """\
Each trial runs `phalanx launch [--nproc K | --hosts GROUP] [LAUNCH_OPTS] script.py [script
args] --NAME VALUE ...`; the script reports with phalanx.report(step=None, **metrics) (rank 0's
reports count). DIR/results.csv holds a row per trial (parameters, NAME_last and NAME_best of
every metric, wall_s, hosts, status ok|failed|pruned|stopped, error); DIR/trials/N/ holds
each trial's output.log and metrics.jsonl. The same command with the same --out resumes:
finished trials (ok or pruned) are not run again, failed and stopped ones are. Exit status:
0 when every trial ended ok or pruned, 1 when some failed, 2 for bad input, 130 on Ctrl-C.
See docs/experiments.md.

examples:
  phalanx sweep --metric acc --mode max --out runs/lr --grid lr=0.1,0.03,0.01 train.py --epochs 2
  phalanx sweep --metric loss --out runs/r --random 8 --space lr=1e-4:1e-1:log --nproc 2 train.py
  phalanx sweep --metric loss --out runs/o --optuna 20 --space lr=1e-4:1e-1:log \\
                --hosts phones.txt --group-size 2 train.py
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SweepError(message)


def build_parser(prog: str = "phalanx sweep") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Run a script once per hyperparameter setting (grid, random or Optuna), "
        "on local ranks or groups of phones, and rank the results.",
        epilog=USAGE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--metric", required=True, metavar="NAME", help="the reported metric to rank by")
    p.add_argument("--mode", choices=("max", "min"), default="min", help="better is (default min)")
    p.add_argument("--out", required=True, metavar="DIR", help="results, logs, Optuna study")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...")
    p.add_argument("--random", type=int, metavar="N", help="N random draws of the --space ranges")
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="NAME=LO:HI[:log]",
        help="a range (integers if LO and HI are), for --random or --optuna",
    )
    p.add_argument("--optuna", type=int, metavar="N", help="N trials by Optuna's TPE sampler")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--nproc", type=int, metavar="K", help="local ranks per trial (default 1)")
    where.add_argument("--hosts", metavar="FILE", help="hosts file (as for phalanx launch)")
    p.add_argument("--group-size", type=int, metavar="K", help="hosts per trial with --hosts")
    p.add_argument(
        "--parallel",
        type=int,
        metavar="P",
        help="trials side by side (default 1; with --hosts, every group)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random/TPE draws (0)")
    p.add_argument(
        "--launch-opts",
        default="",
        metavar="OPTS",
        help="more `phalanx launch` options for every trial, written with '=': "
        "--launch-opts='--max-time 600 --env K=V'",
    )
    p.add_argument("--quiet", action="store_true", help="print only the ranking")
    p.add_argument("script", help="the training script")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="its fixed arguments")
    return p


def main(argv: list[str] | None = None, prog: str = "phalanx sweep") -> int:
    from .search import sweep

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(prog).parse_args(argv)
        try:
            launch_opts = shlex.split(args.launch_opts)
        except ValueError as e:
            raise SweepError(f"--launch-opts {args.launch_opts!r}: {e}") from None
        rows = sweep(
            args.script,
            metric=args.metric,
            out=args.out,
            mode=args.mode,
            grid=args.grid,
            random=args.random,
            space=args.space,
            optuna=args.optuna,
            nproc=args.nproc,
            hosts=args.hosts,
            group_size=args.group_size,
            parallel=args.parallel,
            script_args=args.script_args,
            launch_opts=launch_opts,
            seed=args.seed,
            quiet=args.quiet,
        )
    except SweepError as e:
        print(f"{prog}: error: {e}\nsee '{prog} --help'", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    return 1 if any(r["status"] == "failed" for r in rows) else 0
