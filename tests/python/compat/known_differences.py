"""Idioms whose phalanx result differs from PyTorch's on purpose or for now, with the reason.

``test_idioms.py`` runs each as xfail(strict=True): one that starts passing must leave this list.
docs/compat.md repeats the list for users.
"""

import phalanx

# gelu(+-inf) is whatever oneDNN's gelu_erf gives: NaN for both under oneDNN 3.x, as in
# PyTorch's vectorised path (its scalar path gives inf and 0); 2.x gives inf for +inf.
_ONEDNN_2 = phalanx._C._onednn_version()[0] < 3

KNOWN = {
    **(
        {
            "idioms_nan::gelu_of_infinity": (
                "with oneDNN 2.x phalanx's gelu(+inf) is inf where PyTorch's vectorised path "
                "gives NaN (gelu(-inf) is NaN in both)"
            )
        }
        if _ONEDNN_2
        else {}
    ),
    "idioms_tensor::data_assign_other_shape": (
        "`t.data = other` copies other's values into t, so shape and dtype must match; PyTorch "
        "swaps t's storage"
    ),
}
