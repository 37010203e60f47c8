#!/usr/bin/env python3
"""The peers of `qmpp bench --model` on a GPU, timed in the same run: PyTorch's timm ViT-B/16
forward (plain) and the same weights through vitlib's script of ToMe's algorithm (its
bipartite matching and proportional attention, PyTorch ops), at one batch size and precision.

    python3 scripts/bench-model-peer.py --write-model /tmp/vitb16.safetensors \
        --json docs/perf/vitb16-peer.json [--batch 256] [--r 8]

--write-model also writes the seeded random ViT-B/16 weights (224, patch 16, 12 blocks, 1000
classes) in our model format, so that `qmpp bench --model` times the same shape.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vitlib  # noqa: E402


def timed(fn, warm=5, reps=20):
    with torch.no_grad():
        for _ in range(warm):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": times[len(times) // 2], "min_ms": times[0], "max_ms": times[-1]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-model")
    ap.add_argument("--json", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--r", type=int, default=8)
    args = ap.parse_args()
    from timm.models.vision_transformer import VisionTransformer
    torch.manual_seed(0)
    tm = VisionTransformer(img_size=224, patch_size=16, in_chans=3, num_classes=1000,
                           embed_dim=768, depth=12, num_heads=12).eval()
    if args.write_model:
        vitlib.write_safetensors(args.write_model, {k: v.half() for k, v in tm.state_dict().items()},
                                 vitlib.model_metadata(12, 3, 224, [0.5] * 3, [0.5] * 3,
                                                       [f"class {i}" for i in range(1000)],
                                                       name="vit-b16-random"))
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: only the model file was written")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ours = vitlib.ViT(img=224, patch=16, chans=3, classes=1000, d=768, depth=12, heads=12).eval()
    ours.load_state_dict(tm.state_dict(), strict=True)
    rows = []
    for prec, dtype in (("fp16", torch.half), ("fp32", torch.float)):
        m = tm.cuda().to(dtype)
        o = ours.cuda().to(dtype)
        x = torch.randn(args.batch, 3, 224, 224, device="cuda", dtype=dtype)
        rows.append({"peer": "timm VisionTransformer", "precision": prec, "method": "none",
                     **timed(lambda: m(x))})
        rows.append({"peer": "vitlib ViT (timm's layers in plain PyTorch ops)", "precision": prec,
                     "method": "none", **timed(lambda: o(x))})
        rows.append({"peer": "vitlib.tome_forward (ToMe's algorithm, PyTorch ops)",
                     "precision": prec, "method": f"tome r={args.r}",
                     **timed(lambda: vitlib.tome_forward(o, x, args.r))})
    for r in rows:
        r["images_per_s"] = args.batch / (r["median_ms"] / 1e3)
        print(f"{r['peer']:52s} {r['precision']} {r['method']:9s} {r['median_ms']:8.2f} ms "
              f"{r['images_per_s']:9.0f} img/s")
    res = {"what": f"ViT-B/16 224, batch {args.batch}, eval, no_grad, TF32 off",
           "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "timm": __import__("timm").__version__,
           "sdpa": bool(getattr(tm.blocks[0].attn, "fused_attn", False)), "rows": rows}
    with open(args.json, "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
