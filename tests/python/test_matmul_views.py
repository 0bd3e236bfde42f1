"""matmul on views oneDNN reads in place (transposed, permuted, sliced, broadcast batches) and
on views it cannot (strided rows, copied first): forward and both gradients against PyTorch."""

import numpy as np
import pytest
from conftest import assert_close, randn

import phalanx

torch = pytest.importorskip("torch")


def views(fw, a, b, make):
    ta = fw.from_numpy(a.copy()).requires_grad_(True)
    tb = fw.from_numpy(b.copy()).requires_grad_(True)
    out = make(ta, tb)
    g = np.random.default_rng(0).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * fw.from_numpy(g)).sum().backward()
    return [out.detach().numpy(), ta.grad.numpy(), tb.grad.numpy()]


CASES = {
    # x @ w.t(): the weight read as its transpose
    "weight transposed": ((6, 40), (30, 40), lambda a, b: a @ b.t()),
    "both transposed": ((40, 6), (30, 40), lambda a, b: a.t() @ b.t()),
    # attention scores: q @ k^T over (batch, heads)
    "attention": ((2, 3, 5, 8), (2, 3, 7, 8), lambda q, k: q @ k.transpose(-2, -1)),
    # a permuted batch of matrices, then a broadcast 2-D right side
    "permuted batch": ((5, 4, 6), (6, 3), lambda a, b: a.permute(1, 0, 2) @ b),
    "broadcast left": ((6, 5), (4, 5, 7), lambda a, b: a @ b),
    # a slice with an offset, rows still contiguous
    "sliced": ((8, 10), (10, 12), lambda a, b: a[2:7, 1:9] @ b[1:9, 3:]),
    # every other column: no unit stride, copied first
    "strided rows": ((6, 20), (10, 5), lambda a, b: a[:, ::2] @ b),
    "expanded batch": ((1, 4, 6), (6, 3), lambda a, b: a.expand(3, 4, 6) @ b),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matmul_of_views_matches_torch(name):
    sa, sb, make = CASES[name]
    a, b = randn(sa, seed=1), randn(sb, seed=2)
    for got, want in zip(views(phalanx, a, b, make), views(torch, a, b, make), strict=True):
        assert_close(got, want, rtol=1e-4, atol=1e-4, msg=name)
