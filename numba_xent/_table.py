"""The table of the public functions, from which numba_xent.dask and numba_xent.torch are made.

Each :class:`Entry` names a public function and how it calls its front end's
planner (``_plan``): the keywords it fixes and the arguments it renames.  The
Dask and PyTorch versions of a function take its signature and hand the bound
arguments to the same planner, with their own choice of backend: their
signatures, checks and error messages are the NumPy front end's by construction.
"""

import functools
import inspect
from typing import NamedTuple

from . import asymmetric, caffe2, chainer, focal, general, paddle, tf

MODULES = {"caffe2": caffe2, "chainer": chainer, "paddle": paddle, "tf": tf, "": general}
# The general API (front ""), one module per loss.
_GENERAL = {name: module for module in (general, focal, asymmetric)
            for name, value in vars(module).items()
            if callable(value) and getattr(value, "__module__", None) == module.__name__}


def module(front, name):
    """The module that defines ``numba_xent.<front>.<name>``."""
    return _GENERAL[name] if front == "" else MODULES[front]


class Entry(NamedTuple):
    front: str  # the module: "caffe2", "chainer", "paddle", "tf", or "" for the general API
    name: str
    fixed: dict = {}  # keywords the function passes its planner
    rename: dict = {}  # public argument -> planner argument

    @property
    def function(self):
        return getattr(module(self.front, self.name), self.name)

    @property
    def signature(self):
        return _signature(self.front, self.name)

    def signature_less(self, drop):
        """The function's signature without the parameters named in ``drop``."""
        return _signature(self.front, self.name, tuple(drop))

    def bind(self, args, kwargs, drop=()):
        """The function's arguments by name, defaults filled in, as ``signature.bind``
        would give them (its TypeError for a wrong call) but without its cost;
        ``drop``: parameters the caller's version does not have."""
        positional, defaults, names = _binding(self.front, self.name, tuple(drop))
        arguments = dict(defaults)
        if len(args) <= len(positional) and names.issuperset(kwargs) and \
                not set(positional[:len(args)]) & kwargs.keys():
            arguments.update(zip(positional, args))
            arguments.update(kwargs)
            if len(arguments) == len(names):
                return arguments
        bound = self.signature_less(drop).bind(*args, **kwargs)  # the TypeError that says why
        bound.apply_defaults()
        return bound.arguments

    def binding(self, drop=()):
        """``(positional names, defaults, all names)`` of the signature less ``drop``."""
        return _binding(self.front, self.name, tuple(drop))

    @property
    def is_loss(self):
        """The loss alone (no gradient argument, no gradient returned)."""
        return not {"want_loss", "want_grad"} & set(self.fixed)

    def plan(self, pick, arguments):
        """``(backend, Plan)`` for the function's bound ``arguments`` (a dict), via ``pick``."""
        kwargs = {self.rename.get(k, k): v for k, v in arguments.items()}
        return module(self.front, self.name)._plan(pick, **kwargs, **self.fixed)


@functools.cache
def _signature(front, name, drop=()):
    signature = inspect.signature(getattr(module(front, name), name))
    return signature.replace(parameters=[p for p in signature.parameters.values()
                                         if p.name not in drop])


@functools.cache
def _binding(front, name, drop):
    """(positional names, defaults, all names) of a signature less ``drop``."""
    params = list(_signature(front, name, drop).parameters.values())
    positional = [p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
    defaults = {p.name: p.default for p in params if p.default is not p.empty}
    return positional, defaults, {p.name for p in params}


_GRAD = {"want_loss": False}
_BOTH = {"want_grad": True}

TABLE = (
    Entry("caffe2", "sigmoid_cross_entropy_with_logits"),
    Entry("caffe2", "sigmoid_cross_entropy_with_logits_grad", _GRAD, {"out": "grad"}),
    Entry("caffe2", "sigmoid_cross_entropy_with_logits_and_grad", _BOTH),
    Entry("caffe2", "weighted_sigmoid_cross_entropy_with_logits", {"weighted": True}),
    Entry("caffe2", "weighted_sigmoid_cross_entropy_with_logits_grad",
          {"weighted": True, **_GRAD}, {"out": "grad"}),
    Entry("caffe2", "weighted_sigmoid_cross_entropy_with_logits_and_grad",
          {"weighted": True, **_BOTH}),
    Entry("chainer", "sigmoid_cross_entropy"),
    Entry("chainer", "sigmoid_cross_entropy_grad", _GRAD),
    Entry("paddle", "sigmoid_cross_entropy_with_logits"),
    Entry("paddle", "sigmoid_cross_entropy_with_logits_grad", _GRAD),
    Entry("tf", "sigmoid_cross_entropy"),
    Entry("tf", "sigmoid_cross_entropy_grad", _GRAD),
    Entry("", "sigmoid_cross_entropy"),
    Entry("", "sigmoid_cross_entropy_grad", {**_GRAD, **_BOTH}, {"out": "grad"}),
    Entry("", "sigmoid_cross_entropy_and_grad", _BOTH),
    Entry("", "sigmoid_focal_loss"),
    Entry("", "sigmoid_focal_loss_grad", {**_GRAD, **_BOTH}, {"out": "grad"}),
    Entry("", "sigmoid_focal_loss_and_grad", _BOTH),
    Entry("", "asymmetric_loss"),
    Entry("", "asymmetric_loss_grad", {**_GRAD, **_BOTH}, {"out": "grad"}),
    Entry("", "asymmetric_loss_and_grad", _BOTH),
)
