"""The per-call table from bench/test_bench_calls.py's JSON.

    python bench/calls_report.py bench/results/calls.json [--readme README.md]

Writes ``calls.md`` beside the JSON (and prints it); ``--readme`` also puts the table
into the README between its ``<!-- calls-benchmark -->`` markers.
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import report  # noqa: E402  (bench/report.py: the run's circumstances)

MARKERS = ("<!-- calls-benchmark -->", "<!-- /calls-benchmark -->")


def load(path):
    """``[(call, shape, {contender: median_us})]`` in the run's order, and the JSON."""
    data = json.loads(pathlib.Path(path).read_text())
    rows = []
    for b in data.get("benchmarks", []):
        medians = (b.get("extra_info") or {}).get("median_us")
        if medians:
            call, shape = b["param"].rsplit("-", 1)
            rows.append((call, shape, medians))
    return rows, data


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="?", default="bench/results/calls.json")
    ap.add_argument("--readme", help="a README whose per-call table to rewrite")
    args = ap.parse_args(argv)
    src = pathlib.Path(args.json)
    rows, data = load(src)
    if not rows:
        sys.exit(f"{src}: no timed cases (was the run made with --benchmark-enable?)")
    text = section(rows, data)
    print(text)
    (src.parent / f"{src.stem}.md").write_text("# Per-call cost\n\n" + text + "\n")
    if args.readme:
        path = pathlib.Path(args.readme)
        readme = path.read_text()
        start, end = (readme.index(m) for m in MARKERS)
        path.write_text(readme[:start + len(MARKERS[0])] + "\n" + text + "\n" + readme[end:])


if __name__ == "__main__":
    main()
