"""Workloads for test_threads.py: each runs Python threads that call phalanx concurrently
(compute releases the GIL) and raises AssertionError when a result differs from a serial
run. test_threads.py runs each in a fresh interpreter with a timeout, so a crash or a hang
fails that test instead of taking the suite down."""

from __future__ import annotations

import sys
import threading

import numpy as np

import phalanx
import phalanx.nn as nn

THREADS = 4


def run_threads(fn, n=THREADS):
    """Runs fn(i) on n threads started together; re-raises the first error of any thread."""
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def body(i):
        try:
            start.wait()
            fn(i)
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def value(t):
    return np.array(t.detach().numpy())  # a copy: the numpy view dies at once


def make_net(seed):
    """Conv + BatchNorm + ReLU + conv: blocked layouts between the oneDNN ops, a cached
    blocked weight, and a reorder to plain at the end."""
    phalanx.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 8, 3, padding=1),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )


def inputs(seed, n=4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 8, 8), dtype=np.float32)
    y = rng.integers(0, 10, size=n)
    return phalanx.from_numpy(x).clone(), phalanx.tensor(y, dtype=phalanx.int64)


def independent_forward(iterations):
    """Each thread has its own model (different weights) and input; every output must equal
    the one computed before any thread started."""
    nets = [make_net(i) for i in range(THREADS)]
    xs = [inputs(100 + i)[0] for i in range(THREADS)]
    with phalanx.no_grad():
        for net in nets:
            net.eval()
        expected = [value(net(x)) for net, x in zip(nets, xs)]

    def work(i):
        with phalanx.no_grad():
            for it in range(iterations):
                out = value(nets[i](xs[i]))
                np.testing.assert_array_equal(out, expected[i], err_msg=f"thread {i} it {it}")

    run_threads(work)


def train(net, x, y, steps):
    opt = phalanx.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def independent_training(steps):
    """Four threads each train their own identical model on the same data: every thread's
    losses must be those of a serial run, bit for bit."""
    x, y = inputs(7)
    expected = train(make_net(0), x, y, steps)
    got: list = [None] * THREADS
    nets = [make_net(0) for _ in range(THREADS)]
    data = [inputs(7) for _ in range(THREADS)]

    def work(i):
        got[i] = train(nets[i], data[i][0], data[i][1], steps)

    run_threads(work)
    for i in range(THREADS):
        assert got[i] == expected, f"thread {i}: {got[i]} != serial {expected}"


def shared_model(iterations):
    """One model (conv + BatchNorm in training mode) used by four threads, each running
    forward and backward on its own graph with the same input. Every output equals the
    serial one (batch statistics do not depend on the running ones), the running statistics
    equal those of the same number of serial updates, and the accumulated gradients equal
    the serial sum."""
    x, y = inputs(3)
    ref = make_net(1)
    ref.train()
    out_ref = value(ref(x))
    calls = THREADS * iterations

    net = make_net(1)
    net.train()
    params = list(net.parameters())

    def work(i):
        for it in range(iterations):
            out = net(x)
            np.testing.assert_array_equal(value(out), out_ref, err_msg=f"thread {i} it {it}")
            nn.functional.cross_entropy(out, y).backward()

    run_threads(work)

    # Serially: the same number of BN updates and gradient accumulations.
    ref2 = make_net(1)
    ref2.train()
    for _ in range(calls):
        nn.functional.cross_entropy(ref2(x), y).backward()
    bn, bn2 = net[1], ref2[1]
    assert int(bn.num_batches_tracked.item()) == calls, bn.num_batches_tracked.item()
    np.testing.assert_allclose(value(bn.running_mean), value(bn2.running_mean), rtol=1e-5)
    np.testing.assert_allclose(value(bn.running_var), value(bn2.running_var), rtol=1e-5)
    for p, p2 in zip(params, ref2.parameters()):
        np.testing.assert_allclose(value(p.grad), value(p2.grad), rtol=1e-4, atol=1e-5)


def shared_model_eval(iterations):
    """One model in eval mode, four threads each with its own input: outputs as serial."""
    net = make_net(2)
    net.eval()
    xs = [inputs(200 + i)[0] for i in range(THREADS)]
    with phalanx.no_grad():
        expected = [value(net(x)) for x in xs]

    def work(i):
        for it in range(iterations):
            np.testing.assert_array_equal(value(net(xs[i])), expected[i], err_msg=f"{i} {it}")

    run_threads(work)


def shared_blocked_input(iterations):
    """Threads reading one tensor stored in a oneDNN blocked layout, in calls that release the
    GIL: linear on a 4-D input reshapes it, which converts it to plain memory in place. The
    first reader converts it; none may see the storage swapped under it."""
    x, _ = inputs(11)
    conv = nn.Conv2d(3, 16, 3, padding=1)
    lin = nn.Linear(8, 5)
    with phalanx.no_grad():
        expected = value(lin(phalanx.from_numpy(value(conv(x)))))

    def work(i):
        with phalanx.no_grad():
            for it in range(iterations):
                shared = conv(x)  # blocked (or channels-last): the readers convert it
                results = [None] * 3

                def read(j, shared=shared, results=results):
                    results[j] = value(lin(shared))

                run_threads(read, 3)
                for r in results:
                    np.testing.assert_array_equal(r, expected, err_msg=f"thread {i} it {it}")

    run_threads(work)


if __name__ == "__main__":
    name, arg = sys.argv[1], int(sys.argv[2])
    globals()[name](arg)
    print("ok")
