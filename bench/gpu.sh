#!/usr/bin/env bash
# Everything that needs a GPU, in one go, on a machine with a CUDA GPU and Python with
# numba-cuda (CuPy and PyTorch too where installed): the CUDA tests on the real device,
# then the GPU benchmark (bench/test_bench_gpu.py).  Usage: bench/gpu.sh [RESULTS_DIR]
# (default bench/results): it gets test-cuda.log, gpu.json, gpu.md and bench-gpu.log.
# PYTHON picks the interpreter (default python3); the package runs from this checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RESULTS=${1:-bench/results}
mkdir -p "$RESULTS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset NUMBA_ENABLE_CUDASIM

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -c "import numba, numba_cuda, numpy; print('numba', numba.__version__, \
'numba-cuda', numba_cuda.__version__, 'numpy', numpy.__version__)"

# The same tests CI runs in the simulator, here on the GPU (and on CuPy/PyTorch arrays).
"$PY" -m pytest tests/test_cuda.py tests/test_dispatch.py -q -p no:cacheprovider -rs \
    2>&1 | tee "$RESULTS/test-cuda.log"
tests=${PIPESTATUS[0]}

BENCH_OUT="$RESULTS" "$PY" -m pytest bench/test_bench_gpu.py -q -p no:cacheprovider -s \
    --benchmark-enable --benchmark-json="$RESULTS/gpu.json" --benchmark-columns=median,rounds \
    2>&1 | tee "$RESULTS/bench-gpu.log"
bench=${PIPESTATUS[0]}

echo "tests: exit $tests, benchmark: exit $bench"
exit $(( tests || bench ))
