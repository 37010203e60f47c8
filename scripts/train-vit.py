#!/usr/bin/env python3
"""Trains the bundled ViT on Fashion-MNIST, in timm's layout and names.

Data: Debian's `dataset-fashion-mnist` (gzipped IDX files under /usr/share/datasets/fashion-mnist/).
Model: images upsampled to 56x56 (bilinear), patch 4 (196 tokens + the class token), D = 192,
6 blocks, 3 heads, MLP ratio 4, 10 classes, LayerNorm eps 1e-6, exact GELU: timm's
VisionTransformer(img_size=56, patch_size=4, in_chans=1, num_classes=10, embed_dim=192, depth=6,
num_heads=3) loads the weights with strict=True.
Training: AdamW (lr 1e-3, weight decay 0.05), 2 warm-up epochs then cosine, batch 256, label
smoothing 0.1, random flips and shifts of up to 2 pixels, seeded. On a GPU (bf16 autocast) the
default 30 epochs take a few minutes; on 2 CPU cores each epoch takes about half an hour.

    apt-get install -y dataset-fashion-mnist python3-torch python3-numpy
    python3 scripts/train-vit.py --out resources/models

writes vit-fmnist.safetensors (FP32 weights, metadata: heads, preprocessing, class names,
test accuracy), vit-fmnist-train.json (the training log) and, with --fixtures DIR, the first
test images as normalized pixels and the model's float64 logits on them.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vitlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default="resources/models")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--fixtures", help="also write test pixels and float64 logits here")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    size, patch = 56, 4

    xtr, ytr = vitlib.read_fashion(args.data, "train")
    xte, yte = vitlib.read_fashion(args.data, "t10k")
    xtr, ytr, xte, yte = xtr.to(dev), ytr.to(dev), xte.to(dev), yte.to(dev)
    model = vitlib.ViT(img=size, patch=patch, chans=1, classes=10, d=192, depth=6, heads=3).to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "pos_embed" not in n and "cls_token" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "pos_embed" not in n and "cls_token" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999))
    steps_per_epoch = math.ceil(len(xtr) / args.batch)
    total, warm = args.epochs * steps_per_epoch, 2 * steps_per_epoch

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    g = torch.Generator(device="cpu").manual_seed(args.seed)
    amp = dev.type == "cuda"

    def augment(imgs):
        # random horizontal flip, then a shift of up to 2 pixels (zero padding) on the 28x28 image
        flip = torch.rand(len(imgs), generator=g) < 0.5
        imgs = torch.where(flip.to(dev)[:, None, None], imgs.flip(-1), imgs)
        padded = F.pad(imgs, (2, 2, 2, 2))
        dx = torch.randint(0, 5, (len(imgs),), generator=g).to(dev)
        dy = torch.randint(0, 5, (len(imgs),), generator=g).to(dev)
        ar = torch.arange(28, device=dev)
        rows = (dy[:, None] + ar[None, :])[:, :, None].expand(-1, 28, 28)
        cols = (dx[:, None] + ar[None, :])[:, None, :].expand(-1, 28, 28)
        return padded[torch.arange(len(imgs), device=dev)[:, None, None], rows, cols]

    @torch.no_grad()
    def evaluate():
        model.eval()
        right = 0
        for i in range(0, len(xte), 1000):
            logits = model(vitlib.preprocess(xte[i:i + 1000], size))
            right += (logits.argmax(-1) == yte[i:i + 1000]).sum().item()
        model.train()
        return right / len(xte)

    log, step, t0 = [], 0, time.time()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(xtr), generator=g).to(dev)
        run_loss = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch:(i + 1) * args.batch]
            x = vitlib.preprocess(augment(xtr[idx]), size)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(model(x), ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            run_loss += loss.item()
            step += 1
        acc = evaluate()
        entry = {"epoch": epoch + 1, "train_loss": run_loss / steps_per_epoch, "test_accuracy": acc,
                 "seconds": round(time.time() - t0, 1)}
        log.append(entry)
        print(json.dumps(entry), flush=True)

    model = model.float().cpu().eval()
    xte_c, yte_c = xte.cpu(), yte.cpu()
    with torch.no_grad():
        right = sum((model(vitlib.preprocess(xte_c[i:i + 1000], size)).argmax(-1) == yte_c[i:i + 1000]).sum().item()
                    for i in range(0, len(xte_c), 1000))
    acc = right / len(xte_c)
    os.makedirs(args.out, exist_ok=True)
    record = {
        "data": "Fashion-MNIST (Debian's dataset-fashion-mnist): 60,000 training and 10,000 test images",
        "model": {"kind": "ViT, timm layout", "img_size": size, "patch_size": patch, "in_chans": 1,
                  "embed_dim": 192, "depth": 6, "num_heads": 3, "mlp_ratio": 4, "num_classes": 10,
                  "parameters": sum(p.numel() for p in model.parameters())},
        "training": {"epochs": args.epochs, "batch": args.batch, "optimizer": "AdamW lr %g wd 0.05, "
                     "2 warm-up epochs, cosine" % args.lr, "label_smoothing": 0.1,
                     "augmentation": "horizontal flip, shift up to 2 px", "seed": args.seed,
                     "device": torch.cuda.get_device_name(0) if amp else "cpu", "bf16_autocast": amp,
                     "torch": torch.__version__, "seconds": round(time.time() - t0, 1), "log": log},
        "test_accuracy_fp32": acc,
    }
    meta = vitlib.model_metadata(3, 1, size, [vitlib.FASHION_MEAN], [vitlib.FASHION_STD],
                                 vitlib.FASHION_CLASSES, name="vit-fmnist",
                                 source_size="28", test_accuracy="%.4f" % acc,
                                 dataset="Fashion-MNIST")
    path = os.path.join(args.out, "vit-fmnist.safetensors")
    vitlib.write_safetensors(path, {k: v.float() for k, v in model.state_dict().items()}, meta)
    with open(os.path.join(args.out, "vit-fmnist-train.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(f"test accuracy {acc:.4f}; wrote {path}")

    if args.fixtures:
        os.makedirs(args.fixtures, exist_ok=True)
        pix = vitlib.preprocess(xte_c[:16], size)
        m64 = vitlib.ViT(img=size, patch=patch, chans=1, classes=10, d=192, depth=6, heads=3).double()
        m64.load_state_dict(model.state_dict())
        with torch.no_grad():
            vitlib.save_npy(os.path.join(args.fixtures, "fmnist16_pixels.npy"), pix.float())
            vitlib.save_npy(os.path.join(args.fixtures, "fmnist16_labels.npy"), yte_c[:16])
            vitlib.save_npy(os.path.join(args.fixtures, "fmnist16_logits_self.npy"), m64(pix.double()))


if __name__ == "__main__":
    main()
