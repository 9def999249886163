#!/usr/bin/env python3
"""raw.csv of bench/growth.sh -> markdown (min / median / max per test, metric, size,
server), or with --plot DIR, PNG plots through gnuplot.

Usage: summarize.py raw.csv            (markdown on stdout)
       summarize.py raw.csv --plot DIR (DIR/readdir.png, restart.png, restart-rss.png, idle.png)
"""
import csv
import statistics
import subprocess
import sys
from collections import OrderedDict


def load(path):
    groups = OrderedDict()
    for r in csv.DictReader(open(path)):
        try:
            v = float(r["value"])
        except ValueError:
            continue
        key = (r["test"], r["metric"], int(r["size"]), r["label"])
        groups.setdefault(key, []).append(v)
    return groups


def fmt(v):
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


UNITS = {
    "us_per_entry": "µs/entry", "pass1_us_per_entry": "µs/entry", "pass2_us_per_entry": "µs/entry",
    "walk_us_per_object": "µs/object", "ready_ms": "ms", "mounted_ms": "ms", "first_ms": "ms",
    "old_median_ms": "ms", "old_max_ms": "ms", "fresh_first_ms": "ms",
}


def markdown(groups):
    out = []
    tests = []
    for (t, _, _, _) in groups:
        if t not in tests:
            tests.append(t)
    for t in tests:
        out.append(f"\n### {t}\n")
        out.append("| metric | size | server | n | min | median | max | spread |")
        out.append("|---|---|---|---|---|---|---|---|")
        keys = sorted((k for k in groups if k[0] == t), key=lambda k: (k[1], k[2], k[3]))
        for k in keys:
            vs = groups[k]
            med = statistics.median(vs)
            spread = (max(vs) - min(vs)) / med if med else 0.0
            unit = UNITS.get(k[1], "kB" if k[1].endswith("_kb") else "")
            out.append(f"| {k[1]} {('(' + unit + ')') if unit else ''} | {k[2]:,} | {k[3]} | {len(vs)} | "
                       f"{fmt(min(vs))} | {fmt(med)} | {fmt(max(vs))} | {spread:.0%} |")
    return "\n".join(out) + "\n"


def series(groups, test, metric):
    """label -> [(size, median, min, max)]"""
    s = OrderedDict()
    for (t, m, size, label), vs in groups.items():
        if t == test and m == metric:
            s.setdefault(label, []).append((size, statistics.median(vs), min(vs), max(vs)))
    for label in s:
        s[label].sort()
    return s


def plot(groups, outdir, name, title, ylabel, lines, logy=True):
    """lines: [(test, metric, suffix)]"""
    data, plots = [], []
    for test, metric, suffix in lines:
        for label, pts in series(groups, test, metric).items():
            block = "\n".join(f"{x} {m} {lo} {hi}" for x, m, lo, hi in pts)
            data.append(block)
            i = len(data) - 1
            plots.append(f"$d{i} using 1:2:3:4 with yerrorlines title '{label}{suffix}'")
    if not plots:
        return
    script = [f"set terminal pngcairo size 900,560 font ',10'", f"set output '{outdir}/{name}.png'",
              f"set title '{title}'", "set logscale x", "set xlabel 'objects'", f"set ylabel '{ylabel}'",
              "set key left top", "set grid"]
    if logy:
        script.append("set logscale y")
    for i, block in enumerate(data):
        script.append(f"$d{i} << EOD\n{block}\nEOD")
    script.append("plot " + ", ".join(plots))
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    print(f"{outdir}/{name}.png")


def bars(groups, outdir):
    s = series(groups, "idle", "kb_per_conn")
    if not s:
        return
    rows = "\n".join(f"{label} {pts[0][1]} {pts[0][2]} {pts[0][3]}" for label, pts in s.items())
    script = ["set terminal pngcairo size 700,420 font ',10'", f"set output '{outdir}/idle.png'",
              "set title 'RSS per idle connection (median, min-max)'", "set ylabel 'kB per connection'",
              "set style fill solid 0.5", "set boxwidth 0.5", "set yrange [0:*]", "set grid ytics",
              f"$d << EOD\n{rows}\nEOD", "plot $d using 0:2:xtic(1) with boxes notitle, "
              "$d using 0:2:3:4 with yerrorbars notitle"]
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)
    print(f"{outdir}/idle.png")


def main():
    groups = load(sys.argv[1])
    if len(sys.argv) > 3 and sys.argv[2] == "--plot":
        d = sys.argv[3]
        plot(groups, d, "readdir", "READDIRPLUS, whole directory listed (median, min-max)",
             "µs per entry", [("readdir", "pass1_us_per_entry", " (1st)"),
                              ("readdir", "pass2_us_per_entry", " (2nd)"),
                              ("readdir", "us_per_entry", " readdir+fstatat")])
        plot(groups, d, "restart", "After kill -9: start and first handles (median, min-max)", "ms",
             [("restart", "ready_ms", " ready"), ("restart", "first_ms", " 1st old handle"),
              ("restart", "fresh_first_ms", " handle not in index")])
        plot(groups, d, "restart-rss", "RSS after kill -9 and restart (median, min-max)", "kB",
             [("restart", "rss_before_kb", " before kill"), ("restart", "rss_ready_kb", " at ready"),
              ("restart", "rss_after_kb", " after the handles")])
        bars(groups, d)
    else:
        sys.stdout.write(markdown(groups))


if __name__ == "__main__":
    main()
