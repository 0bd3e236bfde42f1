"""Names of what an emulated cluster creates, and whose it is.

Every namespace and cgroup is named `phx<pid>s<set>` + `br` (the bridge) or `r<i>` (phone
i), where <pid> is the owner process: the one that created it and removes it on exit. When
the owner died without cleaning up (SIGKILL, the OOM killer), the next cluster created on
the machine, or `phalanx cluster clean`, finds names whose owner is gone and removes them.
"""

from __future__ import annotations

import itertools
import os
import re

PREFIX = "phx"
NAME = re.compile(rf"^{PREFIX}(\d+)s\d+(?:r\d+|br)$")
_sets = itertools.count()


def new_base() -> str:
    """A prefix no other live set uses: this process's pid and a per-process counter."""
    return f"{PREFIX}{os.getpid()}s{next(_sets)}"


def owner_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie counts as gone: it cleans nothing up)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_stale(name: str) -> bool:
    """True for one of our names whose owner process is gone."""
    m = NAME.match(name)
    return bool(m) and not owner_alive(int(m.group(1)))
