"""The ssh stand-in through which `phalanx launch --hosts` reaches an emulated phone.

    python3 -I -S shim.py --phones PHONES.json [ssh options...] DESTINATION COMMAND...

The launcher calls it exactly as it calls ssh (`--ssh`). The shim drops ssh's options,
looks DESTINATION up in PHONES.json (written by PhoneCluster: {name: {"cgroups": [dirs],
"exec": [ip, netns, exec, NS], "env": {K: V}}}), moves itself into the phone's cgroups, so
everything it starts is capped like the phone, and runs COMMAND with `sh -c` inside the
phone's network namespace, as sshd would hand it to the login shell, with the phone's
variables as defaults (e.g. OMP_NUM_THREADS: its whole cores).

Like ssh it stays between the launcher and the command: the command's stdin is the
launcher's pipe, so when the launcher closes it (stopping the job) or dies, the watchdog
at the head of COMMAND sees end of file and stops the rank. Exit status: the command's;
255 when the phone is unknown or cannot be entered (ssh's "could not connect"), or when
the command died of a signal (as ssh reports it).

Not imported by phalanx and runs with -I -S: it needs only the standard library.
"""

import json
import os
import subprocess
import sys

OPTIONS_WITH_VALUE = set("BbcDEeFIiJLlmOopQRSWw")  # ssh options that take a value


def fail(text):
    sys.stderr.write(f"phalanx cluster: {text}\n")
    sys.exit(255)


def main(argv):
    if len(argv) < 2 or argv[0] != "--phones":
        fail("usage: shim.py --phones PHONES.json [ssh options] DESTINATION COMMAND")
    try:
        with open(argv[1]) as f:
            phones = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read the phone table {argv[1]!r}: {e}")
    rest, i = argv[2:], 0
    while i < len(rest) and rest[i].startswith("-"):
        if len(rest[i]) == 2 and rest[i][1] in OPTIONS_WITH_VALUE:
            i += 1
        i += 1
    if i >= len(rest):
        fail("no destination given")
    destination, command = rest[i], " ".join(rest[i + 1 :])
    phone = phones.get(destination.rpartition("@")[2])
    if phone is None:
        fail(f"no phone named {destination!r} in this cluster (phones: {', '.join(phones)})")
    for group in phone["cgroups"]:
        try:
            with open(f"{group}/cgroup.procs", "w") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            fail(f"cannot enter {destination}'s cgroup {group} (is the cluster gone?): {e}")
    env = dict(phone.get("env", {}), **os.environ)  # the phone's defaults, e.g. its threads
    code = subprocess.call(phone["exec"] + ["sh", "-c", command], env=env)
    sys.exit(code if code >= 0 else 255)


if __name__ == "__main__":
    main(sys.argv[1:])
