"""Every CUDA kernel the dispatcher can launch, compiled to PTX for sm_90 (no GPU needed).

The simulator runs kernels as Python and misses what only the compiler sees.
Here kernels are compiled with ``numba.cuda.compile_ptx``: the fused kernels
the front ends launch (found by running every front end with every option on
tiny device arrays while recording the ``numba_xent._core.Kernel`` keys,
``kernels.Epilogue`` and argument types that reach the loss kernels): every key
at every UNROLL it is launched with, with its heaviest epilogue, and every
epilogue with each dtype (:func:`covering`); some once more on strided inputs;
and the epilogue kernels (sums, counts, arithmetic, copies).
Each must show:

* no local memory in the PTX (the UNROLL-element register arrays were promoted),
* under ptxas (through nvJitLink, where installed): no spill, no stack frame,
  a bounded register count,
* loads fit for coalescing: a contiguous input's elements are read with
  ``ld.global`` of the element's width, UNROLL loads issued per thread (which
  elements a warp's lanes read is checked in tests/test_cuda.py),
* float32 kernels in float32 arithmetic: no float64 instruction but the
  accumulators' adds, the conversions into and out of them, the scales'
  multiplications and data movement; at most 64 registers (so that 256-thread
  blocks run at 50% occupancy or more on sm_90), and ``exp`` once per element.

The compiler runs in subprocesses, started when this module is collected so
that they compile while the rest of the suite runs (under pytest-xdist by one
worker, which publishes their answers to files for whichever worker runs the
tests here): this process may be
running Numba's simulator (tests/test_cuda.py switches it on), which has no
compiler.  The same subprocess checks the zero-copy views of real (not
simulated) Numba device arrays.  Run as a script, this file is that
subprocess: JSON jobs on stdin, JSON findings on stdout.
"""

import atexit
import functools
import importlib
import itertools
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

from numba_xent._formulas import Asymmetric, Focal

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARCH = (9, 0)
# Beyond 128, fewer than 2 blocks of 256 threads fit on an SM; beyond 64, fewer than 4
# (50% occupancy).
MAX_REGISTERS = {"float32": 64, "float64": 128}


# -- the jobs: what the dispatcher launches ----------------------------------------

def describe(a):
    """A kernel argument as Numba types it on the device: dtype, ndim, layout."""
    if isinstance(a, bool):
        return "bool"
    if isinstance(a, int):
        return "int64"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, np.generic):
        return a.dtype.name
    numba_type = getattr(a, "_numba_type_", None)
    if numba_type is not None and not hasattr(a, "_ary"):  # a real device array
        return [str(numba_type.dtype), numba_type.ndim, numba_type.layout]
    a = getattr(a, "_ary", a)  # the simulator's arrays hold a NumPy array
    broadcast = 0 in a.strides and a.size > 0  # Numba types broadcast device arrays 'A'
    layout = ("C" if a.flags.c_contiguous and not broadcast
              else "F" if a.flags.f_contiguous and not broadcast else "A")
    return [a.dtype.name, a.ndim, layout]


F64_1C, F64_2C = ["float64", 1, "C"], ["float64", 2, "C"]
LAYOUT_ARGS = ["int64"] * 5  # group, shift, chunk, finish_group, finish_shift
# The fused kernel's arguments that are x, z and the outputs (strided once more).
STRIDED = (0, 1, 20, 21, 22)


