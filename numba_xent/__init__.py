"""numba_xent: fused Numba kernels for the sigmoid cross-entropy family of losses."""

__version__ = "0.1.0"
