"""Every collective against numpy on one world of 3 ranks (started once for the module):
all_reduce for every dtype x ReduceOp x size (1 element to ~20 MB), per-rank values of
different magnitudes; broadcast, all_gather, reduce_scatter and send/recv over several dtypes
and sizes, including 0 elements and odd sizes.

Floating-point results are held to the error bound of the arithmetic the process group does:
each reduction step computes in float32 and rounds to the tensor's dtype (unit roundoff u), so
a sum of k terms may be off by k*u*sum|x| and a product by k*u*|prod x|; max and min are exact,
integers are exact (wrapping for uint8, as in numpy).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from _spawn import World, serve

WORLD = 3
DTYPES = ["float32", "float16", "bfloat16", "int64", "int32", "uint8"]
FLOATING = ("float32", "float16", "bfloat16")
OPS = ["SUM", "AVG", "MAX", "MIN", "PRODUCT"]
SIZES = [1, 7, 1023, 65537]
LARGE = 5_000_003  # ~20 MB of float32, deliberately not a multiple of the rank count
# An all-reduce slower than this (they take ~0.05 s here, even 20 MB on a loaded machine) is a
# performance cliff, not load: a development build once took 15 s for a 20 MB ring all-reduce
# that followed a 1-element halving-doubling one.
SLOW_SECONDS = 10.0
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
SMALLEST_SUBNORMAL = {"float32": 2.0**-149, "float16": 2.0**-24, "bfloat16": 2.0**-133}

# --------------------------------------------------------------------------- data (rank side)


def _round_bf16(a: np.ndarray) -> np.ndarray:
    """float32 -> nearest bfloat16 (ties to even), kept as float32: exact bf16 values."""
    bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return bits.astype(np.uint32).view(np.float32)


def data(dtype: str, n: int, rank: int, seed: int) -> np.ndarray:
    """Rank `rank`'s values, exactly representable in `dtype`: floats of magnitude up to
    rank+1 (so ranks differ in scale), integers in ranges where sums and products of three
    cannot overflow (uint8 wraps, which is defined)."""
    rng = np.random.default_rng([seed, rank, n])
    if dtype in FLOATING:
        a = rng.uniform(-1, 1, n).astype(np.float32) * np.float32(rank + 1)
        if dtype == "float16":
            return a.astype(np.float16)
        return _round_bf16(a) if dtype == "bfloat16" else a
    if dtype == "uint8":
        return rng.integers(0, 256, n, dtype=np.uint8)
    if dtype == "int64":
        return rng.integers(-(2**20), 2**20, n, dtype=np.int64) * np.int64(rank + 1)
    return rng.integers(-1000, 1000, n, dtype=np.int32)


def to_phalanx(a: np.ndarray, dtype: str):
    """A phalanx tensor holding a copy of `a` (from_numpy shares memory, and collectives write
    in place)."""
    import phalanx

    if dtype == "bfloat16":
        return phalanx.from_numpy(np.array(a, np.float32)).to(phalanx.bfloat16)
    return phalanx.from_numpy(np.array(a))


def to_numpy(t) -> np.ndarray:
    import phalanx

    if t.dtype == phalanx.bfloat16:
        t = t.to(phalanx.float32)
    return np.array(t.numpy())


def expected(arrays: list[np.ndarray], dtype: str, op: str):
    """(value, elementwise tolerance or None for exact) of reducing `arrays` with `op`."""
    if dtype not in FLOATING:
        stack = np.stack(arrays)
        dt = stack.dtype
        fn = {"SUM": np.sum, "PRODUCT": np.prod, "MAX": np.max, "MIN": np.min}[op]
        return (fn(stack, axis=0, dtype=dt) if op in ("SUM", "PRODUCT") else fn(stack, 0)), None
    k, u = len(arrays), UNIT_ROUNDOFF[dtype] * 1.01
    floor = k * SMALLEST_SUBNORMAL[dtype]  # rounding near zero is absolute, not relative
    stack = np.stack([a.astype(np.float64) for a in arrays])
    if op in ("MAX", "MIN"):
        return (stack.max(0) if op == "MAX" else stack.min(0)), None
    if op == "PRODUCT":
        want = stack.prod(0)
        return want, k * u * np.abs(want) + floor
    magnitude = np.abs(stack).sum(0)
    if op == "SUM":
        return stack.sum(0), k * u * magnitude + floor
    return stack.sum(0) / k, (k + 1) * u * magnitude / k + floor


def mismatch(what: str, got: np.ndarray, want: np.ndarray, tol=None) -> str | None:
    """None if `got` matches, else a line naming the first bad element and how many are bad."""
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, expected {want.shape}"
    if tol is None:
        bad = got != want
    else:
        bad = ~(np.abs(got.astype(np.float64) - want) <= tol)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    tol_i = "" if tol is None else f" (tolerance {tol[i]:.3g})"
    first = f"first [{i}] = {got[i]!r} not {want[i]!r}{tol_i}"
    return f"{what}: {int(bad.sum())} of {bad.size} wrong, {first}"


# --------------------------------------------------------------------------- cases (rank side)


def case_all_reduce(rank, world, dtype, op, sizes, algorithm=None):
    import phalanx.distributed as dist

    errors = []
    if op == "AVG" and dtype not in FLOATING:
        try:
            dist.all_reduce(to_phalanx(data(dtype, 5, rank, 0), dtype), op=dist.ReduceOp.AVG)
            errors.append(f"AVG on {dtype} did not raise")
        except TypeError as e:
            if "AVG" not in str(e) or "float" not in str(e):
                errors.append(f"AVG on {dtype}: TypeError does not explain: {e}")
        return errors
    for n in sizes:
        arrays = [data(dtype, n, r, seed=len(op)) for r in range(world)]
        t = to_phalanx(arrays[rank], dtype)
        t0 = time.monotonic()
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op), algorithm=algorithm)
        took = time.monotonic() - t0
        if took > SLOW_SECONDS:  # ~0.05 s normally, even for 20 MB
            errors.append(f"{dtype} {op} n={n} {algorithm or 'auto'}: took {took:.1f} s")
        want, tol = expected(arrays, dtype, op)
        errors.append(mismatch(f"{dtype} {op} n={n} {algorithm}", to_numpy(t), want, tol))
    return [e for e in errors if e]


def case_broadcast(rank, world, dtype, sizes):
    import phalanx.distributed as dist

    errors = []
    for n in sizes:
        for src in range(world):
            t = to_phalanx(data(dtype, n, rank, seed=src), dtype)
            dist.broadcast(t, src)
            want = data(dtype, n, src, seed=src).astype(to_numpy(t).dtype)
            errors.append(mismatch(f"broadcast {dtype} n={n} src={src}", to_numpy(t), want))
    return [e for e in errors if e]


def case_all_gather(rank, world, dtype, sizes):
    import phalanx
    import phalanx.distributed as dist

    errors = []
    for n in sizes:
        mine = data(dtype, n, rank, seed=11)
        outs = [to_phalanx(np.zeros(n, mine.dtype), dtype) for _ in range(world)]
        dist.all_gather(outs, to_phalanx(mine, dtype))
        for r in range(world):
            want = data(dtype, n, r, seed=11)
            errors.append(mismatch(f"all_gather {dtype} n={n} from {r}", to_numpy(outs[r]), want))
        # the stacked form, [world, n] rows in rank order
        stacked = to_phalanx(np.zeros((world, n), mine.dtype), dtype)
        dist.all_gather_into_tensor(stacked, to_phalanx(mine, dtype))
        want = np.stack([data(dtype, n, r, seed=11) for r in range(world)])
        got = to_numpy(stacked)
        errors.append(mismatch(f"all_gather_into_tensor {dtype} n={n}", got.ravel(), want.ravel()))
        assert tuple(stacked.shape) == (world, n) and stacked.dtype == getattr(phalanx, dtype)
    return [e for e in errors if e]


def case_reduce_scatter(rank, world, dtype, op, sizes):
    import phalanx.distributed as dist

    errors = []
    for n in sizes:
        # inputs[i] of rank r: data of (rank r, chunk i); output of rank i reduces chunk i
        chunks = [[data(dtype, n, r, seed=100 + i) for i in range(world)] for r in range(world)]
        inputs = [to_phalanx(a, dtype) for a in chunks[rank]]
        out = to_phalanx(np.zeros(n, chunks[0][0].dtype), dtype)
        dist.reduce_scatter(out, inputs, op=getattr(dist.ReduceOp, op))
        want, tol = expected([chunks[r][rank] for r in range(world)], dtype, op)
        errors.append(mismatch(f"reduce_scatter {dtype} {op} n={n}", to_numpy(out), want, tol))
    return [e for e in errors if e]


def case_send_recv(rank, world, dtype, sizes):
    """A ring, every rank sending to the next: blocking pairs ordered to avoid a cycle, then
    the same sizes asynchronously in both directions at once."""
    import phalanx.distributed as dist

    errors = []
    nxt, prv = (rank + 1) % world, (rank - 1) % world
    for n in sizes:
        mine = data(dtype, n, rank, seed=7)
        got = to_phalanx(np.zeros(n, mine.dtype), dtype)
        if rank == 0:
            dist.send(to_phalanx(mine, dtype), nxt, tag=n % 1000)
            dist.recv(got, prv, tag=n % 1000)
        else:
            dist.recv(got, prv, tag=n % 1000)
            dist.send(to_phalanx(mine, dtype), nxt, tag=n % 1000)
        errors.append(mismatch(f"recv {dtype} n={n}", to_numpy(got), data(dtype, n, prv, 7)))
        left = to_phalanx(np.zeros(n, mine.dtype), dtype)
        right = to_phalanx(np.zeros(n, mine.dtype), dtype)
        works = [
            dist.isend(to_phalanx(mine, dtype), nxt, tag=1),
            dist.isend(to_phalanx(mine, dtype), prv, tag=2),
            dist.irecv(left, prv, tag=1),
            dist.irecv(right, nxt, tag=2),
        ]
        for w in works:
            w.wait()
        errors.append(mismatch(f"irecv {dtype} n={n} <-", to_numpy(left), data(dtype, n, prv, 7)))
        errors.append(mismatch(f"irecv {dtype} n={n} ->", to_numpy(right), data(dtype, n, nxt, 7)))
    return [e for e in errors if e]


def case_zero_elements(rank, world):
    """Empty tensors pass through every collective untouched, for every op."""
    import phalanx.distributed as dist

    errors = []
    for op in ["SUM", "MAX", "PRODUCT"]:
        t = to_phalanx(np.zeros(0, np.float32), "float32")
        dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        if tuple(t.shape) != (0,):
            errors.append(f"all_reduce {op} of 0 elements gave shape {tuple(t.shape)}")
    # the group still works afterwards
    t = to_phalanx(np.ones(3, np.float32), "float32")
    dist.all_reduce(t)
    errors.append(
        mismatch("all_reduce after empty ones", to_numpy(t), np.full(3, world, np.float32))
    )
    return [e for e in errors if e]


CASES = {k[5:]: v for k, v in list(globals().items()) if k.startswith("case_")}


def _init():
    import phalanx.distributed as dist

    dist.init_process_group("gloo", timeout=float(os.environ.get("PHX_TEST_TIMEOUT", "30")))


def _fini():
    import phalanx.distributed as dist

    dist.destroy_process_group()


def _serve():
    serve(CASES, _init, _fini)


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def world():
    """One world for the module; restarted only if a failure broke it."""
    holder = {"w": None}

    def get() -> World:
        if holder["w"] is None or holder["w"].broken:
            holder["w"] = World("test_collectives_matrix", WORLD)
        return holder["w"]

    yield get
    if holder["w"] is not None:
        holder["w"].close()


def check(errors_by_rank):
    msgs = [f"rank {r}: {e}" for r, errs in enumerate(errors_by_rank) for e in errs]
    assert not msgs, "\n".join(msgs)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_reduce(world, dtype, op):
    sizes = SIZES + ([LARGE] if dtype == "float32" else [])
    check(world().run("all_reduce", dtype, op, sizes, timeout=120))


@pytest.mark.parametrize("algorithm", ["ring", "bcube"])
@pytest.mark.parametrize("dtype,op", [("float16", "SUM"), ("bfloat16", "AVG"), ("int64", "MAX")])
def test_all_reduce_with_a_chosen_algorithm(world, dtype, op, algorithm):
    check(world().run("all_reduce", dtype, op, SIZES, algorithm))


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "uint8"])
def test_broadcast(world, dtype):
    check(world().run("broadcast", dtype, [0, 1, 7, 65537]))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32", "uint8"])
def test_all_gather(world, dtype):
    check(world().run("all_gather", dtype, [0, 1, 1023, 65537]))


@pytest.mark.parametrize(
    "dtype,op",
    [("float32", "SUM"), ("float16", "SUM"), ("int64", "MAX"), ("int32", "MIN"), ("uint8", "SUM")]
    + [("float32", "AVG"), ("bfloat16", "PRODUCT")],
)
def test_reduce_scatter(world, dtype, op):
    check(world().run("reduce_scatter", dtype, op, [0, 1, 7, 1023, 65537]))


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint8"])
def test_send_recv(world, dtype):
    check(world().run("send_recv", dtype, [0, 1, 7, (1 << 20) + 1]))


def test_zero_elements(world):
    check(world().run("zero_elements"))
