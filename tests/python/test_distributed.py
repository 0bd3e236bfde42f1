"""phalanx.distributed on loopback: every collective, dtype and reduction against numpy, with
2 and 4 ranks started as subprocesses, plus the failure cases (world-size mismatch, master
unreachable, port in use, a store client sending garbage).

Ranks run this file's _child_main, started by the tests' harness (_spawn.Ranks).
"""

from __future__ import annotations

import os
import random
import socket
import sys
import time
import traceback

import numpy as np
import pytest
from _spawn import Ranks, free_port

import phalanx
import phalanx.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
RANK_TIMEOUT = 60  # seconds a whole group of ranks may take


def launch(case: str, world: int, *, sizes=None, env=None, timeout=RANK_TIMEOUT):
    """Runs `case` on `world` ranks (rank r told WORLD_SIZE=sizes[r]); returns [Done] by rank."""
    sizes = sizes or [world] * world
    rank_env = [{"WORLD_SIZE": str(n)} for n in sizes]
    with Ranks(
        "test_distributed", "_child_main", len(sizes), argv=[case], env=env, rank_env=rank_env
    ) as ranks:
        return list(ranks.finish(timeout=timeout).values())


def check_ok(results):
    for r, (code, out, err, _) in enumerate(results):
        assert code == 0, f"rank {r} exited {code}\nstdout:\n{out}\nstderr:\n{err}"


# --------------------------------------------------------------------------- rank side

NP_TYPES = {
    "float32": np.float32,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "uint8": np.uint8,
}


def _data(dtype: str, n: int, rank: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed * 1000 + rank)
    if dtype in ("float32", "float16", "bfloat16"):
        return rng.uniform(-1, 1, n).astype(np.float32)
    if dtype == "uint8":
        return rng.integers(0, 256, n).astype(np.uint8)
    return rng.integers(-1000, 1000, n).astype(NP_TYPES[dtype])


def _to_phalanx(a: np.ndarray, dtype: str):
    if dtype == "bfloat16":
        return phalanx.from_numpy(a.copy()).to(phalanx.bfloat16)
    return phalanx.from_numpy(a.astype(NP_TYPES[dtype]))


def _to_numpy(t) -> np.ndarray:
    if t.dtype == phalanx.bfloat16:
        t = t.to(phalanx.float32)
    return np.array(t.numpy())


def _expected(arrays, dtype, op):
    stack = np.stack(arrays)
    if dtype in ("float16", "bfloat16"):
        stack = stack.astype(np.float32)
    if op == "SUM":
        return stack.sum(0, dtype=stack.dtype)
    if op == "AVG":
        return stack.mean(0, dtype=np.float64).astype(stack.dtype)
    if op == "MAX":
        return stack.max(0)
    return stack.min(0)


def _tolerance(dtype, world):
    if dtype == "float16":
        return dict(rtol=2e-2, atol=3e-3 * world)
    if dtype == "bfloat16":
        return dict(rtol=3e-2, atol=2e-2 * world)
    if dtype == "float32":
        return dict(rtol=1e-5, atol=1e-5 * world)
    return dict(rtol=0, atol=0)


def case_all_reduce(rank, world):
    seed = 0
    for dtype in ["float32", "float16", "bfloat16", "int64", "int32", "uint8"]:
        ops = ["SUM", "MAX", "MIN"] + (
            ["AVG"] if dtype in ("float32", "float16", "bfloat16") else []
        )
        for op in ops:
            for n in [1, 7, 1000, 65537]:
                seed += 1
                arrays = [_data(dtype, n, r, seed) for r in range(world)]
                t = _to_phalanx(arrays[rank], dtype)
                dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
                want = _expected([_to_numpy(_to_phalanx(a, dtype)) for a in arrays], dtype, op)
                np.testing.assert_allclose(
                    _to_numpy(t).astype(np.float64),
                    want.astype(np.float64),
                    err_msg=f"{dtype} {op} n={n}",
                    **_tolerance(dtype, world),
                )
    with pytest.raises(ValueError, match="algorithm"):
        dist.all_reduce(phalanx.from_numpy(np.ones(3, np.float32)), algorithm="tree")
    with pytest.raises(TypeError, match="AVG"):
        dist.all_reduce(phalanx.from_numpy(np.ones(3, np.int64)), op=dist.ReduceOp.AVG)


