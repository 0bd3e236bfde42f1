"""An owner of an emulated cluster for the cleanup tests: creates PhoneCluster(2, cpu=0.5,
mem=256M), starts sleepy ranks on it through the launcher, writes what it made to
OUT (JSON: names, bridge, cgroup dirs, owner pid) once every rank is up, then sleeps until
a signal (SIGINT, SIGTERM) or SIGKILL ends it.

    owner.py OUT PID_DIR
"""

import json
import os
import sys
import time

from phalanx.distributed.emulate import PhoneCluster

out, pid_dir = sys.argv[1:3]
sleepy = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "launch_helpers", "sleepy_rank.py"
)
with PhoneCluster(2, cpu=0.5, mem="256M") as c:
    job = c.launch(sleepy, [pid_dir])
    end = time.monotonic() + 60
    while len([n for n in os.listdir(pid_dir) if n.endswith(".pid")]) < 2:
        if job.returncode is not None or time.monotonic() > end:
            sys.exit(f"ranks did not start: {job.stdout()} {job.stderr()}")
        time.sleep(0.05)
    made = {
        "names": c.names + [c.net.bridge_ns],
        "cgroups": [g.path for phone in c.groups for g in phone.groups],
        "launcher": job.pid,
        "owner": os.getpid(),
    }
    with open(out + ".tmp", "w") as f:
        json.dump(made, f)
    os.rename(out + ".tmp", out)
    while True:
        time.sleep(1000)
