"""Winograd convolutions (phalanx.backends.onednn.allow_winograd, on by default): oneDNN runs
3x3 stride-1 convolutions as Winograd on AVX-512 where it expects that to be faster, and
phalanx asks for it at small batches where it measured it faster. Checked
here: that the switch decides which kernel runs (ONEDNN_VERBOSE in a child process), and that
the results (forward, input and weight gradients, training steps with the weights kept in
their layout) match PyTorch and float64 to float32 rounding."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import phalanx
import phalanx.backends.onednn as onednn
import phalanx.nn.functional as F
from phalanx import _C

torch = pytest.importorskip("torch")


def winograd_kernels() -> bool:
    """Whether this oneDNN has f32 Winograd convolutions to take: 2.x on AVX-512 (3.x, which
    make test-onednn3 and the phones build, has none for training)."""
    return _C._onednn_version()[0] == 2 and has_avx512()


def has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags) and not os.environ.get(
        "ONEDNN_MAX_CPU_ISA"
    )


STEP = """
import phalanx, phalanx.nn.functional as F
x = phalanx.randn(16, 64, 32, 32, requires_grad=True)
w = phalanx.nn.Parameter(phalanx.randn(64, 64, 3, 3) * 0.05)
F.conv2d(x, w, padding=1).sum().backward()
print("DONE")
"""


def kernels(winograd: bool) -> set[str]:
    env = dict(os.environ, ONEDNN_VERBOSE="1", PHALANX_WINOGRAD="1" if winograd else "0")
    r = subprocess.run(
        [sys.executable, "-c", STEP], env=env, capture_output=True, text=True, timeout=300
    )
    assert "DONE" in r.stdout, r.stderr[-2000:]
    found = set()
    for line in r.stdout.splitlines():
        fields = line.split(",")
        if "exec" in fields and "convolution" in fields:
            i = fields.index("convolution")
            found.add((fields[i + 1], fields[i + 2]))  # (implementation, propagation)
    return found


def test_the_switch_decides_whether_winograd_runs():
    off = kernels(False)
    assert off and not any("wino" in impl for impl, _ in off), off
    if not winograd_kernels():
        pytest.skip("oneDNN has f32 Winograd convolutions in 2.x on AVX-512 only; not here")
    on = kernels(True)
    props = {prop for impl, prop in on if "wino" in impl}
    assert props == {"forward_training", "backward_data", "backward_weights"}, on


def test_the_switch_is_a_bool_and_applies_to_new_primitives():
    # the default: on, unless PHALANX_WINOGRAD=0 started this process with it off
    assert onednn.allow_winograd is (os.environ.get("PHALANX_WINOGRAD") != "0")
    with pytest.raises(TypeError, match="allow_winograd must be True or False"):
        onednn.allow_winograd = 1
    rng = np.random.default_rng(0)
    x = phalanx.from_numpy(rng.standard_normal((16, 64, 32, 32), dtype=np.float32))
    w = phalanx.nn.Parameter(
        phalanx.from_numpy((rng.standard_normal((64, 64, 3, 3)) * 0.05).astype(np.float32))
    )

    def conv():  # in grad mode: the training forward, as STEP runs it
        return F.conv2d(x, w, padding=1).detach().numpy().copy()

    prev = onednn.allow_winograd
    try:
        onednn.allow_winograd = True
        a = conv()
        onednn.allow_winograd = False
        b = conv()
        onednn.allow_winograd = True
        c = conv()
    finally:
        onednn.allow_winograd = prev
    np.testing.assert_array_equal(a, c)  # the cached Winograd primitive again
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * np.abs(b).max())
    if winograd_kernels():
        assert not np.array_equal(a, b), "the same kernel ran with the switch off"


SMALL_BATCHES = """
import phalanx, phalanx.nn.functional as F
for n, c, h in ((4, 64, 16), (2, 256, 4), (8, 40, 6)):
    x = phalanx.randn(n, c, h, h, requires_grad=True)
    w = phalanx.nn.Parameter(phalanx.randn(c, c, 3, 3) * 0.05)
    F.conv2d(x, w, padding=1).sum().backward()
