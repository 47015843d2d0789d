"""The Numba options of every CPU kernel, in one place."""

import numba

# error_model='numpy': a division by zero gives inf/NaN instead of raising, which
# both matches NumPy and lets the inner loops vectorise.
CPU_OPTIONS = dict(nogil=True, error_model="numpy")


def cpu_jit(fn, *, parallel=False):
    """``numba.njit`` with on-disk caching where a cache folder is writable.

    ``cache=True`` raises at decoration when the package is installed read-only
    and ``NUMBA_CACHE_DIR`` is unset; the kernel then compiles on every start.
    """
    try:
        return numba.njit(cache=True, parallel=parallel, **CPU_OPTIONS)(fn)
    except RuntimeError:
        return numba.njit(cache=False, parallel=parallel, **CPU_OPTIONS)(fn)
