"""numba_xent on Dask over more data than the workers' memory: 8 GB on disk, 2 workers of 1 GB.

    python scripts/dask_big.py [--rows 1048576] [--cols 1024] [--memory-limit 1GB]
                               [--chunk-rows 8192] [--dir DIR] [--keep]

Writes float32 logits (standard normal * 3) and float32 targets (1 with
probability 0.3, -1 = "ignored" with probability 0.05, else 0) as two ``.npy``
files of ``rows x cols`` (2 x 4 GiB by default), slice by slice.  Starts a
``LocalCluster`` of 2 worker processes with one thread each, each limited to
``--memory-limit``, reads both files lazily (``numba_xent.dask.from_npy``: each
task reads its own block) and computes in one pass (each block read once):

* the Caffe2 per-row mean loss (one value per row, returned),
* chainer's mean over the labels that are not -1 (``targets.astype(int8)``),
* the general API's mean with ``ignore_index=-1`` (the same number),
* the general API's gradient of that mean (4 GiB, never stored): its sum of squares.

Then it checks them against a float64 NumPy reference computed slice by slice
from the same files (memory-mapped), prints the results, the wall times and
the workers' peak resident memory, and deletes the data (unless ``--keep``).
Needs ``dask[array,distributed]`` and psutil (a dependency of distributed).
"""

import argparse
import os
import shutil
import tempfile
import threading
import time

import numpy as np


def write_inputs(folder, rows, cols, step):
    """The two .npy files, written ``step`` rows at a time; their paths."""
    x_path, t_path = os.path.join(folder, "logits.npy"), os.path.join(folder, "targets.npy")
    x = np.lib.format.open_memmap(x_path, mode="w+", dtype=np.float32, shape=(rows, cols))
    t = np.lib.format.open_memmap(t_path, mode="w+", dtype=np.float32, shape=(rows, cols))
    rng = np.random.default_rng(2024)
    for i in range(0, rows, step):
        j = min(rows, i + step)
        x[i:j] = rng.standard_normal((j - i, cols), np.float32) * np.float32(3)
        u = rng.random((j - i, cols), np.float32)
        t[i:j] = np.where(u < 0.05, np.float32(-1), (u < 0.35).astype(np.float32))
    x.flush()
    t.flush()
    del x, t
    return x_path, t_path


def reference(x_path, t_path, step):
    """float64 NumPy, slice by slice: per-row mean, kept mean, gradient sum of squares."""
    xm, tm = np.load(x_path, mmap_mode="r"), np.load(t_path, mmap_mode="r")
    per_row = np.empty(xm.shape[0])
    total = kept = squares = 0.0
    for i in range(0, xm.shape[0], step):
        x = xm[i:i + step].astype(np.float64)
        t = tm[i:i + step].astype(np.float64)
        loss = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        per_row[i:i + step] = loss.mean(axis=1)  # Caffe2: -1 is a target like any other
        keep = t != -1
        total += loss[keep].sum()
        kept += keep.sum()
        sigmoid = np.exp(-np.logaddexp(0.0, -x))
        squares += (((sigmoid - t) * keep) ** 2).sum()
    return per_row, total / kept, squares / kept**2


