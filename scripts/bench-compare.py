#!/usr/bin/env python3
"""Compares bench JSON files of two builds row by row: A files, then `--`, then B files (each
side's repeats interleaved in one sitting). Per row: the median of each side's medians, B / A,
and whether it holds the refactoring rule (>= 50 us: within 5 %; smaller: within 1 us).
Usage: bench-compare.py A1.json [A2.json ...] -- B1.json [B2.json ...]"""
import json, statistics, sys

def load(paths):
    rows = {}
    for p in paths:
        for r in json.load(open(p))["results"]:
            key = (r["kernel"], r["version"], r["precision"], r["N"], r["D"], r["L"], r["K"])
            rows.setdefault(key, []).append(r["median"])
    return rows

args = sys.argv[1:]
cut = args.index("--")
a, b = load(args[:cut]), load(args[cut + 1:])
bad = 0
print(f"{'kernel':26s} {'ver':9s} {'prec':4s} {'N':>6s} {'L':>3s} {'A ms':>10s} {'B ms':>10s} {'B/A':>6s}  rule")
for key in sorted(set(a) & set(b)):
    ma, mb = statistics.median(a[key]), statistics.median(b[key])
    big = ma >= 0.05
    ok = (mb <= ma * 1.05) if big else (mb - ma <= 0.001)
    bad += not ok
    k, v, p, n, d, l, kk = key
    print(f"{k:26s} {v:9s} {p:4s} {n:6d} {l:3d} {ma:10.4f} {mb:10.4f} {mb / ma:6.3f}  {'ok' if ok else 'SLOWER'}")
print(f"{len(set(a) & set(b))} rows compared, {bad} beyond the rule (>= 50 us: 5 %; else 1 us)")
