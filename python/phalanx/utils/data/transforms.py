"""Image transforms: torchvision's per-sample API, and a batch path in C++.

Per-sample transforms (Compose, ToTensor, Normalize, RandomCrop, RandomHorizontalFlip, Lambda)
accept what torchvision's do for ndarrays -- uint8 numpy images of H x W or H x W x C -- and
phalanx tensors laid out [..., C, H, W] (or [H, W]), and return the same kind.

BatchTransform does ToTensor + RandomCrop + RandomHorizontalFlip + Normalize on a whole uint8
batch in one C++ call (csrc/data/batch_transforms.cc, OpenMP over the batch, no GIL), gathering the
samples by index on the way. Input layout: [N, H, W], [N, C, H, W], or [N, H, W, C] with
channels_last=True; output: float32 [N, C, H', W']. The vision datasets turn a per-sample
Compose of these transforms into a BatchTransform automatically (BatchTransform.from_transform)
and the DataLoader then builds each batch with one call.

Random choices come from, in order of preference: the transform's own `generator`, the
generator of the batch being assembled by a DataLoader (seeded per batch), or the global
phalanx generator. Both paths draw the same numbers in the same order -- per sample: crop top,
crop left, flip -- so given the same generator state they produce identical results.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

import phalanx

from ... import _C
from . import _worker
from .collate import default_collate

__all__ = [
    "BatchTransform",
    "Compose",
    "Lambda",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "ToTensor",
]


def _generator(own):
    return own if own is not None else _worker.batch_generator()


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, Sequence) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, Sequence) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name} should be an int or a sequence of one or two ints, got {size!r}")


def _padding4(padding) -> tuple[int, int, int, int]:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if padding is None:
        return 0, 0, 0, 0
    if isinstance(padding, numbers.Integral):
        p = int(padding)
        return p, p, p, p
    if isinstance(padding, Sequence) and len(padding) in (1, 2, 4):
        if len(padding) == 1:
            return (int(padding[0]),) * 4
        if len(padding) == 2:
            return int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])
        return tuple(int(p) for p in padding)
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element sequence, got {padding!r}")


class _Image:
    """An image as a numpy array with its H and W axes, and how to give it back."""

    def __init__(self, img) -> None:
        if isinstance(img, phalanx.Tensor):
            if img.dim() < 2:
                raise ValueError(
                    f"expected an image tensor of [..., H, W], got shape {list(img.shape)}"
                )
            self.array, self.is_tensor, self.h_axis = img.numpy(), True, img.dim() - 2
        elif isinstance(img, np.ndarray):
            if img.ndim not in (2, 3):
                raise ValueError(
                    f"expected a numpy image of H x W or H x W x C, got shape {img.shape}"
                )
            self.array, self.is_tensor, self.h_axis = img, False, 0
        else:
            raise TypeError(
                f"img should be a phalanx Tensor or a numpy ndarray, got {type(img).__name__}"
            )

    @property
    def hw(self) -> tuple[int, int]:
        return self.array.shape[self.h_axis], self.array.shape[self.h_axis + 1]

    def wrap(self, array: np.ndarray):
        return phalanx.from_numpy(np.ascontiguousarray(array)) if self.is_tensor else array


class Compose:
    """Applies the transforms in order."""

    def __init__(self, transforms) -> None:
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        body = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({body}\n)"


class Lambda:
    """Applies a user function."""

    def __init__(self, lambd) -> None:
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ToTensor:
    """A uint8 image -> float32 [C, H, W] in [0, 1]. Numpy images are H x W (x C), as in
    torchvision; phalanx tensors are already [C, H, W] or [H, W]. Non-uint8 input is only
    converted to float32, not scaled."""

    def __call__(self, pic):
        if isinstance(pic, np.ndarray):
            if pic.ndim not in (2, 3):
                raise ValueError(f"pic should be 2 or 3 dimensional, got {pic.ndim} dimensions")
            arr = pic[:, :, None] if pic.ndim == 2 else pic
            arr = arr.transpose(2, 0, 1)
        elif isinstance(pic, phalanx.Tensor):
            arr = pic.numpy()
            if arr.ndim == 2:
                arr = arr[None]
        else:
            raise TypeError(
                f"pic should be a numpy ndarray or a phalanx Tensor, got {type(pic).__name__}"
            )
        if arr.dtype == np.uint8:
            out = arr.astype(np.float32) / np.float32(255)
        else:
            out = arr.astype(np.float32)
        return phalanx.from_numpy(np.ascontiguousarray(out))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """(x - mean[c]) / std[c] on a float tensor of [..., C, H, W]."""

    def __init__(self, mean, std, inplace: bool = False) -> None:
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        self.inplace = inplace
        if any(s == 0 for s in np.asarray(self.std, np.float32)):
            raise ValueError(
                "std evaluated to zero after conversion to float32, leading to "
                f"division by zero: std={self.std}"
            )

    def __call__(self, tensor):
        if not isinstance(tensor, phalanx.Tensor):
            raise TypeError(
                f"Input tensor should be a phalanx tensor. Got {type(tensor).__name__}."
            )
        if not tensor.dtype.is_floating_point:
            raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
        if tensor.dim() < 3:
            raise ValueError(
                f"Expected tensor to be a tensor image of size (..., C, H, W). Got "
                f"shape {list(tensor.shape)}."
            )
        arr = tensor.numpy()
        c = arr.shape[-3]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, c):
                raise ValueError(f"Normalize: {name} has {len(v)} values for {c} channels")
        m = np.asarray(self.mean, np.float32)[:, None, None]
        s = np.asarray(self.std, np.float32)[:, None, None]
        if self.inplace and arr.dtype == np.float32 and arr.flags.writeable:
            np.subtract(arr, m, out=arr)
            np.divide(arr, s, out=arr)
            return tensor
        return phalanx.from_numpy(np.ascontiguousarray((arr.astype(np.float32) - m) / s))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={list(self.mean)}, std={list(self.std)})"


_NP_PAD_MODES = {
    "constant": "constant",
    "edge": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
}


class RandomCrop:
    """torchvision's RandomCrop: optional padding (zeros by default), then a random crop."""

    def __init__(
        self,
        size,
        padding=None,
        pad_if_needed: bool = False,
        fill=0,
        padding_mode: str = "constant",
        generator=None,
    ) -> None:
        self.size = _pair(size, "size")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        if padding_mode not in _NP_PAD_MODES:
            raise ValueError(
                f"padding_mode should be one of {sorted(_NP_PAD_MODES)}, got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        self.generator = generator
        _padding4(padding)  # validates

    def _pad(self, image: _Image, pad: tuple[int, int, int, int]) -> np.ndarray:
        left, top, right, bottom = pad
        if not any(pad):
            return image.array
        widths = [(0, 0)] * image.array.ndim
        widths[image.h_axis] = (top, bottom)
        widths[image.h_axis + 1] = (left, right)
        if self.padding_mode == "constant":
            return np.pad(image.array, widths, mode="constant", constant_values=self.fill)
        return np.pad(image.array, widths, mode=_NP_PAD_MODES[self.padding_mode])

    def __call__(self, img):
        image = _Image(img)
        image.array = self._pad(image, _padding4(self.padding))
        th, tw = self.size
        if self.pad_if_needed:
            h, w = image.hw
            if w < tw:
                image.array = self._pad(image, (tw - w, 0, tw - w, 0))
            h, w = image.hw
            if h < th:
                image.array = self._pad(image, (0, th - h, 0, th - h))
        h, w = image.hw
        top, left = _C.data.draw_crop(h, w, th, tw, generator=_generator(self.generator))
        index = [slice(None)] * image.array.ndim
        index[image.h_axis] = slice(top, top + th)
        index[image.h_axis + 1] = slice(left, left + tw)
        return image.wrap(image.array[tuple(index)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirrors the image left-right with probability p."""

    def __init__(self, p: float = 0.5, generator=None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, img):
        image = _Image(img)
        if _C.data.draw_flip(self.p, generator=_generator(self.generator)):
            return image.wrap(np.flip(image.array, axis=image.h_axis + 1))
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class BatchTransform:
    """ToTensor, then optional RandomCrop(crop, padding) and RandomHorizontalFlip(flip_p) and
    Normalize(mean, std), on a whole uint8 batch in C++ (see the module docstring)."""

    def __init__(
        self,
        crop=None,
        padding=0,
        flip_p: float | None = None,
        mean=None,
        std=None,
        channels_last: bool = False,
        generator=None,
    ) -> None:
        self.crop = None if crop is None else _pair(crop, "crop")
        self.padding = _padding4(padding)
        if self.crop is None and any(self.padding):
            raise ValueError("BatchTransform: padding needs a crop size")
        self.flip_p = flip_p
        if (mean is None) != (std is None):
            raise ValueError("BatchTransform: give both mean and std, or neither")
        self.mean = [] if mean is None else [float(m) for m in np.atleast_1d(mean)]
        self.std = [] if std is None else [float(s) for s in np.atleast_1d(std)]
        self.channels_last = channels_last
        self.generator = generator

    def __call__(self, images, indices=None):
        """uint8 images (tensor or numpy) -> float32 [B, C, H', W'], gathering `indices`."""
        if isinstance(images, np.ndarray):
            images = phalanx.from_numpy(images)
        if indices is not None and not isinstance(indices, phalanx.Tensor):
            indices = phalanx.from_numpy(np.asarray(indices, dtype=np.int64).reshape(-1))
        return _C.data.transform_batch(
            images,
            indices,
            crop=self.crop,
            padding=self.padding,
            flip_p=self.flip_p,
            mean=self.mean,
            std=self.std,
            channels_last=self.channels_last,
            generator=_generator(self.generator),
        )

    def collate(self, samples):
        """A collate_fn: default_collate, then this transform on the (first) image field."""
        batch = default_collate(samples)
        if isinstance(batch, list):
            return [self(batch[0])] + batch[1:]
        return self(batch)

    @classmethod
    def from_transform(cls, transform) -> BatchTransform | None:
        """The BatchTransform equivalent to a per-sample transform, or None if there is none.

        Accepted: a BatchTransform; ToTensor; or a Compose of, in this order, an optional
        RandomCrop (constant zero padding), an optional RandomHorizontalFlip, with ToTensor
        before, between or after them, then an optional Normalize. All random transforms must
        share one `generator` (or none).
        """
        if isinstance(transform, BatchTransform):
            return transform
        steps = transform.transforms if isinstance(transform, Compose) else [transform]
        kw: dict = {}
        last = -1
        seen_tensor = False
        generators = set()
        for t in steps:
            if isinstance(t, ToTensor) and not seen_tensor:
                seen_tensor = True
                continue
            if isinstance(t, RandomCrop):
                stage = 0
                if t.padding_mode != "constant" or t.fill != 0 or t.pad_if_needed:
                    return None
                kw.update(crop=t.size, padding=_padding4(t.padding))
                generators.add(id(t.generator) if t.generator is not None else None)
                kw["generator"] = t.generator if t.generator is not None else kw.get("generator")
            elif isinstance(t, RandomHorizontalFlip):
                stage = 1
                kw["flip_p"] = t.p
                generators.add(id(t.generator) if t.generator is not None else None)
                kw["generator"] = t.generator if t.generator is not None else kw.get("generator")
            elif isinstance(t, Normalize) and seen_tensor:
                stage = 2
                kw.update(mean=t.mean, std=t.std)
            else:
                return None
            if stage <= last:
                return None
            last = stage
        if not seen_tensor or len(generators - {None}) > 1:
            return None
        if None in generators and len(generators) > 1:
            return None  # one transform has its own generator, the other draws from the shared one
        return cls(**kw)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop={self.crop}, padding={self.padding}, "
            f"flip_p={self.flip_p}, mean={self.mean}, std={self.std}, "
            f"channels_last={self.channels_last})"
        )