@functools.cache
def launched():
    """{(key, epilogue): argument descriptions} of every loss kernel the front ends launch.

    Every front end runs with every option on tiny device arrays (under the
    simulator where there is no GPU), with the loss kernels replaced by a recorder
    of what they would be given.
    """
    gpu = importlib.import_module("test_cuda")  # switches the simulator on where needed
    if not gpu.USABLE:
        return {}
    import numba_xent as nx
    from numba_xent import caffe2, chainer, paddle, tf
    from numba_xent.cuda import kernels

    seen = {}

    class Recorder:
        def __init__(self, key, epilogue):
            self.kernel = (tuple(key), tuple(epilogue))

        def __getitem__(self, configuration):
            return self

        def __call__(self, *args):
            seen.setdefault(self.kernel, [describe(a) for a in args])

    get, kernels.get = kernels.get, lambda key, epilogue, shuffle: Recorder(key, epilogue)
    try:
        for dt in (np.float32, np.float64):
            x, z, w = (gpu.dev(np.ones((3, 4), dt)) for _ in range(3))
            g, t = gpu.dev(np.ones(3, dt)), gpu.dev(np.ones((3, 4), np.int32))
            for flags in ({}, {"log_d_trick": True}, {"unjoined_lr_loss": True}):
                caffe2.sigmoid_cross_entropy_with_logits(x, z, **flags)
                caffe2.sigmoid_cross_entropy_with_logits_grad(g, x, z, **flags)
                caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, g, **flags)
            caffe2.weighted_sigmoid_cross_entropy_with_logits(x, z, w)
            caffe2.weighted_sigmoid_cross_entropy_with_logits_grad(g, x, z, w)
            caffe2.weighted_sigmoid_cross_entropy_with_logits_and_grad(x, z, w, g)
            for normalize, reduce in itertools.product((True, False), ("mean", "no")):
                gy = gpu.dev(np.ones((3, 4) if reduce == "no" else (), dt))
                chainer.sigmoid_cross_entropy(x, t, normalize, reduce)
                chainer.sigmoid_cross_entropy_grad(x, t, gy, normalize, reduce)
            for normalize in (True, False):
                paddle.sigmoid_cross_entropy_with_logits(x, z, -1, normalize)
                paddle.sigmoid_cross_entropy_with_logits_grad(x, z, x, -1, normalize)
            for reduction, smoothing, weights in itertools.product(
                    tf.Reduction.all(), (0, 0.1), (1.0, w)):
                gl = gpu.dev(np.ones((3, 4))) if reduction == tf.Reduction.NONE else 1.0
                tf.sigmoid_cross_entropy(t, x, weights, smoothing, reduction)
                tf.sigmoid_cross_entropy_grad(t, x, gl, weights, smoothing, reduction)
            for reduction, weights, pos_weight, smoothing, ignore in itertools.product(
                    nx.REDUCTIONS, (None, w), (None, gpu.dev(np.ones(4, dt))), (0, 0.1),
                    (None, -1)):
                options = dict(weights=weights, pos_weight=pos_weight, reduction=reduction,
                               label_smoothing=smoothing, ignore_index=ignore)
                nx.sigmoid_cross_entropy(x, z, **options)
                nx.sigmoid_cross_entropy_grad(x, z, **options)
                nx.sigmoid_cross_entropy_and_grad(x, z, **options)
            for reduction, ignore in itertools.product(nx.REDUCTIONS, (None, -1)):
                nx.sigmoid_cross_entropy_and_grad(x, z, w, pos_weight=gpu.dev(np.ones(
                    (3, 1), dt)), ignore_index=ignore, reduction=reduction)  # per element
            # The focusing variants: powers by products (gamma 2) and by exp and log (2.5),
            # the heaviest element bodies (fused, weighted, with pos_weight), and reduced.
            pw = gpu.dev(np.ones(4, dt))
            for gamma, reduction in [(2.0, "none"), (2.5, "none"), (2.5, "mean")]:
                nx.sigmoid_focal_loss_and_grad(x, z, w, gamma=gamma, pos_weight=pw,
                                               reduction=reduction)
            nx.sigmoid_focal_loss(x, z, alpha=None, label_smoothing=0.1, ignore_index=-1)
            nx.asymmetric_loss_and_grad(x, z, w, reduction="none")
            nx.asymmetric_loss_and_grad(x, z, clip=0, reduction="mean")
            nx.asymmetric_loss_grad(x, z, reduction="row_sum")
        for dt in HALVES:  # half logits, and half targets, weights and g with float32 logits
            x, z, w = (gpu.dev(np.ones((3, 4), dt)) for _ in range(3))
            x32, pw = gpu.dev(np.ones((3, 4), np.float32)), gpu.dev(np.ones(4, dt))
            caffe2.sigmoid_cross_entropy_with_logits(x, z)
            caffe2.sigmoid_cross_entropy_with_logits_and_grad(x, z, gpu.dev(np.ones(3, dt)))
            for logits, reduction, ignore in itertools.product(
                    (x, x32), ("none", "mean", "row_mean"), (None, -1)):
                nx.sigmoid_cross_entropy_and_grad(logits, z, w, pos_weight=pw,
                                                  reduction=reduction, ignore_index=ignore)
                shape = {"none": (3, 4), "mean": (), "row_mean": (3,)}[reduction]
                nx.sigmoid_cross_entropy_grad(logits, z, reduction=reduction,
                                              grad_output=gpu.dev(np.ones(shape, dt)))
            nx.sigmoid_focal_loss_and_grad(x, z, w, gamma=2.5, reduction="none")
            nx.asymmetric_loss_and_grad(x, z, w, reduction="none")
    finally:
        kernels.get = get
    return seen


