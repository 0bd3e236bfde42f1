"""Tensor methods from everyday training loops: views, conversions, reductions, indexing."""

import numpy as np

from ._registry import idiom


def _x(torch, shape=(3, 4), seed=0):
    return torch.tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def _leaf(torch, shape=(3, 4), seed=0):
    return _x(torch, shape, seed).requires_grad_(True)


@idiom
def view_as(torch):
    x = _x(torch)
    return x.view(12).view_as(x)


@idiom
def view_minus_one(torch):
    return _x(torch, (2, 3, 4)).view(2, -1).shape


@idiom
def view_non_contiguous_raises(torch):
    return _x(torch).t().view(12)


@idiom
def reshape_as_and_expand_as(torch):
    x = _x(torch, (1, 4))
    return x.expand_as(_x(torch)), x.reshape_as(_x(torch, (4, 1)))


@idiom
def data_attribute(torch):
    x = _leaf(torch)
    d = x.data
    return d.requires_grad, d


@idiom
def data_update_in_place(torch):
    w = _leaf(torch)
    w.data.mul_(0.5)
    return w.detach()


@idiom
def softmax_method(torch):
    return _x(torch).softmax(dim=1)


@idiom
def log_softmax_method_grad(torch):
    x = _leaf(torch)
    x.log_softmax(dim=-1)[:, 0].sum().backward()
    return x.grad


@idiom
def sigmoid_relu_tanh_methods(torch):
    x = _x(torch)
    return x.sigmoid(), x.relu(), x.tanh()


@idiom
def any_all(torch):
    x = _x(torch)
    return (x > 0).any(), (x > -5).all(), (x > 0).any(dim=1), (x > 0).all(dim=0)


@idiom(rtol=1e-4, atol=1e-5)
def std_var(torch):
    x = _x(torch)
    return x.std(), x.var(), x.std(dim=0), x.var(dim=1, keepdim=True), x.std(unbiased=False)


@idiom(rtol=1e-4, atol=1e-5)
def std_grad(torch):
    x = _leaf(torch)
    x.std(dim=1).sum().backward()
    return x.grad


@idiom
def type_string(torch):
    return _x(torch).type(), torch.tensor([1, 2]).type()


@idiom
def type_convert(torch):
    return _x(torch).type(torch.int64).dtype


@idiom
def dtype_conversions(torch):
    x = torch.tensor([1.7, -2.2, 0.0])
    return x.long(), x.int(), x.bool(), x.double().dtype, x.float().dtype, x.half().dtype


@idiom
def chunk(torch):
    return _x(torch, (5, 2)).chunk(2)


@idiom
def split_size(torch):
    return _x(torch, (5, 2)).split(2)


@idiom
def split_sections(torch):
    return _x(torch, (2, 6)).split([1, 2, 3], dim=1)


@idiom
def chunk_grad(torch):
    x = _leaf(torch)
    a, b = x.chunk(2, dim=1)
    (a * 2 + b).sum().backward()
    return x.grad


@idiom
def repeat(torch):
    return torch.tensor([[1, 2], [3, 4]]).repeat(2, 3)


@idiom
def repeat_grad(torch):
    x = _leaf(torch, (2, 3))
    x.repeat(1, 2, 1).sum().backward()
    return x.grad


@idiom
def masked_fill(torch):
    x = _x(torch)
    return x.masked_fill(x < 0, 0.0), x.masked_fill(x > 1, float("-inf"))


@idiom
def masked_fill_attention_style(torch):
    scores = _x(torch, (3, 3))
    mask = torch.tensor([[False, True, True], [False, False, True], [False, False, False]])
    return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)


@idiom
def masked_fill_grad(torch):
    x = _leaf(torch)
    x.masked_fill(x > 0, 1.0).sum().backward()
    return x.grad


@idiom(rtol=1e-5, atol=1e-5)
def cumsum(torch):
    return _x(torch).cumsum(dim=1), torch.tensor([1, 2, 3]).cumsum(0)


