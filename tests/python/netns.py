"""Ranks on separate network namespaces joined by a bridge, links optionally rate-limited.
The implementation is phalanx.distributed.emulate._netns (the network half of the emulated
phone cluster); this module keeps the names the tests and benchmarks/dist_bench.py use.

    with NetNamespaces(3, rate_mbit=100) as net:
        subprocess.run(net.exec_prefix(0) + ["python3", ...])   # runs as 10.213.0.1

For phones with CPU and memory caps too, use phalanx.distributed.emulate.PhoneCluster.
"""

from phalanx.distributed.emulate._netns import (  # noqa: F401
    NetNamespaces,
    ip,
    remove_stale,
    skip_reason,
    tbf_args,
    tc,
)
