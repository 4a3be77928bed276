#!/usr/bin/env python3
"""Per-token kernel times from tools/cupti_trace.c's CSV.

A token starts at each embedding kernel; the last `--tokens` whole ones are
used. A kernel's span (start to end) includes the time it was resident and
waiting on its predecessor (programmatic launch), so spans overlap; its
*exposed* time is the wall time from the previous kernel's end (in end
order, any stream) to its own: what the token would lose without it. Per
kernel name: launches a token, mean span, exposed µs a token (these sum to
the token's time).
  python3 tools/trace_summary.py trace.csv [--tokens 24] [--timeline]
"""
import argparse
import csv
import re
import statistics


def short(mangled):
    """gemv_kernel<2,1,0,1> from _Z11gemv_kernelILi2ELi1ELi0ELi1EEv9gemv_args."""
    m = re.match(r"_Z\d+(\w+?)I(.*?)EEv", mangled)
    if not m:
        return re.sub(r"^_Z\d+", "", mangled)[:40]
    args = re.findall(r"L[ib](\d+)E", m.group(2) + "E")
    return f"{m.group(1)}<{','.join(args)}>"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--timeline", action="store_true", help="print the median token's kernels too")
    a = ap.parse_args()
    with open(a.csv) as f:
        recs = sorted((int(r["start_ns"]), int(r["end_ns"]), short(r["name"])) for r in csv.DictReader(f))
    starts = [i for i, r in enumerate(recs) if r[2].startswith("embed_kernel")]
    tokens = [recs[s:e] for s, e in zip(starts, starts[1:])][-a.tokens:]
    if not tokens:
        raise SystemExit("fewer than two tokens (embed_kernel records) in the trace")
    spans = sorted((t[-1][1] - t[0][0], i) for i, t in enumerate(tokens))
    print(f"{len(tokens)} tokens: median {spans[len(spans) // 2][0] / 1e3:.1f} µs, {len(tokens[0])} kernels each")
    stats = {}
    for t in tokens:
        prev_end = t[0][0]
        for s, e, n in sorted(t, key=lambda r: r[1]):
            st = stats.setdefault(n, [0, 0, 0])
            st[0] += 1
            st[1] += e - s
            st[2] += max(0, e - prev_end)
            prev_end = max(prev_end, e)
    print(f"{'exposed µs':>10} {'launches':>8} {'mean span':>9}  kernel")
    for n, (c, span, exposed) in sorted(stats.items(), key=lambda x: -x[1][2]):
        print(f"{exposed / len(tokens) / 1e3:10.1f} {c / len(tokens):8.1f} {span / c / 1e3:9.2f}  {n}")
    if a.timeline:
        t = tokens[spans[len(spans) // 2][1]]
        print(f"\n{'start':>9} {'end':>9}  kernel (median token, µs from its start)")
        for s, e, n in t:
            print(f"{(s - t[0][0]) / 1e3:9.2f} {(e - t[0][0]) / 1e3:9.2f}  {n}")


if __name__ == "__main__":
    main()
