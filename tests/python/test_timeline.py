"""The timeline: PHALANX_TIMELINE and phalanx.utils.timeline write one Chrome-trace JSON per
job with every rank's forward, backward, optimizer step, bucket all-reduces (launch, wait, in
flight), data loading and idle time, properly nested, merged on rank 0's clock (checked with a
rank whose clock is made 5 s off), CPU samples where sysfs has them; nothing when disabled."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict

import pytest
from _spawn import python_env, run_python

from phalanx._timeline import recorder
from phalanx._timeline.samplers import Sampler

HERE = os.path.dirname(os.path.abspath(__file__))
RANK_SCRIPT = os.path.join(HERE, "timeline_helpers", "train_rank.py")
STEPS = 4


def launch(nproc: int, args, **env):
    e = python_env(**env)
    return run_python(
        ["-m", "phalanx.distributed.launch", "--nproc", str(nproc), RANK_SCRIPT, *args],
        env=e,
        timeout=120,
    )


def load_trace(path) -> dict:
    with open(path) as f:
        trace = json.load(f)  # valid JSON, in the Chrome trace "object" format
    assert isinstance(trace["traceEvents"], list) and trace["traceEvents"]
    for e in trace["traceEvents"]:
        assert e["ph"] in ("X", "M", "C", "b", "e"), e
        assert isinstance(e["pid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert e["dur"] >= 0 and isinstance(e["tid"], int) and e["name"], e
        if e["ph"] in "be":
            assert e["cat"] and e["id"], e
    return trace


def spans(trace, pid, name=None):
    out = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["pid"] == pid]
    return [e for e in out if name is None or e["name"] == name]


def assert_nested(trace) -> None:
    """On every thread, two spans either nest or do not overlap (what trace viewers need)."""
    by_thread = defaultdict(list)
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            by_thread[e["pid"], e["tid"]].append(e)
    eps = 0.002  # us: rounding of ts and dur to 3 decimals
    for evs in by_thread.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - eps:
                stack.pop()
            if stack:
                outer = stack[-1]
                assert e["ts"] + e["dur"] <= outer["ts"] + outer["dur"] + eps, (outer, e)
            stack.append(e)


def inside(inner, outer) -> bool:
    return outer["ts"] - 0.002 <= inner["ts"] and (
        inner["ts"] + inner["dur"] <= outer["ts"] + outer["dur"] + 0.002
    )


def test_merged_trace_of_two_ranks_with_a_skewed_clock(tmp_path):
    path = tmp_path / "trace.json"
    r = launch(2, [str(STEPS)], PHALANX_TIMELINE=str(path), PHALANX_TIMELINE_TEST_SKEW="1:5")
    assert r.returncode == 0, r
    trace = load_trace(path)
    assert_nested(trace)
    other = trace["otherData"]
    assert other["world_size"] == 2 and other["missing_ranks"] == []
    # rank 1's clock runs 5 s ahead: its measured offsets say so (start and end of the job)
    offsets = other["clock_offsets"]["1"]["offset_us"]
    assert len(offsets) == 2 and all(abs(o + 5e6) < 2e5 for o in offsets), offsets
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}
    assert len(names) == 2 and all(n.startswith(("rank 0 (", "rank 1 (")) for n in names)
    for rank in (0, 1):
        steps = spans(trace, rank, "step")
        assert len(steps) == STEPS
        for name in ("forward", "backward", "optimizer step"):
            found = spans(trace, rank, name)
            assert len(found) == STEPS, (rank, name)
            assert all(any(inside(f, s) for s in steps) for f in found), name
        backward = spans(trace, rank, "backward")
        buckets = {e["name"] for e in spans(trace, rank) if e["name"].startswith("all-reduce")}
        assert {"all-reduce launch (bucket 0)", "all-reduce wait (bucket 1)"} <= buckets
        for e in spans(trace, rank):
            if e["name"].startswith("all-reduce"):  # launched and awaited during backward
                assert any(inside(e, b) for b in backward), e
        assert len(spans(trace, rank, "data loading")) == STEPS + 1  # the last one ends it
        assert spans(trace, rank, "idle")
        flights = [e for e in trace["traceEvents"] if e["pid"] == rank and e["ph"] in "be"]
        launches = [e for e in spans(trace, rank) if e["name"].startswith("all-reduce launch")]
        begins = sorted(e["id"] for e in flights if e["ph"] == "b")
        assert begins == sorted(e["id"] for e in flights if e["ph"] == "e")  # all finished
        assert len(begins) == len(launches) == len(set(begins))
    # on one clock: the ranks finish each step's gradient all-reduce together, so their
    # backward passes end within milliseconds (without the offsets, 5 s apart)
    for b0, b1 in zip(spans(trace, 0, "backward"), spans(trace, 1, "backward")):
        assert abs((b0["ts"] + b0["dur"]) - (b1["ts"] + b1["dur"])) < 100e3  # us


def test_api_start_stop_in_a_group(tmp_path):
    path = tmp_path / "api.json"
    r = launch(2, [str(STEPS), "--api", str(path)])
    assert r.returncode == 0, r
    assert f"[rank 0] WROTE {path}" in r.stdout and "[rank 1] WROTE None" in r.stdout
    trace = load_trace(path)
    assert_nested(trace)
    for rank in (0, 1):
        assert len(spans(trace, rank, "backward")) == STEPS


def test_single_process_trace_at_exit_and_user_spans(tmp_path):
    path = tmp_path / "one.json"
    code = (
        "import phalanx, phalanx.nn as nn, phalanx.nn.functional as F\n"
        "from phalanx.utils import timeline\n"
        "from phalanx.utils.data import DataLoader, TensorDataset\n"
        "assert timeline.recording()\n"
        "m = nn.Linear(4, 2); opt = phalanx.optim.Adam(m.parameters())\n"
        "ds = TensorDataset(phalanx.randn(6, 4), phalanx.randint(0, 2, (6,)))\n"
        "for x, y in DataLoader(ds, batch_size=3):\n"
        "    with timeline.span('my step', cat='user', args={'k': 1}):\n"
        "        loss = F.cross_entropy(m(x), y); opt.zero_grad(); loss.backward(); opt.step()\n"
        "    timeline.mark('logged')\n"
        "phalanx.autograd.backward([m(x).sum()])\n"
    )
    r = run_python(["-c", code], env=python_env(PHALANX_TIMELINE=str(path)))
    assert r.returncode == 0, r
    trace = load_trace(path)
    assert_nested(trace)
    names = [e["name"] for e in spans(trace, 0)]
    assert names.count("my step") == 2 and names.count("logged") == 2
    assert names.count("backward") == 3  # Tensor.backward twice, autograd.backward once
    assert names.count("optimizer step") == 2 and names.count("data loading") == 3
    assert "forward" not in names  # forward spans come from DDP (or your own span)
    assert [e["args"] for e in spans(trace, 0, "my step")] == [{"k": 1}] * 2


def test_cpu_samples_from_sysfs(tmp_path):
    root = tmp_path / "sys"
    for cpu, khz in ((0, 1800000), (1, 2400000)):
        d = root / f"devices/system/cpu/cpu{cpu}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_cur_freq").write_text(f"{khz}\n")
    zone = root / "class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("41500\n")
    (zone / "type").write_text("battery\n")
    (root / "class/thermal/thermal_zone1").mkdir()  # unreadable zones are skipped
    sampler = Sampler(0.01, root=str(root))
    assert sampler.readable
    recorder.events.clear()
    sampler.sample()
    got = {e[1]: e[6] for e in recorder.events if e[0] == "C"}
    recorder.events.clear()
    assert got == {
        "cpu frequency (MHz)": {"cpu0": 1800.0, "cpu1": 2400.0},
        "temperature (C)": {"thermal_zone0 battery": 41.5},
    }
    assert not Sampler(0.01, root=str(tmp_path / "none")).readable


def test_disabled_timeline_records_nothing_and_costs_a_flag_read():
    import phalanx
    from phalanx import _C
    from phalanx._timeline import session

    assert not recorder.ACTIVE and not session.recording()
    assert _C.Tensor.backward.__class__.__name__ != "function"  # not wrapped
    recorder.events.clear()
    x = phalanx.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    assert recorder.events == []

    def plain():
        return None

    traced = recorder.traced("t", "user")(plain)
    n = 20000

    def per_call(fn) -> float:
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best = min(best, (time.perf_counter() - t0) / n)
        return best

    extra = per_call(traced) - per_call(plain)
    assert extra < 2e-6, f"a disabled span costs {extra * 1e9:.0f} ns a call"


@pytest.mark.parametrize("bad", [-1.0])
def test_bad_interval_is_named(bad):
    from phalanx._timeline import session

    with pytest.raises(ValueError, match="timeline interval must be >= 0 seconds, got -1.0"):
        session.start("x.json", interval=bad)
    assert not recorder.ACTIVE