ALGORITHMS = ["ring", "bcube"]


def case_all_reduce_algorithms(rank, world):
    # Every algorithm, dtype and op against numpy; then integer-valued floats, whose sums are
    # exact in any order, must come out bit-identical from every algorithm, up to 4 MiB.
    seed = 500
    for algorithm in ALGORITHMS:
        for dtype in ["float32", "float16", "bfloat16", "int64", "int32", "uint8"]:
            floating = dtype in ("float32", "float16", "bfloat16")
            for op in ["SUM", "MAX", "MIN"] + (["AVG"] if floating else []):
                for n in [1, 7, 4099]:
                    seed += 1
                    arrays = [_data(dtype, n, r, seed) for r in range(world)]
                    t = _to_phalanx(arrays[rank], dtype)
                    dist.all_reduce(t, op=getattr(dist.ReduceOp, op), algorithm=algorithm)
                    want = _expected([_to_numpy(_to_phalanx(a, dtype)) for a in arrays], dtype, op)
                    np.testing.assert_allclose(
                        _to_numpy(t).astype(np.float64),
                        want.astype(np.float64),
                        err_msg=f"{algorithm} {dtype} {op} n={n}",
                        **_tolerance(dtype, world),
                    )
    for n in [1, 3, 1000, 65537, (1 << 20) + 5]:
        results = {}
        for algorithm in ALGORITHMS + [None]:
            rng = np.random.default_rng(n * 10 + rank)
            t = phalanx.from_numpy(rng.integers(-1000, 1000, n).astype(np.float32))
            dist.all_reduce(t, algorithm=algorithm)
            results[algorithm] = t.numpy().copy()
        want = sum(np.random.default_rng(n * 10 + r).integers(-1000, 1000, n) for r in range(world))
        for algorithm, got in results.items():
            np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=f"{algorithm}")


def case_all_reduce_large(rank, world):
    for n in [(1 << 22), (1 << 20) + 3]:  # 16 MiB, and an uneven size
        a = np.full(n, rank + 1, np.float32)
        a[::1000] = rank
        t = phalanx.from_numpy(a)
        dist.all_reduce(t)
        got = t.numpy()
        assert got[1] == world * (world + 1) / 2, got[1]
        assert got[0] == world * (world - 1) / 2, got[0]
        assert got[-1] == (
            world * (world - 1) / 2 if (n - 1) % 1000 == 0 else world * (world + 1) / 2
        )


