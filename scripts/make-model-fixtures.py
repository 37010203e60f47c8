#!/usr/bin/env python3
"""Makes the model tests' reference files, with timm (1.0) and PyTorch, all in float64 on the CPU
so that TF32 or fused attention cannot leak in.

    python3 scripts/make-model-fixtures.py --model resources/models/vit-fmnist.safetensors \
        --fixtures tests/fixtures/model

reads fmnist16_pixels.npy (written by train-vit.py --fixtures) and writes:
- fmnist16_logits_timm.npy: timm's VisionTransformer on the bundled weights (strict load);
- fmnist16_tome_r{8,16,24}.npy: ToMe's published algorithm (vitlib.tome_forward: tome/merge.py's
  bipartite soft matching and size-weighted merge, its timm patch's proportional attention and
  class-token protection) at a constant r;
- vitb1.safetensors: a one-block ViT-B/16-width model (D 768, 12 heads, 224x224, 10 classes),
  seeded random weights stored in FP16, and vitb1_pixels.npy / vitb1_logits.npy: two inputs and
  timm's float64 logits on the FP16 weights.
With --bench, also times timm's plain ViT-B/16 forward at batch 256 in FP16 on the GPU.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vitlib  # noqa: E402


def timm_vit(**kw):
    from timm.models.vision_transformer import VisionTransformer
    return VisionTransformer(**kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resources/models/vit-fmnist.safetensors")
    ap.add_argument("--fixtures", default="tests/fixtures/model")
    ap.add_argument("--bench", help="write timm's ViT-B/16 FP16 batch-256 timing to this JSON")
    args = ap.parse_args()
    torch.manual_seed(0)
    report = {}

    weights, meta = vitlib.read_safetensors(args.model)
    sd = {k: v.double() for k, v in weights.items()}
    pix = torch.from_numpy(np.load(os.path.join(args.fixtures, "fmnist16_pixels.npy"))).double()
    tm = timm_vit(img_size=56, patch_size=4, in_chans=1, num_classes=10, embed_dim=192, depth=6,
                  num_heads=3).double().eval()
    tm.load_state_dict(sd, strict=True)
    ours = vitlib.ViT(img=56, patch=4, chans=1, classes=10, d=192, depth=6, heads=3).double().eval()
    ours.load_state_dict(sd, strict=True)
    with torch.no_grad():
        lt = tm(pix)
        lo = ours(pix)
        report["timm_vs_vitlib_max_abs"] = (lt - lo).abs().max().item()
        np.save(os.path.join(args.fixtures, "fmnist16_logits_timm.npy"), lt.numpy())
        for r in (8, 16, 24):
            lr = ours(pix, r=r)
            np.save(os.path.join(args.fixtures, f"fmnist16_tome_r{r}.npy"), lr.numpy())
            report[f"tome_r{r}_agreement"] = (lr.argmax(-1) == lt.argmax(-1)).double().mean().item()

    # one block at ViT-B/16 width, FP16 weights
    vb = timm_vit(img_size=224, patch_size=16, in_chans=3, num_classes=10, embed_dim=768, depth=1,
                  num_heads=12)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in vb.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim >= 2 or name in ("cls_token", "pos_embed"):
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 / p.shape[-1] ** 0.5 if p.ndim >= 2 else 0.1))
            else:
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
    half = {k: v.half() for k, v in vb.state_dict().items()}
    vitlib.write_safetensors(os.path.join(args.fixtures, "vitb1.safetensors"), half,
                             vitlib.model_metadata(12, 3, 224, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5],
                                                   [f"class {i}" for i in range(10)], name="vitb1"))
    vb = vb.double().eval()
    vb.load_state_dict({k: v.double() for k, v in half.items()}, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=g)
    with torch.no_grad():
        lv = vb(x.double())
    np.save(os.path.join(args.fixtures, "vitb1_pixels.npy"), x.float().numpy())
    np.save(os.path.join(args.fixtures, "vitb1_logits.npy"), lv.numpy())
    report["vitb1_logit_range"] = [lv.min().item(), lv.max().item()]
    with open(os.path.join(args.fixtures, "fixtures.json"), "w") as f:
        json.dump({"made_with": {"torch": torch.__version__, "timm": __import__("timm").__version__},
                   **report}, f, indent=2)
    print(json.dumps(report, indent=2))

    if args.bench and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        m = timm_vit(img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768,
                     depth=12, num_heads=12).cuda().half().eval()
        xb = torch.randn(256, 3, 224, 224, device="cuda", dtype=torch.half)
        times = []
        with torch.no_grad():
            for _ in range(5):
                m(xb)
            torch.cuda.synchronize()
            for _ in range(20):
                t0 = time.perf_counter()
                m(xb)
                torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        res = {"what": "timm VisionTransformer ViT-B/16 224, batch 256, FP16, eval, no_grad",
               "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
               "timm": __import__("timm").__version__,
               "median_ms": times[len(times) // 2], "min_ms": times[0],
               "images_per_s": 256 / (times[len(times) // 2] / 1e3),
               "sdpa": bool(getattr(m.blocks[0].attn, "fused_attn", False))}
        with open(args.bench, "w") as f:
            json.dump(res, f, indent=2)
        print(json.dumps(res))


if __name__ == "__main__":
    main()
