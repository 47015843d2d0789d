"""Records what produced a benchmark JSON: package versions and thread settings.

Only pytest-benchmark's machine_info hook lives here; it imports no peer framework
(versions come from the installed distributions' metadata).
"""

import importlib.metadata
import os
import sys
import time

_START = {}


def pytest_sessionstart(session):
    _START["loadavg"] = os.getloadavg()
    _START["cpu"] = _cpu_times()
    _START["self"] = time.process_time()


def _cpu_times():
    """(busy, total) jiffies of the whole machine, from /proc/stat (None elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


_PACKAGES = ("numba_xent", "numba", "llvmlite", "numpy", "torch", "torchvision", "jax",
             "jaxlib", "optax", "tensorflow", "tensorflow-cpu", "pytest-benchmark")


def pytest_benchmark_update_machine_info(config, machine_info):
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    machine_info["packages"] = versions
    machine_info["cpu_count"] = os.cpu_count()
    # Other processes' CPU use skews a 2-core benchmark: record the machine's load.
    machine_info["loadavg_start"] = _START.get("loadavg")
    machine_info["loadavg_end"] = os.getloadavg()
    start, end = _START.get("cpu"), _cpu_times()
    if start and end and end[1] > start[1]:
        busy = (end[0] - start[0]) / (end[1] - start[1])
        total_s = (end[1] - start[1]) / os.sysconf("SC_CLK_TCK")  # all cores' seconds
        own = (time.process_time() - _START["self"]) / total_s
        # Fractions of all cores over the session: this process, and everything else.
        machine_info["cpu_busy_self"] = round(own, 3)
        machine_info["cpu_busy_others"] = round(max(0.0, busy - own), 3)
    numba = sys.modules.get("numba")
    if numba is not None:
        machine_info["numba_num_threads"] = numba.config.NUMBA_NUM_THREADS
        try:
            machine_info["numba_threading_layer"] = numba.threading_layer()
        except ValueError:  # no parallel kernel ran in this process
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        machine_info["torch_num_threads"] = torch.get_num_threads()
