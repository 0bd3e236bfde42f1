"""The --hosts file of `phalanx launch`: parsing and checking it into HostEntry records.

One host a line (`host[:slots]`, `user@host`, optional `slots=N port=N addr=A switch=S`
fields, the link figures `link=1gbit uplink=100mbit latency_us=50` that DDP's choice of
all-reduce reads (nn/parallel/_allreduce_choice.py), `#` comments). The checks are strict
because every accepted name ends up in an ssh command line: a bad line is reported with its
file, line number and problem before anything starts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ...perfmodel import parse_rate
from .common import UsageError


@dataclass
class HostEntry:
    host: str
    slots: int = 1
    user: str | None = None
    port: int | None = None  # ssh port
    addr: str | None = None  # PHALANX_ADDR for this host's ranks
    switch: int | None = None  # PHALANX_SWITCH: which switch it hangs off (hierarchical)
    link: str | None = None  # PHALANX_LINK: its port's rate, e.g. "1gbit"
    uplink: str | None = None  # PHALANX_UPLINK: its switch's uplink rate
    latency_us: str | None = None  # PHALANX_LINK_LATENCY_US: a message round's latency

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host


# RFC 1123 host names: dot-separated labels of letters, digits and hyphens, 1 to 63
# characters each, no hyphen at either end, 253 characters in all. The lengths matter as
# much as the characters: Python's resolver (the IDNA codec) rejects a longer label with a
# UnicodeError, not the OSError every caller expects.
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_MAX_HOST_NAME = 253
_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]*$")


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def _check_host(host: str) -> None:
    """ValueError unless `host` is an IPv4 address or an RFC 1123 host name."""
    if _is_ipv4(host):
        return
    expected = "IPv4 address or host name expected"
    if not host:
        raise ValueError(f"bad host name '' ({expected})")
    if len(host) > _MAX_HOST_NAME:
        raise ValueError(
            f"bad host name {host[:20] + '...'!r}: {len(host)} characters, at most "
            f"{_MAX_HOST_NAME} allowed"
        )
    labels = host.split(".")
    for label in labels:
        if len(label) > 63:
            raise ValueError(
                f"bad host name {host!r}: label {label[:20] + '...'!r} has {len(label)} "
                "characters, at most 63 allowed"
            )
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"bad host name {host!r} ({expected}: labels of letters, digits and inner "
                "hyphens, separated by single dots)"
            )
    if all(label.isdigit() for label in labels):
        raise ValueError(f"bad host name {host!r}: not a valid IPv4 address")


def _positive_int(text: str, what: str, limit: int) -> int:
    if not re.fullmatch(r"[0-9]+", text) or not 1 <= int(text) <= limit:
        raise ValueError(f"{what} must be an integer from 1 to {limit}, got {text!r}")
    return int(text)


def _parse_host_line(line: str) -> HostEntry:
    first, *fields = line.split()
    dest, colon, slots_text = first.partition(":")
    user, at, host = dest.rpartition("@")
    if at and not _USER.match(user):
        raise ValueError(f"bad user name {user!r} in {first!r}")
    _check_host(host)
    entry = HostEntry(host=host, user=user or None)
    if colon:
        entry.slots = _positive_int(slots_text, "slots", 4096)
    for f in fields:
        key, eq, value = f.partition("=")
        if not eq:
            raise ValueError(f"unexpected {f!r}: fields after the host are key=value")
        if key == "slots":
            if colon:
                raise ValueError("slots given twice (host:slots and slots=)")
            entry.slots = _positive_int(value, "slots", 4096)
        elif key == "port":
            entry.port = _positive_int(value, "port", 65535)
        elif key == "addr":
            if not _is_ipv4(value):
                raise ValueError(f"addr must be an IPv4 address, got {value!r}")
            entry.addr = value
        elif key == "switch":
            if not value.isdigit():
                raise ValueError(f"switch must be a non-negative integer, got {value!r}")
            entry.switch = int(value)
        elif key in ("link", "uplink"):
            try:
                parse_rate(value)
            except ValueError:
                raise ValueError(
                    f"{key} must be a rate like '100mbit' or '1gbit', got {value!r}"
                ) from None
            setattr(entry, key, value)
        elif key == "latency_us":
            if not re.fullmatch(r"[0-9]+(\.[0-9]*)?", value):
                raise ValueError(f"latency_us must be a non-negative number, got {value!r}")
            entry.latency_us = value
        else:
            raise ValueError(
                f"unknown field {key!r} (known: slots, port, addr, switch, link, uplink, "
                "latency_us)"
            )
    if entry.addr is None and _is_ipv4(host):
        entry.addr = host
    return entry


def parse_hosts(text: str, name: str = "hosts file") -> list[HostEntry]:
    """Hosts file text -> entries; ValueError names the file, line and problem."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            entries.append(_parse_host_line(line))
        except ValueError as e:
            raise ValueError(f"{name} line {number}: {line!r}: {e}") from None
    if not entries:
        raise ValueError(f"{name} lists no hosts (only blank lines or comments)")
    return entries


def read_hosts(path: str) -> list[HostEntry]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read hosts file {path!r}: {e}") from None
    try:
        return parse_hosts(text, f"hosts file {path!r}")
    except ValueError as e:
        raise UsageError(str(e)) from None
