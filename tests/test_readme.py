"""Every ```python block of the README runs as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block):
    exec(compile(block, str(README), "exec"), {})


def test_the_readme_opens_with_the_ci_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", README.read_text(), flags=re.S)
    assert "python -m numba_xent" in commands[0]
    assert commands[1] in ci


def test_the_readme_benchmark_tables_are_those_of_the_last_run():
    """bench/report.py --readme wrote them from bench/results/cpu.json: nothing typed."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("report", README.parent / "bench" / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    text = README.read_text()
    for run, section in [("cpu", "cpu-benchmark"), ("cpu_half", "cpu-benchmark-half")]:
        medians, nbytes, data = report.load(README.parent / "bench" / "results" / f"{run}.json")
        begin, end = report.markers(section)
        start, stop = text.index(begin), text.index(end)
        assert text[start + len(begin):stop].strip() == report.readme_section(
            medians, nbytes, data).strip()
