"""The Numba options of every CPU kernel, and their disk cache, in one place."""

import hashlib
import pathlib

import numba
from numba.core.caching import FunctionCache

# error_model='numpy': a division by zero gives inf/NaN instead of raising, which
# both matches NumPy and lets the inner loops vectorise.
CPU_OPTIONS = dict(nogil=True, error_model="numpy")


def cpu_jit(fn, key, *, parallel=False):
    """``numba.njit`` with the kernels' options, cached on disk under ``key`` where a
    cache folder is writable (else compiled in every process).

    A kernel is a closure made by a factory for its options, and Numba's own cache
    keys a closure on its pickled cells: the njit helpers in them pickle with a uuid
    drawn per process, so no process ever found another's entry, and each start wrote
    every kernel once more (measured: 7017 files, 753 MB in one checkout).  Here an
    entry is keyed on ``key``, which must determine the kernel's code (its options),
    and on a digest of the package's source, so that an edit anywhere in it, not only
    in the kernel's own file, compiles afresh.
    """
    dispatcher = numba.njit(parallel=parallel, **CPU_OPTIONS)(fn)
    try:
        dispatcher._cache = _KeyedCache(fn, key)
    except RuntimeError:  # no writable cache folder: a read-only install, no NUMBA_CACHE_DIR
        pass
    return dispatcher


class _KeyedCache(FunctionCache):
    """Numba's cache of compiled functions, keyed on ``key`` rather than closure cells."""

    def __init__(self, py_func, key):
        super().__init__(py_func)
        self._key = repr(key)

    def _index_key(self, sig, codegen):
        return sig, codegen.magic_tuple(), (source_digest(), self._key)


def source_digest(root=pathlib.Path(__file__).parent, _digests={}):
    """A digest of the ``.py`` files under ``root`` (names and contents), once per process."""
    digest = _digests.get(root)
    if digest is None:
        h = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        digest = _digests[root] = h.hexdigest()
    return digest
