"""The front module routes by where the arrays live."""

import numpy as np
import pytest

from numba_xent import _dispatch, caffe2, cpu


class FakeDeviceArray:
    """Anything exposing __cuda_array_interface__ counts as a device array."""

    def __init__(self, shape):
        self.shape = shape
        self.__cuda_array_interface__ = {"shape": shape, "typestr": "<f4", "version": 3,
                                         "data": (0, False)}


class FakeSimulatorArray:
    """Numba's CUDA simulator marks its device arrays with __cuda_ndarray__ only."""

    __cuda_ndarray__ = True


def test_host_arrays_and_array_likes_run_on_the_cpu():
    assert _dispatch.backend(logits=np.zeros(3), targets=[0, 1, 0], grad_out=1.5) is cpu


def test_both_device_markers_are_recognised():
    assert _dispatch.is_device_array(FakeDeviceArray((2,)))
    assert _dispatch.is_device_array(FakeSimulatorArray())
    assert not _dispatch.is_device_array(np.zeros(2))


def test_device_arrays_ask_for_the_cuda_backend():
    with pytest.raises(NotImplementedError, match="numba_xent.cuda"):
        caffe2.sigmoid_cross_entropy_with_logits(FakeDeviceArray((2, 3)), FakeDeviceArray((2, 3)))


def test_mixing_host_and_device_arrays_names_which_is_where():
    with pytest.raises(TypeError, match="'logits' is on the GPU but 'targets' is on the host"):
        caffe2.sigmoid_cross_entropy_with_logits(FakeDeviceArray((2, 3)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="'out' is on the GPU but 'logits', 'targets' are"):
        caffe2.sigmoid_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)),
                                                 out=FakeDeviceArray((2,)))


def test_python_scalars_go_with_device_arrays():
    with pytest.raises(NotImplementedError):
        _dispatch.backend(logits=FakeDeviceArray((2,)), weights=1.0, grad_out=np.float32(2))
