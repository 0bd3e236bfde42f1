"""Everyday layer idioms (issue 16, part B): each runs unchanged under torch and phalanx.

Weights come from seeded NumPy arrays (the frameworks' random generators differ), copied in
with the ``with torch.no_grad(): p.copy_(...)`` idiom real scripts use to load weights.
"""

import numpy as np

from ._registry import idiom


def _arr(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _x(torch, shape, seed=0, grad=False):
    return torch.tensor(_arr(shape, seed), requires_grad=grad)


def _seed_params(torch, module, seed=100):
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.copy_(torch.tensor(_arr(tuple(p.shape), seed + i, 0.5)))
    return module


def _fwd_bwd(torch, module, x):
    """Output, input gradient and every parameter gradient of sum(out * fixed weights)."""
    out = module(x)
    (out * torch.tensor(_arr(tuple(out.shape), 999))).sum().backward()
    return [out, x.grad] + [p.grad for p in module.parameters()]


@idiom(rtol=1e-4, atol=1e-5)
def conv1d_forward_backward(torch):
    m = _seed_params(torch, torch.nn.Conv1d(3, 4, kernel_size=3, padding=1))
    return _fwd_bwd(torch, m, _x(torch, (2, 3, 10), grad=True))


@idiom(rtol=1e-4, atol=1e-5)
def conv1d_strided_dilated_groups(torch):
    m = _seed_params(torch, torch.nn.Conv1d(4, 6, 3, stride=2, dilation=2, groups=2))
    return _fwd_bwd(torch, m, _x(torch, (2, 4, 15), grad=True))


@idiom(rtol=1e-4, atol=1e-5)
def conv1d_padding_same(torch):
    m = _seed_params(torch, torch.nn.Conv1d(2, 2, 4, padding="same"))
    return m(_x(torch, (1, 2, 9)))


@idiom(rtol=1e-4, atol=1e-5)
def conv1d_reflect_padding_mode(torch):
    m = _seed_params(torch, torch.nn.Conv1d(2, 3, 3, padding=1, padding_mode="reflect"))
    return m(_x(torch, (2, 2, 6)))


@idiom
def conv1d_output_length(torch):
    m = torch.nn.Conv1d(16, 33, 3, stride=2)
    return tuple(m(torch.zeros(20, 16, 50)).shape)


@idiom(rtol=1e-4, atol=1e-5)
def conv_transpose2d_forward_backward(torch):
    m = _seed_params(torch, torch.nn.ConvTranspose2d(4, 3, kernel_size=4, stride=2, padding=1))
    return _fwd_bwd(torch, m, _x(torch, (2, 4, 5, 5), grad=True))


@idiom
def conv_transpose2d_output_size(torch):
    up = torch.nn.ConvTranspose2d(16, 16, 3, stride=2, padding=1)
    h = torch.zeros(1, 16, 6, 6)
    return tuple(up(h, output_size=[1, 16, 12, 12]).shape), tuple(up(h).shape)


@idiom(rtol=1e-4, atol=1e-5)
def conv_transpose2d_functional(torch):
    w = torch.tensor(_arr((3, 2, 3, 3), 1))
    return torch.nn.functional.conv_transpose2d(
        _x(torch, (1, 3, 4, 4)), w, stride=2, output_padding=1
    )


@idiom
def conv_transpose2d_weight_shape(torch):
    m = torch.nn.ConvTranspose2d(8, 4, (3, 5), groups=2)
    return tuple(m.weight.shape), tuple(m.bias.shape)


@idiom(rtol=1e-4, atol=1e-5)
def layer_norm_forward_backward(torch):
    m = _seed_params(torch, torch.nn.LayerNorm(8))
    return _fwd_bwd(torch, m, _x(torch, (4, 8), grad=True))


@idiom(rtol=1e-4, atol=1e-5)
def layer_norm_last_two_dims(torch):
    m = _seed_params(torch, torch.nn.LayerNorm([5, 6]))
    return _fwd_bwd(torch, m, _x(torch, (2, 3, 5, 6), grad=True))


@idiom(rtol=1e-4, atol=1e-5)
def layer_norm_no_affine(torch):
    m = torch.nn.LayerNorm(6, elementwise_affine=False)
    return m(_x(torch, (3, 6))), len(list(m.parameters()))


@idiom(rtol=1e-4, atol=1e-5)
def layer_norm_functional(torch):
    x = _x(torch, (2, 7, 10))
    return torch.nn.functional.layer_norm(x, (10,), eps=1e-6)


@idiom
def layer_norm_initial_params(torch):
    m = torch.nn.LayerNorm(4)
    return m.weight, m.bias, sorted(m.state_dict().keys())


@idiom(rtol=1e-4, atol=1e-5)
def group_norm_forward_backward(torch):
    m = _seed_params(torch, torch.nn.GroupNorm(2, 6))
    return _fwd_bwd(torch, m, _x(torch, (2, 6, 4, 4), grad=True))


@idiom(rtol=1e-4, atol=1e-5)
def group_norm_one_group(torch):
    m = torch.nn.GroupNorm(1, 4, affine=False)
    return m(_x(torch, (3, 4, 2, 2)))


@idiom(rtol=1e-4, atol=1e-5)
def group_norm_functional_3d(torch):
    return torch.nn.functional.group_norm(_x(torch, (2, 8, 5)), 4)


@idiom
def embedding_lookup(torch):
    emb = _seed_params(torch, torch.nn.Embedding(10, 3))
    return emb(torch.tensor([[1, 2, 4, 5], [4, 3, 2, 9]]))


@idiom
def embedding_padding_idx_gradient(torch):
    emb = _seed_params(torch, torch.nn.Embedding(5, 2, padding_idx=0))
    out = emb(torch.tensor([0, 2, 0, 3, 2]))
    (out * torch.tensor(_arr((5, 2), 3))).sum().backward()
    return out, emb.weight.grad


@idiom
def embedding_initial_padding_row_is_zero(torch):
    emb = torch.nn.Embedding(6, 4, padding_idx=2)
    return emb.weight[2]


@idiom
def embedding_from_pretrained(torch):
    emb = torch.nn.Embedding.from_pretrained(torch.tensor(_arr((4, 3), 1)))
    return emb(torch.tensor([3, 0])), emb.weight.requires_grad


@idiom
def embedding_functional(torch):
    return torch.nn.functional.embedding(torch.tensor([[0, 2]]), torch.tensor(_arr((3, 2), 1)))


@idiom(rtol=1e-5, atol=1e-6)
def silu_module_and_grad(torch):
    x = _x(torch, (3, 5), grad=True)
    y = torch.nn.SiLU()(x)
    y.sum().backward()
    return y, x.grad


@idiom(rtol=1e-5, atol=1e-6)
def silu_functional(torch):
    return torch.nn.functional.silu(_x(torch, (4,)) * 3)


@idiom
def dropout2d_eval_is_identity(torch):
    m = torch.nn.Dropout2d(0.5)
    m.eval()
    x = _x(torch, (2, 3, 4, 4))
    return m(x)


@idiom
def dropout2d_zero_probability(torch):
    return torch.nn.Dropout2d(p=0.0)(_x(torch, (1, 2, 3, 3)))


@idiom
def dropout2d_whole_channels(torch):
    torch.manual_seed(0)
    y = torch.nn.functional.dropout2d(torch.ones(4, 8, 3, 3), 0.5)
    per_channel = y.sum(3).sum(2)
    return float(((per_channel == 0).float() + (per_channel == 18).float()).min())


@idiom
def upsample_nearest_scale(torch):
    return torch.nn.Upsample(scale_factor=2, mode="nearest")(_x(torch, (1, 2, 3, 3)))


@idiom(rtol=1e-5, atol=1e-6)
def upsample_bilinear(torch):
    x = _x(torch, (1, 2, 3, 4), grad=True)
    y = torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)(x)
    y.sum().backward()
    return y, x.grad


