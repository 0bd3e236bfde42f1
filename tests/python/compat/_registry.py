"""Registry of PyTorch-compatibility idioms.

An idiom is a small piece of everyday training code written once against a framework module
passed in as ``torch`` (real PyTorch or phalanx), so the same lines run under both and their
results can be compared. Inputs come from numpy with a fixed seed so both runs see equal data.
Idioms live in ``idioms_<area>.py`` files beside this one; ``test_idioms.py`` runs them all.
"""

IDIOMS = {}


def idiom(fn=None, *, rtol=1e-5, atol=1e-6):
    """Registers ``fn(torch)``; its return value (tensors, numbers, dtypes, tuples, lists,
    dicts of them) or the exception it raises is what is compared."""

    def register(f):
        name = f"{f.__module__.rsplit('.', 1)[-1]}::{f.__name__}"
        if name in IDIOMS:
            raise ValueError(f"duplicate idiom {name}")
        f.compat_tolerance = (rtol, atol)
        IDIOMS[name] = f
        return f

    return register(fn) if fn is not None else register
