"""The per-call table from bench/test_bench_calls.py's JSON.

    python bench/calls_report.py bench/results/calls.json [--readme README.md]

Writes ``calls.md`` beside the JSON (and prints it); ``--readme`` also puts the table
into the README between its ``<!-- calls-benchmark -->`` markers.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import report  # noqa: E402  (bench/report.py: the run's circumstances, publish)


def load(data):
    """``[(call, shape, {contender: median_us})]`` in the run's order."""
    rows = []
    for b in data.get("benchmarks", []):
        medians = (b.get("extra_info") or {}).get("median_us")
        if medians:
            call, shape = b["param"].rsplit("-", 1)
            rows.append((call, shape, medians))
    return rows


def section(rows, data):
    out = report.header(data)[:-1]  # run, machine, load, versions
    out.append("- Median time per call in µs, float32, results allocated by every call; "
               "`torch`: PyTorch's own `binary_cross_entropy_with_logits` forward+backward "
               "in the same rounds.")
    out += ["", "| call | shape | numba_xent µs | torch µs | torch / numba_xent |",
            "|---|---|---:|---:|---:|"]
    for call, shape, m in rows:
        ours, theirs = m.get("numba_xent"), m.get("torch")
        ratio = f"{theirs / ours:.2f}x" if ours and theirs else "—"
        out.append(f"| {call} | {shape} | {ours:.1f} | "
                   f"{'—' if theirs is None else f'{theirs:.1f}'} | {ratio} |")
    return "\n".join(out)


def main(argv=None):
    report.one_table_main(argv, __doc__, "bench/results/calls.json", "Per-call cost",
                          "calls-benchmark",
                          lambda data: section(rows, data) if (rows := load(data)) else None)


if __name__ == "__main__":
    main()
