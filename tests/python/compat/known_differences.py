"""Idioms whose phalanx result differs from PyTorch's on purpose or for now, with the reason.

``test_idioms.py`` runs each as xfail(strict=True): one that starts passing must leave this list.
docs/compat.md repeats the list for users.
"""

KNOWN = {
    "idioms_nan::gelu_of_infinity": (
        "PyTorch's gelu(+-inf) depends on the tensor's length (vectorised path NaN, scalar path "
        "inf/0); phalanx gives the mathematical inf and 0"
    ),
    "idioms_tensor::data_assign_other_shape": (
        "`t.data = other` copies other's values into t, so shape and dtype must match; PyTorch "
        "swaps t's storage"
    ),
}
