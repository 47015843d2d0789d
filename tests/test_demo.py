"""`python -m numba_xent` runs, checks itself against NumPy and prints its table."""

import subprocess
import sys


def test_demo_prints_a_checked_timing_table():
    result = subprocess.run(
        [sys.executable, "-m", "numba_xent", "--rows", "64", "--cols", "32", "--repeat", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "check against NumPy: OK" in result.stdout
    for op in ("forward", "gradient", "forward+gradient"):
        assert f"\n{op} " in result.stdout
