"""An emulated phone cluster on one Linux machine: N "phones", each a network namespace on
a bridge with its link shaped by tc tbf, its CPU capped by a cgroup (changeable while a job
runs, as a phone throttles) and its memory capped by a cgroup; jobs start through `phalanx
launch --hosts`. Needs root, iproute2 and the cgroup v1 cpu/memory controllers; elsewhere
PhoneCluster raises MissingCapability naming what is missing. Guide:
docs/emulated_cluster.md; command line: `phalanx cluster --help`.

    from phalanx.distributed.emulate import PhoneCluster

    with PhoneCluster(4, cpu=[0.6, 0.6, 0.3, 0.15], link="1gbit,1gbit,100mbit,100mbit") as c:
        job = c.launch("train.py", ["--epochs", "1"])
        c.set_cpu(3, 0.1)
        job.wait(timeout=600)
"""

from .cluster import Job, MissingCapability, PhoneCluster, missing_capability, sweep

__all__ = ["Job", "MissingCapability", "PhoneCluster", "missing_capability", "sweep"]
