"""Packaging that feels native: one version, typed, a discoverable command line."""

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
