"""Host discovery for `phalanx launch --elastic --hosts FILE`: slots added to FILE during the run.

Like Horovod's host discovery, the launcher looks at the file about once a second (its mtime
and size, so an unchanged file costs one stat). The elastic launcher starts a rank for every
slot a host gains between two readings, and the rank joins the job at its next commit.

What a change means:
- A new line, or more slots on a listed host: that many new ranks, up to --max-nproc running.
- A line removed, or fewer slots: nothing is stopped. Its ranks run on and leave only when they
  fail. The file's lower count becomes the baseline, so adding the entry again later (a phone
  that comes back) starts its slots again.
- A file that does not parse (caught mid-edit, or wrong): reported once and ignored until it
  parses. The last good reading stays the baseline.
"""

from __future__ import annotations

import os
from collections import Counter

from .hosts import HostEntry, parse_hosts

POLL_SECONDS = 1.0


def _key(h: HostEntry) -> tuple:
    return (h.host, h.user, h.port)


def _slots(entries: list[HostEntry]) -> Counter:
    counts: Counter = Counter()
    for h in entries:
        counts[_key(h)] += h.slots
    return counts


class HostsWatcher:
    """Reads `path` at most every `interval` seconds; poll() returns the slots added since the
    last good reading (one HostEntry per host, `slots` set to the number added) and messages
    about the change."""

    def __init__(self, path: str, initial: list[HostEntry], interval: float = POLL_SECONDS):
        self.path = path
        self.interval = interval
        self.counts = _slots(initial)
        self.entries = {_key(h): h for h in initial}
        self.next_check = 0.0
        self.stamp = self._stamp()
        self.bad: str | None = None  # the last parse error reported

    def _stamp(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def poll(self, now: float) -> tuple[list[HostEntry], list[str]]:
        if now < self.next_check:
            return [], []
        self.next_check = now + self.interval
        stamp = self._stamp()
        if stamp == self.stamp:
            return [], []
        self.stamp = stamp
        try:
            with open(self.path, encoding="utf-8") as f:
                entries = parse_hosts(f.read(), f"hosts file {self.path!r}")
        except (OSError, UnicodeDecodeError, ValueError) as e:
            text = str(e)
            if text == self.bad:
                return [], []
            self.bad = text
            return [], [f"{text}; the change is ignored until the file parses"]
        self.bad = None
        counts = _slots(entries)
        added, messages = [], []
        for h in entries:
            self.entries[_key(h)] = h
        for key, n in counts.items():
            more = n - self.counts.get(key, 0)
            if more > 0:
                entry = self.entries[key]
                added.append(HostEntry(**{**entry.__dict__, "slots": more}))
        for key, n in self.counts.items():
            fewer = n - counts.get(key, 0)
            if fewer > 0:
                messages.append(
                    f"hosts file: {fewer} slot(s) of {self.entries[key].destination} removed; "
                    "their ranks run on (nothing is stopped)"
                )
        self.counts = counts
        return added, messages


__all__ = ["HostsWatcher", "POLL_SECONDS"]
