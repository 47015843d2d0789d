"""Tables and a chart from the CPU benchmark's pytest-benchmark JSON.

Regenerate everything (run from the repository root)::

    python -m pytest bench/test_bench_cpu.py --benchmark-enable \\
        --benchmark-json=bench/results/cpu.json && python bench/report.py bench/results/cpu.json

Prints the Markdown and writes ``cpu.md`` and ``cpu.png`` beside the JSON (or into
``--out-dir``); ``--readme README.md`` also puts the tables into the README, between its
``<!-- cpu-benchmark -->`` markers (``--section cpu-benchmark-half``: the half-precision
run's ``bench/results/cpu_half.json``, between its own markers).  Per (op, shape, dtype):
each contender's median in ms over the interleaved rounds, each peer's ratio
``peer / numba_xent`` (above 1: numba_xent is faster; numba_xent with its buffers
reused, the peers as they are called),
and numba_xent's "% of floor" = floor median / numba_xent median * 100 (100% = memory-
bandwidth bound), with buffers reused (both) and allocating (both).  Needs only the
standard library, plus matplotlib for the PNG (skipped, with a note, when matplotlib is
missing).
"""

import argparse
import json
import math
import pathlib
import sys

OPS = ("forward", "gradient", "fused")
SHAPES = ("4096x1024", "16384x4096", "1e6x16", "64x1e6")
DTYPES = ("float32", "float64", "float16", "bfloat16")
PEERS = ("numpy", "torch", "jax", "tf")
SUBJECT = "numba_xent"
MARKERS = ("<!-- cpu-benchmark -->", "<!-- /cpu-benchmark -->")


def markers(section):
    """The README markers around the named section (``cpu-benchmark``: MARKERS)."""
    return f"<!-- {section} -->", f"<!-- /{section} -->"


def load(path):
    """``{(op, shape, dtype): {impl: median_s}}``, ``{case: bytes}`` and the JSON's header."""
    data = json.loads(pathlib.Path(path).read_text())
    medians, nbytes = {}, {}
    for b in data.get("benchmarks", []):
        info = b.get("extra_info") or {}
        if not {"op", "shape", "dtype", "median_s"} <= info.keys():
            continue
        case = (info["op"], info["shape"], info["dtype"])
        medians[case] = info["median_s"]
        nbytes[case] = info.get("bytes")
    return medians, nbytes, data


def _order(case):
    op, shape, dtype = case
    rank = lambda seq, v: seq.index(v) if v in seq else len(seq)  # noqa: E731
    return rank(OPS, op), rank(SHAPES, shape), shape, rank(DTYPES, dtype), dtype


def _ms(seconds):
    if seconds is None:
        return "—"
    return f"{seconds * 1e3:.2f}" if seconds < 10 else f"{seconds * 1e3:.0f}"


def _ratio(num, den):
    return None if num is None or den is None or den == 0 else num / den


def _pct(r):
    return "—" if r is None else f"{r * 100:.0f}%"


def _x(r):
    return "—" if r is None else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def header(data):
    """The run's circumstances, as Markdown list items."""
    out = []
    mi, ci = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = mi.get("cpu", {}).get("brand_raw") or mi.get("processor", "?")
    pk = mi.get("packages", {})
    out.append(f"- Run: {data.get('datetime', '?')}; commit {str(ci.get('id', '?'))[:10]}"
               f"{' (dirty)' if ci.get('dirty') else ''}")
    out.append(f"- Machine: {cpu}, {mi.get('cpu_count', '?')} cores; numba threads "
               f"{mi.get('numba_num_threads', '?')} ({mi.get('numba_threading_layer', '?')}), "
               f"torch threads {mi.get('torch_num_threads', '?')}")
    others = mi.get("cpu_busy_others")
    if others is not None:
        note = " — **other processes were busy: timings are skewed**" if others > 0.1 else ""
        out.append(f"- Load: this run used {mi.get('cpu_busy_self', 0):.0%} of all cores, "
                   f"other processes {others:.0%}{note}")
    out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in pk.items()))
    out.append("- Median wall time in ms over rounds that run every contender once each, "
               "interleaved. `numba_xent` and `floor`: into output buffers made once "
               "(`out=`/`grad=`); `alloc`: the same calls allocating their outputs, each "
               "compared with the floor measured the same way. `peer / numba_xent` > 1 means "
               "numba_xent (buffers reused) is faster than the peer as it is called. "
               "`% of floor` = floor / numba_xent (100% = at memory bandwidth). The autograd "
               "peers' `gradient` includes their forward.")
    return out


def tables(medians, nbytes):
    """One Markdown table per op."""
    peers = [p for p in PEERS if any(p in v for v in medians.values())]
    out = []
    for op in OPS:
        cases = sorted((c for c in medians if c[0] == op), key=_order)
        if not cases:
            continue
        out.append(f"#### {op}")
        out.append("")
        head = ["shape", "dtype", "MB moved", "floor ms (GB/s)", f"{SUBJECT} ms", "% of floor",
                "alloc: floor ms", f"alloc: {SUBJECT} ms", "alloc: % of floor"]
        head += [f"{p} ms" for p in peers] + [f"{p} / {SUBJECT}" for p in peers]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
        for case in cases:
            m = medians[case]
            nx, fl, b = m.get(SUBJECT), m.get("floor"), nbytes.get(case)
            nx_a, fl_a = m.get(f"{SUBJECT}_alloc"), m.get("floor_alloc")
            floor = _ms(fl) + (f" ({b / fl / 1e9:.1f})" if fl and b else "")
            row = [case[1], case[2], f"{b / 1e6:.0f}" if b else "—", floor, _ms(nx),
                   _pct(_ratio(fl, nx)), _ms(fl_a), _ms(nx_a), _pct(_ratio(fl_a, nx_a))]
            row += [_ms(m.get(p)) for p in peers]
            row += [_x(_ratio(m.get(p), nx)) for p in peers]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return out


