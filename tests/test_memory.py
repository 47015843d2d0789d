"""No function keeps a reference to its inputs or outputs after returning.

Peak memory per function is measured by scripts/memory.py (a child process per
function; too slow and too Linux-specific for the test run).
"""

import gc
import weakref

import numpy as np
import pytest

from test_hostile import VALID


@pytest.mark.parametrize("fn", list(VALID), ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_inputs_and_results_are_released(fn):
    kwargs = {k: np.array(v, copy=True) for k, v in VALID[fn].items()}
    refs = [weakref.ref(a) for a in kwargs.values()]
    result = fn(**kwargs)
    refs += [weakref.ref(a) for a in (result if isinstance(result, tuple) else (result,))]
    del kwargs, result
    gc.collect()
    assert all(ref() is None for ref in refs)
