"""The CUDA epilogues' float64 division (numba_xent.cuda.division), against IEEE's.

``divide`` is plain Numba code: here it runs on the CPU, with the same FMAs
that it compiles to on a GPU.
"""

import numpy as np
import pytest

division = pytest.importorskip("numba_xent.cuda.division")
numba = pytest.importorskip("numba")

TINY = np.finfo(np.float64).tiny  # the smallest normal number


@numba.njit
def divide_all(a, b, out):
    for i in range(a.size):
        out[i] = division.divide(a[i], b[i])


def quotients(a, b):
    out = np.empty(a.size)
    divide_all(a, b, out)
    with np.errstate(all="ignore"):
        return out, a / b


def bits(v):
    return v.view(np.int64)


def random_bits(rng, n):
    """Doubles of every sign and exponent (their bit patterns drawn uniformly)."""
    return rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n,
                        dtype=np.int64).view(np.float64)


@pytest.mark.parametrize("kind", ["counts", "values", "bit patterns"])
def test_normal_quotients_are_ieee_to_the_bit(kind):
    rng = np.random.default_rng(17)
    n = 1_000_000
    if kind == "counts":  # a sum over its kept elements, the most common divisor
        a, b = rng.uniform(0, 1e7, n), rng.integers(1, 1 << 31, n).astype(np.float64)
    elif kind == "values":
        a, b = rng.normal(0, 1e3, n), rng.uniform(-1e3, 1e3, n)
    else:
        a, b = random_bits(rng, n), random_bits(rng, n)
    got, ieee = quotients(a, b)
    normal = np.abs(ieee) >= TINY
    assert normal.sum() > n // 3
    np.testing.assert_array_equal(bits(got[normal]), bits(ieee[normal]))
    # subnormal quotients: ldexp rounds once more, at most 1 ulp (NaN: where IEEE's is)
    rest = ~normal & ~np.isnan(ieee)
    assert np.max(np.abs(bits(got[rest]) - bits(ieee[rest])), initial=0) <= 1
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ieee))


def test_special_values_are_ieee():
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -3.0, 5e-324, -2.5e-310,
                        np.finfo(np.float64).max, -np.finfo(np.float64).max, TINY])
    a, b = (v.ravel().copy() for v in np.meshgrid(special, special))
    got, ieee = quotients(a, b)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ieee))
    both = ~np.isnan(ieee)
    exact = both & ((np.abs(ieee) >= TINY) | (ieee == 0) | np.isinf(ieee))
    np.testing.assert_array_equal(bits(got[exact]), bits(ieee[exact]))  # signs of 0 and inf
    assert np.max(np.abs(bits(got[both]) - bits(ieee[both]))) <= 1


def test_the_reciprocal_needs_its_newton_steps():
    """The guess alone is 4 bits good; the quotient is exact only after all the steps."""
    m = np.linspace(0.5, 1.0, 10_001)[:-1]
    guess = division._GUESS_A + division._GUESS_B * m
    assert 1 / 17 * 0.99 < np.max(np.abs(guess * m - 1)) <= 1 / 17 * 1.0000001
    got = np.array([division._reciprocal(v) for v in m])
    assert np.max(np.abs(got * m - 1)) < 2.3e-16
