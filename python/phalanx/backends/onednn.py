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


class _OneDnnModule(types.ModuleType):
    @property
    def allow_winograd(self) -> bool:
        return _C._winograd_allowed()

    @allow_winograd.setter
    def allow_winograd(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise TypeError(
                f"phalanx.backends.onednn.allow_winograd must be True or False, got {on!r}"
            )
        _C._set_winograd_allowed(on)

    @property
    def twin_weights(self) -> bool:
        return _C._twin_weights_enabled()

    @twin_weights.setter
    def twin_weights(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise TypeError(
                f"phalanx.backends.onednn.twin_weights must be True or False, got {on!r}"
            )
        _C._set_twin_weights_enabled(on)


sys.modules[__name__].__class__ = _OneDnnModule
