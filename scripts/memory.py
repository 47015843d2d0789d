"""Peak memory of each public function above its inputs (issue: hardening).

    python scripts/memory.py [rows cols]

Each function runs in a fresh child process: inputs are made, the function is
called once to compile and warm up, the kernel's high-water mark is reset
(``/proc/self/clear_refs``), and the function is called again.  Printed: the
peak RSS growth during that call as a percentage of the inputs' bytes, and the
size of the result.  Linux only.
"""

import multiprocessing
import sys

import numpy as np

ROWS, COLS = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (4096, 4096)


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024


def calls():
    import numba_xent as nx
    from numba_xent import caffe2, chainer, paddle, tf

    return {
        "caffe2 forward": lambda x, z, t, g: caffe2.sigmoid_cross_entropy_with_logits(x, z),
        "caffe2 weighted forward": lambda x, z, t, g:
            caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, z),
        "caffe2 gradient": lambda x, z, t, g:
            caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z),
        "caffe2 fused": lambda x, z, t, g:
            caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g),
        "chainer mean": lambda x, z, t, g: chainer.sigmoid_cross_entropy(x, t),
        "chainer gradient": lambda x, z, t, g:
            chainer.sigmoid_cross_entropy_grad(x, t, np.float32(1)),
        "paddle (elementwise)": lambda x, z, t, g:
            paddle.sigmoid_cross_entropy_with_logits(x, z, normalize=True),
        "tf mean": lambda x, z, t, g: tf.sigmoid_cross_entropy(z, x, reduction=tf.Reduction.MEAN),
        "tf gradient": lambda x, z, t, g: tf.sigmoid_cross_entropy_grad(z, x, np.float32(1)),
        "general mean (ignore_index)": lambda x, z, t, g:
            nx.sigmoid_cross_entropy(x, t, ignore_index=-1),
        "general row_mean": lambda x, z, t, g: nx.sigmoid_cross_entropy(x, z,
                                                                        reduction="row_mean"),
        "general mean and grad": lambda x, z, t, g: nx.sigmoid_cross_entropy_and_grad(x, z),
    }


def measure(name, queue):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, COLS)).astype(np.float32)
    z = rng.uniform(size=(ROWS, COLS)).astype(np.float32)
    t = (z > 0.5).astype(np.int32)
    g = np.ones(ROWS, np.float32)
    fn = calls()[name]
    fn(x, z, t, g)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    base = status("VmRSS:")
    result = fn(x, z, t, g)
    peak = status("VmHWM:") - base
    inputs = x.nbytes + z.nbytes
    size = sum(a.nbytes for a in (result if isinstance(result, tuple) else (result,)))
    queue.put((name, peak, inputs, size))


def main():
    ctx = multiprocessing.get_context("spawn")
    print(f"{ROWS} x {COLS} float32 inputs (logits + targets: "
          f"{2 * ROWS * COLS * 4 / 2**20:.0f} MiB)")
    print(f"{'function':<30}{'peak growth':>14}{'% of inputs':>13}{'result':>12}"
          f"{'growth - result':>18}")
    for name in calls():
        queue = ctx.Queue()
        proc = ctx.Process(target=measure, args=(name, queue))
        proc.start()
        name, peak, inputs, size = queue.get()
        proc.join()
        print(f"{name:<30}{peak / 2**20:>11.1f}MiB{100 * peak / inputs:>12.2f}%"
              f"{size / 2**20:>9.1f}MiB{100 * (peak - size) / inputs:>17.2f}%")


if __name__ == "__main__":
    main()
