"""Running the parallel kernels safely from Python threads and forked processes.

Numba picks its threading layer at the first parallel call: ``tbb`` where the
``tbb`` package is installed, else ``omp``, else ``workqueue`` (or whatever
``NUMBA_THREADING_LAYER`` forces).  ``tbb`` and ``omp`` take concurrent calls
from many Python threads; ``workqueue`` aborts the process when two threads
enter a parallel region at once, so under it numba_xent serialises its own
kernel launches with a lock (correct results, no parallelism between threads).

GNU OpenMP cannot be used in a child forked after the parent started its
threads (Numba terminates such a child).  A forked child therefore runs the
serial build of each kernel under ``omp``; ``tbb`` and ``workqueue`` children
run the parallel one.
"""

import os
import threading

import numba

_lock = threading.Lock()
_layer = None  # the threading layer, known after the first parallel launch
_pid = None  # the process that made that launch


def launch(kernel_for, *args):
    """Run ``kernel_for(parallel)(*args)`` the safe way for this process."""
    global _layer, _pid
    if _layer is None:
        with _lock:
            kernel_for(True)(*args)
            if _layer is None:
                _layer, _pid = numba.threading_layer(), os.getpid()
        return
    if _layer == "omp" and os.getpid() != _pid:
        kernel_for(False)(*args)
    elif _layer == "workqueue":
        with _lock:
            kernel_for(True)(*args)
    else:
        kernel_for(True)(*args)


def layer():
    """The threading layer in use (None before the first kernel ran)."""
    return _layer