def markdown(medians, nbytes, data):
    out = ["# CPU benchmark: Caffe2 sigmoid cross-entropy", ""] + header(data) + [""]
    return "\n".join(out + tables(medians, nbytes))


def readme_section(medians, nbytes, data):
    """What goes between the README's markers: the run's circumstances and the tables."""
    return "\n".join(header(data) + [""] + tables(medians, nbytes))


def put_into_readme(path, section, between=MARKERS):
    text = pathlib.Path(path).read_text()
    start, end = (text.index(m) for m in between)
    text = text[:start + len(between[0])] + "\n" + section + "\n" + text[end:]
    pathlib.Path(path).write_text(text)


def publish(src, title, text, readme=None, section=None):
    """Prints ``text``, writes it under ``title`` to ``<stem>.md`` beside the JSON ``src``,
    and with ``readme`` puts it between that README's markers of ``section``."""
    print(text)
    (src.parent / f"{src.stem}.md").write_text(f"# {title}\n\n{text}\n")
    if readme:
        put_into_readme(readme, text, markers(section))


def one_table_main(argv, doc, default, title, section, render):
    """The command line of a one-table report (calls_report.py, focal_report.py): the
    JSON's ``render(data)`` (None: no timed cases in it), then :func:`publish`."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("json", nargs="?", default=default)
    ap.add_argument("--readme", help="a README whose table to rewrite")
    args = ap.parse_args(argv)
    src = pathlib.Path(args.json)
    text = render(json.loads(src.read_text()))
    if text is None:
        sys.exit(f"{src}: no timed cases (was the run made with --benchmark-enable?)")
    publish(src, title, text, args.readme, section)


def chart(medians, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    peers = [p for p in PEERS if any(p in v for v in medians.values())]
    fig, axes = plt.subplots(len(OPS) + 1, 1, figsize=(12, 15), constrained_layout=True)
    colors = dict(zip(PEERS, ("#4c72b0", "#dd8452", "#55a868", "#c44e52")))
    for ax, op in zip(axes, OPS):
        cases = sorted((c for c in medians if c[0] == op), key=_order)
        labels = [f"{s}\n{d}" for _, s, d in cases]
        width = 0.8 / max(1, len(peers))
        for k, p in enumerate(peers):
            vals = [_ratio(medians[c].get(p), medians[c].get(SUBJECT)) for c in cases]
            xs = [i + (k - (len(peers) - 1) / 2) * width for i in range(len(cases))]
            ax.bar(xs, [v if v else math.nan for v in vals], width, label=p, color=colors[p])
        ax.axhline(1, color="black", lw=0.8)
        ax.set_yscale("log")
        fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x")
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
            lambda v, _: f"{v:g}x" if f"{v:.0e}"[0] in "25" else ""))
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xticks(range(len(cases)), labels, fontsize=8)
        ax.set_ylabel(f"peer time / {SUBJECT} time")
        ax.set_title(f"{op}: speed-up of {SUBJECT} (above 1 = {SUBJECT} faster)")
        ax.legend(fontsize=8, ncol=len(peers))
    ax = axes[-1]
    cases = sorted({c[1:] for c in medians}, key=lambda c: _order(("", *c))[1:])
    width = 0.8 / len(OPS)
    for k, op in enumerate(OPS):
        vals = [_ratio(medians.get((op, *c), {}).get("floor"),
                       medians.get((op, *c), {}).get(SUBJECT)) for c in cases]
        xs = [i + (k - (len(OPS) - 1) / 2) * width for i in range(len(cases))]
        ax.bar(xs, [100 * v if v else math.nan for v in vals], width, label=op)
    ax.axhline(100, color="black", lw=0.8)
    ax.set_xticks(range(len(cases)), [f"{s}\n{d}" for s, d in cases], fontsize=8)
    ax.set_ylabel("% of memory floor")
    ax.set_title(f"{SUBJECT}: memory-floor time / {SUBJECT} time (100% = bandwidth bound)")
    ax.legend(fontsize=8, ncol=len(OPS))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="?", default="bench/results/cpu.json")
    ap.add_argument("--out-dir", help="where cpu.md / cpu.png go (default: beside the JSON)")
    ap.add_argument("--readme", help="a README whose benchmark section to rewrite")
    ap.add_argument("--section", default="cpu-benchmark",
                    help="the README section's marker name (cpu-benchmark-half: the halves)")
    args = ap.parse_args(argv)
    src = pathlib.Path(args.json)
    out_dir = pathlib.Path(args.out_dir) if args.out_dir else src.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    medians, nbytes, data = load(src)
    if not medians:
        sys.exit(f"{src}: no timed cases (was the run made with --benchmark-enable?)")
    md = markdown(medians, nbytes, data)
    print(md)
    stem = src.stem
    (out_dir / f"{stem}.md").write_text(md + "\n")
    if args.readme:
        put_into_readme(args.readme, readme_section(medians, nbytes, data),
                        markers(args.section))
    try:
        chart(medians, out_dir / f"{stem}.png")
    except ImportError:
        print(f"(matplotlib not installed: {stem}.png not written)", file=sys.stderr)


if __name__ == "__main__":
    main()
