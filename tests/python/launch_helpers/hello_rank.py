"""Rank script for the launcher tests that needs no phalanx: prints its arguments and the
launcher's variables, and exits with the code given by LAUNCH_TEST_EXIT (default 0)."""

import os
import sys

env = os.environ
keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "PHALANX_STORE_EXTERNAL"]
print(" ".join(f"{k}={env.get(k)}" for k in keys))
print(f"args={sys.argv[1:]!r} extra={env.get('LAUNCH_TEST_EXTRA')!r} cwd={os.getcwd()}")
print(f"err of {env['RANK']}", file=sys.stderr)
sys.exit(int(env.get("LAUNCH_TEST_EXIT", "0")))
