"""NaN and infinity through everyday training code: activations, softmax, losses, reductions."""

import numpy as np

from ._registry import idiom

NAN, INF = float("nan"), float("inf")


def _row(torch):
    return torch.tensor([NAN, INF, -INF, 1.0, -2.0, 0.0, 7.0], requires_grad=True)


def _grid(torch):
    return torch.tensor(
        [[NAN, 1.0, 2.0], [1.0, 2.0, 3.0], [INF, 0.0, 1.0], [-INF, -INF, -INF]],
        requires_grad=True,
    )


def _fwd_bwd(x, y):
    y.sum().backward() if y.dim() == 0 else (y * 1.0).sum().backward()
    return y.detach(), x.grad


@idiom
def relu_keeps_nan(torch):
    x = _row(torch)
    return _fwd_bwd(x, torch.nn.functional.relu(x))


@idiom
def relu6_keeps_nan(torch):
    x = _row(torch)
    return _fwd_bwd(x, torch.nn.functional.relu6(x))


@idiom
def leaky_relu_keeps_nan(torch):
    x = _row(torch)
    return _fwd_bwd(x, torch.nn.functional.leaky_relu(x, 0.2))


@idiom
def relu_module_keeps_nan(torch):
    return torch.nn.ReLU()(torch.tensor([NAN, -1.0, 1.0]))


@idiom
def sigmoid_special_values(torch):
    x = _row(torch)
    return _fwd_bwd(x, torch.sigmoid(x))


@idiom
def tanh_special_values(torch):
    x = _row(torch)
    return _fwd_bwd(x, torch.tanh(x))


@idiom
def gelu_nan(torch):
    x = torch.tensor([NAN, 1.0, -1.0], requires_grad=True)
    return _fwd_bwd(x, torch.nn.functional.gelu(x))


@idiom
def softmax_of_nan_row(torch):
    return torch.nn.functional.softmax(torch.tensor([NAN, 1.0, 2.0]), dim=0)


@idiom
def softmax_rows_special(torch):
    x = _grid(torch)
    return _fwd_bwd(x, torch.softmax(x, dim=1))


@idiom(rtol=1e-4, atol=1e-4)
def log_softmax_rows_special(torch):
    x = _grid(torch)
    return _fwd_bwd(x, torch.log_softmax(x, dim=1))


@idiom
def log_softmax_one_column_is_zero(torch):
    return torch.nn.functional.log_softmax(torch.tensor([[0.3], [-5.0]]), dim=1)


@idiom
def cross_entropy_nan_logits(torch):
    logits = torch.tensor([[NAN, 1.0, 2.0], [0.5, 1.0, 2.0]], requires_grad=True)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    loss.backward()
    return loss.detach(), logits.grad


@idiom
def cross_entropy_inf_logit(torch):
    logits = torch.tensor([[INF, 1.0, 2.0]])
    return torch.nn.functional.cross_entropy(logits, torch.tensor([1]))


@idiom
def isnan_guard_fires(torch):
    loss = torch.nn.functional.relu(torch.tensor([NAN, 1.0])).sum()
    return bool(torch.isnan(loss))


@idiom
def max_of_nan(torch):
    x = _grid(torch)
    return _fwd_bwd(x, x.max())


@idiom
def min_of_nan(torch):
    x = _grid(torch)
    return _fwd_bwd(x, x.min())


@idiom
def max_dim_nan(torch):
    x = _grid(torch)
    values, indices = x.max(dim=1)
    values.sum().backward()
    return values.detach(), indices, x.grad


@idiom
def argmax_nan(torch):
    return torch.argmax(_grid(torch).detach(), dim=1)


@idiom
def argmin_nan_flat(torch):
    return _grid(torch).detach().argmin()


@idiom
def maximum_nan(torch):
    a = torch.tensor([NAN, 1.0, 2.0], requires_grad=True)
    b = torch.tensor([1.0, NAN, 1.0], requires_grad=True)
    y = torch.maximum(a, b)
    y.sum().backward()
    return y.detach(), a.grad, b.grad


@idiom
def minimum_nan(torch):
    a = torch.tensor([NAN, 1.0, 2.0], requires_grad=True)
    b = torch.tensor([1.0, NAN, 1.0], requires_grad=True)
    y = torch.minimum(a, b)
    y.sum().backward()
    return y.detach(), a.grad, b.grad


@idiom
def amax_nan(torch):
    x = _grid(torch)
    return _fwd_bwd(x, torch.amax(x, dim=1))


@idiom
def clamp_nan(torch):
    x = _row(torch)
    return _fwd_bwd(x, torch.clamp(x, -1.0, 1.0))


@idiom
def sum_mean_inf(torch):
    x = torch.tensor([INF, -INF, 1.0])
    return x.sum(), x[:1].mean(), x[1:].sum()


@idiom
def max_pool_nan(torch):
    x = torch.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    x[0, 0, 1, 1] = NAN
    x.requires_grad_(True)
    return _fwd_bwd(x, torch.nn.functional.max_pool2d(x, 2))


@idiom
def avg_pool_inf(torch):
    x = torch.ones(1, 1, 4, 4)
    x[0, 0, 0, 0] = INF
    return torch.nn.functional.avg_pool2d(x, 2)


@idiom
def batch_norm_nan_running_stats(torch):
    bn = torch.nn.BatchNorm2d(2)
    x = torch.tensor(np.random.default_rng(0).standard_normal((2, 2, 3, 3)).astype(np.float32))
    x[0, 0, 0, 0] = NAN
    y = bn(x)
    return y, bn.running_mean, bn.running_var


@idiom
def mse_loss_nan(torch):
    return torch.nn.functional.mse_loss(torch.tensor([NAN, 1.0]), torch.tensor([0.0, 1.0]))


@idiom
def division_by_zero(torch):
    return torch.tensor([1.0, -1.0, 0.0]) / torch.tensor(0.0)


@idiom
def nan_equality(torch):
    x = torch.tensor([NAN, 1.0])
    return x == x, x != x


@idiom
def where_replaces_nan(torch):
    x = torch.tensor([NAN, 1.0, INF])
    return torch.where(torch.isnan(x), torch.zeros_like(x), x)


@idiom
def isinf_isfinite(torch):
    x = torch.tensor([NAN, INF, -INF, 0.0])
    return torch.isinf(x), torch.isfinite(x)
