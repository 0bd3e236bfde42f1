"""Top-level functions from training and evaluation code: activations, selection, linear
algebra, value tests, creation, grad modes, compile and autocast."""

import numpy as np

from ._registry import idiom


def _x(torch, shape=(3, 4), seed=0):
    return torch.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _leaf(torch, shape=(3, 4), seed=0):
    return _x(torch, shape, seed).requires_grad_(True)


@idiom
def softmax_function(torch):
    return torch.softmax(_x(torch), dim=1), torch.softmax(_x(torch), 0)


@idiom
def log_softmax_function(torch):
    return torch.log_softmax(_x(torch), dim=-1)


@idiom
def sigmoid_tanh_relu_functions(torch):
    x = _x(torch)
    return torch.sigmoid(x), torch.tanh(x), torch.relu(x)


@idiom
def sigmoid_grad(torch):
    x = _leaf(torch)
    torch.sigmoid(x).sum().backward()
    return x.grad


@idiom
def topk_values_indices(torch):
    x = _x(torch, (3, 6))
    values, indices = torch.topk(x, 3)
    return values, indices


@idiom
def topk_dim0_smallest(torch):
    return torch.topk(_x(torch, (5, 2)), 2, dim=0, largest=False)


@idiom
def topk_accuracy(torch):
    output = _x(torch, (8, 5))
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    _, pred = output.topk(3, 1, True, True)
    pred = pred.t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    return correct[:1].reshape(-1).float().sum(0), correct[:3].reshape(-1).float().sum(0)


@idiom
def topk_grad(torch):
    x = _leaf(torch, (2, 5))
    torch.topk(x, 2).values.sum().backward()
    return x.grad


@idiom
def sort_ascending_descending(torch):
    x = _x(torch, (2, 5))
    return torch.sort(x), torch.sort(x, dim=1, descending=True), x.sort(dim=0)


@idiom
def argsort(torch):
    return torch.argsort(_x(torch, (2, 5)), dim=1)


@idiom
def sort_grad(torch):
    x = _leaf(torch, (2, 5))
    values, _ = torch.sort(x, dim=1)
    (values * torch.arange(5).float()).sum().backward()
    return x.grad


@idiom
def unique_labels(torch):
    labels = torch.tensor([3, 1, 2, 3, 1, 1])
    return torch.unique(labels), torch.unique(labels, return_counts=True)


@idiom
def unique_inverse(torch):
    return torch.unique(torch.tensor([5, 2, 5, 9]), return_inverse=True)


@idiom(rtol=1e-5, atol=1e-5)
def einsum_matmul(torch):
    a, b = _x(torch, (3, 4)), _x(torch, (4, 2), seed=1)
    return torch.einsum("ij,jk->ik", a, b)


@idiom(rtol=1e-5, atol=1e-5)
def einsum_batched_attention(torch):
    q, k = _x(torch, (2, 3, 4)), _x(torch, (2, 5, 4), seed=1)
    return torch.einsum("bqd,bkd->bqk", q, k)


@idiom(rtol=1e-5, atol=1e-5)
def einsum_trace_free_forms(torch):
    a = _x(torch, (3, 4))
    return torch.einsum("ij->j", a), torch.einsum("ij->ji", a), torch.einsum("ij,ij->", a, a)


@idiom(rtol=1e-5, atol=1e-5)
def einsum_grad(torch):
    a, b = _leaf(torch, (3, 4)), _leaf(torch, (4, 2), seed=1)
    torch.einsum("ij,jk->ik", a, b).sum().backward()
    return a.grad, b.grad


@idiom(rtol=1e-5, atol=1e-5)
def mm_bmm(torch):
    a, b = _x(torch, (3, 4)), _x(torch, (4, 2), seed=1)
    c, d = _x(torch, (2, 3, 4)), _x(torch, (2, 4, 5), seed=1)
    return torch.mm(a, b), torch.bmm(c, d)


@idiom
def mm_shape_mismatch_raises(torch):
    return torch.mm(_x(torch, (3, 4)), _x(torch, (3, 4)))


@idiom
def isnan_isinf_isfinite(torch):
    x = torch.tensor([float("nan"), float("inf"), -1.0])
    return torch.isnan(x), torch.isinf(x), torch.isfinite(x)


@idiom
def isnan_any_guard(torch):
    return bool(torch.isnan(_x(torch)).any())


@idiom
def linspace(torch):
    return torch.linspace(0, 1, 5), torch.linspace(-2.0, 2.0, steps=9)


@idiom
def allclose_isclose(torch):
    a = torch.tensor([1.0, 2.0])
    return torch.allclose(a, a + 1e-9), torch.allclose(a, a + 1), torch.isclose(a, a + 0.5)


@idiom
def equal(torch):
    return torch.equal(torch.tensor([1, 2]), torch.tensor([1, 2]))


@idiom
def eye(torch):
    return torch.eye(3), torch.eye(2, 3)


@idiom
def no_grad_context(torch):
    x = _leaf(torch)
    with torch.no_grad():
        y = x * 2
    return y.requires_grad


