"""Conv1d, ConvTranspose2d, LayerNorm, GroupNorm, Embedding, SiLU, Dropout1d/2d, Upsample and
functional pad, interpolate, normalize, one_hot against torch: forward and every gradient on
assorted shapes and edge cases, the modules with torch's weights, and bad arguments."""

import math

import numpy as np
import pytest
from conftest import assert_close, check_op, randn

import phalanx
import phalanx.nn.functional as F

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

# ---- conv1d ------------------------------------------------------------------------------------

CONV1D = [
    # (x shape, w shape, kwargs)
    ((2, 4, 11), (6, 4, 3), {}),
    ((2, 4, 11), (6, 2, 3), dict(stride=2, padding=1, groups=2)),
    ((1, 3, 9), (5, 3, 4), dict(dilation=2, padding=3)),
    ((3, 10), (4, 3, 5), dict(padding=2)),  # unbatched
    ((2, 3, 8), (4, 3, 4), dict(padding="same")),  # even kernel: asymmetric
    ((2, 3, 8), (4, 3, 3), dict(padding="same", dilation=2)),
    ((2, 3, 8), (4, 3, 3), dict(padding="valid")),
]


@pytest.mark.parametrize("xs,ws,kw", CONV1D)
@pytest.mark.parametrize("bias", [False, True])
def test_conv1d(xs, ws, kw, bias):
    arrays = [randn(xs, seed=1), randn(ws, seed=2, scale=0.3)]
    if bias:
        arrays.append(randn(ws[:1], seed=3))
    check_op(
        lambda *a: F.conv1d(*a, **kw), lambda *a: TF.conv1d(*a, **kw), arrays, rtol=1e-4, atol=1e-4
    )


# ---- conv_transpose2d --------------------------------------------------------------------------