@idiom(rtol=1e-5, atol=1e-6)
def interpolate_bilinear_align_corners(torch):
    return torch.nn.functional.interpolate(
        _x(torch, (2, 1, 4, 4)), size=(7, 5), mode="bilinear", align_corners=True
    )


@idiom
def interpolate_nearest_size(torch):
    return torch.nn.functional.interpolate(_x(torch, (1, 1, 4, 6)), size=(6, 4))


@idiom(rtol=1e-5, atol=1e-6)
def interpolate_downsample_bilinear(torch):
    return torch.nn.functional.interpolate(
        _x(torch, (1, 3, 8, 8)), scale_factor=0.5, mode="bilinear"
    )


@idiom(rtol=1e-5, atol=1e-6)
def interpolate_linear_1d(torch):
    return torch.nn.functional.interpolate(_x(torch, (2, 3, 5)), scale_factor=2, mode="linear")


@idiom
def pad_constant(torch):
    return torch.nn.functional.pad(_x(torch, (1, 2, 3)), (1, 2), value=-1.0)


@idiom
def pad_constant_four_sides(torch):
    x = _x(torch, (1, 1, 2, 3), grad=True)
    y = torch.nn.functional.pad(x, (1, 1, 2, 0))
    (y * torch.tensor(_arr(tuple(y.shape), 4))).sum().backward()
    return y, x.grad