@idiom
def no_grad_decorator_parens(torch):
    @torch.no_grad()
    def evaluate(x):
        return x * 2

    return evaluate(_leaf(torch)).requires_grad


@idiom
def no_grad_bare_decorator(torch):
    @torch.no_grad
    def evaluate(x):
        return x * 2

    return evaluate(_leaf(torch)).requires_grad


@idiom
def inference_mode_context(torch):
    x = _leaf(torch)
    with torch.inference_mode():
        y = x * 2
    return y.requires_grad, torch.is_grad_enabled()


@idiom
def inference_mode_decorator(torch):
    @torch.inference_mode()
    def predict(x):
        return x.sum()

    return predict(_leaf(torch)).requires_grad


@idiom
def set_grad_enabled(torch):
    x = _leaf(torch)
    with torch.set_grad_enabled(False):
        y = x * 2
    return y.requires_grad


@idiom
def float64_name(torch):
    return torch.float64, torch.double, torch.float32


@idiom
def tensor_from_float64_numpy(torch):
    a = np.array([0.1, 0.2, 0.3])
    t = torch.tensor(a)
    return t.dtype, t, torch.from_numpy(a).dtype


@idiom
def from_numpy_float32(torch):
    return torch.from_numpy(np.arange(4, dtype=np.float32))


@idiom
def compile_returns_callable(torch):
    import warnings

    model = torch.nn.Linear(2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = torch.compile(model) if torch.__name__ == "phalanx" else model
    return compiled is model or callable(compiled)


@idiom
def autocast_disabled(torch):
    with torch.autocast("cpu", enabled=False):
        return torch.tensor([1.0]) * 2


@idiom
def amax_amin_functions(torch):
    x = _x(torch)
    return torch.amax(x, dim=1), torch.amin(x, dim=(0, 1))


@idiom
def std_var_functions(torch):
    x = _x(torch)
    return torch.std(x, dim=1), torch.var(x)


@idiom
def cat_stack(torch):
    a, b = _x(torch, (2, 3)), _x(torch, (2, 3), seed=1)
    return torch.cat([a, b], dim=1), torch.stack([a, b]).shape, torch.cat((a, b)).shape


@idiom
def where_scalar(torch):
    x = _x(torch)
    return torch.where(x > 0, x, torch.zeros_like(x))


@idiom
def arange_forms(torch):
    return torch.arange(5), torch.arange(1, 4), torch.arange(0, 1, 0.25), torch.arange(3.0)


@idiom
def zeros_ones_full_like(torch):
    x = _x(torch, (2, 2))
    return torch.zeros_like(x), torch.ones_like(x), torch.full_like(x, 4.0), torch.full((2,), 3)


@idiom
def manual_seed_returns_generator(torch):
    return type(torch.manual_seed(0)).__name__


@idiom
def is_tensor_numel(torch):
    x = _x(torch)
    return torch.is_tensor(x), torch.is_tensor([1]), torch.numel(x)


@idiom
def max_two_tensors(torch):
    a, b = _x(torch), _x(torch, seed=1)
    return torch.max(a, b), torch.min(a, b)


@idiom
def clamp_function(torch):
    return torch.clamp(_x(torch), min=-0.5, max=0.5)


@idiom
def exp_log_sqrt(torch):
    x = _x(torch).abs() + 0.1
    return torch.exp(x), torch.log(x), torch.sqrt(x), torch.abs(-x), torch.pow(x, 2)


@idiom
def sum_mean_functions(torch):
    x = _x(torch)
    return torch.sum(x), torch.mean(x, dim=0), torch.sum(x, dim=1, keepdim=True)


@idiom
def argmax_function(torch):
    return torch.argmax(_x(torch), dim=1), torch.argmax(_x(torch))


@idiom
def autograd_backward_function(torch):
    x = _leaf(torch)
    torch.autograd.backward([(x * 2).sum()])
    return x.grad


@idiom
def get_default_dtype(torch):
    return torch.get_default_dtype()


@idiom
def autograd_grad(torch):
    x = _leaf(torch)
    w = _leaf(torch, seed=1)
    (gx,) = torch.autograd.grad((x * w).sum(), x)
    return gx, x.grad, w.grad


@idiom
def autograd_grad_two_inputs(torch):
    x, w = _leaf(torch), _leaf(torch, seed=1)
    y = (torch.sigmoid(x) * w).sum()
    return torch.autograd.grad(y, [x, w], retain_graph=True)


@idiom
def autograd_grad_unused_raises(torch):
    x, w = _leaf(torch), _leaf(torch, seed=1)
    return torch.autograd.grad((x * 2).sum(), [x, w])


@idiom
def autograd_grad_allow_unused(torch):
    x, w = _leaf(torch), _leaf(torch, seed=1)
    return torch.autograd.grad((x * 2).sum(), [x, w], allow_unused=True)


@idiom
def autograd_grad_outputs(torch):
    x = _leaf(torch, (2, 2))
    return torch.autograd.grad(x * 3, x, grad_outputs=torch.ones(2, 2))
