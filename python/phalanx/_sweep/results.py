"""DIR/results.csv: one row per trial (its parameters, the last and best value of every metric
it reported, wall time, hosts, status and the error's last line), rewritten whole after every
trial so it is always complete and readable; and the ranking printed at the end.
"""

from __future__ import annotations

import csv
import math
import os

STATUS_DONE = ("ok", "pruned")  # finished: a rerun with the same --out does not run these again


def _cell(value) -> str:
    if isinstance(value, float):
        return format(value, ".6g")
    return "" if value is None else str(value)


class Results:
    def __init__(self, out: str, params: list[str], metric: str, mode: str):
        self.path = os.path.join(out, "results.csv")
        self.params = params
        self.metric = metric
        self.mode = mode
        self.rows: dict[int, dict[str, str]] = {}
        if os.path.exists(self.path):
            with open(self.path, newline="") as f:
                for row in csv.DictReader(f):
                    try:
                        self.rows[int(row["trial"])] = row
                    except (KeyError, ValueError):
                        continue

    def done(self, config: dict[str, str]) -> int | None:
        """The number of a finished trial with exactly these parameters, if there is one."""
        for number, row in self.rows.items():
            if row.get("status") in STATUS_DONE and all(row.get(k) == v for k, v in config.items()):
                return number
        return None

    def add(self, number: int, config: dict, outcome, hosts: str) -> dict[str, str]:
        row = {"trial": str(number), "status": outcome.status}
        row.update({k: _cell(v) for k, v in config.items()})
        for name in sorted(set(outcome.last) | set(outcome.best)):
            row[f"{name}_last"] = _cell(outcome.last.get(name))
            row[f"{name}_best"] = _cell(outcome.best.get(name))
        row.update(wall_s=f"{outcome.seconds:.1f}", hosts=hosts, error=outcome.error)
        self.rows[number] = row
        self.save()
        return row

    def columns(self) -> list[str]:
        metrics = {k for r in self.rows.values() for k in r if k.endswith(("_last", "_best"))}
        metrics -= {f"{p}_last" for p in self.params} | {f"{p}_best" for p in self.params}
        first = [f"{self.metric}_last", f"{self.metric}_best"]
        rest = sorted(metrics - set(first))
        cols = ["trial", "status", *self.params, *first, *rest, "wall_s", "hosts", "error"]
        extra = {k for r in self.rows.values() for k in r} - set(cols)  # an older run's params
        return cols[:2] + sorted(extra) + cols[2:]

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, self.columns(), restval="")
            w.writeheader()
            for n in sorted(self.rows):
                w.writerow(self.rows[n])
        os.replace(tmp, self.path)

    def score(self, row: dict) -> float | None:
        try:
            value = float(row.get(f"{self.metric}_best", ""))
        except ValueError:
            return None
        return None if math.isnan(value) else value

    def ranked(self) -> list[dict[str, str]]:
        """Trials that ended ok, best first, then the rest (pruned, failed) by number."""
        ok = [r for r in self.rows.values() if r["status"] == "ok" and self.score(r) is not None]
        ok.sort(key=lambda r: self.score(r), reverse=self.mode == "max")
        rest = sorted((r for r in self.rows.values() if r not in ok), key=lambda r: int(r["trial"]))
        return ok + rest

    def table(self) -> str:
        rows = self.ranked()
        cols = ["trial", *self.params, f"{self.metric}_best", f"{self.metric}_last", "wall_s"]
        cols += ["status"]
        head = ["rank", *cols]
        body = [
            [str(i + 1) if r["status"] == "ok" and self.score(r) is not None else "-"]
            + [r.get(c, "") for c in cols[:-1]]
            + [r["status"] + (f" ({r['error']})" if r.get("error") else "")]
            for i, r in enumerate(rows)
        ]
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        widths[-1] = 0  # the status column is last: no padding
        lines = [
            "  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [head, *body]
        ]
        return "\n".join(lines)