CONVT = [
    ((2, 4, 5, 5), (4, 3, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((1, 4, 4, 4), (4, 2, 4, 4), dict(stride=2, padding=1)),  # the DCGAN block
    ((2, 4, 3, 5), (4, 2, 2, 3), dict(stride=(3, 2), padding=(0, 1), groups=2)),
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(dilation=2, padding=3, stride=2, output_padding=1)),
    ((3, 4, 4), (3, 2, 3, 3), dict(padding=2)),  # unbatched; padding > kernel edge crops
    ((1, 3, 1, 1), (3, 4, 2, 2), dict(stride=3)),  # batch 1, 1x1 map, stride > kernel
    ((2, 6, 3, 4), (6, 1, 3, 3), dict(groups=6, stride=2, output_padding=1)),  # depthwise
    ((2, 16, 5, 5), (16, 8, 3, 3), dict(stride=2, padding=1, output_padding=1)),  # blocked
    # output_padding >= stride + padding (dilation > stride allows it): oneDNN refuses this
    # geometry, the composed conv2d path computes it
    ((1, 2, 4, 4), (2, 3, 3, 3), dict(dilation=3, output_padding=2)),
]


@pytest.mark.parametrize("xs,ws,kw", CONVT)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose2d(xs, ws, kw, bias):
    arrays = [randn(xs, seed=1), randn(ws, seed=2, scale=0.3)]
    if bias:
        arrays.append(randn((ws[1] * kw.get("groups", 1),), seed=3))
    check_op(
        lambda *a: F.conv_transpose2d(*a, **kw),
        lambda *a: TF.conv_transpose2d(*a, **kw),
        arrays,
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("seed", range(4))
def test_conv_transpose2d_random_geometry(seed):
    rng = np.random.default_rng(200 + seed)
    groups = int(rng.integers(1, 3))
    c_in, c_out_g = groups * int(rng.integers(1, 4)), int(rng.integers(1, 4))
    k = tuple(int(v) for v in rng.integers(1, 4, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(rng.integers(0, dilation[i] * (k[i] - 1) + 1)) for i in range(2))
    out_pad = tuple(int(rng.integers(0, max(stride[i], dilation[i]))) for i in range(2))
    kw = dict(stride=stride, padding=padding, output_padding=out_pad, groups=groups)
    kw["dilation"] = dilation
    xs = (int(rng.integers(1, 3)), c_in, int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    arrays = [randn(xs, seed=seed), randn((c_in, c_out_g) + k, seed=seed + 1, scale=0.3)]
    arrays.append(randn((c_out_g * groups,), seed=seed + 2))
    check_op(
        lambda *a: F.conv_transpose2d(*a, **kw),
        lambda *a: TF.conv_transpose2d(*a, **kw),
        arrays,
        rtol=1e-4,
        atol=1e-4,
    )


def test_conv_transpose2d_on_onednn_deconvolution():
    """The functional is the oneDNN op itself (no zero-inserted convolution), also for a
    transposed (non-contiguous) input and a convolution's blocked output; the op names the
    one geometry oneDNN refuses instead of failing inside it."""
    x, w = randn((2, 8, 5, 5), seed=1), randn((8, 4, 3, 3), seed=2, scale=0.3)
    px, pw = phalanx.tensor(x), phalanx.tensor(w)
    direct = phalanx._C.nn.conv_transpose2d(px, pw, None, (2, 2), (1, 1), (1, 1), 1, (1, 1))
    via_f = F.conv_transpose2d(px, pw, stride=2, padding=1, output_padding=1)
    assert np.array_equal(direct.numpy(), via_f.numpy())
    check_op(
        lambda x, w: F.conv_transpose2d(x.transpose(2, 3), w, stride=2),
        lambda x, w: TF.conv_transpose2d(x.transpose(2, 3), w, stride=2),
        [x, w],
        rtol=1e-4,
        atol=1e-4,
    )
    cw = randn((8, 8, 3, 3), seed=3, scale=0.3)
    check_op(
        lambda x, cw, w: F.conv_transpose2d(F.conv2d(x, cw, padding=1), w, stride=2),
        lambda x, cw, w: TF.conv_transpose2d(TF.conv2d(x, cw, padding=1), w, stride=2),
        [x, cw, w],
        rtol=1e-4,
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="output_padding=2, stride=1, padding=0"):
        phalanx._C.nn.conv_transpose2d(px, pw, None, (1, 1), (0, 0), (2, 2), 1, (3, 3))


def _copy_from_torch(px_mod, th_mod):
    px_mod.load_state_dict(
        {k: phalanx.tensor(v.detach().numpy()) for k, v in th_mod.state_dict().items()}
    )


def _module_check(px_mod, th_mod, x, rtol=1e-4, atol=1e-4, **fw):
    _copy_from_torch(px_mod, th_mod)
    px_x, th_x = phalanx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    px_y, th_y = px_mod(px_x, **fw), th_mod(th_x, **fw)
    assert_close(px_y, th_y, rtol=rtol, atol=atol, msg="forward")
    g = randn(tuple(th_y.shape), seed=77)
    px_y.backward(phalanx.tensor(g))
    th_y.backward(torch.tensor(g))
    assert_close(px_x.grad, th_x.grad, rtol=rtol, atol=atol, msg="input grad")
    th_params = dict(th_mod.named_parameters())
    for name, p in px_mod.named_parameters():
        assert_close(p.grad, th_params[name].grad, rtol=rtol, atol=atol, msg=f"{name} grad")


def test_conv_transpose2d_module_output_size():
    px_m = phalanx.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    th_m = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1)
    assert tuple(px_m.weight.shape) == tuple(th_m.weight.shape) == (3, 4, 3, 3)
    x = randn((2, 3, 5, 5), seed=4)
    _module_check(px_m, th_m, x)
    _module_check(px_m, th_m, x, output_size=[10, 10])
    with pytest.raises(ValueError, match="valid sizes range from 9 to 10"):
        px_m(phalanx.tensor(x), output_size=[12, 12])


def test_conv1d_module_and_padding_modes():
    for mode in ("zeros", "reflect", "replicate", "circular"):
        px_m = phalanx.nn.Conv1d(3, 5, 3, padding=1, padding_mode=mode)
        th_m = torch.nn.Conv1d(3, 5, 3, padding=1, padding_mode=mode)
        _module_check(px_m, th_m, randn((2, 3, 7), seed=5))
    px_m, th_m = (
        phalanx.nn.Conv1d(4, 4, 4, padding="same", groups=2, bias=False),
        torch.nn.Conv1d(4, 4, 4, padding="same", groups=2, bias=False),
    )
    _module_check(px_m, th_m, randn((2, 4, 9), seed=6))


@pytest.mark.parametrize(
    "name,args,kw",
    [
        ("Conv2d", (4, 6, 3), dict(stride=2, padding=1, groups=2, bias=False)),
        ("Conv2d", (4, 6, 3), dict(padding="valid", dilation=2)),
        ("Conv1d", (4, 6, 3), dict(padding="same", padding_mode="reflect")),
        ("ConvTranspose2d", (4, 6, 3), dict(stride=2, output_padding=1, groups=2)),
    ],
)
def test_conv_modules_share_setup_with_torchs_attributes(name, args, kw):
    """Conv1d, Conv2d and ConvTranspose2d are set up by one helper (_conv_base.ConvNd): the
    same attributes, weight shapes and repr as PyTorch's, and the same checks by name."""
    px_m, th_m = getattr(phalanx.nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(px_m) == repr(th_m)
    for attr in ("kernel_size", "stride", "padding", "dilation", "output_padding", "groups"):
        assert getattr(px_m, attr) == getattr(th_m, attr), attr
    assert px_m.transposed == th_m.transposed
    assert tuple(px_m.weight.shape) == tuple(th_m.weight.shape)
    with pytest.raises(ValueError, match=f"{name}: out_channels=5 must be divisible by groups=2"):
        getattr(phalanx.nn, name)(4, 5, 3, groups=2)
    with pytest.raises(ValueError, match=f"{name}: groups must be a positive integer, got 0"):
        getattr(phalanx.nn, name)(4, 6, 3, groups=0)


# ---- layer_norm, group_norm --------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,normalized",
    [((4, 10), (10,)), ((2, 3, 8), (8,)), ((2, 3, 4, 5), (4, 5)), ((5, 1), (1,)), ((6,), (6,))],
)
@pytest.mark.parametrize("affine", [False, True])
def test_layer_norm(shape, normalized, affine):
    arrays = [randn(shape, seed=1, scale=3.0) + 1.0]
    if affine:
        arrays += [randn(normalized, seed=2), randn(normalized, seed=3)]
    check_op(
        lambda x, *wb: F.layer_norm(x, normalized, *wb, eps=1e-5),
        lambda x, *wb: TF.layer_norm(x, normalized, *wb, eps=1e-5),
        arrays,
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("seed", range(4))
def test_layer_norm_random_shapes_and_partial_affine(seed):
    """Random ranks and sizes, weight only / bias only / both / neither, batch 1 included."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 7, size=rank))
    k = int(rng.integers(1, rank + 1))
    normalized = shape[rank - k :]
    use_w, use_b = seed % 2 == 0, seed in (0, 3)
    arrays = [randn(shape, seed=seed, scale=2.0) + 3.0]
    arrays += [randn(normalized, seed=10 + seed)] if use_w else []
    arrays += [randn(normalized, seed=20 + seed)] if use_b else []

    def call(lib, x, *rest):
        w = rest[0] if use_w else None
        b = rest[-1] if use_b else None
        return lib.layer_norm(x, normalized, w, b, eps=1e-5)

    check_op(lambda *a: call(F, *a), lambda *a: call(TF, *a), arrays, rtol=1e-4, atol=1e-4)


def test_layer_norm_runs_on_onednn_and_takes_any_input_layout():
    """One oneDNN layer_normalization node (no batch-norm/mul/add chain), on a transposed
    (non-contiguous) input, on a convolution's blocked output, and with a large mean."""
    x = phalanx.tensor(randn((3, 4, 5), seed=1), requires_grad=True)
    y = F.layer_norm(x, (5,), phalanx.ones(5, requires_grad=True), phalanx.zeros(5))
    assert y.grad_fn.name() == "NativeLayerNormBackward"
    check_op(
        lambda x: F.layer_norm(x.transpose(0, 2), (3,)),
        lambda x: TF.layer_norm(x.transpose(0, 2), (3,)),
        [randn((3, 4, 5), seed=2)],
        rtol=1e-4,
        atol=1e-4,
    )
    conv_w = randn((8, 3, 3, 3), seed=3, scale=0.3)
    check_op(
        lambda x, w: F.layer_norm(F.conv2d(x, w, padding=1), (6, 6)),
        lambda x, w: TF.layer_norm(TF.conv2d(x, w, padding=1), (6, 6)),
        [randn((2, 3, 6, 6), seed=4), conv_w],
        rtol=1e-4,
        atol=1e-4,
    )
    check_op(
        lambda x: F.layer_norm(x, (16,)),
        lambda x: TF.layer_norm(x, (16,)),
        [randn((4, 16), seed=5) + 1000.0],
        rtol=1e-3,
        atol=1e-3,
    )


@pytest.mark.parametrize(
    "shape,groups",
    [
        ((2, 6, 4, 4), 3),
        ((2, 6, 4, 4), 1),
        ((2, 6, 4, 4), 6),
        ((3, 8, 5), 4),
        ((4, 6), 2),
        ((2, 4, 1, 1), 4),
    ],
)
@pytest.mark.parametrize("affine", [False, True])
def test_group_norm(shape, groups, affine):
    arrays = [randn(shape, seed=1, scale=2.0)]
    if affine:
        arrays += [randn(shape[1:2], seed=2), randn(shape[1:2], seed=3)]
    check_op(
        lambda x, *wb: F.group_norm(x, groups, *wb),
        lambda x, *wb: TF.group_norm(x, groups, *wb),
        arrays,
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("seed", range(4))
def test_group_norm_random_shapes(seed):
    """Random batch (1 included), groups, channels per group and spatial ranks (1x1 maps)."""
    rng = np.random.default_rng(100 + seed)
    groups, per_group = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    spatial = tuple(int(v) for v in rng.integers(1, 5, size=int(rng.integers(0, 3))))
    shape = (int(rng.integers(1, 4)), groups * per_group) + spatial
    if per_group * math.prod(spatial) == 1:  # one value per group: PyTorch's 0, tested above
        shape = shape + (2,)
    arrays = [randn(shape, seed=seed, scale=2.0) - 1.0]
    arrays += [randn(shape[1:2], seed=seed + 1), randn(shape[1:2], seed=seed + 2)]
    check_op(
        lambda x, w, b: F.group_norm(x, groups, w, b),
        lambda x, w, b: TF.group_norm(x, groups, w, b),
        arrays,
        rtol=1e-4,
        atol=1e-4,
    )


def test_group_norm_uses_the_batch_norm_primitive():
    """The (1, N * groups, values) view is plain; it must reach oneDNN's batch-norm primitive
    (which goes through the primitive cache), forward and backward, not the direct loops."""
    x = phalanx.tensor(randn((2, 6, 3, 3), seed=1), requires_grad=True)
    before = phalanx._C._primitive_cache_stats()
    y = F.group_norm(x, 3)
    mid = phalanx._C._primitive_cache_stats()
    assert mid["hits"] + mid["created"] > before["hits"] + before["created"]
    y.sum().backward()
    after = phalanx._C._primitive_cache_stats()
    assert after["hits"] + after["created"] > mid["hits"] + mid["created"]


def test_norm_modules_match_torch():
    _module_check(
        phalanx.nn.LayerNorm([4, 5]), torch.nn.LayerNorm([4, 5]), randn((3, 4, 5), seed=1)
    )
    _module_check(
        phalanx.nn.LayerNorm(5, bias=False),
        torch.nn.LayerNorm(5, bias=False),
        randn((3, 5), seed=1),
    )
    _module_check(phalanx.nn.GroupNorm(2, 6), torch.nn.GroupNorm(2, 6), randn((2, 6, 3, 3), seed=1))
    ln = phalanx.nn.LayerNorm(4, elementwise_affine=False)
    assert ln.weight is None and list(ln.parameters()) == []
    assert sorted(phalanx.nn.GroupNorm(2, 4).state_dict()) == ["bias", "weight"]


# ---- embedding, one_hot ------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding(padding_idx):
    idx = np.array([[0, 2, 4, 2], [1, 1, 3, 4]], np.int64)
    w = randn((5, 3), seed=1)
    check_op(
        lambda w_: F.embedding(phalanx.tensor(idx), w_, padding_idx=padding_idx),
        lambda w_: TF.embedding(torch.tensor(idx), w_, padding_idx=padding_idx),
        [w],
    )


def test_embedding_module():
    px_m = phalanx.nn.Embedding(10, 4, padding_idx=0)
    th_m = torch.nn.Embedding(10, 4, padding_idx=0)
    assert float(px_m.weight[0].abs().sum()) == 0.0  # the padding row starts at zero
    _copy_from_torch(px_m, th_m)
    idx = np.array([[0, 3, 9], [3, 3, 1]], np.int64)
    py, ty = px_m(phalanx.tensor(idx)), th_m(torch.tensor(idx))
    assert_close(py, ty)
    g = randn(tuple(ty.shape), seed=2)
    py.backward(phalanx.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(px_m.weight.grad, th_m.weight.grad)
    pre = randn((6, 2), seed=3)
    frozen = phalanx.nn.Embedding.from_pretrained(phalanx.tensor(pre))
    assert not frozen.weight.requires_grad
    assert_close(frozen(phalanx.tensor(np.array([5, 0]))), pre[[5, 0]])


def test_one_hot():
    t = np.array([[0, 3], [2, 1]], np.int64)
    for n in (-1, 6):
        p, r = F.one_hot(phalanx.tensor(t), n), TF.one_hot(torch.tensor(t), n)
        assert p.dtype == phalanx.int64
        assert_close(p, r)


# ---- dropout, silu -----------------------------------------------------------------------------


def test_dropout2d_drops_whole_channels():
    phalanx.manual_seed(0)
    x = phalanx.ones(8, 16, 3, 3, requires_grad=True)
    y = F.dropout2d(x, p=0.5, training=True)
    arr = y.detach().numpy().reshape(8, 16, 9)
    per_channel = arr[:, :, :1]
    assert np.all(arr == per_channel) and set(np.unique(arr)) <= {0.0, 2.0}
    assert 0.2 < (per_channel == 0).mean() < 0.8
    y.sum().backward()
    assert_close(x.grad, y.detach())  # the gradient is the same mask
    assert F.dropout2d(x, 0.5, training=False) is x
    assert float(F.dropout2d(x, 1.0).abs().sum()) == 0.0
    m = phalanx.nn.Dropout2d(0.3).eval()
    assert m(x) is x
    z = F.dropout1d(phalanx.ones(4, 32, 5), 0.5).numpy()
    assert np.all(z == z[:, :, :1])


@pytest.mark.parametrize("shape", [(7,), (3, 4, 5)])
def test_silu(shape):
    check_op(F.silu, TF.silu, [randn(shape, seed=1, scale=4.0)])
    _module_check(phalanx.nn.SiLU(), torch.nn.SiLU(), randn(shape, seed=2))
    x = phalanx.tensor(randn(shape, seed=3))
    expected = TF.silu(torch.tensor(x.numpy()))
    assert F.silu(x, inplace=True) is x
    assert_close(x, expected)


# ---- pad ---------------------------------------------------------------------------------------

PADS = [
    ((2, 3, 5), (1, 2), "constant", 0.0),
    ((2, 3, 5), (2, 0), "constant", -1.5),
    ((2, 3, 4, 5), (1, 1, 2, 0), "constant", 3.0),
    ((2, 3, 4, 5), (-1, 2, 0, -2), "constant", 0.0),  # negative: crop
    ((2, 3, 4, 5), (1, 2, 3, 1), "reflect", None),
    ((2, 3, 6), (5, 4), "reflect", None),
    ((2, 3, 4, 5), (1, 2, 3, 1), "replicate", None),
    ((2, 3, 5), (6, 4), "replicate", None),
    ((2, 3, 4, 5), (1, 2, 3, 1), "circular", None),
    ((1, 2, 3, 4), (0, 0, 2, 2), "reflect", None),
]


@pytest.mark.parametrize("shape,pads,mode,value", PADS)
def test_pad(shape, pads, mode, value):
    kw = dict(mode=mode) if value is None else dict(mode=mode, value=value)
    check_op(
        lambda x: F.pad(x, pads, **kw), lambda x: TF.pad(x, pads, **kw), [randn(shape, seed=1)]
    )


# ---- interpolate -------------------------------------------------------------------------------

INTERP = [
    ((2, 3, 4, 5), dict(scale_factor=2)),
    ((2, 3, 4, 5), dict(size=(7, 3))),
    ((2, 3, 6, 6), dict(scale_factor=0.5)),
    ((1, 2, 5, 4), dict(scale_factor=1.7)),
    ((1, 2, 5, 4), dict(scale_factor=(2.5, 1.3), recompute_scale_factor=True)),
    ((1, 2, 5, 4), dict(size=(11, 9), mode="nearest-exact")),
    ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear")),
    ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear", align_corners=True)),
    ((2, 3, 4, 5), dict(size=(3, 9), mode="bilinear", align_corners=False)),
    ((1, 2, 6, 7), dict(size=(4, 3), mode="bilinear", align_corners=True)),
    ((1, 2, 5, 4), dict(scale_factor=1.7, mode="bilinear")),
    ((1, 2, 5, 5), dict(size=(1, 1), mode="bilinear", align_corners=True)),
    ((2, 3, 7), dict(scale_factor=3, mode="linear")),
    ((2, 3, 7), dict(size=4, mode="linear", align_corners=True)),
    ((2, 3, 7), dict(size=12)),
    ((2, 3, 6, 6), dict(size=(3, 2), mode="area")),
]


@pytest.mark.parametrize("shape,kw", INTERP)
def test_interpolate(shape, kw):
    check_op(
        lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [randn(shape, seed=1)]
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "mode,align", [("nearest", None), ("nearest-exact", None), ("bilinear", False)]
)
def test_interpolate_random_sizes(seed, mode, align):
    """Random sizes up and down, by size and by scale_factor (whole and fractional), batch 1
    and 1x1 maps among them: oneDNN where it computes PyTorch's result, index tables
    elsewhere, both checked."""
    rng = np.random.default_rng(300 + seed)
    shape = (int(rng.integers(1, 3)), 2) + tuple(int(v) for v in rng.integers(1, 7, size=2))
    if seed % 3 == 0:
        kw = dict(size=tuple(int(v) for v in rng.integers(1, 13, size=2)))
    elif seed % 3 == 1:
        kw = dict(scale_factor=float(rng.choice([2, 3, 0.5, 1.5, 2.5])))
    else:
        kw = dict(size=tuple(n * int(rng.integers(1, 4)) for n in shape[2:]))
    if align is not None:
        kw["align_corners"] = align
    check_op(
        lambda x: F.interpolate(x, mode=mode, **kw),
        lambda x: TF.interpolate(x, mode=mode, **kw),
        [randn(shape, seed=seed)],
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "shape,kw,onednn",
    [
        ((2, 3, 4, 5), dict(scale_factor=2), True),
        ((1, 2, 1, 1), dict(size=(3, 4)), True),  # 1x1 map: every output is the one pixel
        ((2, 3, 4, 5), dict(size=(6, 7)), False),  # nearest at 1.5x: floor differs from round
        ((2, 3, 4, 5), dict(size=(3, 9), mode="nearest-exact"), True),
        ((2, 3, 4, 5), dict(size=(3, 9), mode="bilinear"), True),
        ((2, 3, 7), dict(scale_factor=3, mode="linear"), True),
        ((2, 3, 4, 5), dict(scale_factor=2, mode="bilinear", align_corners=True), False),
        ((1, 2, 5, 4), dict(scale_factor=1.7, mode="bilinear"), False),  # 1/1.7 != 5/8
    ],
)
def test_interpolate_uses_onednn_resampling_where_it_matches(shape, kw, onednn):
    x = phalanx.tensor(randn(shape, seed=1), requires_grad=True)
    name = F.interpolate(x, **kw).grad_fn.name()
    assert name.startswith("Upsample") == onednn, name


def test_interpolate_non_contiguous_and_blocked_inputs():
    check_op(
        lambda x: F.interpolate(x.transpose(2, 3), scale_factor=2),
        lambda x: TF.interpolate(x.transpose(2, 3), scale_factor=2),
        [randn((2, 3, 4, 5), seed=1)],
    )
    w = randn((16, 3, 3, 3), seed=2, scale=0.3)
    check_op(
        lambda x, w: F.interpolate(F.conv2d(x, w, padding=1), size=(7, 9), mode="bilinear"),
        lambda x, w: TF.interpolate(TF.conv2d(x, w, padding=1), size=(7, 9), mode="bilinear"),
        [randn((2, 3, 5, 6), seed=3), w],
        rtol=1e-4,
        atol=1e-4,
    )


def test_upsample_modules():
    x = randn((2, 3, 4, 4), seed=1)
    for px_m, th_m in (
        (phalanx.nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
        (
            phalanx.nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False),
            torch.nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False),
        ),
        (
            phalanx.nn.UpsamplingNearest2d(scale_factor=3),
            torch.nn.UpsamplingNearest2d(scale_factor=3),
        ),
        (phalanx.nn.UpsamplingBilinear2d(size=6), torch.nn.UpsamplingBilinear2d(size=6)),
    ):
        _module_check(px_m, th_m, x)


# ---- normalize ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p,dim", [(2.0, 1), (2.0, -1), (1.0, 0), (3.0, 1), (float("inf"), 1)])
def test_normalize(p, dim):
    x = randn((4, 5), seed=1)
    x[2] = 0.0  # a zero vector: divided by eps, gradient finite
    check_op(lambda a: F.normalize(a, p=p, dim=dim), lambda a: TF.normalize(a, p=p, dim=dim), [x])


# ---- bad arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda: F.conv1d(phalanx.ones(2, 3, 5), phalanx.ones(4, 3)),
            ValueError,
            "weight must be 3-D",
        ),
        (
            lambda: F.conv1d(phalanx.ones(2, 3, 5), phalanx.ones(4, 3, 2), padding="full"),
            ValueError,
            "'full'",
        ),
        (
            lambda: F.conv_transpose2d(phalanx.ones(1, 3, 4, 4), phalanx.ones(2, 2, 3, 3)),
            ValueError,
            "input has 3 channels",
        ),
        (
            lambda: F.conv_transpose2d(
                phalanx.ones(1, 2, 4, 4), phalanx.ones(2, 2, 3, 3), output_padding=1
            ),
            ValueError,
            "output padding must be smaller",
        ),
        (lambda: F.layer_norm(phalanx.ones(2, 3), (4,)), ValueError, r"normalized_shape=\[4\]"),
        (
            lambda: F.group_norm(phalanx.ones(2, 6, 3), 4),
            ValueError,
            "num_channels=6 .* num_groups=4",
        ),
        (lambda: phalanx.nn.GroupNorm(4, 6), ValueError, "num_channels=6 must be divisible"),
        (
            lambda: F.embedding(phalanx.tensor([0, 7]), phalanx.ones(5, 2)),
            IndexError,
            r"\[0, 7\] .* 5 rows",
        ),
        (
            lambda: F.embedding(phalanx.ones(3), phalanx.ones(5, 2)),
            TypeError,
            "indices must be int64",
        ),
        (lambda: phalanx.nn.Embedding(4, 2, padding_idx=4), ValueError, "padding_idx"),
        (lambda: phalanx.nn.Embedding(4, 2, max_norm=1.0), ValueError, "max_norm=1.0"),
        (
            lambda: F.one_hot(phalanx.tensor([0, 3]), 3),
            ValueError,
            "smaller than num_classes=3, got 3",
        ),
        (lambda: F.one_hot(phalanx.tensor([-1, 0]), 3), ValueError, "non-negative, got -1"),
        (lambda: F.one_hot(phalanx.tensor([0.0, 1.0])), TypeError, "int64"),
        (lambda: F.dropout2d(phalanx.ones(2, 3), 0.5), ValueError, "3-D or 4-D"),
        (lambda: F.dropout2d(phalanx.ones(2, 3, 4, 4), 1.5), ValueError, "but got 1.5"),
        (lambda: F.pad(phalanx.ones(2, 3, 4), (1, 2, 3)), ValueError, "must be even"),
        (
            lambda: F.pad(phalanx.ones(2, 3, 4), (4, 0), mode="reflect"),
            ValueError,
            "smaller than its size 4",
        ),
        (lambda: F.pad(phalanx.ones(2, 3, 4), (1, 1), mode="wrap"), ValueError, "'wrap'"),
        (lambda: F.interpolate(phalanx.ones(1, 1, 4, 4)), ValueError, "size or scale_factor"),
        (
            lambda: F.interpolate(phalanx.ones(1, 1, 4, 4), scale_factor=2, align_corners=True),
            ValueError,
            "align_corners option",
        ),
        (
            lambda: F.interpolate(phalanx.ones(1, 1, 4, 4), scale_factor=2, mode="bicubic"),
            ValueError,
            "'bicubic'",
        ),
        (
            lambda: F.interpolate(phalanx.ones(1, 4, 4), scale_factor=2, mode="bilinear"),
            ValueError,
            "4-D input",
        ),
        (lambda: F.normalize(phalanx.ones(2, 3), p=0), ValueError, "p must be positive"),
        (
            lambda: phalanx.nn.Conv1d(3, 4, 3, groups=2),
            ValueError,
            "in_channels=3 must be divisible",
        ),
        (
            lambda: phalanx.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"),
            ValueError,
            '"zeros"',
        ),
    ],
)
def test_bad_arguments_raise_clearly(call, error, message):
    with pytest.raises(error, match=message):
        call()
