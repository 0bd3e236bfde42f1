"""Rank output for `phalanx launch`: cutting each rank's byte stream into whole lines and
progress updates (LineSplitter), writing them with `[rank N] ` prefixes to one shared
terminal (Console), and the per-stream thread body that does the copying (pump).

Whole lines only, so ranks never interleave mid-line; carriage-return updates (progress bars)
are tracked separately so a live progress line can be ended or replaced cleanly when other
output arrives.
"""

from __future__ import annotations

import os
import re
import sys
import threading

from .common import PROG

MAX_LINE = 1 << 16  # a "line" longer than this is forwarded in pieces


class LineSplitter:
    """Cuts a byte stream into events: ("line", text) for text ended by \\n (or \\r\\n), and
    ("progress", text) for a carriage-return update (text after a \\r, shown until the next
    \\r or \\n replaces it). A partial line is held back until it ends, so ranks never
    interleave mid-line; a partial line after a \\r is a live progress update."""

    _END = re.compile(rb"\r\n|\n|\r")

    def __init__(self, progress: bool = True, limit: int = MAX_LINE):
        self.progress = progress  # False: drop carriage-return updates, keep whole lines
        self.buf = b""
        self.after_cr = False  # the text in buf began after a \r
        self.shown = None  # the text last reported as progress
        self.limit = limit

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        events = []
        buf, pos = self.buf + data, 0
        for m in self._END.finditer(buf):
            end = m.group()
            if end == b"\r" and m.end() == len(buf):
                break  # may be the first half of \r\n: wait for the next byte
            text, pos = buf[pos : m.start()], m.end()
            if end != b"\r":
                events.append(("line", text))
            elif self.progress and text and text != self.shown:
                events.append(("progress", text))
            self.shown = None
            self.after_cr = end == b"\r"
        self.buf = buf[pos:]
        if len(self.buf) > self.limit:
            events.append(("line", self.buf))
            self.buf, self.shown, self.after_cr = b"", None, False
        live = self.buf.rstrip(b"\r")  # without a held-back \r
        if self.progress and self.after_cr and live and live != self.shown:
            events.append(("progress", live))
            self.shown = live
        return events

    def finish(self) -> list[tuple[str, bytes]]:
        """Events for what is left at end of stream (a last line without newline)."""
        text, self.buf = self.buf.rstrip(b"\r"), b""
        return [("line", text)] if text and text != self.shown else []


class Console:
    """The launcher's stdout/stderr, shared by every rank's output threads: writes whole
    lines, and keeps track of a progress line left open (cursor mid-line) so the next
    output first ends it or replaces it."""

    def __init__(self, out=None, err=None):
        self.out = _binary(out or sys.stdout)
        self.err = _binary(err or sys.stderr)
        self.lock = threading.Lock()
        self.open = None  # (key, file) of the progress line on screen
        self.broken = set()  # files that raised (closed pipe): dropped, ranks keep running

    def live_progress(self) -> bool:
        """Whether carriage-return updates (progress bars) are worth forwarding: on a
        terminal they redraw one line; in a pipe or log file they pile up as thousands of
        updates, so there only the line a bar ends with is written."""
        return _isatty(self.out)

    def _write(self, f, data: bytes) -> None:
        if f in self.broken:
            return
        try:
            f.write(data)
            f.flush()
        except (OSError, ValueError):
            self.broken.add(f)

    def _close_open_line(self, key=None) -> bool:
        """Ends the open progress line unless it belongs to `key`; True if `key` owns it."""
        if self.open is None:
            return False
        okey, ofile = self.open
        if okey == key:
            return True
        self._write(ofile, b"\n")
        self.open = None
        return False

    def emit(self, key, f, prefix: bytes, kind: str, text: bytes) -> None:
        with self.lock:
            clear = b"\x1b[K" if _isatty(f) else b""
            if kind == "progress":
                self._close_open_line(key)
                self._write(f, b"\r" + prefix + text + clear)
                self.open = (key, f)
                return
            if self._close_open_line(key):  # this stream's own progress line: finish it
                self._write(f, (b"\r" + prefix + text + clear if text else b"") + b"\n")
                self.open = None
            else:
                self._write(f, prefix + text + b"\n")

    def message(self, text: str) -> None:
        """A line of the launcher's own, on stderr."""
        with self.lock:
            self._close_open_line()
            self._write(self.err, f"{PROG}: {text}\n".encode(errors="replace"))


def _binary(stream):
    return getattr(stream, "buffer", stream)


def _isatty(f) -> bool:
    try:
        return os.isatty(f.fileno())
    except (OSError, ValueError, AttributeError):
        return False


def pump(src, console: Console | None, key, dest, prefix: bytes, log, live_progress: bool):
    """Copies one rank stream until end of file: raw to `log`, as prefixed lines to the
    console (progress updates only when `live_progress`)."""
    splitter = LineSplitter(progress=live_progress)
    fd = src.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        if log is not None:
            try:
                log.write(chunk)
                log.flush()
            except OSError:
                log = None
        if console is not None:
            for kind, text in splitter.feed(chunk):
                console.emit(key, dest, prefix, kind, text)
    if console is not None:
        for kind, text in splitter.finish():
            console.emit(key, dest, prefix, kind, text)
    src.close()
    if log is not None:
        log.close()
