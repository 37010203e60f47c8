#!/usr/bin/env python3
"""Converts a timm or Hugging Face ViT checkpoint into a model file for `qmpp eval` and the
studio: timm's tensor names, and the metadata the weights do not carry (heads, preprocessing,
class names).

    python3 scripts/convert-timm.py CHECKPOINT --out vit.safetensors \
        [--heads 12] [--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225] \
        [--interpolation bicubic] [--class-names names.txt] [--dtype f32|f16] [--name NAME]

CHECKPOINT is a state_dict in .pth/.pt/.bin (torch.save; a {"state_dict": ...} or
{"model": ...} wrapper is unwrapped) or .safetensors, with either
- timm's names (VisionTransformer: patch_embed.proj, cls_token, pos_embed, blocks.i.*, norm, head), or
- Hugging Face transformers' ViTForImageClassification names (vit.embeddings..., vit.encoder.layer.i...,
  classifier): query, key and value are concatenated into timm's qkv. Note that Hugging Face ViTs
  use LayerNorm eps 1e-12 where timm (and qmpp) use 1e-6; logits differ by about 1e-5.
Only plain ViTs convert: a class token, global pool = token, no register or distillation tokens,
no layer scale, no pre-norm. Runs with Debian's python3-torch.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vitlib  # noqa: E402

HEADS_BY_DIM = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}


def load_state(path):
    if path.endswith(".safetensors"):
        sd, _ = vitlib.read_safetensors(path)
        return sd
    obj = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        sys.exit(f"{path}: not a state_dict")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def strip_prefixes(sd):
    for pre in ("module.", "model.", "backbone."):
        if sd and all(k.startswith(pre) for k in sd):
            sd = {k[len(pre):]: v for k, v in sd.items()}
    return sd


def from_hf(sd):
    out = {}
    g = lambda k: sd.pop(k)  # noqa: E731
    out["cls_token"] = g("vit.embeddings.cls_token")
    out["pos_embed"] = g("vit.embeddings.position_embeddings")
    out["patch_embed.proj.weight"] = g("vit.embeddings.patch_embeddings.projection.weight")
    out["patch_embed.proj.bias"] = g("vit.embeddings.patch_embeddings.projection.bias")
    i = 0
    while f"vit.encoder.layer.{i}.attention.attention.query.weight" in sd:
        p, q = f"vit.encoder.layer.{i}.", f"blocks.{i}."
        for t in ("weight", "bias"):
            out[q + "attn.qkv." + t] = torch.cat([g(p + f"attention.attention.{n}.{t}")
                                                  for n in ("query", "key", "value")], 0)
            out[q + "attn.proj." + t] = g(p + "attention.output.dense." + t)
            out[q + "mlp.fc1." + t] = g(p + "intermediate.dense." + t)
            out[q + "mlp.fc2." + t] = g(p + "output.dense." + t)
            out[q + "norm1." + t] = g(p + "layernorm_before." + t)
            out[q + "norm2." + t] = g(p + "layernorm_after." + t)
        i += 1
    for t in ("weight", "bias"):
        out["norm." + t] = g("vit.layernorm." + t)
        out["head." + t] = g("classifier." + t)
    sd.pop("vit.pooler.dense.weight", None)
    sd.pop("vit.pooler.dense.bias", None)
    if sd:
        sys.exit("tensors this converter does not know: " + ", ".join(sorted(sd)[:8]))
    return out


def floats(text, n, what):
    v = [float(x) for x in text.split(",")]
    if len(v) == 1:
        v = v * n
    if len(v) != n:
        sys.exit(f"--{what} needs {n} values (one per channel)")
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--mean", default="0.485,0.456,0.406")
    ap.add_argument("--std", default="0.229,0.224,0.225")
    ap.add_argument("--interpolation", default="bicubic", choices=["bilinear", "bicubic", "nearest"])
    ap.add_argument("--class-names", help="a text file, one name per line, in class order")
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    ap.add_argument("--name")
    args = ap.parse_args()

    sd = strip_prefixes(load_state(args.checkpoint))
    if "vit.embeddings.cls_token" in sd:
        sd = from_hf(sd)
    for bad in ("fc_norm.weight", "norm_pre.weight", "reg_token", "dist_token", "blocks.0.ls1.gamma"):
        if bad in sd:
            sys.exit(f"{args.checkpoint}: '{bad}' belongs to a ViT variant qmpp does not run "
                     "(plain ViTs only: class-token pooling, no registers, distillation or layer scale)")
    if "head.fc.weight" in sd:  # timm's newer head wrapper
        sd["head.weight"], sd["head.bias"] = sd.pop("head.fc.weight"), sd.pop("head.fc.bias")
    for need in ("patch_embed.proj.weight", "pos_embed", "cls_token", "head.weight"):
        if need not in sd:
            sys.exit(f"{args.checkpoint}: no '{need}': not a timm or Hugging Face ViT state_dict")
    d, c, p, _ = sd["patch_embed.proj.weight"].shape
    n = sd["pos_embed"].shape[1] - 1
    grid = int(round(n ** 0.5))
    if grid * grid != n:
        sys.exit(f"pos_embed holds {n} patch positions, not a square grid")
    heads = args.heads or HEADS_BY_DIM.get(d)
    if not heads:
        sys.exit(f"D = {d}: pass --heads")
    classes = sd["head.weight"].shape[0]
    names = [f"class {i}" for i in range(classes)]
    if args.class_names:
        with open(args.class_names) as f:
            names = [ln.strip() for ln in f if ln.strip()]
        if len(names) != classes:
            sys.exit(f"{args.class_names}: {len(names)} names for {classes} classes")
    meta = vitlib.model_metadata(heads, c, grid * p, floats(args.mean, c, "mean"),
                                 floats(args.std, c, "std"), names,
                                 name=args.name or os.path.splitext(os.path.basename(args.out))[0],
                                 converted_from=os.path.basename(args.checkpoint))
    meta["interpolation"] = args.interpolation
    dtype = torch.float16 if args.dtype == "f16" else torch.float32
    vitlib.write_safetensors(args.out, {k: v.to(dtype) for k, v in sd.items()}, meta)
    print(json.dumps({"out": args.out, "dim": d, "depth": sum(1 for k in sd if k.endswith("attn.qkv.weight")),
                      "heads": heads, "image_size": grid * p, "patch": p, "classes": classes,
                      "dtype": args.dtype}))


if __name__ == "__main__":
    main()
