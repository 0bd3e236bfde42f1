"""Runs every registered idiom under PyTorch and under phalanx and compares what they give.

Results are normalised before comparing: tensors become (dtype name, shape, numpy values),
dtypes and devices their names without the framework prefix, sequences, dicts and named tuples
their items; floats and float tensors compare with the idiom's tolerance (NaN equals NaN). When
PyTorch raises, phalanx must raise an instance of the same built-in exception type.

Idioms listed in known_differences.KNOWN are expected to differ (xfail, strict: one that starts
passing must be taken off the list). At least 95% of all idioms must pass.
"""

from __future__ import annotations

import importlib
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import phalanx  # noqa: E402

from ._registry import IDIOMS  # noqa: E402
from .known_differences import KNOWN  # noqa: E402

for _path in sorted(pathlib.Path(__file__).parent.glob("idioms_*.py")):
    importlib.import_module(f"{__package__}.{_path.stem}")

REQUIRED_PASS_FRACTION = 0.95


class Raised:
    """What an idiom raised: the exception and the built-in type it is an instance of."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.builtin = next(c for c in type(exc).__mro__ if c.__module__ == "builtins")

    def __repr__(self) -> str:
        return f"raised {type(self.exc).__name__}({self.exc})"


def _is_tensor(v) -> bool:
    return isinstance(v, (torch.Tensor, phalanx.Tensor))


def _dtype_name(d) -> str:
    return str(d).rsplit(".", 1)[-1]


def normalise(v):
    """A framework-free form of an idiom's result."""
    if _is_tensor(v):
        v = v.detach()
        name = _dtype_name(v.dtype)
        if name == "bfloat16":
            v = v.float()
        return ("tensor", name, tuple(v.shape), np.array(v.numpy(), copy=True))
    if isinstance(v, (torch.dtype, phalanx.dtype)):
        return ("dtype", _dtype_name(v))
    if isinstance(v, (torch.device, phalanx.device)):
        return ("device", str(v))
    if isinstance(v, (torch.Size, phalanx.Size)):
        return ("size", tuple(int(s) for s in v))
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.name, v.shape, v)
    if isinstance(v, np.generic):
        return normalise(v.item())
    if isinstance(v, dict):
        return ("dict", {k: normalise(x) for k, x in v.items()})
    if isinstance(v, tuple):  # named tuples (max, sort, topk) compare as their items
        return ("tuple", [normalise(x) for x in v])
    if isinstance(v, list):
        return ("list", [normalise(x) for x in v])
    if v is None or isinstance(v, (bool, int, float, str, bytes)):
        return v
    return ("object", type(v).__name__)


def differences(got, want, tol, path="result"):
    """A list of messages, empty when the normalised results agree."""
    rtol, atol = tol
    if isinstance(want, float) and isinstance(got, float):
        if np.isnan(want) and np.isnan(got):
            return []
        ok = np.isclose(got, want, rtol=rtol, atol=atol)
        return [] if ok else [f"{path}: {got!r} != {want!r}"]
    if type(got) is not type(want):
        return [f"{path}: {got!r} ({type(got).__name__}) != {want!r} ({type(want).__name__})"]
    if isinstance(want, tuple) and want and want[0] in ("tensor", "ndarray"):
        _, dg, sg, ag = got
        _, dw, sw, aw = want
        if (dg, sg) != (dw, sw):
            return [f"{path}: {dg}{list(sg)} != {dw}{list(sw)}"]
        if aw.dtype.kind == "f":
            same = np.allclose(ag, aw, rtol=rtol, atol=atol, equal_nan=True)
            same = same and np.array_equal(np.isnan(ag), np.isnan(aw))
        else:
            same = np.array_equal(ag, aw)
        return [] if same else [f"{path}: values differ\n{ag}\n!=\n{aw}"]
    if isinstance(want, tuple) and want and want[0] in ("tuple", "list"):
        if want[0] != got[0] or len(got[1]) != len(want[1]):
            return [f"{path}: {got[0]} of {len(got[1])} != {want[0]} of {len(want[1])}"]
        out = []
        for i, (g, w) in enumerate(zip(got[1], want[1])):
            out += differences(g, w, tol, f"{path}[{i}]")
        return out
    if isinstance(want, tuple) and want and want[0] == "dict":
        if list(got[1]) != list(want[1]):
            return [f"{path}: keys {list(got[1])} != {list(want[1])}"]
        out = []
        for k in want[1]:
            out += differences(got[1][k], want[1][k], tol, f"{path}[{k!r}]")
        return out
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def run(fn, lib):
    grad_mode = lib.is_grad_enabled()
    try:
        return normalise(fn(lib))
    except Exception as e:  # noqa: BLE001 - what an idiom raises is its result
        return Raised(e)
    finally:
        lib.set_grad_enabled(grad_mode)


_outcomes: dict[str, list[str]] = {}


def outcome(name: str) -> list[str]:
    """Differences between phalanx and torch for one idiom (cached: each runs once)."""
    if name not in _outcomes:
        fn = IDIOMS[name]
        want, got = run(fn, torch), run(fn, phalanx)
        if isinstance(want, Raised):
            if not isinstance(got, Raised):
                diffs = [f"torch {want}, phalanx returned {got!r}"]
            elif not isinstance(got.exc, want.builtin):
                diffs = [f"torch {want}, phalanx {got}"]
            else:
                diffs = []
        elif isinstance(got, Raised):
            diffs = [f"torch returned, phalanx {got}"]
        else:
            diffs = differences(got, want, fn.compat_tolerance)
        _outcomes[name] = diffs
    return _outcomes[name]


def _params():
    for name in sorted(IDIOMS):
        marks = []
        if name in KNOWN:
            marks.append(pytest.mark.xfail(reason=KNOWN[name], strict=True))
        yield pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", _params())
def test_idiom(name):
    diffs = outcome(name)
    assert not diffs, "\n".join(diffs)


def test_known_differences_name_real_idioms():
    missing = sorted(set(KNOWN) - set(IDIOMS))
    assert not missing, f"known_differences lists idioms that do not exist: {missing}"


def test_most_idioms_pass_identically():
    assert len(IDIOMS) >= 100, f"only {len(IDIOMS)} idioms registered"
    failing = [name for name in sorted(IDIOMS) if outcome(name)]
    passed = 1 - len(failing) / len(IDIOMS)
    assert passed >= REQUIRED_PASS_FRACTION, (
        f"{passed:.1%} of {len(IDIOMS)} idioms pass (need {REQUIRED_PASS_FRACTION:.0%}); "
        f"failing: {failing}"
    )
