"""qmpp with PyTorch: DLPack in and out, qmpp.patch.timm on a module with timm's names and
structure (timm itself is not in Debian), qmpp.capture on a ViT and on a Hugging Face-shaped
language model."""
import importlib.util
import math
import sys
import types

import numpy as np
import pytest

import qmpp
from conftest import FASHION, MODELS, SAMPLES, SOURCE

torch = pytest.importorskip("torch", reason="PyTorch is not installed (Debian: python3-torch)")
nn = torch.nn
F = torch.nn.functional

TOKENS = SAMPLES / "chelsea_tokens.npy"
MODEL = MODELS / "vit-fmnist.safetensors"


# ---- DLPack -------------------------------------------------------------------------------

def test_torch_in_torch_out_without_copies():
    x = torch.from_numpy(np.load(TOKENS))
    seen = qmpp._qmpp._from_dlpack(x.__dlpack__())
    assert seen.ctypes.data == x.data_ptr()  # the tensor's own memory, not a copy
    r = qmpp.merge(x, k=20, backend="cpu")
    assert isinstance(r.merged, torch.Tensor) and r.merged.shape == (20, 768)
    assert r.labels.dtype == torch.int64
    ref = qmpp.merge(np.load(TOKENS), k=20, backend="cpu")
    assert np.array_equal(r.merged.numpy(), ref.merged)
    assert r.merged.data_ptr() == r._raw.merged.ctypes.data  # a view of the engine's result
    # a tensor that requires grad, a non-contiguous view and float64 go in too
    w = torch.from_numpy(np.load(TOKENS)).requires_grad_()
    assert np.array_equal(qmpp.merge(w, k=20, backend="cpu").merged.numpy(), ref.merged)
    t = torch.from_numpy(np.ascontiguousarray(np.load(TOKENS).T)).t()
    assert not t.is_contiguous()
    assert np.array_equal(qmpp.merge(t, k=20, backend="cpu").merged.numpy(), ref.merged)
    assert np.array_equal(qmpp.merge(x.double(), k=20, backend="cpu").merged.numpy(),
                          qmpp.merge(np.load(TOKENS).astype(np.float64), k=20,
                                     backend="cpu").merged)


def test_dlpack_round_trip_of_every_dtype():
    for dtype in (torch.float16, torch.float32, torch.float64, torch.int32, torch.int64):
        t = torch.arange(12, dtype=dtype).reshape(3, 4)
        a = qmpp._qmpp._from_dlpack(t.__dlpack__())
        assert a.shape == (3, 4) and np.array_equal(a, t.numpy())
        back = torch.from_dlpack(a) if hasattr(torch, "from_dlpack") else torch.from_numpy(a)
        assert torch.equal(back, t)
    with pytest.raises(qmpp.InputError, match="from_dlpack: dtype code 1 of 8 bits"):
        qmpp._qmpp._from_dlpack(torch.zeros(2, dtype=torch.uint8).__dlpack__())
    cap = torch.ones(2).__dlpack__()
    qmpp._qmpp._from_dlpack(cap)
    with pytest.raises(qmpp.UsageError, match="already consumed"):
        qmpp._qmpp._from_dlpack(cap)
    with pytest.raises(qmpp.InputError, match="tokens: tokens hold a non-finite value"):
        qmpp.merge(torch.tensor([[1.0, float("nan")], [2.0, 3.0]]), k=1, backend="cpu")


def test_merge_step_on_torch_tensors_equals_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 50, 16)).astype(np.float32)
    ent = rng.random((3, 50)).astype(np.float32)
    ref = qmpp.merge_step(x, 12, entropy=ent, keep_first=1, seed=1)
    got = qmpp.merge_step(torch.from_numpy(x), 12, entropy=torch.from_numpy(ent), keep_first=1,
                          seed=1)
    for name in ("merged", "counts", "labels", "saliency", "mass"):
        assert isinstance(got[name], torch.Tensor)
        assert np.array_equal(got[name].numpy(), ref[name]), name
    if torch.cuda.is_available():  # on the device, with no copy to the host
        xc = torch.from_numpy(x).cuda()
        dev = qmpp.merge_step(xc, 12, entropy=torch.from_numpy(ent).cuda(), keep_first=1, seed=1)
        assert dev["merged"].device == xc.device
        assert torch.equal(dev["labels"].cpu(), got["labels"])
        assert torch.allclose(dev["merged"].cpu(), got["merged"], atol=1e-5)