@idiom
def pad_reflect(torch):
    return torch.nn.functional.pad(_x(torch, (1, 2, 4, 4)), (2, 1, 1, 2), mode="reflect")


@idiom
def pad_replicate(torch):
    return torch.nn.functional.pad(_x(torch, (1, 2, 3, 3)), (1, 1, 1, 1), mode="replicate")


@idiom
def pad_circular(torch):
    return torch.nn.functional.pad(_x(torch, (1, 1, 4)), (2, 2), mode="circular")


@idiom
def pad_crop_negative(torch):
    return torch.nn.functional.pad(_x(torch, (1, 1, 5, 5)), (-1, -1, -2, 0))


@idiom(rtol=1e-5, atol=1e-6)
def normalize_rows(torch):
    x = _x(torch, (4, 3), grad=True)
    y = torch.nn.functional.normalize(x, dim=1)
    y.sum().backward()
    return y, x.grad


@idiom(rtol=1e-5, atol=1e-6)
def normalize_p1_dim0(torch):
    return torch.nn.functional.normalize(_x(torch, (3, 2)), p=1, dim=0)


@idiom
def one_hot(torch):
    return torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 2]), num_classes=4)


@idiom
def one_hot_inferred_classes(torch):
    y = torch.nn.functional.one_hot(torch.tensor([[1, 0], [3, 1]]))
    return y, y.dtype


@idiom(rtol=1e-4, atol=1e-5)
def small_cnn_with_new_layers(torch):
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.GroupNorm(2, 4),
        nn.SiLU(),
        nn.Upsample(scale_factor=2),
        nn.ConvTranspose2d(4, 2, 2, stride=2),
        nn.Flatten(),
        nn.LayerNorm(2 * 16 * 16),
        nn.Linear(2 * 16 * 16, 3),
    )
    _seed_params(torch, model)
    return _fwd_bwd(torch, model, _x(torch, (2, 1, 4, 4), grad=True))


@idiom(rtol=1e-4, atol=1e-5)
def text_classifier_embedding_bag(torch):
    nn = torch.nn
    emb = _seed_params(torch, nn.Embedding(20, 6, padding_idx=0))
    fc = _seed_params(torch, nn.Linear(6, 2), seed=7)
    tokens = torch.tensor([[3, 5, 0, 0], [7, 1, 19, 2]])
    mask = (tokens != 0).float().unsqueeze(-1)
    pooled = (emb(tokens) * mask).sum(1) / mask.sum(1)
    loss = nn.functional.cross_entropy(fc(pooled), torch.tensor([1, 0]))
    loss.backward()
    return loss, emb.weight.grad, fc.weight.grad


@idiom
def new_layer_state_dict_keys(torch):
    nn = torch.nn
    m = nn.Sequential(nn.Conv1d(2, 2, 3), nn.LayerNorm(2), nn.GroupNorm(1, 2), nn.Embedding(3, 2))
    m.add_module("up", nn.ConvTranspose2d(2, 2, 2))
    return sorted(m.state_dict().keys())


@idiom
def parameter_count_of_new_layers(torch):
    nn = torch.nn
    layers = [nn.Conv1d(3, 8, 5), nn.ConvTranspose2d(8, 4, 3), nn.LayerNorm(10), nn.GroupNorm(2, 8)]
    layers.append(nn.Embedding(100, 16, padding_idx=1))
    return [sum(p.numel() for p in m.parameters()) for m in layers]


@idiom
def module_reprs_have_the_layer_name(torch):
    nn = torch.nn
    return [type(m).__name__ for m in (nn.SiLU(), nn.Dropout2d(), nn.Upsample(scale_factor=2))]


@idiom
def invalid_reduction_raises_value_error(torch):
    return torch.nn.functional.l1_loss(torch.zeros(2), torch.zeros(2), reduction="avg")
