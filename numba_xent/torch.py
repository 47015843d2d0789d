"""PyTorch autograd for every numba_xent loss (needs the optional ``torch``).

Every loss function of the table of public functions (``numba_xent._table``)
has a version here, with its signature less ``out``: its front end's plan runs
through one ``torch.autograd.Function`` whose forward asks the fused kernel for
the loss and, when the logits require a gradient, ``d(loss)/d(logits)`` for a
unit upstream gradient, in the same single pass; ``backward`` only scales that
by ``grad_output`` (each logit feeds exactly one loss element, whatever the
reduction) and reads no input again.
CPU tensors reach the kernels through NumPy, CUDA tensors through
``__cuda_array_interface__``; both without a copy.  float16 and bfloat16 tensors
are computed in float32 and give results of their dtype (see ``numba_xent._half``).
Only the logits are differentiable (as in chainer); targets and weights are treated as
constants.

Under ``torch.compile`` each loss is the registered operator ``numba_xent::<name>``
(``fn.operator``), which Dynamo puts in its graph whole; eager calls go through the
``autograd.Function`` instead, which costs less per call.  Both run the same plan.

    import numba_xent.torch as nxt
    loss_fn = nxt.SigmoidCrossEntropyLoss(pos_weight=torch.ones(10))
    loss = loss_fn(logits, targets)      # like torch.nn.BCEWithLogitsLoss
    loss.backward()
"""


import json

import numpy as np
import torch

from . import tf
from ._dispatch import backend
from ._runner import run
from ._table import TABLE


def _array(t):
    """A tensor as the array numba_xent's backends take, without a copy (a CPU
    bfloat16 tensor: an ``ml_dtypes.bfloat16`` view of its memory, which NumPy
    cannot otherwise be given)."""
    if not isinstance(t, torch.Tensor):
        return t
    t = t.detach()
    if not t.is_cpu:
        return t
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(_bfloat16())
    return t.numpy()


def _tensor(a):
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _bfloat16():
    import ml_dtypes  # in the torch extra: NumPy's bfloat16, for bfloat16 tensors only

    return np.dtype(ml_dtypes.bfloat16)


def _loss_and_grad(entry, arguments, want_grad):
    """The loss and (if ``want_grad``) its gradient for a unit upstream gradient, as
    tensors, from one fused pass; else the loss alone."""
    be, plan = entry.plan(backend, {k: _array(v) for k, v in arguments.items()})
    if not want_grad:
        return _tensor(run(be, plan))
    loss, grad = run(be, plan._replace(g=1.0))
    return _tensor(loss), _tensor(grad)


def _chain(grad, grad_output):
    """``d(loss)/d(logits)`` for ``grad_output``: each logit feeds one loss element."""
    if grad_output.dim():  # per-row losses: one upstream value per row
        while grad_output.dim() < grad.dim():
            grad_output = grad_output.unsqueeze(-1)
    return grad * grad_output


class _Loss(torch.autograd.Function):
    """Any loss of the table, in eager mode: the loss and, if wanted, its gradient in
    one pass (cheaper per call than the registered operator below)."""

    @staticmethod
    def forward(ctx, logits, entry, arguments):
        if not ctx.needs_input_grad[0]:
            return _loss_and_grad(entry, arguments, False)
        loss, grad = _loss_and_grad(entry, arguments, True)
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return _chain(grad, grad_output), None, None


# -- the same losses as PyTorch operators, for torch.compile -------------------------
#
# ``numba_xent::<front>_<name>(Tensor logits, Tensor?[] tensors, str options, bool
# want_grad) -> (Tensor loss, Tensor grad)``: one schema for every loss of the table.
# ``tensors`` are the other tensor arguments and ``options`` the rest as JSON
# (their names included), constants to the compiler; ``grad`` is the gradient for a
# unit upstream gradient, or an empty tensor where ``want_grad`` is false.

_SCHEMA = "(Tensor logits, Tensor?[] tensors, str options, bool want_grad) -> (Tensor, Tensor)"


def _arguments(logits_name, logits, tensors, options):
    spec = json.loads(options)
    return {**spec["options"], **dict(zip(spec["tensors"], tensors, strict=True)),
            logits_name: logits}


def _operator(entry, logits_name):
    name = f"numba_xent::{entry.front}_{entry.name}" if entry.front else \
        f"numba_xent::{entry.name}"

    def compute(logits, tensors, options, want_grad):
        result = _loss_and_grad(entry, _arguments(logits_name, logits, tensors, options),
                                want_grad)
        return result if want_grad else (result, logits.new_empty(0))

    op = torch.library.custom_op(name, compute, mutates_args=(), schema=_SCHEMA)

    @op.register_fake
    def _(logits, tensors, options, want_grad):
        # The loss's shape is a prefix of the logits' (elementwise, per row or whole):
        # its rank is the rank of the loss of size-1 stand-ins of every tensor.
        ones = {k: _stand_in(v) for k, v in
                _arguments(logits_name, logits, tensors, options).items()}
        rank = np.ndim(_loss_and_grad(entry, ones, False))
        loss = logits.new_empty(logits.shape[:rank])
        return loss, logits.new_empty(logits.shape if want_grad else (0,))

    def setup_context(ctx, inputs, output):
        logits, tensors, options, want_grad = inputs
        ctx.options, ctx.want_grad, ctx.constants = options, want_grad, len(tensors)
        # Called without the gradient (nothing required one then): backward makes it.
        ctx.save_for_backward(*((output[1],) if want_grad else (logits, *tensors)))

    def backward(ctx, grad_output, _):
        if ctx.want_grad:
            (grad,) = ctx.saved_tensors
        else:
            logits, *tensors = ctx.saved_tensors
            grad = op(logits, tensors, ctx.options, True)[1]
        # only the logits are differentiable
        return _chain(grad, grad_output), [None] * ctx.constants, None, None

    op.register_autograd(backward, setup_context=setup_context)
    return op


