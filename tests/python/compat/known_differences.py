"""Idioms whose phalanx result differs from PyTorch's on purpose or for now, with the reason.

``test_idioms.py`` runs each as xfail(strict=True): one that starts passing must leave this list.
docs/compat.md repeats the list for users.
"""

import phalanx

# gelu(+-inf) is whatever oneDNN's gelu_erf gives: NaN for both under oneDNN 3.x, as in
# PyTorch's vectorised path (its scalar path gives inf and 0); 2.x gives inf for +inf.
_ONEDNN_2 = phalanx._C._onednn_version()[0] < 3


def _torch_gelu_of_inf_is_nan() -> bool:
    """PyTorch's own gelu(+inf) depends on its CPU path: NaN from its vector path on this
    AVX-512 machine, inf from its scalar path (a 1-element tensor) and under
    ONEDNN_MAX_CPU_ISA=AVX2 (as on most laptops), so it is a difference only where PyTorch
    gives NaN for the idiom's input."""
    try:
        import torch
    except ImportError:
        return True  # no reference to compare with: the idiom test skips anyway
    x = torch.tensor([float("inf"), float("-inf"), 1.0])  # the idiom's input, its path
    return bool(torch.isnan(torch.nn.functional.gelu(x)[0]).item())


KNOWN = {
    **(
        {
            "idioms_nan::gelu_of_infinity": (
                "with oneDNN 2.x phalanx's gelu(+inf) is inf where PyTorch's vectorised path "
                "gives NaN (gelu(-inf) is NaN in both)"
            )
        }
        if _ONEDNN_2 and _torch_gelu_of_inf_is_nan()
        else {}
    ),
    "idioms_tensor::data_assign_other_shape": (
        "`t.data = other` copies other's values into t, so shape and dtype must match; PyTorch "
        "swaps t's storage"
    ),
}