# ---- a ViT with timm's names and structure (timm 1.0's VisionTransformer, trimmed) ---------

class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.norm = nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        x = (self.attn_drop(attn) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(self.norm(x)))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = nn.Identity()
        self.drop_path1 = nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, 4 * dim)
        self.ls2 = nn.Identity()
        self.drop_path2 = nn.Identity()

    def forward(self, x):
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class PatchEmbed(nn.Module):
    def __init__(self, img, patch, chans, dim):
        super().__init__()
        self.num_patches = (img // patch) ** 2
        self.proj = nn.Conv2d(chans, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, img=56, patch=4, chans=1, classes=10, dim=192, depth=6, heads=3):
        super().__init__()
        self.num_prefix_tokens = 1
        self.global_pool = "token"
        self.patch_embed = PatchEmbed(img, patch, chans, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, dim))
        self.pos_drop = nn.Dropout(0.0)
        self.norm_pre = nn.Identity()
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc_norm = nn.Identity()
        self.head = nn.Linear(dim, classes)

    def forward_features(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.norm(self.blocks(self.norm_pre(self.pos_drop(x))))

    def forward(self, x):
        return self.head(self.fc_norm(self.forward_features(x)[:, 0]))


def read_safetensors(path):
    import json
    import struct
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        assert v["dtype"] == "F32"
        out[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], np.float32).copy()
                                  .reshape(v["shape"]))
    return out


@pytest.fixture(scope="module")
def vit():
    """The bundled Fashion-MNIST ViT's weights in the timm-shaped module (strict load)."""
    m = VisionTransformer()
    m.load_state_dict(read_safetensors(MODEL), strict=True)
    return m.eval()


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """16 test images, preprocessed as the model's metadata says, as qmpp eval reads .npy."""
    if not FASHION.exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    spec = importlib.util.spec_from_file_location("vitlib", SOURCE / "scripts" / "vitlib.py")
    vitlib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vitlib)
    images, _ = vitlib.read_fashion(str(FASHION), "t10k")
    x = vitlib.preprocess(images[:16], 56)
    path = tmp_path_factory.mktemp("px") / "pixels.npy"
    np.save(path, x.numpy().astype(np.float32))
    return x, path, vitlib


def test_patched_timm_forward_without_merging_is_the_plain_model(vit, pixels):
    x, _, _ = pixels
    with torch.no_grad():
        plain = vit(x)
        qmpp.patch.timm(vit, method="none", r=0)
        try:
            patched = vit(x)
        finally:
            qmpp.patch.remove(vit)
        again = vit(x)
    assert torch.allclose(plain, patched, atol=1e-5, rtol=0)
    assert torch.equal(plain, again)  # remove() restores the model's own forward


@pytest.mark.parametrize("method,r", [("tome", 8), ("quickmerge", 8), ("topk", 12),
                                      ("random", 12)])
def test_patched_timm_gives_qmpp_evals_logits(vit, pixels, method, r):
    x, path, _ = pixels
    ref = qmpp.eval_model(MODEL, path, method=method, r=r, backend="cpu")
    qmpp.patch.timm(vit, method=method, r=r)
    try:
        with torch.no_grad():
            got = torch.cat([vit(x[:10]), vit(x[10:])])  # two batches: items 0-9, then 10-15
        src = qmpp.patch.sources(vit)
    finally:
        qmpp.patch.remove(vit)
    plain = torch.from_numpy(ref["logits_plain"])
    merged = torch.from_numpy(ref["logits_merged"][0])
    with torch.no_grad():
        assert torch.allclose(vit(x), plain, atol=2e-4, rtol=0)  # the two forwards agree
    diff = (got - merged).abs().max().item()
    assert diff < 2e-3, f"{method}: max |logit difference| {diff}"
    assert torch.equal(got.argmax(1), merged.argmax(1))
    assert (got - plain).abs().max().item() > 10 * diff  # merging did change the logits
    assert src.shape == (6, 196)
    if method in ("topk", "random"):
        assert (src == -1).sum() > 0
    else:
        assert (src >= 1).all()


