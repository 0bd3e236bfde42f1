"""The DataLoader's prefetch threads: a fixed set of daemonic threads running submitted calls.

concurrent.futures.ThreadPoolExecutor joins its threads when the interpreter exits, so a
__getitem__ that never returns -- the case DataLoader(timeout=...) exists for -- kept the
process from ever exiting after the timeout error. These threads are daemonic: a stuck one is
abandoned at exit instead of waited for.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Callable

_STOP = None


class DaemonPool:
    """`size` daemonic threads named `<name>_<id>`; each first runs initializer(id).

    If the initializer raises, every call that thread takes fails with that exception.
    """

    def __init__(self, size: int, name: str, initializer: Callable[[int], None] | None) -> None:
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(
                target=self._work, args=(wid, initializer), name=f"{name}_{wid}", daemon=True
            )
            for wid in range(size)
        ]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def shutdown(self) -> None:
        """Lets the threads exit once their current call returns; waits for none of them.
        Calls not yet started should be cancelled (Future.cancel) first."""
        for _ in self._threads:
            self._tasks.put(_STOP)

    def _work(self, wid: int, initializer) -> None:
        init_error = None
        if initializer is not None:
            try:
                initializer(wid)
            except BaseException as e:  # noqa: BLE001 - handed to every call of this thread
                init_error = e
        while True:
            task = self._tasks.get()
            if task is _STOP:
                return
            future, fn, args = task
            del task  # hold no reference to a finished batch while waiting for the next task
            if not future.set_running_or_notify_cancel():
                continue
            if init_error is not None:
                future.set_exception(init_error)
                continue
            try:
                result = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                future.set_exception(e)
            else:
                future.set_result(result)
                del result
            del future, fn, args
