"""Rank script for the launcher's failure tests. Usage: sleepy_rank.py PID_DIR [options].

Every rank starts a grandchild (sleep) and writes "<own pid> <grandchild pid>" to
PID_DIR/rank<N>.pid, then sleeps forever, except that
  --fail RANK:CODE      that rank waits for every rank's pid file, writes PID_DIR/failed_at
                        (time.time()) and exits with CODE;
  --ignore-term RANK    that rank ignores SIGTERM, so only SIGKILL stops it.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("pid_dir")
p.add_argument("--fail")
p.add_argument("--ignore-term", type=int, default=-1)
args = p.parse_args()
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

grandchild = subprocess.Popen(["sleep", "1000"])
if rank == args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
path = os.path.join(args.pid_dir, f"rank{rank}.pid")
with open(path + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid}")
os.rename(path + ".tmp", path)  # appears complete
print(f"rank {rank} ready", flush=True)

if args.fail and int(args.fail.split(":")[0]) == rank:
    code = int(args.fail.split(":")[1])
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if all(os.path.exists(os.path.join(args.pid_dir, f"rank{r}.pid")) for r in range(world)):
            break
        time.sleep(0.05)
    with open(os.path.join(args.pid_dir, "failed_at"), "w") as f:
        f.write(repr(time.time()))
    print(f"rank {rank} failing with code {code}", file=sys.stderr, flush=True)
    sys.exit(code)
while True:
    time.sleep(1000)