@idiom(rtol=1e-5, atol=1e-5)
def cumsum_grad(torch):
    x = _leaf(torch)
    (x.cumsum(dim=1) * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    return x.grad


@idiom
def new_factories(torch):
    x = _x(torch)
    return x.new_zeros(2, 3), x.new_ones((2,)), x.new_full((2, 2), 3.5), x.new_tensor([1, 2])


@idiom
def new_zeros_keeps_dtype(torch):
    return torch.tensor([1, 2]).new_zeros(3).dtype


@idiom
def modulo(torch):
    return torch.tensor([5, -5, 7]) % 3, torch.tensor([5.5, -5.5]) % 2


@idiom
def floor_division(torch):
    return torch.tensor([7, -7, 8]) // 2, torch.tensor([7.5, -7.5]) // 2


@idiom
def epoch_batch_arithmetic(torch):
    step = torch.tensor(17)
    return step // 5, step % 5


@idiom
def boolean_mask_read(torch):
    x = _x(torch)
    return x[x > 0]


@idiom
def boolean_mask_rows(torch):
    x = _x(torch)
    return x[torch.tensor([True, False, True])]


@idiom
def boolean_mask_write(torch):
    x = _x(torch)
    x[x < 0] = 0.0
    return x


@idiom
def boolean_mask_grad(torch):
    x = _leaf(torch)
    x[x > 0].sum().backward()
    return x.grad


@idiom
def format_zero_dim(torch):
    loss = torch.tensor(0.123456)
    return f"{loss:.4f}", f"{loss.item():.2f}", f"{torch.tensor(2.0):.3f}"


@idiom
def format_int_tensor(torch):
    return f"{torch.tensor(3):d}"


@idiom
def item_many_raises(torch):
    return torch.tensor([1.0, 2.0]).item()


@idiom
def mean_of_integers_raises(torch):
    return torch.tensor([1, 2]).mean()


@idiom
def shape_mismatch_raises(torch):
    return torch.zeros(2, 3) + torch.zeros(3, 2)


@idiom
def item_and_tolist(torch):
    x = torch.tensor([[1.5, 2.5]])
    return x[0, 1].item(), x.tolist(), torch.tensor(3).item()


@idiom
def accuracy_idiom(torch):
    logits = _x(torch, (6, 3))
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    pred = logits.argmax(dim=1, keepdim=True)
    correct = pred.eq(target.view_as(pred)).sum().item()
    return correct, 100.0 * correct / len(target)


@idiom
def max_with_indices_accuracy(torch):
    logits = _x(torch, (6, 3))
    _, predicted = logits.max(1)
    return predicted.eq(torch.tensor([0, 1, 2, 0, 1, 2])).sum().item()


@idiom
def size_and_shape(torch):
    x = _x(torch, (2, 3, 4))
    return x.size(), x.size(1), x.shape[-1], x.dim(), x.ndim, x.numel()


@idiom
def detach_clone_numpy(torch):
    x = _leaf(torch)
    return x.detach().clone().numpy()


@idiom
def amax_amin_methods(torch):
    x = _x(torch)
    return x.amax(dim=1), x.amin(dim=0)


@idiom
def logical_mask_ops(torch):
    x = _x(torch)
    return (x > 0) & (x < 1), (x < -1) | (x > 1), ~(x > 0)


@idiom
def clamp_methods(torch):
    x = _x(torch)
    return x.clamp(min=0), x.clamp(-0.5, 0.5), x.clamp(max=0.1)


@idiom
def inplace_ops(torch):
    x = _x(torch)
    x.add_(1).mul_(2).sub_(0.5).div_(4)
    return x


@idiom
def unsqueeze_squeeze_permute(torch):
    x = _x(torch, (2, 3))
    return x.unsqueeze(0).shape, x.unsqueeze(-1).squeeze(-1).shape, x.permute(1, 0).shape


@idiom
def contiguous_after_transpose(torch):
    x = _x(torch, (2, 3)).t()
    return x.is_contiguous(), x.contiguous().is_contiguous(), x.contiguous().view(6)


@idiom
def indexing_basics(torch):
    x = _x(torch, (4, 5))
    return x[0], x[:, 1], x[1:3, ::2], x[-1, -1], x[..., 0], x[None].shape


@idiom
def integer_tensor_index(torch):
    x = _x(torch, (4, 5))
    return x[torch.tensor([0, 2])], x[[1, 3]]


@idiom
def zero_grad_pattern(torch):
    x = _leaf(torch)
    (x * 2).sum().backward()
    x.grad.zero_()
    (x * 3).sum().backward()
    return x.grad


@idiom
def requires_grad_flags(torch):
    x = _x(torch)
    y = x.requires_grad_()
    return y.requires_grad, x.is_leaf, (x * 2).is_leaf, (x * 2).requires_grad
