"""Arrays of more than 2**31 elements are indexed correctly (64-bit indices).

    python scripts/huge.py

Logits and targets of 2**31 + 7 float32 elements (8.6 GB each; made with
np.zeros, whose untouched pages cost no memory until written), one row and
then two rows, with distinctive values in the last elements: a 32-bit index
would wrap and read or write the wrong place.  The gradient writes 8.6 GB.
About 20 GB of memory at the peak; not part of the test run.
"""

import math
import time

import numpy as np

import numba_xent as nx
from numba_xent import caffe2

N = 2**31 + 7


def main():
    x = np.zeros(N, np.float32)
    z = np.zeros(N, np.float32)
    # Losses large enough to show in float32 sums of 2**31 terms of log(2).
    x[-1], z[-1] = 1e6, 0.0  # loss 1e6, gradient sigmoid(1e6) = 1
    x[-2], z[-2] = -3e5, 1.0  # loss 3e5, gradient -1
    x[2**31 - 1] = 5e5  # just below the 32-bit limit: loss 5e5
    start = time.perf_counter()
    loss = caffe2.sigmoid_cross_entropy_with_logits(x, z)
    elapsed = time.perf_counter() - start
    expected = ((N - 3) * math.log(2) + 1.8e6) / N
    print(f"1 x {N} forward: {float(loss):.9f} (expected {expected:.9f}) in {elapsed:.1f} s")
    assert abs(float(loss) - expected) < 1e-6 * expected

    start = time.perf_counter()
    grad = caffe2.sigmoid_cross_entropy_with_logits_grad(np.float32(N), x, z)
    elapsed = time.perf_counter() - start
    print(f"gradient * n at [-1], [-2], [2**31 - 1], [0]: {grad[-1]}, {grad[-2]}, "
          f"{grad[2**31 - 1]}, {grad[0]} in {elapsed:.1f} s")
    assert grad[-1] == 1.0 and grad[-2] == -1.0 and grad[2**31 - 1] == 1.0 and grad[0] == 0.5
    del grad

    rows = nx.sigmoid_cross_entropy(x[:-1].reshape(2, -1), z[:-1].reshape(2, -1),
                                    reduction="row_sum")
    half = (N - 1) // 2
    print(f"2 x {half} row sums: {rows}")
    # Row 1 holds the 5e5 at [2**31 - 1] and the 3e5 at [-2] of the whole array.
    assert abs(rows[0] - half * math.log(2)) < 1e-6 * rows[0]
    assert abs(rows[1] - ((half - 2) * math.log(2) + 8e5)) < 1e-6 * rows[1]
    print("OK")


if __name__ == "__main__":
    main()