def _half_dtypes():
    try:
        import ml_dtypes
    except ImportError:  # a test extra: its absence fails test_the_jobs_cover_...
        return (np.float16,)
    return (np.float16, ml_dtypes.bfloat16)


HALVES = _half_dtypes()


KEY_FIELDS = ("variant", "dtype", "weighted", "pos_weight", "ignore", "smooth", "rows", "elem",
              "grad", "g_elem", "count", "halves", "pw_elem")
EPILOGUE_FIELDS = ("loss_op", "grad_op", "g_op", "total", "finish_op", "by_kept")


def variant_name(variant):
    """``0``, ``1``, ``2`` or ``focal(alpha,gamma)``, ``asymmetric(gamma_neg,...)``."""
    if type(variant) is int:
        return str(variant)
    return f"{type(variant).__name__.lower()}({','.join(map(str, variant))})"


def kernel_key(fields):
    """The ``_core.Kernel`` of a job's key as JSON gives it back (tuples as lists)."""
    from numba_xent._core import Kernel
    from numba_xent._formulas import Asymmetric, Focal

    variant, halves = fields[0], fields[11]
    if not isinstance(variant, int):
        variant = {2: Focal, 4: Asymmetric}[len(variant)](*variant)
    return Kernel(variant, *fields[1:11], tuple(map(tuple, halves)), *fields[12:])


def division_sites(epi):
    """How many ``division.divide`` the kernel for ``epi`` inlines: one per dividing
    scale or upstream gradient, and for a dividing finish one (the total) or two (a
    row's: where the row is read whole, and where the last block adds up its chunks)."""
    loss_op, grad_op, g_op, total, finish_op, _ = epi
    dividing = [op not in (None, "mul") for op in (loss_op, grad_op, g_op)]
    return sum(dividing) + (finish_op not in (None, "mul")) * (1 if total else 2)


def unroll_of(key, epi):
    """The UNROLL of the kernel for ``key`` and ``epi`` (lists, as the jobs hold them)."""
    kernels = importlib.import_module("numba_xent.cuda.kernels")
    return kernels.unroll(kernel_key(key), kernels.Epilogue(*epi))


def work(epi):
    """How much an epilogue does: its divisions (each costs about a stream's registers),
    a total, a kept count, its operations (then its repr, to break ties alike)."""
    return (division_sites(epi), epi[3], epi[5], sum(op is not None for op in epi[:3]),
            repr(epi))


def covering(launches):
    """The (key, epilogue) pairs of ``launches`` to compile.

    A kernel's element body is fixed by its key, its registers by the key, its UNROLL
    and the epilogue's divisions, and the epilogue's code by the epilogue and the dtype.
    So: for every key and every UNROLL it is launched with, the launch whose epilogue
    does the most (:func:`work`); then every (epilogue, dtype) not in those yet, once,
    with its key of the most options.  About 310 of the 532 launched kernels: each
    takes 1.5 s of CPU to compile, which made this file the suite's largest cost.
    """
    heaviest = {}
    for key, epi in sorted(launches, key=repr):
        slot = (key, unroll_of(key, epi))
        if slot not in heaviest or work(epi) > work(heaviest[slot]):
            heaviest[slot] = epi
    chosen = {(key, epi) for (key, _), epi in heaviest.items()}
    by_epilogue = {}
    for key, epi in sorted(launches, key=repr):
        by_epilogue.setdefault((epi, key[1]), []).append(key)
    for (epi, _), keys in by_epilogue.items():
        if not any((key, epi) in chosen for key in keys):
            chosen.add((max(keys, key=lambda k: (sum(v is True for v in k) + len(k[11]),
                                                 repr(k))), epi))
    return chosen


