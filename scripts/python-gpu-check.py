"""qmpp.patch.timm on a real timm VisionTransformer (the GPU machine has timm and PyTorch 2.x):
the bundled ViT's weights in timm.models.vision_transformer.VisionTransformer, on the GPU,
against `qmpp eval` (qmpp.eval_model, the engine's CPU forward) with the same weights and pixels,
and, for method "tome", against ToMe's published algorithm (scripts/vitlib.py). Also a CUDA
tensor through qmpp.merge. Prints one JSON document.

  PYTHONPATH=build/gpu/python python3 scripts/python-gpu-check.py PIXELS.npy [--out FILE]
PIXELS.npy: [B, 1, 56, 56] float32, the model's normalized inputs (scripts/make-pixels.py).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

import qmpp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vitlib  # noqa: E402

MODEL = os.path.join(HERE, "..", "resources", "models", "vit-fmnist.safetensors")


def weights():
    from safetensors.torch import load_file  # timm depends on safetensors
    return load_file(MODEL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pixels")
    ap.add_argument("--out")
    a = ap.parse_args()
    import timm
    from timm.models.vision_transformer import VisionTransformer

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.from_numpy(np.load(a.pixels))
    m = VisionTransformer(img_size=56, patch_size=4, in_chans=1, num_classes=10, embed_dim=192,
                          depth=6, num_heads=3, global_pool="token", class_token=True)
    m.load_state_dict(weights(), strict=True)
    m = m.eval().to(dev)
    ref = vitlib.ViT()
    ref.load_state_dict(weights(), strict=True)
    ref = ref.eval().to(dev)
    report = {"timm": timm.__version__, "torch": torch.__version__, "device": dev,
              "gpu": torch.cuda.get_device_name() if dev == "cuda" else None,
              "images": int(x.shape[0]), "rows": []}
    with torch.no_grad():
        plain_gpu = torch.cat([m(c.to(dev)) for c in x.split(256)]).cpu()
    for method, r in (("tome", 8), ("tome", 16), ("quickmerge", 8), ("quickmerge", 16),
                      ("topk", 16), ("random", 16)):
        t0 = time.time()
        ev = qmpp.eval_model(MODEL, a.pixels, method=method, r=r, backend="cpu")
        t_eval = time.time() - t0
        qmpp.patch.timm(m, method=method, r=r)
        t0 = time.time()
        with torch.no_grad():
            got = torch.cat([m(c.to(dev)) for c in x.split(256)]).cpu()
        t_patch = time.time() - t0
        qmpp.patch.remove(m)
        want = torch.from_numpy(ev["logits_merged"][0])
        plain = torch.from_numpy(ev["logits_plain"])
        row = {"method": method, "r": r,
               "max_abs_logit_diff_vs_qmpp_eval": float((got - want).abs().max()),
               "top1_equal_vs_qmpp_eval": float((got.argmax(1) == want.argmax(1)).float().mean()),
               "plain_max_abs_diff_timm_vs_qmpp_eval": float((plain_gpu - plain).abs().max()),
               "agreement_patched": float((got.argmax(1) == plain_gpu.argmax(1)).float().mean()),
               "agreement_qmpp_eval": ev["per_seed"][0]["agreement"]["value"],
               "seconds_qmpp_eval_cpu": t_eval, "seconds_patched": t_patch}
        if method == "tome":
            with torch.no_grad():
                tome = torch.cat([vitlib.tome_forward(ref, c.to(dev), r) for c in x.split(256)])
            row["max_abs_logit_diff_vs_tome_published"] = float((got - tome.cpu()).abs().max())
            row["top1_equal_vs_tome_published"] = float(
                (got.argmax(1) == tome.cpu().argmax(1)).float().mean())
        report["rows"].append(row)
        print(json.dumps(row), file=sys.stderr)
    if dev == "cuda":  # a CUDA tensor through qmpp.merge: the result comes back on the device
        t = torch.from_numpy(np.load(os.path.join(HERE, "..", "resources", "samples",
                                                  "chelsea_tokens.npy"))).cuda()
        r = qmpp.merge(t, k=106, backend="cpu")
        cpu = qmpp.merge(t.cpu().numpy(), k=106, backend="cpu")
        report["cuda_tensor_merge"] = {
            "result_device": str(r.merged.device),
            "equal_to_numpy_input": bool(np.array_equal(r.merged.cpu().numpy(), cpu.merged))}
    text = json.dumps(report, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
