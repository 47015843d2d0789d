"""The backend interface (numba_xent._backend.Backend): one battery, run on both backends.

The CPU backend is the module ``numba_xent.cpu``; the CUDA one is
``numba_xent.cuda.Backend``, under Numba's simulator where there is no GPU
(test_cuda switches it on before ``numba.cuda`` is first imported).
"""

import inspect

import numpy as np
import pytest
import test_cuda as gpu

from numba_xent import _backend, _core, cpu
from numba_xent._formulas import PLAIN


@pytest.fixture(params=["cpu", "cuda"])
def side(request):
    """(backend, host array -> backend array, backend array -> host array)."""
    if request.param == "cpu":
        return cpu, np.asarray, np.asarray
    if not gpu.USABLE:
        pytest.skip(gpu.REASON)
    return gpu.backend.bind({}), gpu.dev, gpu.host


OPERATIONS = [name for name, _ in inspect.getmembers(_backend.Backend, inspect.isfunction)
              if not name.startswith("_")]


def parameters(fn):
    return [p.name for p in inspect.signature(fn).parameters.values() if p.name != "self"]


def test_both_backends_implement_every_operation_with_its_parameters(side):
    be, _, _ = side
    assert len(OPERATIONS) == 20
    assert isinstance(be, _backend.Backend)
    for name in OPERATIONS:
        assert parameters(getattr(be, name)) == parameters(getattr(_backend.Backend, name)), name
    assert type(be.replays) is bool
    if be.replays:  # what numba_xent._replay uses besides the operations
        assert callable(be.kernel_call) and be.kernel_tasks() >= 1
        assert parameters(be.kernel_call) == parameters(be.launch)
        assert isinstance(be.ROW_SUMS, int)


def test_arrays_are_made_filled_copied_and_cast(side):
    be, dev, host = side
    z = be.zeros((2, 3))
    assert host(z).dtype == np.float64 and not host(z).any()
    be.fill(z, 1.5)
    assert (host(z) == 1.5).all()
    target = be.empty((3, 2), np.float32)
    be.copy_into(target, be.asarray(dev(np.arange(6.0).reshape(2, 3))))
    np.testing.assert_array_equal(host(target), np.arange(6, dtype=np.float32).reshape(3, 2))
    assert host(be.cast(be.asarray(dev(np.array([1.25, 2.5]))), np.float32)).dtype == np.float32
    assert host(be.asarray(2.5)).shape == () and host(be.asarray(2.5)) == 2.5


def test_views_reshape_and_broadcast(side):
    be, dev, host = side
    a = be.asarray(dev(np.arange(12.0).reshape(3, 4)))
    np.testing.assert_array_equal(host(be.reshape_view(a, (4, 3))),
                                  np.arange(12.0).reshape(4, 3))
    column = be.asarray(dev(np.arange(12.0).reshape(3, 4)))
    assert be.same_view(column, column) and be.overlap(column, column)
    other = be.asarray(dev(np.zeros(12)))
    assert not be.overlap(a, other) and not be.same_view(a, other)
    np.testing.assert_array_equal(host(be.reshape(a, (12,))), np.arange(12.0))
    np.testing.assert_array_equal(host(be.broadcast_to(be.asarray(2.0), (2, 2))),
                                  np.full((2, 2), 2.0))


def test_epilogue_arithmetic(side):
    be, dev, host = side
    a = be.asarray(dev(np.array([[1.0, 0.0, -2.0], [4.0, 0.0, 0.5]])))
    assert host(be.total(a)) == 3.5 and host(be.count_nonzero(a)) == 4
    num, den = dev(np.array([1.0, -1.0, 0.0, 3.0])), dev(np.array([0.0, 0.0, 0.0, 0.5]))
    with np.errstate(divide="ignore", invalid="ignore"):
        np.testing.assert_array_equal(host(be.binary("div", num, den)),
                                      [np.inf, -np.inf, np.nan, 6.0])
    np.testing.assert_array_equal(host(be.binary("safe_div", num, den)), [0, 0, 0, 6.0])
    np.testing.assert_array_equal(host(be.binary("div_at_least_one", num, den)), [1, -1, 0, 3])
    np.testing.assert_array_equal(host(be.binary("mul", num, 2.0)), [2, -2, 0, 6])
    assert host(be.binary("safe_div", 1.0, be.total(a))) == 1 / 3.5


def test_buffers_are_checked(side):
    be, dev, _ = side
    with pytest.raises(TypeError, match="out must be"):
        be.buffer("out", [1.0, 2.0])
    assert be.buffer("out", dev(np.zeros(3))) is not None


def test_the_kernel_launch_gives_the_same_results_on_both(side):
    """evaluate() drives launch() and the placeholders and scales alike on both backends."""
    be, dev, host = side
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 7)).astype(np.float32) * 4
    z = rng.integers(-1, 2, size=(5, 7)).astype(np.float32)
    rows, elem = be.empty((5,), np.float64), be.empty((5, 7), np.float32)
    counts = _core.evaluate(be, be.asarray(dev(x)), be.asarray(dev(z)), variant=PLAIN,
                            ignore_value=-1, loss_scale=0.5, rows_out=rows, elem_out=elem,
                            count=True)
    expected_rows = np.empty(5)
    expected_elem = np.empty((5, 7), np.float32)
    expected_counts = _core.evaluate(cpu, x, z, ignore_value=-1, loss_scale=0.5,
                                     rows_out=expected_rows, elem_out=expected_elem, count=True)
    np.testing.assert_array_equal(host(counts), expected_counts)
    np.testing.assert_array_equal(host(counts), (z != -1).sum(axis=1))
    np.testing.assert_allclose(host(rows), expected_rows, rtol=1e-6)
    np.testing.assert_allclose(host(elem), expected_elem, rtol=1e-6)
