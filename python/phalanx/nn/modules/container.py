"""Containers: Sequential, ModuleList, ModuleDict, and the pass-through Identity.

Children are registered under their position ("0", "1", ...) or dict key, which is what
makes state_dict keys such as 'features.0.weight' line up with PyTorch's.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from .activation import ReLU
from .batchnorm import _BatchNorm, bn_relu
from .conv import Conv2d, conv_relu
from .module import Module, _addindent


def _checked_index(idx, length: int) -> int:
    idx = operator.index(idx)
    if not -length <= idx < length:
        raise IndexError(f"index {idx} is out of range")
    return idx % length


class Identity(Module):
    """Returns its input; a placeholder that keeps a model's structure (and keys) fixed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input):
        return input


class _Positional(Module):
    """What Sequential and ModuleList share: children named by position, kept in step."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module):
        items = list(self._modules.values())
        items.insert(index, module)
        self._renumber(items)
        return self

    def __delitem__(self, idx) -> None:
        items = list(self._modules.values())
        if isinstance(idx, slice):
            del items[idx]
        else:
            del items[_checked_index(idx, len(self))]
        self._renumber(items)

    def _renumber(self, items) -> None:
        # as PyTorch does, so positions and names stay in step
        self._modules.clear()
        for i, module in enumerate(items):
            self.add_module(str(i), module)


class Sequential(_Positional):
    """Applies its children in order; built from modules or from an OrderedDict of them."""

    def __init__(self, *args) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            # a subclass with its own constructor (ConvBNAct, say) slices to a plain Sequential
            same_init = type(self).__init__ is Sequential.__init__
            cls = type(self) if same_init else Sequential
            return cls(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_checked_index(idx, len(self))]

    def __setitem__(self, idx, module: Module) -> None:
        key = list(self._modules.keys())[_checked_index(idx, len(self))]
        self.add_module(key, module)

    def forward(self, input):
        # A batch norm or a convolution followed by a ReLU runs as one fused op
        # (batchnorm.bn_relu, conv.conv_relu)
        modules = tuple(self._modules.values())
        i, n = 0, len(modules)
        while i < n:
            module = modules[i]
            if i + 1 < n and type(modules[i + 1]) is ReLU and isinstance(module, _BatchNorm):
                input = bn_relu(module, modules[i + 1], input)
                i += 2
            elif i + 1 < n and type(modules[i + 1]) is ReLU and type(module) is Conv2d:
                input = conv_relu(module, modules[i + 1], input)
                i += 2
            else:
                input = module(input)
                i += 1
        return input


class ModuleList(_Positional):
    """Holds submodules in a list, registered under their index; it has no forward."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_checked_index(idx, len(self)))]

    def __setitem__(self, idx, module: Module) -> None:
        self.add_module(str(_checked_index(idx, len(self))), module)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __repr__(self) -> str:
        """Runs of identical children print once, as '(0-2): 3 x Block(...)' (PyTorch's form)."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []  # [first index, last index, repr]
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = []
        for first, last, r in runs:
            label = (
                f"({first}): {r}"
                if first == last
                else f"({first}-{last}): {last - first + 1} x {r}"
            )
            lines.append(_addindent(label, 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """Holds submodules under string keys, in insertion order; it has no forward."""

    def __init__(
        self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
    ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module
