"""The front module routes by where the arrays live."""

import types

import numpy as np
import pytest

from numba_xent import _dispatch, caffe2, cpu


class FakeDeviceArray:
    """Anything exposing __cuda_array_interface__ counts as a device array."""

    def __init__(self, shape, device=None):
        self.shape = shape
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f4", "version": 3,
                                         "data": (0, False)}
        if device is not None:
            self.device = types.SimpleNamespace(id=device)  # as CuPy tells its GPU


class FakeGradTensor:
    """A PyTorch CUDA tensor that requires grad: its interface raises, is_cuda tells."""

    is_cuda = True

    @property
    def __cuda_array_interface__(self):
        raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad")


class FakeSimulatorArray:
    """Numba's CUDA simulator marks its device arrays with __cuda_ndarray__ only."""

    __cuda_ndarray__ = True


def test_host_arrays_and_array_likes_run_on_the_cpu():
    assert _dispatch.backend(logits=np.zeros(3), targets=[0, 1, 0], grad_out=1.5) is cpu


def test_both_device_markers_are_recognised():
    assert _dispatch.is_device_array(FakeDeviceArray((2,)))
    assert _dispatch.is_device_array(FakeSimulatorArray())
    assert _dispatch.is_device_array(FakeGradTensor())
    assert not _dispatch.is_device_array(np.zeros(2))


@pytest.fixture
def cuda_bind(monkeypatch):
    """numba_xent.cuda.bind recording what it is given instead of binding a GPU."""
    cuda = pytest.importorskip("numba_xent.cuda", reason="numba-cuda is not installed")

    calls = []
    monkeypatch.setattr(cuda, "bind", lambda named: calls.append(named) or "cuda backend")
    return calls


def test_device_arrays_run_on_the_cuda_backend(cuda_bind):
    x, z = FakeDeviceArray((2, 3)), FakeDeviceArray((2, 3))
    assert _dispatch.backend(logits=x, targets=z, out=None) == "cuda backend"
    assert cuda_bind == [{"logits": x, "targets": z, "out": None}]


def test_device_arrays_on_different_gpus_are_refused_by_name():
    pytest.importorskip("numba_xent.cuda", reason="numba-cuda is not installed")
    with pytest.raises(ValueError, match="'logits', 'weights' are on GPU 0 but 'targets' is "
                                         "on GPU 1: pass all arrays on the same device"):
        caffe2.weighted_sigmoid_cross_entropy_with_logits(
            FakeDeviceArray((2, 3), 0), FakeDeviceArray((2, 3), 1), FakeDeviceArray((2, 3), 0))


def test_mixing_host_and_device_arrays_names_which_is_where():
    with pytest.raises(TypeError, match="'logits' is on the GPU but 'targets' is on the host"):
        caffe2.sigmoid_cross_entropy_with_logits(FakeDeviceArray((2, 3)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="'out' is on the GPU but 'logits', 'targets' are"):
        caffe2.sigmoid_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)),
                                                 out=FakeDeviceArray((2,)))


def test_python_scalars_go_with_device_arrays(cuda_bind):
    assert _dispatch.backend(logits=FakeDeviceArray((2,)), weights=1.0,
                             grad_out=np.float32(2)) == "cuda backend"