def case_broadcast_gather_scatter(rank, world):
    for src in range(world):
        t = phalanx.from_numpy(np.arange(10, dtype=np.int64) * (rank + 1))
        dist.broadcast(t, src)
        np.testing.assert_array_equal(t.numpy(), np.arange(10) * (src + 1))
    for dtype in ["float32", "float16", "int32", "uint8"]:
        x = _to_phalanx(_data(dtype, 13, rank, 7), dtype)
        outs = [phalanx.from_numpy(np.zeros(13, NP_TYPES[dtype])) for _ in range(world)]
        dist.all_gather(outs, x)
        for r in range(world):
            np.testing.assert_array_equal(
                outs[r].numpy(), _data(dtype, 13, r, 7).astype(NP_TYPES[dtype])
            )
    stacked = phalanx.from_numpy(np.zeros((world, 5), np.float32))
    dist.all_gather_into_tensor(stacked, phalanx.from_numpy(np.full(5, rank, np.float32)))
    np.testing.assert_array_equal(
        stacked.numpy(), np.repeat(np.arange(world, dtype=np.float32)[:, None], 5, 1)
    )
    inputs = [phalanx.from_numpy(np.full(6, rank * 10 + i, np.float32)) for i in range(world)]
    out = phalanx.from_numpy(np.zeros(6, np.float32))
    dist.reduce_scatter(out, inputs, op=dist.ReduceOp.SUM)
    np.testing.assert_allclose(out.numpy(), np.full(6, sum(r * 10 + rank for r in range(world))))
    dist.reduce_scatter(out, inputs, op=dist.ReduceOp.MAX)
    np.testing.assert_allclose(out.numpy(), np.full(6, (world - 1) * 10 + rank))
    # Gloo's reduce-scatter, for every dtype and op and uneven sizes, against numpy.
    seed = 900
    for dtype in ["float32", "float16", "bfloat16", "int64", "int32", "uint8"]:
        floating = dtype in ("float32", "float16", "bfloat16")
        for op in ["SUM", "MAX", "MIN"] + (["AVG"] if floating else []):
            for n in [1, 5, 3001]:
                seed += 1
                blocks = [
                    [_data(dtype, n, r * world + i, seed) for i in range(world)]
                    for r in range(world)
                ]
                ins = [_to_phalanx(b, dtype) for b in blocks[rank]]
                o = _to_phalanx(np.zeros(n, np.float32), dtype)
                dist.reduce_scatter(o, ins, op=getattr(dist.ReduceOp, op))
                mine = [_to_numpy(_to_phalanx(blocks[r][rank], dtype)) for r in range(world)]
                np.testing.assert_allclose(
                    _to_numpy(o).astype(np.float64),
                    _expected(mine, dtype, op).astype(np.float64),
                    err_msg=f"reduce_scatter {dtype} {op} n={n}",
                    **_tolerance(dtype, world),
                )
    dist.barrier()
    with pytest.raises(ValueError, match="contiguous"):
        dist.all_reduce(phalanx.from_numpy(np.zeros((4, 4), np.float32)).transpose(0, 1))


def case_p2p_and_async(rank, world):
    # A ring of sends and receives, posted asynchronously.
    nxt, prv = (rank + 1) % world, (rank - 1) % world
    out = phalanx.from_numpy(np.full(100, rank, np.float32))
    got = phalanx.from_numpy(np.zeros(100, np.float32))
    ws = [dist.isend(out, nxt, tag=3), dist.irecv(got, prv, tag=3)]
    for w in ws:
        w.wait()
        assert w.is_completed()
    np.testing.assert_array_equal(got.numpy(), np.full(100, prv, np.float32))
    if rank == 0:
        dist.send(phalanx.from_numpy(np.arange(5, dtype=np.int64)), 1)
    elif rank == 1:
        t = phalanx.from_numpy(np.zeros(5, np.int64))
        assert dist.recv(t, 0) == 0
        np.testing.assert_array_equal(t.numpy(), np.arange(5))
    # Async collectives queue in order and overlap with work on this thread.
    ts = [phalanx.from_numpy(np.full(1 << 16, i + rank, np.float32)) for i in range(4)]
    works = [dist.all_reduce(t, async_op=True) for t in ts]
    busy = float(np.linalg.norm(np.random.default_rng(0).normal(size=(200, 200))))  # "compute"
    assert busy > 0
    for i, w in enumerate(works):
        assert w.wait(timeout=30)
        assert w.is_completed()
        assert ts[i].numpy()[0] == world * i + world * (world - 1) / 2
    # Subgroups: ranks {0, 1} only; everyone calls new_group.
    sub = dist.new_group([0, 1])
    if rank in (0, 1):
        t = phalanx.from_numpy(np.full(3, rank + 1, np.float32))
        dist.all_reduce(t, group=sub)
        np.testing.assert_array_equal(t.numpy(), np.full(3, 3, np.float32))
        assert dist.get_world_size(sub) == 2 and dist.get_rank(sub) == rank
    else:
        assert sub is dist.GroupMember.NON_GROUP_MEMBER
        assert dist.get_rank(sub) == -1
    dist.barrier()
    # A peer that never sends: recv raises within its timeout, naming the peer. Gloo closes a
    # pair whose operation timed out, so this comes last.
    if rank == 0:
        t0 = time.monotonic()
        g = dist._group(None)
        w = g._impl.recv(phalanx.from_numpy(np.zeros(3, np.float32)), 1, 99, 0.5)
        with pytest.raises(TimeoutError, match="rank 1"):
            w.wait()
        assert time.monotonic() - t0 < 10
    elif rank == 1:
        time.sleep(2.0)


