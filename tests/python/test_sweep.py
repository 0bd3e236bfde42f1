"""phalanx sweep / phalanx.sweep / phalanx.report: grid and random sweeps on local ranks,
side by side (--parallel) and on groups of hosts (the launcher's fake ssh), results.csv and
the ranking, failed trials, resume, Optuna (TPE, median pruning, SQLite storage), bad input.

Trials run a stub script (sweep_helpers/train_stub.py) whose loss is a known function of
--lr and --bs, so rankings are exact. Every sweep is a subprocess bounded by a timeout.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from _spawn import PYTHON, alive, python_env, run_python, scaled, start_python

import phalanx
from phalanx._sweep import space as sweep_space
from phalanx._sweep.report import MARKER, parse_report
from phalanx._sweep.space import SweepError
from phalanx.utils.metrics import read_metrics

HERE = os.path.dirname(os.path.abspath(__file__))
STUB = os.path.join(HERE, "sweep_helpers", "train_stub.py")
FAKE_SSH = shlex.join(PYTHON + [os.path.join(HERE, "launch_helpers", "fake_ssh.py")])
TIMEOUT = 120


def run_sweep(args, timeout=TIMEOUT, **env):
    e = python_env(**env)
    e.pop("PHALANX_SWEEP_TRIAL", None)
    return run_python(["-m", "phalanx", "sweep", *args], env=e, timeout=timeout)


def results(out) -> list[dict]:
    with open(os.path.join(out, "results.csv"), newline="") as f:
        return list(csv.DictReader(f))


def runs(path) -> list[str]:
    return open(path).read().splitlines() if os.path.exists(path) else []


# --------------------------------------------------------------------------- report()


def test_report_is_a_no_op_outside_a_sweep(capsys, monkeypatch):
    monkeypatch.delenv("PHALANX_SWEEP_TRIAL", raising=False)
    phalanx.report(step=1, loss=0.5)
    assert capsys.readouterr().out == ""


def test_report_prints_a_marker_on_rank_0_only(capsys, monkeypatch):
    monkeypatch.setenv("PHALANX_SWEEP_TRIAL", "7")
    monkeypatch.setenv("RANK", "0")
    phalanx.report(step=3, loss=phalanx.tensor(0.25), acc=1)
    out = capsys.readouterr().out
    assert out.startswith(MARKER)
    assert parse_report("[rank 0] " + out.strip(), "7") == (3, {"loss": 0.25, "acc": 1.0})
    assert parse_report("[rank 0] " + out.strip(), "8") is None  # another trial's report
    monkeypatch.setenv("RANK", "1")
    phalanx.report(loss=1.0)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "no metrics given"),
        ({"loss": "low"}, TypeError, "metric 'loss' must be a number, got str 'low'"),
        ({"loss": True}, TypeError, "metric 'loss' must be a number, got bool"),
        ({"step": 1.5, "loss": 1.0}, TypeError, "step must be an int or None, got float 1.5"),
    ],
)
def test_report_bad_arguments(kwargs, error, message, monkeypatch):
    monkeypatch.delenv("PHALANX_SWEEP_TRIAL", raising=False)
    with pytest.raises(error, match=message.replace("(", r"\(")):
        phalanx.report(**kwargs)


# --------------------------------------------------------------------------- spaces


def test_space_parsing_and_configurations():
    lr = sweep_space.parse_space("lr=1e-4:1e-1:log")
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 1e-1, True, False)
    bs = sweep_space.parse_space("bs=16:256")
    assert bs.integer and not bs.log
    grid = sweep_space.parse_grid("opt=sgd,adam")
    configs = sweep_space.configurations([grid], [lr, bs], 5, seed=3)
    assert len(configs) == 10
    assert configs == sweep_space.configurations([grid], [lr, bs], 5, seed=3)  # resumable
    # the same draws for each grid point
    assert [c["lr"] for c in configs[:5]] == [c["lr"] for c in configs[5:]]
    for c in configs:
        assert 1e-4 <= float(c["lr"]) <= 1e-1
        assert 16 <= int(c["bs"]) <= 256
    # log-uniform: about half the draws below the geometric middle
    many = sweep_space.configurations([], [lr], 400, seed=0)
    below = sum(float(c["lr"]) < 10**-2.5 for c in many)
    assert 150 < below < 250
    assert sweep_space.script_args({"lr": "0.1", "batch-size": "8"}) == [
        "--lr",
        "0.1",
        "--batch-size",
        "8",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr", "--space expects NAME=LO:HI"),
        ("lr=1:0.1", "LO must be below HI"),
        ("lr=0:1:log", "a log range needs LO > 0"),
        ("lr=a:1", "LO 'a' is not a number"),
        ("lr=0:1:cube", "--space expects"),
        ("l r=0:1", "parameter name 'l r'"),
    ],
)
def test_bad_space(text, message):
    with pytest.raises(SweepError, match=message):
        sweep_space.parse_space(text)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(grid={"lr": [1]}, mode="best"), "mode must be 'min' or 'max', got 'best'"),
        (dict(grid={"lr": []}), r"grid\['lr'\] is empty"),
        (dict(), "nothing to sweep"),
        (dict(space={"lr": (1e-3, 1)}), "needs --random N or --optuna N"),
        (dict(random=3), "draws from --space ranges; none given"),
        (dict(space={"lr": (1e-3, 1)}, random=2, optuna=2), "not both"),
        (dict(grid={"lr": [1]}, random=0), "random must be a positive number"),
        (dict(grid={"lr": [1]}, space={"lr": (0, 1)}, random=1), "'lr' is swept twice"),
        (dict(grid={"lr": [1]}, nproc=0), "nproc must be at least 1, got 0"),
        (dict(grid={"lr": [1]}, parallel=0), "parallel must be at least 1, got 0"),
        (dict(grid={"lr": [1]}, group_size=2), "--group-size splits a --hosts file"),
        (dict(grid={"lr": [1]}, metric="a b"), "metric must be the name"),
    ],
)
def test_sweep_bad_input_names_the_argument(tmp_path, kwargs, message):
    kwargs = {"metric": "loss", "out": str(tmp_path / "out"), **kwargs}
    with pytest.raises(SweepError, match=message):
        phalanx.sweep(STUB, **kwargs)
    assert not os.path.exists(tmp_path / "out" / "results.csv")


def test_missing_script_and_hosts_group_size(tmp_path):
    with pytest.raises(SweepError, match="script 'nope.py' not found"):
        phalanx.sweep("nope.py", metric="loss", out=str(tmp_path), grid={"lr": [1]})
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n127.0.0.2\n")
    with pytest.raises(SweepError, match="group size must be from 1 to the 2 host"):
        phalanx.sweep(
            STUB,
            metric="loss",
            out=str(tmp_path),
            grid={"lr": [1]},
            hosts=str(hosts),
            group_size=3,
        )


def test_cli_usage_errors_exit_2(tmp_path, capsys):
    from phalanx.cli import main

    assert main(["sweep", "--metric", "loss", "--out", str(tmp_path), "--grid", "lr", STUB]) == 2
    assert "--grid expects NAME=V1,V2,..., got 'lr'" in capsys.readouterr().err
    assert main(["sweep", "--out", str(tmp_path), STUB]) == 2
    assert "--metric" in capsys.readouterr().err


def test_optuna_missing_is_a_clear_import_error(tmp_path):
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "import phalanx\n"
        "try:\n"
        f"    phalanx.sweep({STUB!r}, metric='loss', out={str(tmp_path)!r}, optuna=2,"
        " space={'lr': (1e-3, 1.0, 'log')})\n"
        "except ImportError as e:\n"
        "    print('IMPORTERROR', e)\n"
    )
    r = run_python(["-c", code])
    assert "IMPORTERROR phalanx sweep --optuna needs the optuna package" in r.stdout, r
    assert not os.path.exists(tmp_path / "trials")  # nothing started


# --------------------------------------------------------------------------- running sweeps


def test_grid_on_local_ranks_with_failures_ranking_and_resume(tmp_path):
    out, log = str(tmp_path / "out"), str(tmp_path / "runs.txt")
    args = [
        "--metric",
        "loss",
        "--out",
        out,
        "--grid",
        "lr=0.1,0.01,1",
        "--grid",
        "bs=1,4",
        "--nproc",
        "2",
        STUB,
        "--fail-above",
        "0.5",
    ]
    r = run_sweep(args, SWEEP_TEST_RUNS=log)
    assert r.returncode == 1, r  # some trials failed
    rows = results(out)
    assert [(x["trial"], x["lr"], x["bs"], x["status"]) for x in rows] == [
        ("0", "0.1", "1", "ok"),
        ("1", "0.1", "4", "ok"),
        ("2", "0.01", "1", "ok"),
        ("3", "0.01", "4", "ok"),
        ("4", "1", "1", "failed"),
        ("5", "1", "4", "failed"),
    ]
    assert list(rows[0])[:4] == ["trial", "status", "lr", "bs"]
    assert {"loss_last", "loss_best", "acc_last", "acc_best", "wall_s", "hosts", "error"} <= set(
        rows[0]
    )
    best = rows[3]  # lr=0.01, bs=4: loss 0.25 at the end, 1.25 after the first step
    assert (best["loss_best"], best["loss_last"], best["world_last"]) == ("0.25", "0.25", "2")
    assert best["hosts"] == "localhost:2" and float(best["wall_s"]) > 0
    assert rows[4]["error"] == "ValueError: lr 1 diverged"  # the error's last line
    assert rows[4]["loss_best"] == ""
    # the ranking, best first; failed trials after it
    ranking = r.stdout[r.stdout.index("ranked by loss (min)") :].splitlines()[2:]
    assert [line.split()[:2] for line in ranking] == [
        ["1", "3"],
        ["2", "2"],
        ["3", "1"],
        ["4", "0"],
        ["-", "4"],
        ["-", "5"],
    ]
    # every trial's output and reports are kept
    trial3 = os.path.join(out, "trials", "3")
    reports = [json.loads(x) for x in open(os.path.join(trial3, "metrics.jsonl"))]
    assert [x["step"] for x in reports] == [0, 1, 2, None]
    assert "[rank 0] @phalanx.report" in open(os.path.join(trial3, "output.log")).read()
    assert len(runs(log)) == 6
    # resume: the same command runs only the failed trials again
    r = run_sweep(args, SWEEP_TEST_RUNS=log)
    assert "resuming: 4 of 6 trials already finished" in r.stdout, r
    assert runs(log)[6:] == ["lr=1 bs=1 world=2", "lr=1 bs=4 world=2"]
    # and with the failing option gone they succeed and the table is complete
    r = run_sweep(args[:-2], SWEEP_TEST_RUNS=log)
    assert r.returncode == 0, r
    assert [x["status"] for x in results(out)] == ["ok"] * 6
    assert len(runs(log)) == 10


def test_random_log_space_in_parallel_from_python(tmp_path):
    log = str(tmp_path / "runs.txt")
    code = (
        "import phalanx\n"
        f"rows = phalanx.sweep({STUB!r}, metric='acc', mode='max', out={str(tmp_path / 'o')!r},"
        " random=4, space={'lr': (1e-3, 1.0, 'log'), 'bs': (1, 8)}, parallel=2, seed=1,"
        " script_args=['--steps', '2', '--sleep', '0.3'])\n"
        "print('ROWS', [(r['trial'], r['status'], r['acc_best']) for r in rows])\n"
    )
    r = run_python(["-c", code], env=python_env(SWEEP_TEST_RUNS=log), timeout=TIMEOUT)
    assert r.returncode == 0, r
    rows = results(tmp_path / "o")
    assert len(rows) == 4 and all(x["status"] == "ok" for x in rows), rows
    for x in rows:
        assert 1e-3 <= float(x["lr"]) <= 1.0 and 1 <= int(x["bs"]) <= 8
    accs = [float(x["acc_best"]) for x in rows]
    returned = eval(r.stdout.split("ROWS ", 1)[1])
    assert [float(a) for _, _, a in returned] == sorted(accs, reverse=True)  # best first
    # two trials at a time: the 4 trials (0.6 s of sleep each) overlapped
    starts = [line for line in r.stdout.splitlines() if " started on " in line]
    assert len(starts) == 4
    assert r.stdout.index("trial 1 started") < r.stdout.index("trial 0 ok")


def test_hosts_split_into_groups(tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1\n127.0.0.2\n127.0.0.3:2\n127.0.0.4:2\n")
    out = str(tmp_path / "out")
    launch_opts = f"--python {shlex.quote(shlex.join(PYTHON))} --cwd {HERE}"
    r = run_sweep(
        [
            "--metric",
            "loss",
            "--out",
            out,
            "--grid",
            "lr=0.1,0.01,0.001",
            "--hosts",
            str(hosts),
            "--group-size",
            "2",
            "--launch-opts",
            launch_opts,
            os.path.join("sweep_helpers", "train_stub.py"),
        ],
        PHALANX_SSH=FAKE_SSH,
    )
    assert r.returncode == 0, r
    rows = results(out)
    assert [x["status"] for x in rows] == ["ok"] * 3
    # group 0 is the first two hosts (2 ranks), group 1 the last two (4 ranks)
    by_hosts = {x["hosts"]: x["world_last"] for x in rows}
    assert by_hosts == {"127.0.0.1 127.0.0.2": "2", "127.0.0.3:2 127.0.0.4:2": "4"}
    assert open(os.path.join(out, "hosts", "group1.txt")).read() == (
        "127.0.0.3 slots=2 addr=127.0.0.3\n127.0.0.4 slots=2 addr=127.0.0.4\n"
    )


def test_optuna_tpe_pruning_storage_and_resume(tmp_path):
    optuna = pytest.importorskip("optuna")
    out = str(tmp_path / "o")
    code = (
        "import optuna, phalanx\n"
        f"phalanx.sweep({STUB!r}, metric='loss', out={out!r}, optuna=OPTUNA,"
        " space={'lr': (1e-4, 10.0, 'log')}, grid={'bs': [1, 4]}, seed=0,"
        " pruner=optuna.pruners.MedianPruner(n_startup_trials=2),"
        " script_args=['--steps', '6', '--sleep', '0.4'])\n"
    )
    r = run_python(["-c", code.replace("OPTUNA", "6")], timeout=240)
    assert r.returncode == 0, r
    rows = results(out)
    assert len(rows) == 6
    statuses = [x["status"] for x in rows]
    assert "pruned" in statuses and "ok" in statuses, r.stdout
    study = optuna.load_study(study_name="phalanx-sweep", storage=f"sqlite:///{out}/optuna.db")
    assert len(study.trials) == 6
    states = [t.state.name for t in study.trials]
    assert states == [{"ok": "COMPLETE", "pruned": "PRUNED"}[s] for s in statuses]
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert min(t.value for t in done) == pytest.approx(study.best_value)
    for t, x in zip(study.trials, rows):
        assert sweep_space.format_value(t.params["lr"]) == x["lr"]
        assert t.params["bs"] in ("1", "4") and x["bs"] == t.params["bs"]
        if x["status"] == "pruned":  # stopped early: fewer than all the step reports
            steps = [
                json.loads(y)["step"] for y in open(f"{out}/trials/{x['trial']}/metrics.jsonl")
            ]
            assert None not in steps
    # asking for 8 in all runs 2 more
    r = run_python(["-c", code.replace("OPTUNA", "8")], timeout=240)
    assert r.returncode == 0, r
    assert "resuming: 6 of 8 trials already finished" in r.stdout
    assert len(results(out)) == 8
    assert (
        len(
            optuna.load_study(
                study_name="phalanx-sweep", storage=f"sqlite:///{out}/optuna.db"
            ).trials
        )
        == 8
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_ctrl_c_stops_every_trial_and_leaves_nothing_running(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    out = str(tmp_path / "o")
    p = start_python(
        ["-m", "phalanx", "sweep", "--metric", "loss", "--out", out, "--grid", "lr=0.1,0.01",
         "--nproc", "2", "--parallel", "2", STUB, "--steps", "1000", "--sleep", "0.1"],
        env=python_env(SWEEP_TEST_PIDS=str(pids)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + scaled(60)
        while len(os.listdir(pids)) < 4:  # both trials' ranks are running
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=scaled(60))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, (stdout, stderr)
    assert b"interrupted: stopping the running trials" in stdout
    ranks = [int(name.split(".")[0]) for name in os.listdir(pids)]
    deadline = time.monotonic() + scaled(10)
    while any(alive(pid) for pid in ranks):
        assert time.monotonic() < deadline, [pid for pid in ranks if alive(pid)]
        time.sleep(0.1)
    assert [x["status"] for x in results(out)] == ["stopped", "stopped"]


def test_sweeping_the_fashion_mnist_example(tmp_path):
    """The example reports test_acc every epoch and logs it with MetricsLogger: a real sweep."""
    root = os.path.dirname(os.path.dirname(HERE))
    out, metrics = str(tmp_path / "o"), str(tmp_path / "m.csv")
    r = run_sweep(
        [
            "--metric", "test_acc", "--mode", "max", "--out", out, "--grid", "lr=0.05",
            "--nproc", "2", os.path.join(root, "examples", "fashion_mnist.py"), "--epochs", "1",
            "--limit-train", "512", "--no-progress", "--metrics", metrics,
        ],
        timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r
    rows = results(out)
    (row,) = rows  # one trial of two ranks: the example is a DDP script
    assert row["status"] == "ok" and row["lr"] == "0.05" and row["hosts"] == "localhost:2"
    assert 0.1 < float(row["test_acc_best"]) <= 1
    assert {"test_loss_last", "train_loss_last"} <= set(row)
    (logged,) = read_metrics(metrics)  # rank 0 only
    assert logged["step"] == 1 and f"{logged['test_acc']:.6g}" == row["test_acc_last"]
