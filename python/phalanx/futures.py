"""phalanx.futures: the minimal Future the data-parallel communication hooks return.

A communication hook starts an asynchronous collective and returns a Future for the reduced
tensor; ``then`` chains a step (a decompression, a division) that runs when the value is asked
for — on the caller's thread, so it may use any phalanx op. Shaped like torch.futures.Future.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["Future"]


class Future:
    """A value that becomes available once some work handles complete."""

    def __init__(self, works=(), value=None, compute: Callable[[], object] | None = None):
        self._works = list(works)
        self._compute = compute
        self._value = value
        self._done = False

    @classmethod
    def completed(cls, value) -> Future:
        fut = cls(value=value)
        fut._done = True
        return fut

    def done(self) -> bool:
        return self._done or all(w.is_completed() for w in self._works)

    def wait(self):
        """Blocks until the value is ready and returns it; re-raises the work's error."""
        if not self._done:
            for w in self._works:
                w.wait()
            if self._compute is not None:
                self._value = self._compute()
            self._done = True
            self._works = []
            self._compute = None
        return self._value

    def value(self):
        return self.wait()

    def then(self, callback: Callable[[Future], object]) -> Future:
        """A Future for ``callback(self)``, run when the new future's value is needed."""
        return Future(compute=lambda: callback(self._ready()))

    def _ready(self) -> Future:
        self.wait()
        return self
