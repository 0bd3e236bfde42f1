"""Image transforms: per-sample numerics against numpy, crop/flip against a numpy reference
given the same random draws, and the C++ batch path against the per-sample path."""

from __future__ import annotations

import numpy as np
import pytest

import phalanx
from phalanx import _C
from phalanx.utils.data import transforms as T

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def images(n=6, h=9, w=11, c=None, seed=0):
    shape = (n, h, w) if c is None else (n, c, h, w)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def np_crop(img, top, left, th, tw, pad):
    """torchvision semantics on a [..., H, W] array: zero-pad (l, t, r, b), then crop."""
    l, t, r, b = pad
    widths = [(0, 0)] * (img.ndim - 2) + [(t, b), (l, r)]
    padded = np.pad(img, widths)
    return padded[..., top : top + th, left : left + tw]


# ----------------------------------------------------------------------------- ToTensor/Normalize


def test_to_tensor_numpy_layouts():
    hw = images(1)[0]
    out = T.ToTensor()(hw)
    assert out.dtype == phalanx.float32 and tuple(out.shape) == (1, 9, 11)
    np.testing.assert_array_equal(out.numpy()[0], hw.astype(np.float32) / 255)
    hwc = np.random.default_rng(1).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    out = T.ToTensor()(hwc)
    assert tuple(out.shape) == (3, 5, 4)
    np.testing.assert_array_equal(out.numpy(), hwc.transpose(2, 0, 1).astype(np.float32) / 255)
    assert T.ToTensor()(np.ones((2, 2), np.float32)).numpy().max() == 1.0  # not scaled


def test_to_tensor_phalanx_tensor():
    chw = images(1, c=3)[0]
    out = T.ToTensor()(phalanx.from_numpy(chw))
    np.testing.assert_array_equal(out.numpy(), chw.astype(np.float32) / 255)
    with pytest.raises(TypeError, match="pic should be"):
        T.ToTensor()([1, 2])


def test_normalize_matches_numpy():
    x = np.random.default_rng(0).random((3, 5, 6), dtype=np.float32)
    out = T.Normalize(MEAN, STD)(phalanx.from_numpy(x.copy()))
    ref = (x - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None]
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6, atol=1e-6)
    batch = phalanx.from_numpy(np.stack([x, x]))
    np.testing.assert_allclose(T.Normalize(MEAN, STD)(batch).numpy()[1], ref, rtol=1e-6)
    t = phalanx.from_numpy(x.copy())
    assert T.Normalize(MEAN, STD, inplace=True)(t) is t
    np.testing.assert_allclose(t.numpy(), ref, rtol=1e-6)
    single = T.Normalize(0.5, 0.25)(phalanx.from_numpy(x.copy()))
    np.testing.assert_allclose(single.numpy(), (x - 0.5) / 0.25, rtol=1e-6)


def test_normalize_errors():
    with pytest.raises(ValueError, match="std evaluated to zero"):
        T.Normalize((0.5,), (0.0,))
    with pytest.raises(TypeError, match="float tensor"):
        T.Normalize(0.5, 0.5)(phalanx.from_numpy(images(1, c=1)[0]))
    with pytest.raises(TypeError, match="phalanx tensor"):
        T.Normalize(0.5, 0.5)(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match="2 values for 3 channels"):
        T.Normalize((0.5, 0.5), (1, 1))(phalanx.zeros(3, 2, 2))


# ------------------------------------------------------------------------------------ crop/flip


@pytest.mark.parametrize("padding,size", [(None, 7), (2, 9), ((1, 3), (8, 10)), ((1, 2, 3, 4), 5)])
def test_random_crop_matches_numpy_reference(padding, size):
    img = images(1, c=2)[0]
    crop = T.RandomCrop(size, padding=padding, generator=phalanx.Generator(3))
    twin = phalanx.Generator(3)
    th, tw = (size, size) if isinstance(size, int) else size
    pad = T._padding4(padding)
    for _ in range(10):
        out = crop(phalanx.from_numpy(img))
        h, w = 9 + pad[1] + pad[3], 11 + pad[0] + pad[2]
        top, left = _C.data.draw_crop(h, w, th, tw, generator=twin)
        np.testing.assert_array_equal(out.numpy(), np_crop(img, top, left, th, tw, pad))