def case_peer_dies(rank, world):
    # Rank 1 leaves only once rank 0 is done connecting too: its own init may return first,
    # and rank 0 would then fail in init_process_group instead of in the all-reduce.
    store = dist._state.store
    if rank == 1:
        store.wait(["peer_dies/rank0_connected"], timeout=30)
        os._exit(0)  # vanishes without a word
    store.set("peer_dies/rank0_connected", "1")
    t0 = time.monotonic()
    # The error names the lost peer by rank and host, not only by Gloo's address: from the
    # watchdog's verdict, or (heartbeats disabled) from Gloo's error.
    with pytest.raises(
        (RuntimeError, TimeoutError), match=r"rank 0 of 2.*rank 1 \(host 127\.0\.0\.1\)"
    ):
        dist.all_reduce(phalanx.from_numpy(np.ones(1000, np.float32)))
    assert time.monotonic() - t0 < 12


def case_world_size_mismatch(rank, world):
    raise AssertionError("init_process_group should have failed")


CASES = {k[5:]: v for k, v in list(globals().items()) if k.startswith("case_")}


def _child_main():
    case = sys.argv[-1]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        dist.init_process_group("gloo", timeout=float(os.environ.get("PHX_TEST_TIMEOUT", "30")))
        assert dist.is_initialized()
        assert dist.get_rank() == rank and dist.get_world_size() == world
        CASES[case](rank, world)
        dist.destroy_process_group()
    except BaseException as e:
        print(f"ERROR {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
        sys.exit(1)
    print("OK", flush=True)


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("world", [2, 3, 4])
def test_all_reduce_dtypes_ops_sizes(world):
    check_ok(launch("all_reduce", world))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_all_reduce_every_algorithm_gives_the_same_result(world):
    check_ok(launch("all_reduce_algorithms", world))


@pytest.mark.parametrize("removed", ["ring_chunked", "halving_doubling"])
def test_removed_all_reduce_algorithms_are_refused_naming_the_valid_ones(removed):
    # Gloo's older algorithms were removed: they slowed later all-reduces 10-100x.
    with pytest.raises(ValueError, match=f"'{removed}' is not one of 'ring', 'bcube'"):
        dist.all_reduce(phalanx.from_numpy(np.ones(3, np.float32)), algorithm=removed)
    assert not hasattr(phalanx._C.dist.AllreduceAlgorithm, removed.upper())


def test_automatic_algorithm_choice():
    choose = phalanx._C.dist.choose_allreduce_algorithm
    assert choose(4, 2) == "ring" and choose(1 << 30, 2) == "ring"
    assert choose(4, 4) == "bcube" and choose(4 << 20, 138) == "bcube"
    assert choose(64 << 20, 4) == "ring"  # 16 MiB per rank


@pytest.mark.parametrize("world", [2, 4])
def test_all_reduce_large(world):
    check_ok(launch("all_reduce_large", world))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_broadcast_all_gather_reduce_scatter_barrier(world):
    check_ok(launch("broadcast_gather_scatter", world))


@pytest.mark.parametrize("world", [2, 3])
def test_send_recv_async_and_new_group(world):
    check_ok(launch("p2p_and_async", world))


def test_world_size_mismatch_names_both_sizes():
    results = launch("world_size_mismatch", 2, sizes=[2, 3], env={"PHX_TEST_TIMEOUT": "10"})
    assert all(code != 0 for code, _, _, _ in results)
    msgs = [out for _, out, _, _ in results]
    assert any("ValueError" in m and "world_size=2" in m and "world_size=3" in m for m in msgs), (
        msgs
    )


@pytest.mark.parametrize("heartbeat_timeout", ["0", "10"])
def test_dead_peer_fails_the_collective_within_the_timeout(heartbeat_timeout):
    env = {"PHX_TEST_TIMEOUT": "5", "PHALANX_HEARTBEAT_TIMEOUT": heartbeat_timeout}
    results = launch("peer_dies", 2, env=env)
    check_ok(results[:1])


def test_master_unreachable_times_out_naming_address():
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        dist.TCPStore("127.0.0.1", port, 2, is_master=False, timeout=1.0)
    assert time.monotonic() - t0 < 5


def test_init_process_group_unreachable_master(monkeypatch):
    port = free_port()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
        dist.init_process_group("gloo", rank=1, world_size=2, timeout=1.0)
    assert time.monotonic() - t0 < 5
    assert not dist.is_initialized()


def test_port_in_use():
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(OSError, match=str(port)):
            dist.TCPStore("127.0.0.1", port, 1, is_master=True, timeout=1.0)


def test_store_api_and_garbage_client():
    master = dist.TCPStore("127.0.0.1", 0, 2, is_master=True, timeout=5.0, job_id="j")
    client = dist.TCPStore("127.0.0.1", master.port, 2, timeout=5.0, job_id="j")
    master.set("k", "v")
    assert client.get("k") == b"v"
    assert client.add("c", 2) == 2 and master.add("c", 3) == 5
    client.wait(["k"], timeout=1)
    with pytest.raises(TimeoutError, match="nope"):
        client.wait(["k", "nope"], timeout=0.2)
    rnd = random.Random(1)
    for _ in range(10):
        with socket.create_connection(("127.0.0.1", master.port)) as raw:
            raw.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000))))
    client.set("after", b"\x00\x01")
    assert master.get("after") == b"\x00\x01"
    with pytest.raises(RuntimeError, match="job id"):
        dist.TCPStore("127.0.0.1", master.port, 2, timeout=2.0, job_id="other")
    assert dist.TCPStore("127.0.0.1", master.port, 2, timeout=2.0, job_id="j").get("k") == b"v"


