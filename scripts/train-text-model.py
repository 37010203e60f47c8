#!/usr/bin/env python3
"""Trains the small language model behind the bundled text example, and exports one passage.

The text is the King James Version of the Bible (public domain) as Debian's `bible-kjv` package
ships it. The model is a 4-layer, 4-head causal transformer (D = 128) over whole words, trained
from scratch on the CPU with Debian's `python3-torch`. Psalm 23 and every 20th chapter are held
out; the passage exported is Psalm 23, which the model never saw in training.

    apt-get install -y bible-kjv python3-torch libopenblas0-pthread   # OpenBLAS: 15x faster than
                                                                    # the reference BLAS
    /usr/bin/python3 scripts/train-text-model.py --out resources/samples

writes psalm23.safetensors (tokens [N, 128] = the last layer's output, hidden_states [4, N, 128],
attentions [4, 4, N, N], the token strings in the "labels" metadata), psalm23.txt (one token
per line, for `qmpp run --labels`) and psalm23-model.json (training record: losses, baselines,
settings, time). With --weights-out it also writes the weights for `qmpp eval` (FP32, the
vocabulary, heads and LayerNorm eps in the metadata): resources/models/kjv-lm.safetensors comes
from

    /usr/bin/python3 scripts/train-text-model.py --model kjv-lm.pt \
        --weights-out resources/models/kjv-lm.safetensors --fixtures tests/fixtures/model

which trains once (about 22 minutes on 2 cores) and reproduces the bundled psalm23 files bit
for bit; --fixtures writes the forward's reference outputs the tests compare with.
"""
import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|[0-9]+|[^\sA-Za-z0-9]")


def read_kjv():
    """[(book, chapter, verse, text)] from the `bible` program of Debian's bible-kjv."""
    try:
        raw = subprocess.run(["bible", "-l", "100000", "gen1:1-rev22:21"], check=True,
                             capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("the `bible` program is missing: apt-get install -y bible-kjv")
    verses, book, chapter = [], None, 0
    for line in raw.splitlines():
        head = re.match(r"^(\S.*\S) (\d+)$", line)
        if head:
            book, chapter = head.group(1), int(head.group(2))
            continue
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m and book:
            verses.append((book, chapter, int(m.group(1)), m.group(2)))
    if len(verses) < 30000:
        sys.exit(f"expected the whole KJV (31,102 verses), read {len(verses)}")
    return verses


class Block(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))

    def forward(self, x, mask, want_weights=False):
        h = self.ln1(x)
        a, w = self.attn(h, h, h, attn_mask=mask, need_weights=want_weights, average_attn_weights=False)
        x = x + a
        x = x + self.ff(self.ln2(x))
        return x, w


class LM(nn.Module):
    def __init__(self, vocab, d, layers, heads, ff, context):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, ff) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.context = context

    def forward(self, ids, want=False):
        n = ids.shape[1]
        mask = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
        x = self.tok(ids) + self.pos(torch.arange(n))[None]
        hidden, attn = [], []
        for b in self.blocks:
            x, w = b(x, mask, want)
            hidden.append(x)
            attn.append(w)
        logits = F.linear(self.ln(x), self.tok.weight)  # tied output embedding
        return logits, hidden, attn


