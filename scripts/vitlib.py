"""What the model scripts share: Fashion-MNIST's IDX files, a ViT in timm's layout and names,
ToMe's published algorithm (tome/merge.py and its timm patch) written out, and a safetensors
writer. Plain PyTorch (no timm needed): runs on Debian's python3-torch 1.13 and on 2.x.
"""
import gzip
import json
import math
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530


def read_idx(path):
    """An IDX file (gzipped or not) as a uint8 tensor of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    body = raw[4 + 4 * nd:]
    if len(body) != math.prod(dims):
        raise SystemExit(f"{path}: {len(body)} bytes of data for shape {list(dims)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def read_fashion(folder, split):
    """(images uint8 [N,28,28], labels int64 [N]) of 'train' or 't10k'."""
    x = read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte.gz")).long()
    return x, y


def preprocess(images, size, mean=FASHION_MEAN, std=FASHION_STD):
    """uint8 [N,H,W] -> float [N,1,size,size]: /255, bilinear resize (half-pixel centres, no
    antialiasing: PyTorch's and OpenCV's INTER_LINEAR agree), normalized."""
    x = images.float().unsqueeze(1) / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x - mean) / std


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.scale = heads, (d // heads) ** -0.5
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x, size=None):
        """Returns the output, the keys averaged over heads (ToMe's metric) and the attention."""
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        if size is not None:  # proportional attention: + ln(size) of each key
            attn = attn + size.log()[:, None, None, :, 0]
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x), k.mean(1), attn


class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU, as timm's nn.GELU


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, int(d * mlp_ratio))


class ViT(nn.Module):
    """timm's VisionTransformer (class token, global pool = token, no pre-norm, qkv bias): the
    state_dict names are timm's, so `timm.models.vision_transformer.VisionTransformer` loads
    these weights with strict=True."""

    def __init__(self, img=56, patch=4, chans=1, classes=10, d=192, depth=6, heads=3):
        super().__init__()
        self.heads = heads
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(chans, d, patch, patch)
        n = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, d))
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def embed(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embed

    def forward(self, x, r=None):
        """Plain forward, or ToMe with r a list of per-block merge counts (see tome_forward)."""
        if r is not None:
            return tome_forward(self, x, r)
        x = self.embed(x)
        for blk in self.blocks:
            x = x + blk.attn(blk.norm1(x))[0]
            x = x + blk.mlp(blk.norm2(x))
        return self.head(self.norm(x)[:, 0])


# --- ToMe, as tome/merge.py and tome/patch/timm.py define it -----------------------------------

def bipartite_soft_matching(metric, r, class_token=True):
    protected = 1 if class_token else 0
    t = metric.shape[1]
    r = min(r, (t - protected) // 2)
    if r <= 0:
        return lambda x, mode="mean": x
    with torch.no_grad():
        metric = metric / metric.norm(dim=-1, keepdim=True)
        a, b = metric[..., ::2, :], metric[..., 1::2, :]
        scores = a @ b.transpose(-1, -2)
        if class_token:
            scores[..., 0, :] = -math.inf
        node_max, node_idx = scores.max(dim=-1)
        edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]
        unm_idx = edge_idx[..., r:, :]
        src_idx = edge_idx[..., :r, :]
        dst_idx = node_idx[..., None].gather(dim=-2, index=src_idx)
        if class_token:
            unm_idx = unm_idx.sort(dim=1)[0]

    def merge(x, mode="mean"):
        src, dst = x[..., ::2, :], x[..., 1::2, :]
        n, t1, c = src.shape
        unm = src.gather(dim=-2, index=unm_idx.expand(n, t1 - r, c))
        src = src.gather(dim=-2, index=src_idx.expand(n, r, c))
        dst = dst.scatter_reduce(-2, dst_idx.expand(n, r, c), src, reduce=mode)
        return torch.cat([unm, dst], dim=1)

    return merge


def merge_wavg(merge, x, size):
    x = merge(x * size, mode="sum")
    size = merge(size, mode="sum")
    return x / size, size


def parse_r(num_layers, r):
    """tome/utils.py: an int, an (r, inflection) tuple, or a list."""
    inflect = 0
    if isinstance(r, list):
        return list(r) + [0] * (num_layers - len(r))
    if isinstance(r, tuple):
        r, inflect = r
    min_val = int(r * (1.0 - inflect))
    max_val = 2 * r - min_val
    step = (max_val - min_val) / (num_layers - 1)
    return [int(min_val + step * i) for i in range(num_layers)]


def tome_forward(model, x, r):
    """ToMe's patched timm forward: proportional attention, class token protected, merge between
    attention and MLP on the keys averaged over heads, size-weighted means."""
    rs = parse_r(len(model.blocks), r)
    x = model.embed(x)
    size = None
    for blk, rl in zip(model.blocks, rs):
        y, metric, _ = blk.attn(blk.norm1(x), size)
        x = x + y
        if rl > 0:
            merge = bipartite_soft_matching(metric, rl, class_token=True)
            x, size = merge_wavg(merge, x, size if size is not None else torch.ones_like(x[..., 0, None]))
        x = x + blk.mlp(blk.norm2(x))
    return model.head(model.norm(x)[:, 0])


# --- files --------------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    """tensors: {name: tensor}; float tensors keep their dtype (F16, F32, F64)."""
    names = {torch.float16: "F16", torch.float32: "F32", torch.float64: "F64"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        arr = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(arr)]}
        blobs.append(arr)
        offset += len(arr)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """(tensors {name: tensor}, metadata {str: str})."""
    names = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
             "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}
    with open(path, "rb") as f:
        raw = f.read()
    (hl,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hl])
    meta = header.pop("__metadata__", {})
    body = raw[8 + hl:]
    out = {}
    for name, v in header.items():
        b, e = v["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[b:e]), dtype=names[v["dtype"]]).reshape(v["shape"])
    return out, meta


def model_metadata(heads, chans, size, mean, std, classes, **extra):
    """The metadata our model files carry (SPEC: what the weights do not say)."""
    meta = {"format": "qmpp-vit", "architecture": "vit", "num_heads": str(heads),
            "channels": str(chans), "input_size": str(size), "interpolation": "bilinear",
            "mean": json.dumps(list(mean)), "std": json.dumps(list(std)),
            "class_names": json.dumps(classes)}
    meta.update({k: (v if isinstance(v, str) else json.dumps(v)) for k, v in extra.items()})
    return meta


def save_npy(path, t):
    import numpy as np
    np.save(path, t.detach().cpu().numpy())