def jobs():
    """Every kernel to compile: (name, kernel, argument descriptions)."""
    result = []
    launches = launched()
    chosen = covering(launches)
    for (key, epi), args in sorted(launches.items(), key=repr):
        if (key, epi) not in chosen:
            continue
        name = "loss" + "".join(
            f"-{f}" if v is True else f"-{variant_name(v)}" if f == "variant" else
            f"-{v}" if f != "halves" else
            "-halves=" + ",".join(f"{role}:{kind}" for role, kind in v)
            for f, v in zip(KEY_FIELDS, key, strict=True) if v not in (False, ()))
        name += "".join(f"-{f}" if v is True else f"-{f}={v}" for f, v in zip(
            EPILOGUE_FIELDS, epi, strict=True) if v not in (None, False))
        result.append((name, ["loss", key, epi], args))
        if key[2] is False and key[3] is False:  # and once on strided inputs
            strided = [[d[0], d[1], "A"] if i in STRIDED and isinstance(d, list)
                       and d[2] == "C" else d for i, d in enumerate(args)]
            if key[4:6] == (False, False) and not key[10]:
                result.append((name + "-strided", ["loss", key, epi], strided))
    reduce_args = [F64_1C, F64_2C, ["int32", 1, "C"]] + LAYOUT_ARGS  # out, totals, ticket
    for op, a in [("sum", F64_2C), ("sum", ["float32", 2, "A"]), ("sum", ["float64", 2, "A"]),
                  ("nonzero", ["float32", 2, "A"]), ("nonzero", ["float64", 2, "A"]),
                  ("nonzero", ["bool", 2, "C"])]:
        result.append((f"reduce_all-{op}-{a[0]}{a[2]}", ["reduce_all", op], [a, *reduce_args]))
    for op, a, b in [("div", "float64", "float64"), ("div", "float64", "int64"),
                     ("safe_div", "float64", "float64"), ("mul", "float64", "float64"),
                     ("div_at_least_one", "float32", "int64"),
                     ("div_at_least_one", "float64", "float64")]:
        result.append((f"binary-{op}-{a}-{b}", ["binary", op],
                       [[a, 1, "C"], "float64", [b, 1, "C"], "float64", F64_1C]))
    for dst, src in [(["float32", 2, "C"], F64_2C), (F64_2C, F64_2C),
                     (["float32", 2, "A"], ["float32", 2, "C"]),
                     (F64_2C, ["float16", 2, "A"]), (["float32", 2, "C"], ["float64", 2, "A"])]:
        result.append((f"copy-{dst[0]}{dst[2]}-{src[0]}{src[2]}", ["copy"], [dst, src]))
    for dtype in ("float64", "float32", "int64", "bool"):
        result.append((f"fill-{dtype}", ["fill"], [[dtype, 1, "C"], dtype]))
    result.append(DIVISION)
    return result


# One ``division.divide`` alone, whose float64 census the loss kernels' is measured against.
DIVISION = ("division", ["division"], [F64_1C, F64_1C])


def build_division():
    from numba_xent.cuda.division import divide

    def kernel(a, out):
        out[0] = divide(a[0], a[1])

    return kernel


# -- the compiler subprocess ---------------------------------------------------------

def real_views():
    """numba_xent.cuda.arrays on real Numba device arrays (not the simulator's), without a
    GPU: the device memory is a made-up address, never read or written."""
    from numba.cuda.cudadrv import devicearray, driver

    from numba_xent.cuda import arrays

    base = 0x7F0000000000
    memory = driver.MemoryPointer(None, driver.binding.CUdeviceptr(base), size=4 * 6 * 8)
    a = devicearray.DeviceNDArray((4, 6), (48, 8), np.float64, gpu_data=memory)

    def describe(v):
        return [list(v.shape), list(v.strides), arrays.address(v) - base,
                v._numba_type_.layout]

    shadow = arrays.shadow(a)
    views = {
        "reshape": arrays.from_shadow(np.reshape(shadow, (24,), copy=False), a),
        "broadcast": arrays.from_shadow(np.broadcast_to(shadow[1], (3, 6)), a),
        "reversed": arrays.from_shadow(shadow[::-1], a),
        "transposed": arrays.from_shadow(shadow.T, a),
        "column": arrays.from_shadow(shadow[:, 2], a),
    }
    return {
        "simulator": arrays.SIMULATOR,
        "views": {k: describe(v) for k, v in views.items()},
        "overlap": [arrays.shares_memory(a, views["column"]),
                    arrays.shares_memory(views["column"],
                                         arrays.from_shadow(shadow[:, 3], a))],
        "same": [arrays.same_view(a, a), arrays.same_view(a, views["transposed"])],
    }


