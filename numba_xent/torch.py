"""PyTorch autograd for every numba_xent loss (needs the optional ``torch``).

Each loss is a ``torch.autograd.Function`` whose forward runs the fused kernel:
it returns the loss and keeps ``d(loss)/d(logits)`` for a unit upstream
gradient, so ``backward`` only scales that by ``grad_output`` (each logit feeds
exactly one loss element, whatever the reduction) and reads no input again.
CPU tensors reach the kernels through NumPy, CUDA tensors through
``__cuda_array_interface__``; both without a copy.  Only the logits are
differentiable (as in chainer); targets and weights are treated as constants.

    import numba_xent.torch as nxt
    loss_fn = nxt.SigmoidCrossEntropyLoss(pos_weight=torch.ones(10))
    loss = loss_fn(logits, targets)      # like torch.nn.BCEWithLogitsLoss
    loss.backward()
"""

import numpy as np
import torch

from . import caffe2, chainer, general, paddle, tf


def _array(t):
    """A tensor as the array numba_xent's backends take, without a copy."""
    if not isinstance(t, torch.Tensor):
        return t
    t = t.detach()
    return t.numpy() if t.device.type == "cpu" else t


def _tensor(a):
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))


class _FusedLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, loss_and_grad):
        loss, grad = loss_and_grad(_array(logits))
        loss, grad = _tensor(loss), _tensor(grad)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        while grad_output.dim() < grad.dim():  # per-row or scalar losses
            grad_output = grad_output.unsqueeze(-1)
        return grad * grad_output, None


def _apply(logits, loss_and_grad):
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    return _FusedLoss.apply(logits, loss_and_grad)


def sigmoid_cross_entropy(logits, targets, weight=None, *, pos_weight=None,
                          label_smoothing=0.0, ignore_index=None, reduction="mean"):
    """:func:`numba_xent.sigmoid_cross_entropy` (torch's BCE-with-logits semantics)."""
    options = dict(pos_weight=_array(pos_weight), label_smoothing=label_smoothing,
                   ignore_index=ignore_index, reduction=reduction)
    return _apply(logits, lambda x: general.sigmoid_cross_entropy_and_grad(
        x, _array(targets), _array(weight), **options))


def caffe2_sigmoid_cross_entropy_with_logits(logits, targets, *, log_d_trick=False,
                                             unjoined_lr_loss=False):
    """Caffe2's per-row loss, shape ``logits.shape[:-1]``."""
    return _apply(logits, lambda x: caffe2.sigmoid_cross_entropy_with_logits_and_grad(
        x, _array(targets), log_d_trick=log_d_trick, unjoined_lr_loss=unjoined_lr_loss))


def caffe2_weighted_sigmoid_cross_entropy_with_logits(logits, targets, weights):
    """Caffe2's weighted per-row loss, shape ``logits.shape[:-1]``."""
    return _apply(logits, lambda x: caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(
        x, _array(targets), _array(weights)))


def _ones_like_loss(loss):
    return np.ones(np.shape(loss), loss.dtype) if isinstance(loss, np.ndarray) else 1.0


def chainer_sigmoid_cross_entropy(x, t, normalize=True, reduce="mean"):
    """chainer's loss (ignore label -1).  Its gradient takes a second pass over x and t."""
    def loss_and_grad(x):
        loss = chainer.sigmoid_cross_entropy(x, _array(t), normalize, reduce)
        return loss, chainer.sigmoid_cross_entropy_grad(x, _array(t), _ones_like_loss(loss),
                                                        normalize, reduce)
    return _apply(x, loss_and_grad)


def paddle_sigmoid_cross_entropy_with_logits(x, label, ignore_index=-100, normalize=False):
    """paddle's elementwise loss.  Its gradient takes a second pass over x and label."""
    def loss_and_grad(x):
        loss = paddle.sigmoid_cross_entropy_with_logits(x, _array(label), ignore_index,
                                                        normalize)
        return loss, paddle.sigmoid_cross_entropy_with_logits_grad(
            x, _array(label), _ones_like_loss(loss), ignore_index, normalize)
    return _apply(x, loss_and_grad)


def tf_sigmoid_cross_entropy(multi_class_labels, logits, weights=1.0, label_smoothing=0,
                             reduction=tf.Reduction.SUM_BY_NONZERO_WEIGHTS):
    """TensorFlow v1's loss.  Its gradient takes a second pass over the inputs."""
    labels, weights = _array(multi_class_labels), _array(weights)

    def loss_and_grad(x):
        loss = tf.sigmoid_cross_entropy(labels, x, weights, label_smoothing, reduction)
        return loss, tf.sigmoid_cross_entropy_grad(labels, x, _ones_like_loss(loss), weights,
                                                   label_smoothing, reduction)
    return _apply(logits, loss_and_grad)


class SigmoidCrossEntropyLoss(torch.nn.Module):
    """Like ``torch.nn.BCEWithLogitsLoss``, plus ``label_smoothing`` and ``ignore_index``."""

    def __init__(self, weight=None, reduction="mean", pos_weight=None, label_smoothing=0.0,
                 ignore_index=None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction, self.label_smoothing, self.ignore_index = (
            reduction, label_smoothing, ignore_index)

    def forward(self, input, target):
        return sigmoid_cross_entropy(input, target, self.weight, pos_weight=self.pos_weight,
                                     label_smoothing=self.label_smoothing,
                                     ignore_index=self.ignore_index, reduction=self.reduction)


class Caffe2SigmoidCrossEntropyWithLogits(torch.nn.Module):
    def __init__(self, log_d_trick=False, unjoined_lr_loss=False):
        super().__init__()
        self.log_d_trick, self.unjoined_lr_loss = log_d_trick, unjoined_lr_loss

    def forward(self, logits, targets):
        return caffe2_sigmoid_cross_entropy_with_logits(
            logits, targets, log_d_trick=self.log_d_trick,
            unjoined_lr_loss=self.unjoined_lr_loss)


class Caffe2WeightedSigmoidCrossEntropyWithLogits(torch.nn.Module):
    def forward(self, logits, targets, weights):
        return caffe2_weighted_sigmoid_cross_entropy_with_logits(logits, targets, weights)


class ChainerSigmoidCrossEntropy(torch.nn.Module):
    def __init__(self, normalize=True, reduce="mean"):
        super().__init__()
        self.normalize, self.reduce = normalize, reduce

    def forward(self, x, t):
        return chainer_sigmoid_cross_entropy(x, t, self.normalize, self.reduce)


class PaddleSigmoidCrossEntropyWithLogits(torch.nn.Module):
    def __init__(self, ignore_index=-100, normalize=False):
        super().__init__()
        self.ignore_index, self.normalize = ignore_index, normalize

    def forward(self, x, label):
        return paddle_sigmoid_cross_entropy_with_logits(x, label, self.ignore_index,
                                                        self.normalize)


class TFSigmoidCrossEntropy(torch.nn.Module):
    def __init__(self, label_smoothing=0, reduction=tf.Reduction.SUM_BY_NONZERO_WEIGHTS):
        super().__init__()
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, multi_class_labels, logits, weights=1.0):
        return tf_sigmoid_cross_entropy(multi_class_labels, logits, weights,
                                        self.label_smoothing, self.reduction)
