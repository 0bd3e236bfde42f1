"""Impossible sizes are refused, naming the shape, before anything is allocated.

Each case used to allocate a buffer smaller than the shape (the byte count wrapped), then
write or read out of bounds, spin in fill, or "succeed" on bytes it never had.
"""

import pytest

import phalanx


@pytest.mark.parametrize(
    "make, shape_text",
    [
        (lambda: phalanx.zeros(2**31, 2**31), "[2147483648, 2147483648]"),
        (lambda: phalanx.randn(2**31, 2**31), "[2147483648, 2147483648]"),
        (lambda: phalanx.ones(2**21, 2**21, 2**21), "[2097152, 2097152, 2097152]"),
        (lambda: phalanx.zeros(2**62, 2), "[4611686018427387904, 2]"),
        (lambda: phalanx.empty(2**32, 2**32), "[4294967296, 4294967296]"),
        (lambda: phalanx.full((2**40, 2**20), 1.0), "[1099511627776, 1048576]"),
        (lambda: phalanx.zeros(2**47), "[140737488355328]"),  # 2**49 bytes: over the maximum
    ],
)
def test_impossible_allocation_is_a_memory_error_naming_the_shape(make, shape_text):
    with pytest.raises(MemoryError) as ei:
        make()
    assert shape_text in str(ei.value), str(ei.value)


def test_size_beyond_int64_names_the_argument_and_value():
    for make in (lambda: phalanx.zeros(2**63), lambda: phalanx.zeros((2**63, 1))):
        with pytest.raises(ValueError, match="size 9223372036854775808 does not fit in int64"):
            make()
    with pytest.raises(ValueError, match="does not fit in int64"):
        phalanx.zeros(2).view(-(2**64))


def test_expand_beyond_int64_elements_is_refused():
    with pytest.raises(ValueError, match=r"\[4294967296, 4294967296\]"):
        phalanx.zeros(1).expand(2**32, 2**32)


def test_materializing_a_huge_expanded_view_is_a_memory_error():
    big = phalanx.zeros(1).expand(2**62)  # a legal view: one stored element
    assert big.shape == (2**62,)
    with pytest.raises(MemoryError):
        big + 1
    with pytest.raises(MemoryError):
        big.contiguous()


def test_cat_and_stack_results_are_checked():
    half = phalanx.zeros(1).expand(2**62)
    with pytest.raises(ValueError, match="cat"):
        phalanx.cat([half, half])
    with pytest.raises((ValueError, MemoryError)):
        phalanx.stack([half, half, half])


def test_reshape_with_overflowing_shape_is_refused():
    with pytest.raises(ValueError):
        phalanx.zeros(0).reshape(2**32, 2**32, -1)


def test_arange_with_too_many_elements():
    with pytest.raises(MemoryError, match="arange"):
        phalanx.arange(0, 1e30)


def test_slicing_with_a_huge_step_stays_in_bounds():
    x = phalanx.arange(8.0)
    assert x[1 :: 2**62].tolist() == [1.0]
    assert x[:: 2**40].tolist() == [0.0]


def test_empty_tensors_with_huge_dimensions_still_work():
    t = phalanx.zeros(2**50, 0)
    assert t.shape == (2**50, 0) and t.numel() == 0
    assert (t + 1).shape == (2**50, 0)


def test_ordinary_sizes_unaffected():
    assert phalanx.zeros(3, 4).sum().item() == 0
    assert phalanx.ones((2, 3)).shape == (2, 3)


def test_adaptive_pool_to_an_impossible_output_names_its_shape():
    # Its window tables (one entry per output row and column) used to be built first: a bare
    # std::bad_alloc.
    x = phalanx.zeros(1, 1, 2, 2)
    with pytest.raises(MemoryError, match=r"\[1, 1, 1099511627776, 1099511627776\]"):
        phalanx.nn.functional.adaptive_avg_pool2d(x, (2**40, 2**40))