def compile_jobs(batch):
    """{name: what the tests check} for the jobs, compiled where numba.cuda is not simulated."""
    from numba import cuda, types

    if cuda.compile_ptx is None:
        return {"unavailable": "numba.cuda has no compiler here (the CUDA simulator is on)"}
    from numba_xent.cuda import epilogue, kernels

    def to_type(d):
        if isinstance(d, str):
            return getattr(types, "boolean" if d == "bool" else d)
        return types.Array(to_type(d[0]), d[1], d[2])

    nvjitlink = optional("cuda.bindings.nvjitlink")
    result = {}
    for name, kernel, args in batch:
        if kernel[0] == "views":
            result[name] = real_views()
            continue
        if kernel[0] == "loss":
            fn = kernels.build(kernel_key(kernel[1]), kernels.Epilogue(*kernel[2]), True)
        elif kernel[0] == "reduce_all":
            fn = epilogue.build_reduce_all(kernel[1], True)
        elif kernel[0] == "binary":
            fn = epilogue.build_binary(kernel[1])
        elif kernel[0] == "division":
            fn = build_division()
        else:
            fn = getattr(epilogue, f"build_{kernel[0]}")()
        try:
            ptx, _ = cuda.compile_ptx(fn, tuple(to_type(a) for a in args), cc=ARCH)
        except Exception as err:  # reported per kernel, as a failed test
            result[name] = {"error": f"{type(err).__name__}: {err}"}
            continue
        result[name] = {
            "local_memory": bool(re.search(r"\.local\b|__local_depot", ptx)),
            "global_loads": {t: len(re.findall(rf"\bld\.global(?:\.\w+)*\.{t}\b", ptx))
                             for t in ("f32", "f64", "[bu]16")},
            "f64": f64_instructions(ptx),
            "exp_reductions": {t: len(re.findall(rf"\bfma\.rn\.{t}\b.*{c}", ptx))
                               for t, c in EXP_SHIFT.items()},
            "ptxas": None if nvjitlink is None else ptxas(ptx, nvjitlink),
        }
    return result


# The exp of numba_xent.cpu.vecmath rounds x / ln2 with an FMA that adds this shift
# (1.5 * 2**23 or 2**52): one such FMA per exp.
EXP_SHIFT = {"f32": "0f4B400000", "f64": "0d4338000000000000"}


def f64_instructions(ptx):
    """{opcode: count} of the PTX instructions on float64 values (opcode without the
    state space and rounding: ``ld``, ``add``, ``cvt``, ...)."""
    counts = {}
    for op in re.findall(r"^\s*(?:@%p\d+\s+)?([a-z]+)(?:\.[a-z0-9]+)*\.f64\b", ptx, re.M):
        counts[op] = counts.get(op, 0) + 1
    return counts


def compiler_env(environ):
    """``environ`` without the simulator: the subprocesses compile for a real GPU."""
    return {k: v for k, v in environ.items() if k != "NUMBA_ENABLE_CUDASIM"}


def start(batch, env):
    """A compiler subprocess for ``batch`` (its JSON answer comes from ``finish``)."""
    env = {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=tempfile.TemporaryFile(),
                            text=True, env=env, cwd=ROOT)
    proc.stdin.write(json.dumps(batch))
    proc.stdin.close()
    atexit.register(lambda: proc.poll() is None and proc.kill())
    return proc


def finish(proc):
    out = proc.stdout.read()
    if proc.wait():
        return {"unavailable": f"the compiler subprocess failed with status {proc.returncode}"}
    return json.loads(out)


def compiler_status(env):
    """(True, '') where compile_ptx works in a subprocess with ``env``, else (False, why)."""
    answer = finish(start([("probe", ["fill"], [F64_1C, "float64"])], env))
    if "unavailable" in answer:
        return False, answer["unavailable"]
    probe = answer["probe"]
    return "error" not in probe, probe.get("error", "")


# -- ptxas, through nvJitLink ----------------------------------------------------------

def optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def ptxas(ptx, nvjitlink):
    """ptxas's report for the PTX: {registers, spill_stores, spill_loads, stack, lmem}."""
    options = [f"-arch=sm_{ARCH[0]}{ARCH[1]}", "-verbose"]
    handle = nvjitlink.create(len(options), options)
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    text = log.decode(errors="replace")

    def number(pattern):
        return int(re.search(pattern, text).group(1))

    return {"registers": number(r"Used (\d+) registers"),
            "spill_stores": number(r"(\d+) bytes spill stores"),
            "spill_loads": number(r"(\d+) bytes spill loads"),
            "stack": number(r"(\d+) bytes stack frame"),
            "lmem": number(r"(\d+) bytes lmem")}


# -- the tests ---------------------------------------------------------------------

def publish(proc, path):
    """Write ``proc``'s answer to ``path`` once it is complete (renamed into place, so a
    reader never sees half of it)."""
    answer = finish(proc)
    part = path.with_suffix(".part")
    part.write_text(json.dumps(answer))
    part.replace(path)


def answers(paths, timeout=3600):
    """The compilers' answers, merged; waits for them to be published."""
    deadline = time.monotonic() + timeout
    results = {}
    for path in paths:
        while not path.exists():
            assert time.monotonic() < deadline, f"no compiler answer in {path} after {timeout} s"
            time.sleep(0.5)
        answer = json.loads(path.read_text())
        if "unavailable" in answer:
            pytest.skip(answer["unavailable"])
        results.update(answer)
    return results


# The subprocesses (this file run as a script) compile what they are sent, while the
# rest of the suite runs.  Under pytest-xdist one worker starts them (every worker
# imports this module) and whichever runs these tests reads their published answers.
JOBS = jobs() if __name__ != "__main__" else []
WORKERS = max(1, min(4, os.cpu_count() or 1))
if __name__ != "__main__":
    _RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    _ANSWERS = [pathlib.Path(tempfile.gettempdir()) / f"numba_xent_ptx_{_RUN}_{i}.json"
                for i in range(WORKERS)]
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") == "gw0":
        VIEWS = ("views", ["views"], [])  # rides with the first batch
        for i, path in enumerate(_ANSWERS):
            proc = start([VIEWS] * (i == 0) + JOBS[i::WORKERS], compiler_env(os.environ))
            threading.Thread(target=publish, args=(proc, path), daemon=True).start()
            atexit.register(path.unlink, missing_ok=True)


@pytest.fixture(scope="module")
def compiled():
    return answers(_ANSWERS)


def test_the_compiler_guard_can_answer_both_ways(compiled):
    ok, why = compiler_status({**os.environ, "NUMBA_ENABLE_CUDASIM": "1"})
    assert not ok and "simulator" in why
    assert len(compiled) > len(JOBS)  # and without the simulator: the jobs (or a skip)


def test_the_optional_module_guard_can_answer_both_ways():
    assert optional("numba_xent_no_such_module") is None
    assert optional("json") is json


def test_views_of_real_numba_device_arrays(compiled):
    """Zero-copy reshapes, broadcasts and reversals of real DeviceNDArrays (the simulator's
    arrays are NumPy arrays: this path runs only on a GPU otherwise)."""
    answer = compiled["views"]
    assert answer["simulator"] is False
    assert answer["views"] == {
        "reshape": [[24], [8], 0, "C"],
        "broadcast": [[3, 6], [0, 8], 48, "A"],
        "reversed": [[4, 6], [-48, 8], 144, "A"],
        "transposed": [[6, 4], [8, 48], 0, "F"],
        "column": [[4], [48], 16, "A"],
    }
    assert answer["overlap"] == [True, False] and answer["same"] == [True, False]


def test_the_jobs_cover_every_option_and_both_dtypes():
    keys = {tuple(kernel[1]) for _, kernel, _ in JOBS if kernel[0] == "loss"}
    for field in range(2, 11):  # weighted ... count: both values occur
        assert {k[field] for k in keys} == {False, True}
    assert {variant_name(k[0]).split("(")[0] for k in keys} == {
        "0", "1", "2", "focal", "asymmetric"}
    assert {k[0].gamma for k in keys if type(k[0]) is Focal} == {2.0, 2.5}
    assert {k[12] for k in keys} == {False, True}
    assert {k[1] for k in keys} == {"float32", "float64", "float16", "bfloat16"}
    roles = {}
    for k in keys:
        for role, kind in k[11]:
            roles.setdefault(role, set()).add(kind)
    assert roles == {role: {"float16", "bfloat16"}
                     for role in ("z", "weights", "pos_weight", "g", "rows")}


