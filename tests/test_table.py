"""The table of public functions (numba_xent._table): complete, and each entry calls its planner.

numba_xent.dask and numba_xent.torch are made from it, so an entry that is missing,
or that binds its planner wrongly, would be missing or wrong there.
"""

import inspect

import numpy as np
import pytest

import numba_xent
from numba_xent import _dispatch, _runner, _table

PUBLIC = {
    "caffe2": ["sigmoid_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits_grad",
               "sigmoid_cross_entropy_with_logits_and_grad",
               "weighted_sigmoid_cross_entropy_with_logits",
               "weighted_sigmoid_cross_entropy_with_logits_grad",
               "weighted_sigmoid_cross_entropy_with_logits_and_grad"],
    "chainer": ["sigmoid_cross_entropy", "sigmoid_cross_entropy_grad"],
    "paddle": ["sigmoid_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits_grad"],
    "tf": ["sigmoid_cross_entropy", "sigmoid_cross_entropy_grad"],
    "": ["sigmoid_cross_entropy", "sigmoid_cross_entropy_grad", "sigmoid_cross_entropy_and_grad",
         "sigmoid_focal_loss", "sigmoid_focal_loss_grad", "sigmoid_focal_loss_and_grad",
         "asymmetric_loss", "asymmetric_loss_grad", "asymmetric_loss_and_grad"],
}
# The general API ("") is one module per loss.
GENERAL = ("general", "focal", "asymmetric")


def test_the_table_lists_every_public_function_once():
    listed = sorted((e.front, e.name) for e in _table.TABLE)
    assert listed == sorted((front, name) for front, names in PUBLIC.items() for name in names)
    for front, names in PUBLIC.items():
        modules = [getattr(numba_xent, m) for m in GENERAL] if front == "" else \
            [_table.MODULES[front]]
        public = {k for module in modules for k, v in vars(module).items()
                  if inspect.isfunction(v) and not k.startswith("_") and v.__module__ ==
                  module.__name__}
        assert public == set(names), front
        for name in names:
            assert getattr(numba_xent if front == "" else _table.MODULES[front], name) is \
                _table.module(front, name).__dict__[name]


@pytest.mark.parametrize("entry", _table.TABLE, ids=lambda e: f"{e.front}.{e.name}")
def test_each_entry_binds_its_planner(entry):
    planner = inspect.signature(_table.module(entry.front, entry.name)._plan)
    arguments = {entry.rename.get(k, k): p.default for k, p in entry.signature.parameters.items()}
    planner.bind(_dispatch.backend, **arguments, **entry.fixed)  # TypeError if it does not


def sample_arguments(entry, x, z):
    """Arguments for a call of ``entry`` on logits x (4, 3) and targets z."""
    lead = np.full(x.shape[:-1], 0.5, x.dtype)
    values = {"logits": x, "x": x, "targets": z, "label": z, "multi_class_labels": z,
              "t": z.astype(np.int32), "weights": z + 0.5, "grad_out": lead, "gy": np.float32(2),
              "dout": x, "grad_loss": np.float32(2), "grad_output": None}
    bound = entry.signature.bind_partial(**{k: v for k, v in values.items()
                                            if k in entry.signature.parameters})
    bound.apply_defaults()
    return bound.arguments


@pytest.mark.parametrize("entry", _table.TABLE, ids=lambda e: f"{e.front}.{e.name}")
def test_each_entry_runs_as_its_public_function(entry):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    z = (rng.uniform(size=(4, 3)) < 0.5).astype(np.float32)
    arguments = sample_arguments(entry, x, z)
    expected = entry.function(**arguments)
    got = _runner.run(*entry.plan(_dispatch.backend, arguments))
    for e, g in zip(*(r if isinstance(r, tuple) else (r,) for r in (expected, got)),
                    strict=True):
        np.testing.assert_array_equal(g, e)
