"""phalanx.autograd.Function against torch.autograd.Function: the same subclass body in both,
gradients compared; non-tensor arguments, None gradients, saved tensors, errors in backward,
several outputs, threads."""

import threading

import numpy as np
import pytest
from conftest import assert_close

import phalanx

torch = pytest.importorskip("torch")


def functions(lib):
    """The same Functions written against phalanx or torch (`lib`)."""

    class ScaledExp(lib.autograd.Function):
        # y = exp(x * scale) + w; scale is a float (non-tensor argument)
        @staticmethod
        def forward(ctx, x, scale, w):
            y = (x * scale).exp()
            ctx.save_for_backward(y)
            ctx.scale = scale
            return y + w

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            gx = g * y * ctx.scale if ctx.needs_input_grad[0] else None
            gw = g if ctx.needs_input_grad[2] else None
            return gx, None, gw

    class SplitTwo(lib.autograd.Function):
        # two outputs: a*b and a+b; backward sums both paths
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, None, b)
            return a * b, a + b

        @staticmethod
        def backward(ctx, g1, g2):
            a, none, b = ctx.saved_tensors
            assert none is None
            return g1 * b + g2, g1 * a + g2

    return ScaledExp, SplitTwo


def leaf(lib, arr):
    return lib.tensor(arr, requires_grad=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]


def test_gradients_match_torch_with_non_tensor_argument(data):
    results = {}
    for lib in (phalanx, torch):
        ScaledExp, _ = functions(lib)
        x, w, up = leaf(lib, data[0]), leaf(lib, data[1]), lib.tensor(data[2])
        y = ScaledExp.apply(x, 0.5, w)
        (y.sin() * up).sum().backward()
        results[lib.__name__] = (y, x.grad, w.grad)
    for a, b in zip(results["phalanx"], results["torch"]):
        assert_close(a, b)


def test_several_outputs_saved_none_and_chained_twice(data):
    results = {}
    for lib in (phalanx, torch):
        _, SplitTwo = functions(lib)
        a, b = leaf(lib, data[0]), leaf(lib, data[1])
        p, s = SplitTwo.apply(a, b)
        p2, s2 = SplitTwo.apply(p, s)  # a Function's output into another
        (p2 * 2 + s2.exp()).sum().backward()
        results[lib.__name__] = (p2, s2, a.grad, b.grad)
    for x, y in zip(results["phalanx"], results["torch"]):
        assert_close(x, y)


def test_unused_output_gets_zero_gradient(data):
    results = {}
    for lib in (phalanx, torch):
        _, SplitTwo = functions(lib)
        a, b = leaf(lib, data[0]), leaf(lib, data[1])
        p, _ = SplitTwo.apply(a, b)
        p.sum().backward()
        results[lib.__name__] = (a.grad, b.grad)
    for x, y in zip(results["phalanx"], results["torch"]):
        assert_close(x, y)


def test_input_without_grad_gets_none_and_needs_input_grad_says_so(data):
    ScaledExp, _ = functions(phalanx)
    seen = []

    class Spy(ScaledExp):
        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            return ScaledExp.backward(ctx, g)

    x, w = phalanx.tensor(data[0]), leaf(phalanx, data[1])
    Spy.apply(x, 2.0, w).sum().backward()
    assert seen == [(False, False, True)]
    assert x.grad is None
    assert_close(w.grad, np.ones((3, 4), np.float32))


def test_grad_fn_name_and_no_history_under_no_grad(data):
    ScaledExp, _ = functions(phalanx)
    x = leaf(phalanx, data[0])
    y = ScaledExp.apply(x, 1.0, phalanx.tensor(data[1]))
    assert y.requires_grad and y.grad_fn.name() == "ScaledExpBackward"
    with phalanx.no_grad():
        z = ScaledExp.apply(x, 1.0, phalanx.tensor(data[1]))
    assert not z.requires_grad and z.grad_fn is None


def test_returning_an_input_does_not_overwrite_its_history(data):
    class Identity(phalanx.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 3

    x = leaf(phalanx, data[0])
    y = Identity.apply(x)
    assert x.is_leaf and x.grad_fn is None and y.grad_fn.name() == "IdentityBackward"
    y.sum().backward()
    assert_close(x.grad, np.full((3, 4), 3, np.float32))


def test_mark_non_differentiable(data):
    class ArgMaxAndSquare(phalanx.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = x.argmax()
            ctx.mark_non_differentiable(idx)
            ctx.save_for_backward(x)
            return x * x, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = leaf(phalanx, data[0])
    sq, idx = ArgMaxAndSquare.apply(x)
    assert not idx.requires_grad and sq.requires_grad
    sq.sum().backward()
    assert_close(x.grad, 2 * data[0])


def test_error_raised_in_backward_reaches_the_caller(data):
    class Boom(phalanx.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            raise KeyError("boom in backward")

    x = leaf(phalanx, data[0])
    with pytest.raises(KeyError, match="boom in backward"):
        Boom.apply(x).sum().backward()
    # the engine is usable afterwards
    (x * 2).sum().backward()
    assert_close(x.grad, np.full((3, 4), 2, np.float32))


@pytest.mark.parametrize(
    "result, error, message",
    [
        ("one", RuntimeError, r"incorrect number of gradients \(expected 2, got 1\)"),
        ("for_float", RuntimeError, "different than None at position 1"),
        ("not_tensor", TypeError, "gradient of type str at position 0"),
        ("bad_shape", RuntimeError, "invalid gradient at index 0"),
    ],
)
def test_wrong_backward_results_are_refused_by_name(data, result, error, message):
    class Bad(phalanx.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return {
                "one": (g,),
                "for_float": (g, g),
                "not_tensor": ("g", None),
                "bad_shape": (g.sum(), None),
            }[result]

    x = leaf(phalanx, data[0])
    with pytest.raises(error, match=message):
        Bad.apply(x, 2.0).sum().backward()


def test_saved_tensors_are_freed_and_version_checked(data):
    ScaledExp, _ = functions(phalanx)
    x = leaf(phalanx, data[0])
    y = ScaledExp.apply(x, 1.0, phalanx.tensor(data[1]))
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()

    class SaveInput(phalanx.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * 1

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return g * a

    a = phalanx.tensor(data[0])
    b = leaf(phalanx, data[1])
    c = a * b  # not a leaf: may be changed in place
    out = SaveInput.apply(c)
    c.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_save_for_backward_refuses_non_tensors():
    class SavesInt(phalanx.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3)
            return x

    with pytest.raises(TypeError, match="argument 1 is of type int"):
        SavesInt.apply(phalanx.ones(2, requires_grad=True))


def test_retain_graph_runs_backward_twice(data):
    ScaledExp, _ = functions(phalanx)
    x = leaf(phalanx, data[0])
    y = ScaledExp.apply(x, 1.0, phalanx.tensor(data[1]))
    y.sum().backward(retain_graph=True)
    y.sum().backward()
    assert_close(x.grad, 2 * np.exp(data[0]))


def test_threads_each_backward_their_own_graph(data):
    ScaledExp, SplitTwo = functions(phalanx)
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            arr = rng.standard_normal((8, 8)).astype(np.float32)
            for _ in range(30):
                x = leaf(phalanx, arr)
                p, s = SplitTwo.apply(ScaledExp.apply(x, 0.25, phalanx.zeros(8, 8)), x)
                (p + s).sum().backward()
                e = np.exp(0.25 * arr)
                np.testing.assert_allclose(x.grad.numpy(), 0.25 * e * (arr + 1) + e + 1, rtol=1e-4)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
