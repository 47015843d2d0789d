"""Packaging that feels native: one version, typed, a discoverable command line."""

import os
import pathlib
import subprocess
import sys
import tomllib

import numba_xent

ROOT = pathlib.Path(__file__).parent.parent


def test_the_version_comes_from_one_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "numba_xent.__version__"
    assert numba_xent.__version__ in (ROOT / "CHANGELOG.md").read_text()


def test_the_package_is_marked_typed():
    assert (pathlib.Path(numba_xent.__file__).parent / "py.typed").exists()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["numba_xent"]


def test_help_lists_the_demo_and_benchmark_commands():
    result = subprocess.run([sys.executable, "-m", "numba_xent", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    for command in ("python -m numba_xent", "bench/test_bench_cpu.py", "bench/gpu.sh",
                    "scripts/memory.py"):
        assert command in result.stdout


def test_a_later_process_loads_each_kernel_from_the_disk_cache(tmp_path):
    """Kernels are closures made per set of options: each is cached under its own
    options, so a later process loads them all, each with its own results."""
    code = ("import numpy as np, numba_xent as nx; from numba_xent.cpu import kernels; "
            "x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4); z = x > 0; "
            "r = [nx.sigmoid_cross_entropy_and_grad(x, z, **o) for o in "
            "({}, {'label_smoothing': 0.1}, {'pos_weight': np.full(4, 2.0, np.float32)})]; "
            "print(repr(np.concatenate([np.ravel(a) for p in r for a in p]).tolist()), "
            "sum(sum(k.stats.cache_hits.values()) for k in kernels._KERNELS.values()))")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    first, second = (subprocess.run([sys.executable, "-c", code], check=True, env=env,
                                    capture_output=True, text=True, timeout=300).stdout.split()
                     for _ in range(2))
    assert first[-1] == "0" and second[-1] == "3"  # three kernels, compiled then loaded
    assert first[:-1] == second[:-1]


def test_an_edit_anywhere_in_the_package_changes_the_cache_key(tmp_path):
    from numba_xent._jit import source_digest

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "formulas.py").write_text("a = 1\n")
    before = source_digest(tmp_path, {})
    (tmp_path / "sub" / "formulas.py").write_text("a = 2\n")
    assert source_digest(tmp_path, {}) != before
