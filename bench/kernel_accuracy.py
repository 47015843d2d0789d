"""Accuracy of every kernel, per element, in ulps of the sizes its bar is relative to.

    python bench/kernel_accuracy.py            # ~1 minute on 2 cores
    python bench/kernel_accuracy.py --n 200000 # fewer elements

For each kernel (the Caffe2 variants; the general API with weights, pos_weight and
label smoothing; one element per row, the flat loop and the row loop) and dtype, the
largest error of the loss and of the gradient against the long-double reference of
``tests/reference.py`` (``coefficient_form``), in units of ``ulp(1) * terms``: the
loss's ``|x c| + |k sp|`` and the gradient's ``|w| * (|k t| + max(|p|, |q|))``, the
bars of tests/test_accuracy.py being 4 of these units.  Row means are reported as
the error of the mean relative to the mean of the terms.  Inputs: logits ``N(0, 6)``
times ``exp(U(-8, 3))`` (|x| from 1e-4 to 1e4), the extremes of the tests, targets
uniform in [0, 1] with 30% exactly 0, 1/2 or 1.
"""

import argparse
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numba_xent as nx  # noqa: E402
from numba_xent import caffe2  # noqa: E402
from reference import coefficient_form  # noqa: E402
from test_accuracy import VARIANTS, logits, targets  # noqa: E402


def units(got, ref, terms, dtype, scale=1.0):
    """max |got - ref| / (ulp(1) * scale * terms), over elements whose reference is
    in the dtype's range and whose bar is above the subnormals."""
    eps = np.finfo(dtype).eps
    bar = eps * np.abs(scale) * terms
    ok = (np.abs(ref) <= np.finfo(dtype).max) & (bar > 4 * np.finfo(dtype).smallest_subnormal)
    err = np.abs(got.astype(np.longdouble) - ref)[ok] / bar[ok]
    return float(err.max()), float(np.mean(err > 1))


def caffe2_rows(n, size, dtype):
    for variant, flags in VARIANTS.items():
        x = logits(dtype, size, 1).reshape(-1, n)
        z = targets(dtype, x.size, 2).reshape(x.shape)
        loss, grad = caffe2.sigmoid_cross_entropy_with_logits_and_grad(
            x, z, np.ones(x.shape[0], dtype), **flags)
        ref_l, ref_g, terms_l, terms_g = coefficient_form(x, z, variant)
        yield (f"caffe2 {variant}", units(loss, ref_l.mean(-1), terms_l.mean(-1), dtype),
               units(grad, ref_g / n, terms_g, dtype, 1 / n))


def general(n, size, dtype, smoothing):
    rng = np.random.default_rng(3)
    x = logits(dtype, size, 4).reshape(-1, n)
    z = targets(dtype, x.size, 5).reshape(x.shape)
    w = rng.uniform(0, 2, x.shape).astype(dtype)
    pw = rng.uniform(0.1, 5, n).astype(dtype)
    loss, grad = nx.sigmoid_cross_entropy_and_grad(x, z, w, pos_weight=pw, reduction="none",
                                                   label_smoothing=smoothing)
    ref_l, ref_g, terms_l, terms_g = coefficient_form(x, z, "plain", pw, smoothing)
    w = w.astype(np.longdouble)
    name = f"general weights+pos_weight{' +smoothing' if smoothing else ''}"
    return name, units(loss, w * ref_l, w * terms_l, dtype), units(grad, w * ref_g,
                                                                   w * terms_g, dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="elements per kernel")
    args = ap.parse_args()
    print(__doc__.split("\n\n")[2].replace("\n", " ").strip())
    print(f"\n{args.n:,} elements per kernel; columns: worst loss error, worst gradient "
          "error (units of ulp(1) x terms), and the share of elements above 1 unit")
    for dtype in (np.float32, np.float64):
        for n, layout in ((1, "one element per row"), (16, "rows of 16: the flat loop"),
                          (1000, "rows of 1000: the row loop")):
            size = args.n // n * n
            print(f"\n{np.dtype(dtype).name}, {layout}:")
            rows = list(caffe2_rows(n, size, dtype))
            rows += [general(n, size, dtype, s) for s in (0.0, 0.1)]
            for name, (lw, lf), (gw, gf) in rows:
                print(f"  {name:<40s} loss {lw:5.2f} ({lf:6.2%} > 1)   "
                      f"gradient {gw:5.2f} ({gf:6.2%} > 1)")


if __name__ == "__main__":
    main()
