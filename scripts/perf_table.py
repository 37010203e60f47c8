#!/usr/bin/env python3
"""Markdown tables from a `qmpp bench --json` file: python3 scripts/perf_table.py FILE [N ...]"""
import json
import sys


def main():
    data = json.load(open(sys.argv[1]))
    sizes = [int(a) for a in sys.argv[2:]] or sorted({r["N"] for r in data["results"]})
    dev = data.get("device")
    print(f"Device: {dev['name'] if isinstance(dev, dict) else dev}")
    if "ceilings" in data:
        c = data["ceilings"]
        print(f"Measured ceilings: copy {c['copy_gbps']:.0f} GB/s, cuBLAS GEMM fp16 {c['gemm_fp16_tflops']:.0f} TFLOP/s, fp32 {c['gemm_fp32_tflops']:.1f} TFLOP/s\n")
    print("| kernel | version | prec | N | L | K | median ms | p10–p90 ms | TFLOP/s | GB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in data["results"]:
        if r["N"] not in sizes:
            continue
        print(f"| {r['kernel']} | {r['version']} | {r['precision']} | {r['N']} | {r['L']} | {r['K'] or ''} | "
              f"{r['median']:.4g} | {r['p10']:.4g}–{r['p90']:.4g} | {r['tflops']:.3g} | {r['gbps']:.3g} |")


if __name__ == "__main__":
    main()
