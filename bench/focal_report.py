"""The focal-loss table from bench/test_bench_focal.py's JSON.

    python bench/focal_report.py bench/results/focal.json [--readme README.md]

Writes ``focal.md`` beside the JSON (and prints it); ``--readme`` also puts the table
into the README between its ``<!-- focal-benchmark -->`` markers.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import report  # noqa: E402  (bench/report.py: the run's circumstances, publish)

def section(data):
    """The table (None where the JSON has no timed case)."""
    timed = [b["extra_info"] for b in data.get("benchmarks", [])
             if (b.get("extra_info") or {}).get("median_s")]
    if not timed:
        return None
    out = report.header(data)[:-1]  # run, machine, load, versions
    out.append("- Fused forward+gradient of the mean focal loss (alpha 0.25, gamma 2), "
               "float32: median wall time in ms over interleaved rounds; numba_xent's "
               "calls and the floor write into buffers made once. `bce` and `asl`: "
               "numba_xent's plain loss and asymmetric loss (its defaults), the same "
               "way. `% of floor` = floor / kernel (100% = at memory bandwidth); "
               "`peer / numba_xent` > 1 means numba_xent is faster.")
    head = ["shape", "floor ms (GB/s)", "numba_xent ms", "% of floor", "bce ms",
            "bce % of floor", "asl ms", "torchvision ms", "torchvision / numba_xent",
            "optax ms", "optax / numba_xent"]
    out += ["", "| " + " | ".join(head) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for info in timed:
        m = info["median_s"]
        fl, ours = m.get("floor"), m.get("numba_xent")
        ratio = report._ratio
        row = [info["shape"], report._ms(fl) + f" ({info['bytes'] / fl / 1e9:.1f})",
               report._ms(ours), report._pct(ratio(fl, ours)), report._ms(m.get("bce")),
               report._pct(ratio(fl, m.get("bce"))), report._ms(m.get("asl")),
               report._ms(m.get("torchvision")), report._x(ratio(m.get("torchvision"), ours)),
               report._ms(m.get("optax")), report._x(ratio(m.get("optax"), ours))]
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def main(argv=None):
    report.one_table_main(argv, __doc__, "bench/results/focal.json", "Focal loss, fused",
                          "focal-benchmark", section)


if __name__ == "__main__":
    main()
