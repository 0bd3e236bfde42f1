"""Every notebook in notebooks/ runs top to bottom (nbclient, a real Jupyter kernel) on the
small settings its parameters cell picks when PHALANX_NOTEBOOK_SMOKE=1, and is committed
without outputs.

The kernel runs this test's interpreter with its flags and sys.path (a kernel spec made for
the test), so the notebooks import the phalanx under test, not whatever `python3` would.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

# The Jupyter stack (nbclient, nbformat, ipykernel) is a test dependency of bootstrap.sh; the
# aarch64 run under qemu (scripts/aarch64_test.sh) does not install it for the arm64 Python.
nbclient = pytest.importorskip("nbclient", reason="needs nbclient (the Jupyter test stack)")
nbformat = pytest.importorskip("nbformat", reason="needs nbformat (the Jupyter test stack)")
from _spawn import PYTHON, python_env  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK_DIR = os.path.join(ROOT, "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
CELL_TIMEOUT = 600  # seconds one cell may take
KERNEL_START_TIMEOUT = 180  # seconds; a loaded CI machine starts a kernel slowly
KERNEL = "phalanx-notebook-test"

# Text some notebooks must show, proof that they did what they say (not just "no error").
EXPECTED_TEXT = {
    "01_quickstart.ipynb": ["epoch 1/1: training loss"],
    "02_cluster.ipynb": [
        "epoch 1/1: training loss",
        "milliseconds per rank",  # the timeline view read rank 0's merged trace
        "evaluated in the kernel",
    ],
    "05_sweep.ipynb": ["4 trials in", "ranked by test_acc (max)", "best: lr="],
}


def test_there_are_notebooks():
    names = [os.path.basename(p) for p in NOTEBOOKS]
    assert "01_quickstart.ipynb" in names and "02_cluster.ipynb" in names, names


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A JUPYTER_PATH with a kernel spec that starts this interpreter the way _spawn does."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    env = python_env()
    spec = {
        "argv": PYTHON + ["-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "phalanx (test)",
        "language": "python",
        "env": {"PYTHONPATH": env["PYTHONPATH"], "PHALANX_NOTEBOOK_SMOKE": "1"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return str(root)


def _outputs_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs(path, kernel_dir, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", kernel_dir)
    monkeypatch.setenv("PHALANX_NOTEBOOK_SMOKE", "1")
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        startup_timeout=KERNEL_START_TIMEOUT,
        kernel_name=KERNEL,
        resources={"metadata": {"path": NOTEBOOK_DIR}},
    )
    client.execute()  # CellExecutionError (with the cell and its traceback) on any error
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "".join(_outputs_text(c) for c in code)
    for expected in EXPECTED_TEXT.get(os.path.basename(path), []):
        assert expected in text, f"{expected!r} not in the outputs:\n{text[-3000:]}"
    name = os.path.basename(path)
    if name == "01_quickstart.ipynb":  # the live plot was drawn
        assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    if name == "02_cluster.ipynb":
        # rank 0's output streamed into the cell that called run(), as it happened
        run_cell = next(c for c in code if "dist.run(" in c.source)
        assert "epoch 1/1: training loss" in _outputs_text(run_cell)


def test_committed_notebooks_have_no_outputs():
    r = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "check_notebooks.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_output_check_finds_and_strips_outputs(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[0].execution_count = 3
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, str(path))
    check = [sys.executable, os.path.join(ROOT, "scripts", "check_notebooks.py")]
    r = subprocess.run(check + [str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "cell 0 has 1 output(s)" in r.stdout and "execution_count 3" in r.stdout
    subprocess.run(check + ["--strip", str(path)], check=True, timeout=60)
    assert subprocess.run(check + [str(path)], timeout=60).returncode == 0
    assert nbformat.read(str(path), as_version=4).cells[0].source == "print(1)"
