#!/usr/bin/env python3
"""Checks that the committed notebooks carry no outputs (`make lint`), or strips them (--strip).

Outputs in git make every run a diff, can hold large images, and show results the code in the
cells may no longer produce. Plain JSON, no Jupyter packages needed.

    python scripts/check_notebooks.py [--strip] [notebook.ipynb ...]   (default: notebooks/*.ipynb)
"""

from __future__ import annotations

import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def problems(nb: dict) -> list[str]:
    """What in this notebook is an output or a trace of a run."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i} has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i} has execution_count {cell['execution_count']}")
    if "widgets" in nb.get("metadata", {}):
        found.append("the notebook metadata holds widget state")
    return found


def strip(nb: dict) -> dict:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def main(argv: list[str]) -> int:
    do_strip = "--strip" in argv
    paths = [a for a in argv if a != "--strip"] or sorted(
        glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb"))
    )
    bad = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        if do_strip:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(strip(nb), f, indent=1, ensure_ascii=False)
                f.write("\n")
            continue
        for p in problems(nb):
            print(f"{os.path.relpath(path, ROOT)}: {p}")
            bad += 1
    if bad:
        print(
            "notebooks must be committed without outputs: python scripts/check_notebooks.py --strip"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
