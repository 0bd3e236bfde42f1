"""The program every rank of phalanx.distributed.run runs:
`python -m phalanx.distributed._driver.rank`, started by the launcher with the usual
MASTER_ADDR, RANK, WORLD_SIZE, PHALANX_JOB_ID... environment.

It fetches the driver's function and arguments from the launcher's store, joins the process
group, calls the function, and stores its return value. Any failure (unpickling, joining,
the function itself, pickling the result) is stored as an error record instead, numbered by
the order in which ranks failed (a counter in the store), and the rank exits 1 so the
launcher stops the others; the driver re-raises the first failure with this rank's
traceback.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import traceback

from phalanx.distributed._driver import transport

# How long a rank waits for the driver's payload: it is stored before any rank starts, so
# this only bounds a store that stopped answering.
PAYLOAD_TIMEOUT = 60.0


def _version_check(meta: dict) -> None:
    """cloudpickle ships bytecode, which only the same Python minor version can run."""
    here = tuple(sys.version_info[:2])
    there = tuple(meta["python"])
    if here != there:
        raise RuntimeError(
            f"the driver runs Python {there[0]}.{there[1]} but this rank runs Python "
            f"{here[0]}.{here[1]} ({sys.executable}): functions are sent as bytecode, which "
            "only the same Python minor version can run; use the same Python version on "
            "every host (run(python=...) picks the interpreter on the hosts)"
        )


def _record_error(store, rank: int, stage: str, exc: BaseException) -> None:
    tb = exc.__traceback__
    if stage == "running fn" and tb is not None:
        tb = tb.tb_next  # start in the user's function, not in this program
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    try:
        exception = transport.dumps(exc)
    except Exception:  # an exception that cannot travel still has its text
        exception = None
    record = {
        "rank": rank,
        "host": socket.gethostname(),
        "stage": stage,
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": text,
        "exception": exception,
    }
    key = store.key_prefix("run", transport.FAILURES)
    record["order"] = store.add(key, 1)
    transport.put(store, store.key_prefix("run", transport.error_key(rank)), pickle.dumps(record))


def main() -> int:
    rank = int(os.environ["RANK"])
    stage = "connecting to the driver's store"  # what the rank was doing, for the record
    store = None
    try:
        from phalanx.distributed import TCPStore

        store = TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), timeout=PAYLOAD_TIMEOUT
        )
        stage = "receiving fn and its arguments"
        meta = pickle.loads(transport.get(store, store.key_prefix("run", transport.PAYLOAD)))
        _version_check(meta)
        fn, args, kwargs = transport.loads(meta["call"])
        stage = "joining the process group"
        import phalanx.distributed as dist

        dist.init_process_group()
        stage = "running fn"
        result = fn(*args, **kwargs)
        stage = "sending the return value"
        data = transport.dumps(result)
        transport.put(store, store.key_prefix("run", transport.result_key(rank)), data)
        if dist.is_initialized():  # fn may have destroyed it itself
            dist.destroy_process_group()
        return 0
    except SystemExit as e:
        if e.code in (None, 0) and stage == "running fn":  # fn ended the rank on purpose
            exc = RuntimeError(f"fn called sys.exit({e.code}) on rank {rank}; return instead")
            return _fail(store, rank, stage, exc)
        return _fail(store, rank, stage, e)
    except BaseException as e:
        return _fail(store, rank, stage, e)


def _fail(store, rank: int, stage: str, exc: BaseException) -> int:
    try:
        if store is None:
            raise RuntimeError("no store")
        _record_error(store, rank, stage, exc)
    except BaseException:  # the driver cannot be told: say it here (the driver shows stderr)
        print(f"rank {rank} failed while {stage}:", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    sys.stdout.flush()
    sys.stderr.flush()
    return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a failed rank must not wait at exit for threads fn left running, nor for
    # the process group's goodbye; a finished one has already left its group.
    os._exit(code)