def test_random_crop_offsets_cover_range_and_numpy_hwc():
    crop = T.RandomCrop(4, padding=1, generator=phalanx.Generator(0))
    img = np.arange(36, dtype=np.uint8).reshape(6, 6)
    seen = set()
    for _ in range(400):
        out = crop(img)
        assert isinstance(out, np.ndarray) and out.shape == (4, 4)
        seen.add((int(out[1, 1]),))
    assert len(seen) == 25  # every (top, left) of the 8x8 padded image: 5 x 5 choices
    hwc = np.random.default_rng(0).integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    out = T.RandomCrop(6)(hwc)
    np.testing.assert_array_equal(out, hwc)  # whole-image crop: no draw, identity


def test_random_crop_modes_and_errors():
    img = np.arange(9, dtype=np.uint8).reshape(3, 3)
    out = T.RandomCrop(5, padding=1, padding_mode="edge")(img)
    np.testing.assert_array_equal(out, np.pad(img, 1, mode="edge"))
    out = T.RandomCrop(5, padding=1, fill=7)(img)
    assert out[0, 0] == 7
    out = T.RandomCrop(5, pad_if_needed=True, generator=phalanx.Generator(0))(img)
    assert out.shape == (5, 5)
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(4)(img)
    with pytest.raises(ValueError, match="padding_mode"):
        T.RandomCrop(2, padding_mode="wrap")


def test_random_horizontal_flip():
    img = images(1, c=3)[0]
    t = phalanx.from_numpy(img)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(t).numpy(), img[..., ::-1])
    assert T.RandomHorizontalFlip(p=0.0)(t) is t
    flip = T.RandomHorizontalFlip(generator=phalanx.Generator(1))
    twin = phalanx.Generator(1)
    flips = 0
    for _ in range(200):
        out = flip(t).numpy()
        expect = _C.data.draw_flip(0.5, generator=twin)
        np.testing.assert_array_equal(out, img[..., ::-1] if expect else img)
        flips += expect
    assert 70 < flips < 130
    hw = img[0]
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(hw), hw[:, ::-1])


def test_flip_draw_is_phalanx_rand():
    g1, g2 = phalanx.Generator(4), phalanx.Generator(4)
    for _ in range(20):
        u = float(phalanx.rand(1, generator=g1).item())
        assert _C.data.draw_flip(0.3, generator=g2) == (u < 0.3)


def test_compose_and_lambda():
    tf = T.Compose([T.ToTensor(), T.Lambda(lambda x: x * 2)])
    out = tf(np.full((2, 2), 255, np.uint8))
    assert out.numpy().max() == 2.0
    assert "ToTensor" in repr(tf)


# ----------------------------------------------------------------------------------- batch path


def per_sample(tf, batch, chw=True):
    return np.stack([tf(phalanx.from_numpy(x) if chw else x).numpy() for x in batch])


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_batch_path_equals_per_sample_path(channels):
    batch = images(7, h=10, w=12, c=channels, seed=2)
    mean, std = ((0.3,), (0.2,)) if channels in (None, 1) else (MEAN, STD)
    tf = T.Compose(
        [
            T.RandomCrop((8, 10), padding=3),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(mean, std),
        ]
    )
    bt = T.BatchTransform.from_transform(tf)
    assert bt is not None and bt.crop == (8, 10) and bt.flip_p == 0.5
    phalanx.manual_seed(21)
    ref = per_sample(tf, batch)
    phalanx.manual_seed(21)
    out = bt(batch)
    assert out.dtype == phalanx.float32
    assert tuple(out.shape) == (7, 1 if channels is None else channels, 8, 10)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_batch_path_channels_last_equals_numpy_hwc():
    batch = np.random.default_rng(3).integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
    tf = T.Compose(
        [T.RandomCrop(6, padding=1), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)]
    )
    phalanx.manual_seed(8)
    ref = per_sample(tf, batch, chw=False)
    bt = T.BatchTransform(crop=6, padding=1, flip_p=0.5, mean=MEAN, std=STD, channels_last=True)
    phalanx.manual_seed(8)
    np.testing.assert_array_equal(bt(batch).numpy(), ref)