def write_safetensors(path, tensors, metadata):
    """tensors: {name: (dtype "F16" or "F32", tensor)}; vitlib's writer does the rest."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import vitlib
    vitlib.write_safetensors(path, {n: t.to(torch.float16 if d == "F16" else torch.float32)
                                    for n, (d, t) in tensors.items()}, metadata)


def export_weights(path, model, itos, record, heads):
    """The state_dict in its own names (tok, pos, blocks.i.{ln1, attn.in_proj_*, attn.out_proj,
    ln2, ff.0, ff.2}, ln), FP32, with what the weights do not say in the metadata."""
    meta = {"kind": "causal-lm", "name": "kjv-lm", "num_heads": str(heads),
            "layer_norm_eps": "1e-05", "vocabulary": json.dumps(itos),
            "tokenizer": WORD.pattern, "lowercase": "true",
            "unknown": itos[0], "source": record["text"],
            "heldout_nats_per_word": f"{record['heldout']['model_nats_per_word']:.4f}"}
    tensors = {n: t.detach().float() for n, t in model.state_dict().items()}
    write_safetensors(path, {n: ("F32", t) for n, t in tensors.items()}, meta)
    print(f"wrote {path} ({sum(t.numel() for t in tensors.values())} parameters)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="resources/samples")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--model", help="save the trained weights here; when the file exists, load them "
                                    "instead of training (re-exports in seconds)")
    ap.add_argument("--weights-out", help="also write the weights for `qmpp eval` (.safetensors, "
                                          "vocabulary and settings in the metadata)")
    ap.add_argument("--heldout-text", help="write the held-out chapters' text (never trained on) "
                                           "to this file, for `qmpp eval`, and stop")
    ap.add_argument("--fixtures", help="also write the forward's reference outputs on Psalm 23 "
                                       "for the tests (kjv_psalm23_*.npy in this folder)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    d, layers, heads, ff, context, batch = 128, 4, 4, 512, 128, 24

    verses = read_kjv()
    order, seen = [], set()
    for b, c, _, _ in verses:
        if (b, c) not in seen:
            seen.add((b, c))
            order.append((b, c))
    held = {bc for i, bc in enumerate(order) if i % 20 == 7} | {("Psalms", 23)}
    words = lambda text: WORD.findall(text)
    if args.heldout_text:
        with open(args.heldout_text, "w") as f:
            for b, c, v, text in verses:
                if (b, c) in held:
                    f.write(text + "\n")
        print(f"wrote {args.heldout_text}: {len(held)} held-out chapters")
        return
    train_w, val_w = [], []
    for b, c, _, text in verses:
        (val_w if (b, c) in held else train_w).extend(words(text))
    counts = collections.Counter(w.lower() for w in train_w)
    itos = ["<unk>"] + [w for w, _ in counts.most_common(args.vocab - 1)]
    stoi = {w: i for i, w in enumerate(itos)}
    enc = lambda ws: torch.tensor([stoi.get(w.lower(), 0) for w in ws], dtype=torch.long)
    train, val = enc(train_w), enc(val_w)
    coverage = float((train != 0).float().mean())
    print(f"KJV: {len(verses)} verses, {len(train)} training words, {len(val)} held-out words "
          f"({len(held)} chapters); vocabulary {len(itos)} covers {coverage:.1%} of training words")

    # baselines on the held-out words: unigram and add-one bigram
    uni = torch.bincount(train, minlength=len(itos)).double() + 1
    uni_loss = float(-(uni / uni.sum()).log()[val].mean())
    big = torch.ones(len(itos), len(itos), dtype=torch.double)
    big.index_put_((train[:-1], train[1:]), torch.ones(len(train) - 1, dtype=torch.double), accumulate=True)
    big = big / big.sum(1, keepdim=True)
    big_loss = float(-big[val[:-1], val[1:]].log().mean())
    print(f"held-out cross-entropy: unigram {uni_loss:.3f}, bigram {big_loss:.3f} nats/word")

    model = LM(len(itos), d, layers, heads, ff, context)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps, pct_start=0.1)

    def batch_of(data, g):
        i = torch.randint(0, len(data) - context - 1, (batch,), generator=g)
        x = torch.stack([data[j:j + context] for j in i])
        y = torch.stack([data[j + 1:j + context + 1] for j in i])
        return x, y

    def evaluate():
        model.eval()
        with torch.no_grad():
            g = torch.Generator().manual_seed(1)
            losses = []
            for _ in range(20):
                x, y = batch_of(val, g)
                logits, _, _ = model(x)
                losses.append(float(F.cross_entropy(logits.reshape(-1, len(itos)), y.reshape(-1))))
        model.train()
        return sum(losses) / len(losses)

    g = torch.Generator().manual_seed(args.seed)
    start, log = time.time(), []
    if args.model and os.path.exists(args.model):
        saved = torch.load(args.model)
        model.load_state_dict(saved["weights"])
        log = saved["log"]
        args.steps = 0
        print(f"loaded {args.model} (trained {log[-1]['step']} steps); not training")
    for step in range(1, args.steps + 1):
        x, y = batch_of(train, g)
        logits, _, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(itos)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps:
            v = evaluate()
            log.append({"step": step, "train": float(loss), "heldout": v, "seconds": round(time.time() - start, 1)})
            print(f"step {step:5d}  train {float(loss):.3f}  held-out {v:.3f} nats/word  "
                  f"({time.time() - start:.0f} s)", flush=True)
    if args.model and args.steps:
        torch.save({"weights": model.state_dict(), "log": log}, args.model)
    final = log[-1]["heldout"]
    if not final < big_loss:
        sys.exit(f"the model did not beat the bigram baseline ({final:.3f} >= {big_loss:.3f}); not exporting")

    # the passage: Psalm 23, held out from training
    # whole verses, as many as fit in the context
    pw = []
    for b, c, _, t in verses:
        if (b, c) == ("Psalms", 23) and len(pw) + len(words(t)) <= context:
            pw += words(t)
    ids = enc(pw)[None]
    model.eval()
    with torch.no_grad():
        logits, hidden, attn = model(ids, want=True)
        p_loss = float(F.cross_entropy(logits[0, :-1], ids[0, 1:]))
    hs = torch.stack([h[0] for h in hidden])   # [L, N, D]
    at = torch.stack([a[0] for a in attn])     # [L, H, N, N]
    os.makedirs(args.out, exist_ok=True)
    record = {
        "text": "King James Version of the Bible (1611, public domain), from Debian's bible-kjv package",
        "model": {"kind": "causal transformer language model, pre-LayerNorm, tied embeddings",
                  "layers": layers, "heads": heads, "d": d, "ff": ff, "context": context,
                  "vocabulary": len(itos), "parameters": params, "tokenizer": WORD.pattern + " (lower-cased)"},
        "training": {"steps": log[-1]["step"], "batch": batch, "optimizer": "AdamW, one-cycle lr 3e-3",
                     "seed": args.seed, "threads": args.threads, "seconds": log[-1]["seconds"],
                     "torch": torch.__version__, "log": log},
        "heldout": {"chapters": len(held), "words": len(val), "model_nats_per_word": final,
                    "bigram_nats_per_word": big_loss, "unigram_nats_per_word": uni_loss,
                    "psalm23_nats_per_word": p_loss},
        "passage": {"reference": "Psalm 23 (held out)", "tokens": len(pw)},
        "outputs": {"tokens": "[N, D] last layer's output", "hidden_states": "[L, N, D] each layer's output",
                    "attentions": "[L, H, N, N] each layer's causal attention weights"},
    }
    meta = {"labels": json.dumps(pw), "source": record["text"], "model": json.dumps(record["model"]),
            "passage": record["passage"]["reference"]}
    base = os.path.join(args.out, "psalm23")
    write_safetensors(base + ".safetensors",
                      {"tokens": ("F32", hs[-1]), "hidden_states": ("F16", hs), "attentions": ("F16", at)}, meta)
    with open(base + ".txt", "w") as f:
        f.write("\n".join(pw) + "\n")
    with open(base + "-model.json", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    print(f"wrote {base}.safetensors ({len(pw)} tokens), {base}.txt, {base}-model.json; "
          f"Psalm 23 (held out): {p_loss:.3f} nats/word")
    if args.weights_out:
        export_weights(args.weights_out, model, itos, record, heads)
    if args.fixtures:
        import numpy as np
        os.makedirs(args.fixtures, exist_ok=True)
        ce = F.cross_entropy(logits[0, :-1].double(), ids[0, 1:], reduction="none")
        fx = os.path.join(args.fixtures, "kjv_psalm23_")
        np.save(fx + "ids.npy", ids[0].numpy().astype(np.int64))
        np.save(fx + "logits_tail.npy", logits[0, -16:].numpy().astype(np.float32))
        np.save(fx + "ce.npy", ce.numpy())
        print(f"wrote {fx}ids.npy, {fx}logits_tail.npy (the last 16 positions), {fx}ce.npy")


if __name__ == "__main__":
    main()
