#!/usr/bin/env python3
"""GPU faults on a GPU server: out of device memory (another process holds almost all of it)
and no visible device. qmpp must print a clear message, fall back to the CPU under --backend
auto, and fail with exit 4 under an explicit --backend cuda; it must never crash.
Usage: python3 scripts/gpu-faults.py QMPP OUTDIR"""
import os, subprocess, sys

import numpy as np
import torch

qmpp, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
tokens = os.path.join(out, "tokens-32768.npy")
np.save(tokens, np.random.default_rng(0).standard_normal((32768, 768), dtype=np.float32))


def run(args, env=None):
    p = subprocess.run([qmpp] + args, capture_output=True, text=True, env=env)
    return p.returncode, (p.stdout + p.stderr).strip()


def report(title, code, text):
    print(f"== {title}: exit {code}")
    print("\n".join("   " + line for line in text.splitlines()[-4:]))


# no device: CUDA_VISIBLE_DEVICES hides it
env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
report("no device, --backend auto", *run(["run", tokens, "--out", f"{out}/nodev-auto", "--quiet"], env))
report("no device, --backend cuda", *run(["run", tokens, "--out", f"{out}/nodev-cuda", "--backend", "cuda"], env))

# out of memory: hold all but `spare` bytes of the device, then run
held = []
chunk = 256 << 20
while True:
    try:
        held.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
    except RuntimeError:
        if chunk <= 16 << 20:
            break
        chunk //= 2
torch.cuda.synchronize()
free, total = torch.cuda.mem_get_info()
for spare_mib in (600, 400, 250):
    while torch.cuda.mem_get_info()[0] < spare_mib << 20 and held:
        held.pop()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # back to the device, not torch's cache
    free = torch.cuda.mem_get_info()[0]
    print(f"-- device memory free for qmpp: {free >> 20} MiB of {total >> 20} MiB")
    code, text = run(["run", tokens, "--out", f"{out}/oom-auto-{spare_mib}", "--backend", "auto"])
    report(f"{free >> 20} MiB free, --backend auto", code, text)
    code2, text2 = run(["run", tokens, "--out", f"{out}/oom-cuda-{spare_mib}", "--backend", "cuda"])
    report(f"{free >> 20} MiB free, --backend cuda", code2, text2)
    if "out of memory" in text.lower():
        break