def test_store_public_accessors():
    store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=5.0, job_id="j7", token="s")
    assert store.job_id == "j7" and store.token == "s"
    assert store.key_prefix("default_pg", 3, 0) == "j7/default_pg/3/0"
    assert store.key_prefix() == "j7"
    assert isinstance(store.native, phalanx._C.dist.TCPStore)


def test_heartbeat_settings_are_checked_by_the_one_cxx_rule():
    check = phalanx._C.dist.check_heartbeat_settings
    assert check(1.0, 10.0) and not check(0, 10.0) and not check(1.0, 0)
    with pytest.raises(ValueError, match=r"heartbeat_interval must be >= 0, got -1 s"):
        check(-1.0, 10.0)
    with pytest.raises(ValueError, match=r"heartbeat_timeout \(1 s\) must be longer"):
        check(2.0, 1.0)
    with pytest.raises(ValueError, match="heartbeat_timeout must be a finite number"):
        check(1.0, float("nan"))


def test_not_initialized_errors():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.get_rank()
    with pytest.raises(ValueError, match="tcp://host:port"):
        dist.init_process_group("gloo", init_method="udp://x", rank=0, world_size=1)
    with pytest.raises(ValueError, match="backend"):
        dist.init_process_group("nccl", rank=0, world_size=1)


def test_single_rank_group_in_process():
    port = free_port()
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1, timeout=10
    )
    try:
        t = phalanx.from_numpy(np.arange(4, dtype=np.float32))
        dist.all_reduce(t)
        np.testing.assert_array_equal(t.numpy(), np.arange(4, dtype=np.float32))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()


def test_init_with_explicit_store_and_reinit():
    store = dist.TCPStore("127.0.0.1", 0, 1, is_master=True, timeout=10, job_id="explicit")
    for _ in range(2):  # a second initialization on the same store uses fresh keys
        dist.init_process_group("gloo", store=store, rank=0, world_size=1, timeout=10)
        t = phalanx.from_numpy(np.ones(3, np.float32))
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        assert dist.get_backend() == "gloo"
        with pytest.raises(RuntimeError, match="already"):
            dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        dist.destroy_process_group()
