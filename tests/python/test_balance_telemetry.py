"""CPU clock and temperature from /sys (a fake tree here): the readings, the throttling hint,
and the balancer using a falling clock to re-balance before its next interval."""

from __future__ import annotations

import os

from _spawn import run_ranks

import phalanx
import phalanx.nn.functional as F
from phalanx.nn.parallel import DistributedDataParallel as DDP
from phalanx.nn.parallel._telemetry import Telemetry, read_cpu_khz, read_temperature_c
from phalanx.utils.data import BalancedDistributedSampler, DataLoader, TensorDataset


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def fake_sys(root, khz=(1800000, 2000000), temps=("41000",)):
    for i, k in enumerate(khz):
        write(root, f"sys/devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq", f"{k}\n")
    for i, t in enumerate(temps):
        write(root, f"sys/class/thermal/thermal_zone{i}/temp", f"{t}\n")


def test_readings_from_a_fake_sysfs(tmp_path):
    root = str(tmp_path)
    assert read_cpu_khz(root) is None and read_temperature_c(root) is None
    # a CPU without cpufreq, a garbage zone, a disabled zone (0), one in degrees (old kernels)
    os.makedirs(tmp_path / "sys/devices/system/cpu/cpu7")
    fake_sys(root, khz=(1000000, 3000000), temps=("45500", "garbage", "0", "52"))
    assert read_cpu_khz(root) == 2000000
    assert read_temperature_c(root) == 52.0
    write(root, "sys/class/thermal/thermal_zone1/temp", "61000")
    assert read_temperature_c(root) == 61.0


def test_hint_on_a_falling_clock_or_rising_heat_until_rebased(tmp_path):
    root = str(tmp_path)
    fake_sys(root, khz=(2000000,), temps=("40000",))
    t = Telemetry(root)
    t.sample()
    assert not t.hint()
    fake_sys(root, khz=(1800000,), temps=("45000",))  # -10 %, +5 C: within the margins
    t.sample()
    assert not t.hint()
    fake_sys(root, khz=(1500000,), temps=("45000",))  # -25 %
    t.sample()
    assert t.hint() and t.khz == 1500000
    t.rebased()
    assert not t.hint()
    fake_sys(root, khz=(1500000,), temps=("54000",))  # +9 C since the rebase
    t.sample()
    assert t.hint()
    assert not Telemetry(str(tmp_path / "none")).hint()  # nothing readable: never a hint


def throttled_rank(rank, world, base, g, steps, throttle_at):
    root = os.path.join(base, f"rank{rank}")
    fake_sys(root, khz=(2000000, 2000000), temps=(str(40000 + rank * 1000),))
    n = g * steps
    data = TensorDataset(phalanx.randn(n, 256), phalanx.zeros(n, dtype=phalanx.int64))
    sampler = BalancedDistributedSampler(data, g, seed=0)
    phalanx.manual_seed(0)
    # Milliseconds of computation per step, so that the two ranks' measured speeds agree
    # within the balancer's hysteresis on a loaded machine: the clock reading alone must make
    # the difference (a Linear(8, 3) step is tens of microseconds, all scheduler noise).
    nn = phalanx.nn
    model = nn.Sequential(
        nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 3)
    )
    ddp = DDP(model, balance=sampler, balance_interval=1000, telemetry_root=root)
    sizes = []
    for step, (xb, yb) in enumerate(DataLoader(data, batch_sampler=sampler)):
        # The phone heats: its clock falls to a quarter. A quarter, not a half: on a loaded
        # machine one rank's measured steps can come out 2x the other's (it was descheduled),
        # which once cancelled a halved clock in the proposal and no change was made.
        if rank == 1 and step == throttle_at:
            fake_sys(root, khz=(500000, 500000), temps=("71000",))
        F.cross_entropy(ddp(xb), yb).backward()
        sizes.append(xb.shape[0])
    return sizes, ddp.balancer.metrics()


def test_falling_clock_rebalances_before_the_interval(tmp_path):
    g, steps, at = 32, 14, 6
    results = run_ranks(
        "test_balance_telemetry", "throttled_rank", 2, (str(tmp_path), g, steps, at)
    )
    (s0, m0), (s1, m1) = results
    assert m0["cpu_khz"] == [2000000.0, 500000.0] and m0["temperatures"] == [40.0, 71.0]
    assert m0["changes"] == m1["changes"] and len(m0["changes"]) == 1, m0["changes"]
    # hinted at step `at`, confirmed at the next, in force from the first step not drawn
    assert m0["changes"][0]["step"] == at + 2
    first = m0["changes"][0]["at_step"]
    assert first == at + 2
    assert s0[:first] == s1[:first] == [16] * first
    assert all(a > 16 > b and a + b == g for a, b in zip(s0[first:], s1[first:])), (s0, s1)