def test_trace_model_shows_what_each_block_did(vit, pixels):
    x, path, _ = pixels
    ref = qmpp.eval_model(MODEL, path, method="quickmerge", r=8, seeds=[0])
    tr = qmpp.trace_model(MODEL, x[3], item=3, method="quickmerge", r=8)
    assert np.array_equal(tr["logits"], ref["logits_merged"][0][3])
    assert [b["tokens"] for b in tr["blocks"]] == [197 - 8 * i for i in range(6)]
    b0 = tr["blocks"][0]
    assert b0["attention"].shape == (3, 197, 197)
    assert np.allclose(b0["attention"].sum(-1), 1, atol=1e-5)
    p = b0["attention"].astype(np.float64)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(-1).mean(0)
    assert np.allclose(entropy, b0["entropy"], atol=1e-4)
    assert (b0["new_row"] >= 0).all() and b0["new_row"].max() == 197 - 8 - 1


def test_patched_tome_equals_tomes_published_algorithm(vit, pixels):
    x, _, vitlib = pixels
    ref = vitlib.ViT()
    ref.load_state_dict(read_safetensors(MODEL), strict=True)
    ref.eval()
    qmpp.patch.timm(vit, method="tome", r=8)
    qmpp.patch.timm(vit, method="tome", r=8)  # patching twice replaces, never stacks
    try:
        with torch.no_grad():
            got = vit(x)
            want = vitlib.tome_forward(ref, x, 8)
    finally:
        qmpp.patch.remove(vit)
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()


def test_patch_refuses_what_it_cannot_do(vit):
    with pytest.raises(qmpp.UsageError, match="is not one of"):
        qmpp.patch.timm(vit, method="nope")
    with pytest.raises(qmpp.UsageError, match="give one of"):
        qmpp.patch.timm(vit, method="tome", r=None, budget=0.5, list=[1, 2])
    with pytest.raises(qmpp.UsageError, match="--list gives 7 values"):
        qmpp.patch.timm(vit, method="tome", r=None, list=[1] * 7)
    with pytest.raises(qmpp.UsageError, match="no blocks"):
        qmpp.patch.timm(nn.Linear(2, 2))
    pooled = VisionTransformer(depth=1)
    pooled.global_pool = "avg"
    with pytest.raises(qmpp.UsageError, match="global_pool"):
        qmpp.patch.timm(pooled)
    with pytest.raises(qmpp.UsageError, match="forward of a patched model"):
        qmpp.patch.sources(vit)
    assert not hasattr(vit, "qmpp_state")


def test_budget_schedule_keeps_the_share(vit, pixels):
    x, _, _ = pixels
    qmpp.patch.timm(vit, method="quickmerge", r=None, budget=0.25, at_block=2)
    try:
        with torch.no_grad():
            vit(x[:2])
        st = vit.qmpp_state
        assert st.hook.tokens == 1 + 49  # max(1, floor(0.25 * 196)) + the class token
    finally:
        qmpp.patch.remove(vit)


# ---- capture --------------------------------------------------------------------------------