def test_batch_path_normalize_and_gather_vs_numpy():
    batch = images(10, c=3, seed=4)
    idx = [9, 0, 4, 4]
    out = T.BatchTransform(mean=MEAN, std=STD)(batch, idx).numpy()
    x = batch[idx].astype(np.float32) / 255
    ref = (x - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None]
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    plain = T.BatchTransform()(phalanx.from_numpy(batch)).numpy()
    np.testing.assert_array_equal(plain, batch.astype(np.float32) / 255)


def test_batch_crop_flip_vs_numpy_reference():
    batch = images(8, h=5, w=6, c=2, seed=5)
    bt = T.BatchTransform(
        crop=(4, 4), padding=(1, 2, 3, 0), flip_p=0.7, generator=phalanx.Generator(12)
    )
    out = bt(batch).numpy()
    twin = phalanx.Generator(12)
    for n in range(8):
        top, left = _C.data.draw_crop(5 + 2, 6 + 4, 4, 4, generator=twin)
        flip = _C.data.draw_flip(0.7, generator=twin)
        ref = np_crop(batch[n], top, left, 4, 4, (1, 2, 3, 0)).astype(np.float32) / 255
        if flip:
            ref = ref[..., ::-1]
        np.testing.assert_array_equal(out[n], ref)


def test_batch_transform_strided_input():
    big = images(4, h=8, w=8, c=3, seed=6)
    view = big[:, :, 1:7, ::2]  # not contiguous
    out = T.BatchTransform()(view).numpy()
    np.testing.assert_array_equal(out, view.astype(np.float32) / 255)


def test_batch_transform_collate():
    samples = [(images(1, c=1, seed=s)[0], s) for s in range(3)]
    x, y = T.BatchTransform(mean=0.5, std=0.5).collate(samples)
    assert tuple(x.shape) == (3, 1, 9, 11) and y.tolist() == [0, 1, 2]


def test_from_transform_rules():
    ok = [
        T.ToTensor(),
        T.Compose([T.ToTensor(), T.Normalize(0.1, 0.2)]),
        T.Compose([T.ToTensor(), T.RandomCrop(4, 1), T.Normalize(0.1, 0.2)]),
        T.Compose([T.RandomHorizontalFlip(), T.ToTensor()]),
        T.BatchTransform(),
    ]
    for tf in ok:
        assert isinstance(T.BatchTransform.from_transform(tf), T.BatchTransform), tf
    bad = [
        T.Compose([T.RandomHorizontalFlip(), T.RandomCrop(4), T.ToTensor()]),  # draw order
        T.Compose([T.ToTensor(), T.Normalize(0.1, 0.2), T.RandomCrop(4, 1)]),  # pads -m/s != 0
        T.Compose([T.RandomCrop(4, 1)]),  # stays uint8
        T.Compose([T.RandomCrop(4, 1, fill=3), T.ToTensor()]),
        T.Compose([T.ToTensor(), T.Lambda(lambda x: x)]),
        T.Compose(
            [
                T.RandomCrop(4, generator=phalanx.Generator(0)),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
            ]
        ),
        lambda x: x,
    ]
    for tf in bad:
        assert T.BatchTransform.from_transform(tf) is None, tf


def test_batch_transform_errors():
    with pytest.raises(TypeError, match="uint8"):
        T.BatchTransform()(phalanx.zeros(2, 3, 3))
    with pytest.raises(IndexError, match="index 5 is out of range for 2 images"):
        T.BatchTransform()(images(2), [5])
    with pytest.raises(ValueError, match="larger than"):
        T.BatchTransform(crop=20)(images(2))
    with pytest.raises(ValueError, match="2 values for 3 channels"):
        T.BatchTransform(mean=(0, 0), std=(1, 1))(images(2, c=3))
    with pytest.raises(ValueError, match="padding needs a crop"):
        T.BatchTransform(padding=2)
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        T.BatchTransform()(np.zeros((2, 3), np.uint8))


def test_batch_transform_large_batch_parallel_is_deterministic():
    batch = images(64, h=32, w=32, c=3, seed=9)
    bt = T.BatchTransform(crop=32, padding=4, flip_p=0.5, mean=MEAN, std=STD)
    phalanx.set_num_threads(2)
    phalanx.manual_seed(1)
    a = bt(batch).numpy()
    phalanx.set_num_threads(1)
    phalanx.manual_seed(1)
    b = bt(batch).numpy()
    phalanx.set_num_threads(2)
    np.testing.assert_array_equal(a, b)