def test_the_jobs_cover_every_key_unroll_and_epilogue_launched():
    loss = {(tuple(kernel[1]), tuple(kernel[2])) for _, kernel, _ in JOBS
            if kernel[0] == "loss"}
    launches = launched()
    assert loss == covering(launches) and len(loss) < len(launches)
    assert {(key, unroll_of(key, epi)) for key, epi in launches} == \
        {(key, unroll_of(key, epi)) for key, epi in loss}
    assert {(epi, key[1]) for key, epi in launches} == {(epi, key[1]) for key, epi in loss}
    for key, epi in launches:  # each compiled with an epilogue that does at least as much
        assert any(k == key and unroll_of(k, e) == unroll_of(key, epi) and
                   work(e) >= work(epi) for k, e in loss)


@pytest.mark.parametrize("name", [name for name, _, _ in JOBS])
def test_kernel_compiles_without_local_memory(compiled, name):
    result = compiled[name]
    assert "error" not in result, result.get("error")
    assert not result["local_memory"], "local memory in the PTX"


def test_no_spills_and_bounded_registers(compiled):
    report = {name: compiled[name]["ptxas"] for name, _, _ in JOBS
              if compiled[name].get("ptxas")}
    if not report:
        pytest.skip("nvJitLink (cuda-bindings) is not installed: no ptxas report")
    for name, info in report.items():
        assert info["spill_stores"] == info["spill_loads"] == 0, (name, info)
        assert info["stack"] == info["lmem"] == 0, (name, info)
        dtype = "float64" if "float64" in name.split("-") else "float32"  # halves: float32
        assert info["registers"] <= MAX_REGISTERS[dtype], (name, info)
    most = max(report, key=lambda k: report[k]["registers"])
    loss = [v["registers"] for k, v in report.items() if k.startswith("loss")]
    print(f"\nptxas sm_{ARCH[0]}{ARCH[1]}: {len(report)} kernels, no spills; registers "
          f"{min(loss)}-{max(loss)} for the loss kernels, most: {most} "
          f"({report[most]['registers']})")


# The PTX type of an element as the kernels compute it (halves: in float32), and as they
# load it (halves: as their bits).
ELEMENT = {"float32": "f32", "float64": "f64", "float16": "f32", "bfloat16": "f32"}
LOADED = {"float32": "f32", "float64": "f64", "uint16": "[bu]16"}
LOSS_JOBS = [(name, kernel[1], kernel[2]) for name, kernel, _ in JOBS if kernel[0] == "loss"]


# Data movement, and the only float64 arithmetic a float32 kernel may do.
F64_MOVES = {"ld", "st", "mov", "selp", "shfl", "cvt"}


def test_the_float64_census_reads_opcodes_and_guards():
    ptx = """
	ld.param.f64 	%fd1, [k_param_7];
	@%p3 fma.rn.f64 	%fd2, %fd1, %fd1, %fd1;
	cvt.rn.f32.f64 	%f1, %fd2;
	add.f32 	%f2, %f1, %f1;
"""
    assert f64_instructions(ptx) == {"ld": 1, "fma": 1, "cvt": 1}


def without_divisions(f64, division, sites):
    """The census ``f64`` less ``sites`` times the census of one division (moves aside)."""
    rest = dict(f64)
    for op, n in division.items():
        if op not in F64_MOVES and op in rest:
            rest[op] = max(0, rest[op] - sites * n)
    return {op: n for op, n in rest.items() if n}


def test_the_division_census_is_subtracted_per_site(compiled):
    division = compiled["division"]["f64"]
    assert "div" not in division and division["fma"] >= 2, division  # FMAs, no subroutine
    assert division_sites(["div", None, "div_at_least_one", True, "div", False]) == 3
    assert division_sites([None, "mul", None, False, "div", False]) == 2
    extra = {"add": 3, "mul": 1}
    both = {op: 2 * division.get(op, 0) + extra.get(op, 0) for op in division.keys() | extra}
    assert without_divisions(both, division, 2) == \
        {op: n for op, n in both.items() if op in F64_MOVES} | extra