def _stand_in(v):
    """A size-1 NumPy array of a tensor's rank and dtype (numbers as they are)."""
    if not isinstance(v, torch.Tensor):
        return v
    dtype = _bfloat16() if v.dtype == torch.bfloat16 else _NUMPY_DTYPES[v.dtype]
    return np.ones((1,) * v.dim(), dtype)


# Made here, outside the fake mode in which _stand_in runs (no .numpy() of fake tensors).
_NUMPY_DTYPES = {t: torch.empty(0, dtype=t).numpy().dtype for t in (
    torch.float16, torch.float32, torch.float64, torch.bool, torch.uint8, torch.int8,
    torch.int16, torch.int32, torch.int64)}


def _compiled(op, logits_name, binding, args, kwargs):
    """The loss through the registered operator: what torch.compile traces, so plain
    Python (the binding without ``inspect``, the options' JSON a constant)."""
    positional, defaults, names = binding
    if len(args) > len(positional) or not names.issuperset(kwargs):
        raise TypeError(f"{op._qualname}: too many positional arguments or an unknown "
                        f"keyword among {sorted(kwargs)}")
    arguments = dict(defaults)
    arguments.update(zip(positional, args))
    arguments.update(kwargs)
    tensors = {k: v for k, v in arguments.items() if isinstance(v, torch.Tensor)}
    x = tensors.pop(logits_name)
    options = _options(tuple(tensors), tuple((k, v) for k, v in arguments.items()
                                             if k not in tensors and k != logits_name))
    want_grad = x.requires_grad and torch.is_grad_enabled()
    loss, _ = op(x, list(tensors.values()), options, want_grad)
    return loss


@torch.compiler.assume_constant_result
def _options(tensor_names, options):
    return json.dumps({"tensors": list(tensor_names), "options": dict(options)})


_BUFFERS = ("out", "grad")  # the parameters the autograd versions do not have


def _autograd(front, name):
    """The autograd version of ``numba_xent.<front>.<name>`` (a loss of the table)."""
    (entry,) = [e for e in TABLE if (e.front, e.name) == (front, name) and e.is_loss]
    signature = entry.signature_less(_BUFFERS)
    logits = "logits" if "logits" in signature.parameters else "x"

    op, binding = _operator(entry, logits), entry.binding(_BUFFERS)

    def fn(*args, **kwargs):
        if torch.compiler.is_compiling():
            return _compiled(op, logits, binding, args, kwargs)
        arguments = entry.bind(args, kwargs, drop=_BUFFERS)
        x = arguments[logits]
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{logits} must be a torch.Tensor, got {type(x).__name__}")
        return _Loss.apply(x, entry, arguments)

    fn.__name__ = fn.__qualname__ = f"{front}_{name}" if front else name
    fn.__signature__ = signature
    fn.__doc__ = (f"``numba_xent.{front + '.' if front else ''}{name}`` with autograd "
                  f"(under torch.compile: the operator ``{op._qualname}``).")
    fn.operator = op
    return fn


sigmoid_cross_entropy = _autograd("", "sigmoid_cross_entropy")
sigmoid_focal_loss = _autograd("", "sigmoid_focal_loss")
asymmetric_loss = _autograd("", "asymmetric_loss")
caffe2_sigmoid_cross_entropy_with_logits = _autograd(
    "caffe2", "sigmoid_cross_entropy_with_logits")
caffe2_weighted_sigmoid_cross_entropy_with_logits = _autograd(
    "caffe2", "weighted_sigmoid_cross_entropy_with_logits")
chainer_sigmoid_cross_entropy = _autograd("chainer", "sigmoid_cross_entropy")
paddle_sigmoid_cross_entropy_with_logits = _autograd(
    "paddle", "sigmoid_cross_entropy_with_logits")
tf_sigmoid_cross_entropy = _autograd("tf", "sigmoid_cross_entropy")


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


class SigmoidFocalLoss(torch.nn.Module):
    """``torchvision.ops.sigmoid_focal_loss`` as a module (its argument names), with
    ``weight``, ``pos_weight``, ``label_smoothing`` and ``ignore_index`` as in
    :class:`SigmoidCrossEntropyLoss`.  torchvision's function defaults to
    ``reduction="none"``; this module, like ``BCEWithLogitsLoss``, to ``"mean"``."""

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean", weight=None, pos_weight=None,
                 label_smoothing=0.0, ignore_index=None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction
        self.label_smoothing, self.ignore_index = label_smoothing, ignore_index

    def forward(self, inputs, targets):
        return sigmoid_focal_loss(inputs, targets, self.weight, alpha=self.alpha,
                                  gamma=self.gamma, pos_weight=self.pos_weight,
                                  label_smoothing=self.label_smoothing,
                                  ignore_index=self.ignore_index, reduction=self.reduction)


class AsymmetricLoss(torch.nn.Module):
    """The reference ``AsymmetricLoss`` (its argument names; the gradient through the
    focusing weight).  The reference returns ``-loss.sum()``: ``reduction="sum"``."""

    def __init__(self, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, eps=1e-8, reduction="mean"):
        super().__init__()
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps
        self.reduction = reduction

    def forward(self, x, y):
        return asymmetric_loss(x, y, gamma_neg=self.gamma_neg, gamma_pos=self.gamma_pos,
                               clip=self.clip, eps=self.eps, reduction=self.reduction)


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