def test_capture_a_vit_then_merge_it_as_the_cli(vit, pixels, tmp_path, cli):
    x, _, _ = pixels
    path = tmp_path / "vit.safetensors"
    shapes = qmpp.capture(vit, x[:3], path, item=1)
    assert shapes == {"tokens": [197, 192], "hidden_states": [6, 197, 192],
                      "attentions": [6, 3, 197, 197]}
    got = qmpp.load(path)
    with torch.no_grad():
        emb = vit.patch_embed(x[1:2])
        emb = torch.cat([vit.cls_token, emb], dim=1) + vit.pos_embed
        h = emb
        outs = []
        for blk in vit.blocks:
            h = blk(h)
            outs.append(h)
    assert np.allclose(got.tokens, emb[0].numpy(), atol=1e-6)
    assert np.allclose(got.hidden_states[-1], outs[-1][0].numpy(), atol=1e-5)
    rows = got.attention.sum(-1)
    assert np.allclose(rows, 1, atol=1e-5)
    # class attention of the first block by hand
    with torch.no_grad():
        a = vit.blocks[0].attn
        t = vit.blocks[0].norm1(emb)
        qkv = a.qkv(t).reshape(1, 197, 3, 3, 64).permute(2, 0, 3, 1, 4)
        p = ((qkv[0] * a.scale) @ qkv[1].transpose(-2, -1)).softmax(-1)
    assert np.allclose(got.attention[0], p[0].numpy(), atol=1e-6)
    code, out, err = cli("run", path, "--out", tmp_path / "run", "--tokens", "20",
                         "--backend", "cpu")
    assert code == 0, err
    r = qmpp.merge(path, k=20, backend="cpu")
    assert "hidden" in r.saliency_source or "attention" in r.saliency_source
    assert np.array_equal(np.load(tmp_path / "run" / "merged.npy"), r.merged)
    with pytest.raises(qmpp.InputError, match="exists"):
        qmpp.capture(vit, x[:1], path)


class TinyLm(nn.Module):
    """A Hugging Face-shaped language model: called with input_ids, output_hidden_states and
    output_attentions, returns hidden_states (embeddings first) and attentions."""

    def __init__(self, vocab=50, dim=16, heads=2, layers=3, eager=True):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.eager = eager

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False,
                output_attentions=False):
        h = self.embed(input_ids)
        hidden, attns = [h], []
        for blk in self.layers:
            a = blk.attn
            t = blk.norm1(h)
            b, n, c = t.shape
            qkv = a.qkv(t).reshape(b, n, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
            attns.append(((qkv[0] * a.scale) @ qkv[1].transpose(-2, -1)).softmax(-1)
                         if self.eager else None)
            h = blk(h)
            hidden.append(h)
        return types.SimpleNamespace(
            last_hidden_state=h,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None)


class Tokenizer:
    def convert_ids_to_tokens(self, ids):
        return [f"tok{i}" for i in ids]


def test_capture_a_language_model_with_its_words(tmp_path):
    torch.manual_seed(0)
    lm = TinyLm().eval()
    ids = torch.randint(0, 50, (2, 11))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    path = tmp_path / "lm.safetensors"
    shapes = qmpp.capture(lm, inputs, path, tokenizer=Tokenizer(), item=1)
    assert shapes == {"tokens": [11, 16], "hidden_states": [3, 11, 16],
                      "attentions": [3, 2, 11, 11]}
    got = qmpp.load(path)
    assert got.labels == [f"tok{int(i)}" for i in ids[1]]
    with torch.no_grad():
        assert np.allclose(got.tokens, lm.embed(ids[1]).numpy())
    r = qmpp.merge(path, k=4, backend="cpu")
    assert r.k == 4 and r.report()["tokens"] if "tokens" in r.report() else r.k == 4
    with pytest.raises(qmpp.UsageError, match='attn_implementation="eager"'):
        qmpp.capture(TinyLm(eager=False), inputs, tmp_path / "sdpa.safetensors")
    with pytest.raises(qmpp.UsageError, match="3 labels for N = 11"):
        qmpp.capture(lm, inputs, tmp_path / "l.safetensors", labels=["a", "b", "c"])
    with pytest.raises(qmpp.UsageError, match="item 5 of a batch of 2"):
        qmpp.capture(lm, inputs, tmp_path / "i.safetensors", item=5)