@pytest.mark.parametrize("name, key, epi",
                         [(n, k, e) for n, k, e in LOSS_JOBS if k[1] != "float64"])
def test_float32_kernels_compute_in_float32(compiled, name, key, epi):
    """Only the accumulators (rows: the loss sums, count: the kept elements) add in
    float64, and only the epilogue computes there otherwise: the products of the
    operand pairs ``a * fa``, ``b * fb`` (of the loss scale, the gradient scale and a
    row's upstream gradient), a row's gradient scale (times the weight, once per
    element of the UNROLL), the sums' final scale, and each of the epilogue's
    operations (``epilogue.operation``): a ``division.divide`` per dividing one
    (FMAs: no ``div`` instruction, no division subroutine), a ``max`` for
    ``div_at_least_one``, a comparison (``setp``) for the zero divisor of
    ``safe_div`` or for the sums' live rows."""
    assert "div" not in compiled[name]["f64"], compiled[name]["f64"]
    f64 = without_divisions(compiled[name]["f64"], compiled["division"]["f64"],
                            division_sites(epi))
    unroll = unroll_of(key, epi)
    loss_op, grad_op, g_op, total, finish_op, _ = epi
    ops = [op for op in (loss_op, grad_op, g_op, finish_op) if op is not None]
    allowed = F64_MOVES | {"add", "mul"}
    allowed |= {"max"} if "div_at_least_one" in ops else set()
    rows, count = key[6], key[10]
    allowed |= {"setp"} if "safe_div" in ops or rows or count else set()
    assert set(f64) <= allowed, f64
    if not (rows or count):
        assert "add" not in f64, f64
    assert f64.get("setp", 0) <= 1 + ("safe_div" in ops), f64
    # 2 per operand pair, 1 more for a "mul" op, the row scale, the final scale where the
    # sums are written (a row's: twice, see division_sites), the weight per UNROLL element
    final = 2 if rows and not total else 1
    assert f64.get("mul", 0) <= 2 * 3 + ops.count("mul") + 1 + final + unroll, f64


def exps_per_element(variant):
    """The ``exp`` of ``-|x|``, and one more for a power by exp and log: the asymmetric
    loss's, and the focal loss's for a gamma that is not 0 to 4."""
    if type(variant) is Focal:
        return 1 + (variant.gamma not in (0.0, 1.0, 2.0, 3.0, 4.0))
    return 1 + (type(variant) is Asymmetric)


def test_a_power_by_exp_and_log_is_one_more_exp():
    assert [exps_per_element(v) for v in (0, 2, Focal(0.25, 2.0), Focal(None, 2.5),
                                          Asymmetric(4.0, 1.0, 0.05, 1e-8))] == [1, 1, 1, 2, 2]


@pytest.mark.parametrize("name, key, epi", LOSS_JOBS)
def test_exp_is_computed_once_per_element_and_once_more_per_power(compiled, name, key, epi):
    reads_x = key[6] or key[7] or key[8]
    unroll = unroll_of(key, epi)
    expected = unroll * exps_per_element(kernel_key(key).variant) if reads_x else 0
    assert compiled[name]["exp_reductions"][ELEMENT[key[1]]] == expected


@pytest.mark.parametrize("name", [name for name, kernel, args in JOBS
                                  if kernel[0] == "loss" and args[0][2] == "C"
                                  and (kernel[1][6] or kernel[1][7] or kernel[1][8])])
def test_contiguous_logits_are_read_with_unrolled_global_loads(compiled, name):
    """The kernel's UNROLL element-wide ``ld.global`` loads at least (strided,
    'A'-layout arrays, such as broadcast weights, are read through generic
    addresses: Numba's strided indexing loses the address space; the memory
    transactions are the same)."""
    unroll = next(unroll_of(kernel[1], kernel[2]) for n, kernel, _ in JOBS if n == name)
    dtype = next(args for n, _, args in JOBS if n == name)[0][0]
    loads = compiled[name]["global_loads"][LOADED[dtype]]
    assert loads >= unroll, f"{loads} global loads of {dtype}"


def main():
    print(json.dumps(compile_jobs(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