class PeakMemory:
    """Polls the workers' resident memory (psutil) while a computation runs."""

    def __init__(self, client, every=0.25):
        self.client, self.every, self.peak = client, every, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        import psutil

        while not self._stop.is_set():
            try:
                rss = self.client.run(lambda: psutil.Process().memory_info().rss)
            except OSError:  # a worker going away (CommClosedError): poll the others
                rss = {}
            for worker, value in rss.items():
                self.peak[worker] = max(self.peak.get(worker, 0), value)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2**20)
    parser.add_argument("--cols", type=int, default=2**10)
    parser.add_argument("--memory-limit", default="1GB", help="per worker")
    parser.add_argument("--chunk-rows", type=int, default=8192)
    parser.add_argument("--numba-threads", default="1", help="NUMBA_NUM_THREADS of the workers")
    parser.add_argument("--dir", default=None, help="where the .npy files go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the data")
    args = parser.parse_args()

    # Worker processes inherit it: 2 single-threaded workers on 2 cores.
    os.environ["NUMBA_NUM_THREADS"] = args.numba_threads

    import dask
    from dask.distributed import Client, LocalCluster

    import numba_xent as nx
    import numba_xent.dask as nxd

    folder = tempfile.mkdtemp(prefix="numba_xent_dask_", dir=args.dir)
    try:
        start = time.perf_counter()
        x_path, t_path = write_inputs(folder, args.rows, args.cols, step=16384)
        size = os.path.getsize(x_path) + os.path.getsize(t_path)
        print(f"wrote {size / 2**30:.2f} GiB of float32 logits and targets ({args.rows} x "
              f"{args.cols} each) to {folder} in {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          memory_limit=args.memory_limit, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            limits = [w["memory_limit"]
                      for w in client.scheduler_info()["workers"].values()]
            pids = client.run(os.getpid)
            print(f"LocalCluster: 2 worker processes x 1 thread, memory_limit "
                  f"{limits[0] / 1e9:.2f} GB each ({sum(limits) / 1e9:.2f} GB in all; the data "
                  f"is {size / sum(limits):.1f} times that), started in "
                  f"{time.perf_counter() - start:.1f} s")

            chunks = (args.chunk_rows, -1)
            logits = nxd.from_npy(x_path, chunks=chunks)
            targets = nxd.from_npy(t_path, chunks=chunks)
            per_row = nxd.caffe2.sigmoid_cross_entropy_with_logits(logits, targets)
            chainer_mean = nxd.chainer.sigmoid_cross_entropy(logits, targets.astype(np.int8))
            general_mean = nxd.sigmoid_cross_entropy(logits, targets, ignore_index=-1)
            grad = nxd.sigmoid_cross_entropy_grad(logits, targets, ignore_index=-1)
            grad_squares = (grad * grad).sum(dtype=np.float64)

            start = time.perf_counter()
            with PeakMemory(client) as memory:
                per_row, chainer_mean, general_mean, grad_squares = dask.compute(
                    per_row, chainer_mean, general_mean, grad_squares)
            wall = time.perf_counter() - start
            restarted = client.run(os.getpid) != pids
        print(f"dask computation (one pass over {size / 2**30:.2f} GiB): {wall:.1f} s wall, "
              f"{size / 2**30 / wall:.2f} GiB/s")
        print("workers' peak resident memory: " + ", ".join(
            f"{v / 1e6:.0f} MB" for v in memory.peak.values())
            + f" (limit {limits[0] / 1e6:.0f} MB each); workers restarted: {restarted}")

        start = time.perf_counter()
        ref_rows, ref_mean, ref_squares = reference(x_path, t_path, step=16384)
        print(f"float64 NumPy reference, slice by slice: {time.perf_counter() - start:.1f} s")
        # And the single-machine numba_xent on the first slice, for the per-row values.
        head = slice(0, min(args.rows, 16384))
        xm, tm = np.load(x_path, mmap_mode="r"), np.load(t_path, mmap_mode="r")
        numpy_head = nx.caffe2.sigmoid_cross_entropy_with_logits(xm[head], tm[head])

        rows_err = float(np.max(np.abs(per_row - ref_rows) / np.abs(ref_rows)))
        results = [
            ("caffe2 per-row mean: sum over rows", per_row.sum(dtype=np.float64),
             ref_rows.sum()),
            ("chainer mean (t != -1)", float(chainer_mean), ref_mean),
            ("general mean, ignore_index=-1", float(general_mean), ref_mean),
            ("general grad of that mean: sum of squares", float(grad_squares), ref_squares),
        ]
        print(f"\n{'result':<44}{'numba_xent.dask':>20}{'float64 NumPy':>20}{'rel. error':>12}")
        for name, got, want in results:
            print(f"{name:<44}{got:>20.10g}{want:>20.10g}{abs(got - want) / abs(want):>12.2e}")
        print(f"caffe2 per-row mean: largest relative error over the {args.rows} rows "
              f"{rows_err:.2e}; first {head.stop} rows equal to numba_xent.caffe2 on NumPy: "
              f"{bool(np.array_equal(per_row[head], numpy_head))}")
        assert rows_err < 1e-5
        assert np.array_equal(per_row[head], numpy_head)
        for name, got, want in results:
            assert abs(got - want) <= 1e-5 * abs(want), name
        assert not restarted
    finally:
        if args.keep:
            print(f"data kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