print("DONE")
"""


def test_small_batches_take_winograd_where_it_pays():
    """Below a batch of 16 oneDNN's convolution_auto stays direct; phalanx asks for Winograd
    where the output has at least 3 positions per channel over the batch (ops/conv.cc,
    winograd_pays): 4 x 64 channels at 16x16 (16 per channel) runs Winograd in all three
    passes, 2 x 256 at 4x4 (1/8) and 8 x 40 at 6x6 (7, but 40 channels are not whole
    16-blocks) stay direct."""
    if not winograd_kernels():
        pytest.skip("oneDNN has f32 Winograd convolutions in 2.x on AVX-512 only; not here")
    env = dict(os.environ, ONEDNN_VERBOSE="1", PHALANX_WINOGRAD="1")
    r = subprocess.run(
        [sys.executable, "-c", SMALL_BATCHES], env=env, capture_output=True, text=True, timeout=300
    )
    assert "DONE" in r.stdout, r.stderr[-2000:]
    by_shape = {}
    for line in r.stdout.splitlines():
        fields = line.split(",")
        if "exec" in fields and "convolution" in fields:
            i = fields.index("convolution")
            shape = next(f for f in fields if f.startswith("mb")).split("_")[:2]
            by_shape.setdefault("_".join(shape), set()).add((fields[i + 1], fields[i + 2]))
    passes = {"forward_training", "backward_data", "backward_weights"}
    wino = {prop for impl, prop in by_shape["mb4_ic64oc64"] if "wino" in impl}
    assert wino == passes, by_shape
    for other in ("mb2_ic256oc256", "mb8_ic40oc40"):
        assert not any("wino" in impl for impl, _ in by_shape[other]), by_shape


SHAPES = [(16, 64, 64, 32, 32, True), (8, 64, 128, 20, 28, False), (4, 128, 64, 15, 17, True)]


@pytest.mark.parametrize("n,c,o,h,w,bias", SHAPES)
def test_forward_and_gradients_match_float64(n, c, o, h, w, bias):
    rng = np.random.default_rng(n + c + o + h)
    xa = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wa = (rng.standard_normal((o, c, 3, 3)) * (2 / (9 * c)) ** 0.5).astype(np.float32)
    ba = rng.standard_normal(o).astype(np.float32) if bias else None
    ga = rng.standard_normal((n, o, h, w)).astype(np.float32)

    def run(fw, dtype):
        x = fw.tensor(xa.astype(dtype), requires_grad=True)
        wt = fw.tensor(wa.astype(dtype), requires_grad=True)
        b = fw.tensor(ba.astype(dtype), requires_grad=True) if bias else None
        y = (F if fw is phalanx else torch.nn.functional).conv2d(x, wt, b, padding=1)
        y.backward(fw.tensor(ga.astype(dtype)))
        out = [y, x.grad, wt.grad] + ([b.grad] if bias else [])
        return [np.asarray(t.detach().numpy(), np.float64) for t in out]

    ref = run(torch, np.float64)
    got = run(phalanx, np.float32)
    t32 = run(torch, np.float32)
    for name, g, r, t in zip(["y", "dx", "dw", "db"], got, ref, t32):
        scale = np.abs(r).max()
        err, torch_err = np.abs(g - r).max() / scale, np.abs(t - r).max() / scale
        # float32 rounding: Winograd's transforms add a few 1e-6 (direct: a few 1e-7)
        assert err < 1e-5, (name, err, torch_err)
        np.testing.assert_allclose(g, t, rtol=0, atol=1e-5 * scale, err_msg=name)


def test_training_steps_with_kept_weights_match_pytorch():
    def layers(m):
        return [m.Conv2d(64, 64, 3, padding=1), m.ReLU(), m.Conv2d(64, 32, 3, padding=1)]

    phalanx.manual_seed(1)
    p, t = phalanx.nn.Sequential(*layers(phalanx.nn)), torch.nn.Sequential(*layers(torch.nn))
    with torch.no_grad():
        for a, b in zip(p.parameters(), t.parameters(), strict=True):
            b.copy_(torch.from_numpy(a.detach().numpy().copy()))
    op = phalanx.optim.SGD(p.parameters(), lr=0.01, momentum=0.9)
    ot = torch.optim.SGD(t.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(2)
    for _ in range(3):
        xa = rng.standard_normal((8, 64, 24, 24)).astype(np.float32)
        lp = (lambda y: (y * y).mean())(p(phalanx.from_numpy(xa)))
        op.zero_grad()
        lp.backward()
        op.step()
        lt = (lambda y: (y * y).mean())(t(torch.from_numpy(xa)))
        ot.zero_grad()
        lt.backward()
        ot.step()
        np.testing.assert_allclose(lp.item(), lt.item(), rtol=1e-5)
    for a, b in zip(p.parameters(), t.parameters(), strict=True):
        bb = b.detach().numpy()
        np.testing.assert_allclose(a.detach().numpy(), bb, rtol=0, atol=1e-5 * np.abs(bb).max())
