"""phalanx.backends.onednn: switches of phalanx's kernel library (phalanx's own; PyTorch has
no such module).

`allow_winograd` (default True; PHALANX_WINOGRAD=0 in the environment starts it False): let
oneDNN run a convolution as Winograd where it expects that to be faster (3x3 stride-1
convolutions on AVX-512; about 1.25x a ResNet-18 training step). Results then differ from the
direct kernels' (and PyTorch's) by rounding, a few 1e-6 relative to the output's scale. Set it
False for results rounded as PyTorch's CPU convolutions round them; it applies to primitives
created from then on (each is cached under the setting it was made with).

`twin_weights` (default True; PHALANX_TWIN_WEIGHTS=0 starts it False): keep, between training
steps, the copy of each trained convolution weight that backward-data reads in a blocking of
its own (on x86-64 the forward's blocks transposed), written by the fused optimizers as they
update the weight, so no weight is reordered in a step. It costs one more copy of those
weights in memory (ResNet-50: about 90 MiB); False reorders each one in every backward
instead. Read at each backward.
"""

import sys
import types

from .. import _C


def _switch(name: str, get, set_):
    """A True/False property of the module, read and set in the C++ core."""

    def setter(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise TypeError(f"phalanx.backends.onednn.{name} must be True or False, got {on!r}")
        set_(on)

    return property(lambda self: get(), setter)


class _OneDnnModule(types.ModuleType):
    allow_winograd = _switch("allow_winograd", _C._winograd_allowed, _C._set_winograd_allowed)
    twin_weights = _switch("twin_weights", _C._twin_weights_enabled, _C._set_twin_weights_enabled)


sys.modules[__name__].__class__ = _OneDnnModule
