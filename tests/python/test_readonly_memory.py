"""phalanx never writes memory numpy lends read-only, and never misreads big-endian bytes.

Decision: a read-only array is copied by from_numpy (and by as_tensor and operators that take
arrays); a writeable array is still shared. Before, an in-place op on a tensor made from
`np.frombuffer(bytes)` changed an immutable `bytes` object, and one made from
`np.load(..., mmap_mode="r")` segfaulted on the read-only mapping.
"""

import numpy as np
import pytest

import phalanx


def _readonly(values):
    a = np.array(values, dtype=np.float32)
    a.flags.writeable = False
    return a


WRITES = {
    "add_": lambda t: t.add_(1),
    "mul_": lambda t: t.mul_(2),
    "relu_": lambda t: phalanx.nn.functional.relu(t.sub_(2), inplace=True),
    "copy_": lambda t: t.copy_(phalanx.full(tuple(t.shape), 9.0)),
    "fill_": lambda t: t.fill_(9),
    "zero_": lambda t: t.zero_(),
    "setitem": lambda t: t.__setitem__(0, 9.0),
    "setitem_slice": lambda t: t.__setitem__(slice(None), 9.0),
    "uniform_": lambda t: phalanx.nn.init.uniform_(t),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_inplace_write_leaves_a_readonly_array_unchanged(write):
    a = _readonly([1.0, 2.0, 3.0])
    t = phalanx.from_numpy(a)
    WRITES[write](t)
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])


def test_immutable_bytes_are_never_written():
    raw = np.arange(4, dtype=np.float32).tobytes()
    before = bytes(raw)
    t = phalanx.from_numpy(np.frombuffer(raw, dtype=np.float32))
    t.add_(1)
    assert raw == before
    assert t.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_readonly_mmap_in_place_ops_do_not_fault(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    m = np.load(path, mmap_mode="r")
    t = phalanx.from_numpy(m)
    t.mul_(10)
    t[0, 0] = -1.0
    assert t.tolist() == [[-1.0, 10.0, 20.0], [30.0, 40.0, 50.0]]
    np.testing.assert_array_equal(np.load(path), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_optimizer_step_and_grad_accumulation_leave_readonly_memory_alone():
    a = _readonly([1.0, 2.0])
    p = phalanx.nn.Parameter(phalanx.from_numpy(a))
    opt = phalanx.optim.SGD([p], lr=0.5)
    (p * p).sum().backward()
    opt.step()
    np.testing.assert_array_equal(a, [1.0, 2.0])
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])


def test_as_tensor_and_operators_copy_readonly_arrays():
    a = _readonly([1.0, 2.0])
    t = phalanx.as_tensor(a)
    t.add_(1)
    np.testing.assert_array_equal(a, [1.0, 2.0])
    assert (phalanx.ones(2) + a).tolist() == [2.0, 3.0]


def test_writeable_arrays_are_still_shared():
    a = np.array([1.0, 2.0], dtype=np.float32)
    t = phalanx.from_numpy(a)
    t.add_(1)
    np.testing.assert_array_equal(a, [2.0, 3.0])
    a[0] = 7
    assert t.tolist() == [7.0, 3.0]


def test_copy_on_write_mmap_is_shared_without_copying(tmp_path):
    # mmap_mode="c" maps privately: writeable, and writes never reach the file.
    path = tmp_path / "c.npy"
    np.save(path, np.arange(3, dtype=np.float32))
    m = np.load(path, mmap_mode="c")
    t = phalanx.from_numpy(m)
    t.add_(1)
    np.testing.assert_array_equal(m, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.load(path), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("dt", [">f4", ">i8", ">i4", ">f2"])
def test_from_numpy_refuses_big_endian(dt):
    with pytest.raises(TypeError, match="byte order"):
        phalanx.from_numpy(np.arange(3).astype(dt))


@pytest.mark.parametrize("dt", [">f4", ">i8", ">i4", ">f8"])
def test_tensor_converts_big_endian_values(dt):
    a = np.array([1, 2, 300], dtype=dt)
    assert phalanx.tensor(a).tolist() == [1, 2, 300]
    assert phalanx.as_tensor(a).tolist() == [1, 2, 300]
