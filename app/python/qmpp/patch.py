"""``qmpp.patch.timm(model, method="quickmerge", r=16)``: token merging inside a timm
VisionTransformer, as ToMe's ``tome.patch.timm`` does it, with the engine's merge hook.

Each block then runs: attention with proportional attention (+ ln(size) of each key once tokens
were merged), the residual add, the merge hook (the same decisions ``qmpp eval`` makes: ToMe's
bipartite matching, QuickMerge++'s entropy saliency, Gumbel mask and clustering, top-K or random
pruning), and the MLP. The decision is taken by the engine from the keys averaged over heads
(and the attention entropy or the class token's attention where the method needs them); the
merge itself is applied to the model's own tensors on their device.
"""

from __future__ import annotations

import math
import types
from typing import Any, Optional, Sequence

from . import _qmpp
from ._qmpp import UsageError

__all__ = ["timm", "remove", "sources"]


class _State:
    """What a patched model carries: the hook's arguments and the hook of the running forward."""

    def __init__(self, depth: int, patches: int, dim: int, heads: int, args: dict):
        self.depth, self.patches, self.dim, self.heads, self.args = depth, patches, dim, heads, args
        self.hook = None
        self.merged = False
        self.items = 0  # Gumbel offsets: image i of the run takes item i's noise (qmpp eval's)

    def start(self, batch: int) -> None:
        self.hook = _qmpp._Hook(self.depth, self.patches, self.dim, self.heads, self.args, batch,
                                self.items)
        self.items += batch
        self.merged = False


def _identity(x: Any) -> Any:
    return x


def _attention(attn: Any, x: Any, counts: Any, need_entropy: bool, need_cls: bool):
    """timm's Attention.forward with proportional attention; also returns the keys averaged over
    heads [B, T, dh], each query's entropy averaged over heads [B, T] (float64) and the class
    token's attention averaged over heads [B, T], when asked."""
    import torch
    import torch.nn.functional as F

    b, t, c = x.shape
    h = attn.num_heads
    qkv = attn.qkv(x).reshape(b, t, 3, h, c // h).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    q = getattr(attn, "q_norm", _identity)(q)
    k = getattr(attn, "k_norm", _identity)(k)
    bias = None if counts is None else counts.log()[:, None, None, :].to(q.dtype)
    entropy = cls = None
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is not None and not (need_entropy or need_cls) and \
            math.isclose(float(attn.scale), (c // h) ** -0.5, rel_tol=1e-6):
        y = sdpa(q, k, v, attn_mask=bias,
                 dropout_p=attn.attn_drop.p if attn.training else 0.0)
    else:
        logits = (q * attn.scale) @ k.transpose(-2, -1)
        if bias is not None:
            logits = logits + bias
        p = logits.softmax(dim=-1)
        if need_entropy:
            lp = logits.double().log_softmax(dim=-1)
            entropy = (-(lp.exp() * lp).sum(-1)).clamp_min(0).mean(1)
        if need_cls:
            cls = p[:, :, 0, :].double().mean(1)
        y = attn.attn_drop(p) @ v
    y = y.transpose(1, 2).reshape(b, t, c)
    y = getattr(attn, "norm", _identity)(y)
    y = attn.proj_drop(attn.proj(y))
    return y, k.mean(1), entropy, cls


def _apply_plan(x: Any, rows: Any, weights: Any, t2: int) -> Any:
    """Row i of x [B, T, D] goes to row rows[b, i] of [B, t2, D] (-1: dropped); each output row
    is the weighted mean of its rows, or their plain mean where the weights sum to 0 (sums in
    float64, as the engine)."""
    import torch

    b, t, d = x.shape
    rows = torch.from_numpy(rows).to(x.device).long()
    w = torch.from_numpy(weights).to(x.device, torch.float64)
    target = torch.where(rows >= 0, rows, torch.full_like(rows, t2))  # row t2 collects the dropped
    index = target[..., None].expand(-1, -1, d)
    xd = x.double()
    acc = xd.new_zeros(b, t2 + 1, d).scatter_add_(1, index, xd * w[..., None])
    plain = xd.new_zeros(b, t2 + 1, d).scatter_add_(1, index, xd)
    wsum = xd.new_zeros(b, t2 + 1).scatter_add_(1, target, w)
    count = xd.new_zeros(b, t2 + 1).scatter_add_(1, target, torch.ones_like(w))
    weighted = (wsum > 0)[..., None]
    out = torch.where(weighted, acc / torch.where(wsum > 0, wsum, torch.ones_like(wsum))[..., None],
                      plain / count.clamp_min(1)[..., None])
    return out[:, :t2].to(x.dtype)


def _block_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    import torch

    st: _State = self._qmpp_state
    i: int = self._qmpp_index
    if i == 0 or st.hook is None:
        st.start(x.shape[0])
    hook = st.hook
    r = hook.merge_count(i)
    need_entropy, need_cls = hook.needs(i)
    counts = None
    if st.merged:
        counts = torch.from_numpy(hook.counts()).to(x.device, x.dtype)
    y, keys, entropy, cls = _attention(self.attn, self.norm1(x), counts, need_entropy, need_cls)
    x = x + getattr(self, "drop_path1", _identity)(getattr(self, "ls1", _identity)(y))
    if r > 0:
        rows, weights, t2 = hook.plan(
            i, keys.detach().float().cpu().numpy(),
            None if entropy is None else entropy.detach().cpu().numpy(),
            None if cls is None else cls.detach().cpu().numpy())
        x = _apply_plan(x, rows, weights, t2)
        st.merged = True
    mlp = self.mlp(self.norm2(x))
    return x + getattr(self, "drop_path2", _identity)(getattr(self, "ls2", _identity)(mlp))


def timm(model: Any, method: str = "quickmerge", r: Optional[int] = 16, *,
         schedule: Optional[Sequence[float]] = None, list: Optional[Sequence[int]] = None,
         budget: Optional[float] = None, at_block: int = 0, temperature: float = 0.1,
         epsilon: float = 0.01, gumbel_scale: float = 1.0, refine: int = 3,
         seed: int = 0) -> Any:
    """Patches a timm VisionTransformer (or a module with its names: patch_embed, cls_token,
    blocks with norm1, attn.qkv/proj/num_heads/scale, norm2, mlp) in place and returns it.

    method: quickmerge | tome | topk | random | none. How much: r (a constant per block, ToMe's
    r), schedule=(r, inflection) (ToMe's), list (r per block), or budget (keep this share of the
    tokens at block ``at_block``). The QuickMerge++ knobs are ``qmpp eval``'s.

    Image i since patching (or since ``model.qmpp_state.items`` was set) takes item i's Gumbel
    noise, so a loop over a data set in order reproduces ``qmpp eval`` item by item.
    ``qmpp.patch.sources(model)`` gives, after a forward, which token holds each patch.
    """
    if hasattr(model, "qmpp_state"):
        remove(model)
    blocks = getattr(model, "blocks", None)
    if blocks is None or len(blocks) == 0 or not hasattr(blocks[0], "attn"):
        raise UsageError("patch.timm: the model has no blocks with attn (a timm "
                         "VisionTransformer is expected)")
    prefix = getattr(model, "num_prefix_tokens", 1)
    if prefix != 1 or getattr(model, "cls_token", None) is None:
        raise UsageError(f"patch.timm: the model has {prefix} prefix tokens; the merge hook "
                         "protects one class token (no register or distillation tokens)")
    if getattr(model, "global_pool", "token") not in ("token", None, ""):
        raise UsageError("patch.timm: the model pools its tokens (global_pool="
                         f"{model.global_pool!r}); the hook keeps the class token, so use "
                         "global_pool='token'")
    attn = blocks[0].attn
    heads = int(attn.num_heads)
    dim = int(attn.qkv.in_features)
    patches = int(model.pos_embed.shape[1]) - 1
    if r is not None and (schedule is not None or list is not None or budget is not None):
        r = None  # the others name the amount explicitly
    from . import _hook_args
    args = _hook_args(method, r, schedule, list, budget, at_block, temperature, epsilon,
                      gumbel_scale, refine, seed)
    _qmpp._Hook(len(blocks), patches, dim, heads, args, 1, 0)  # every argument checked now
    state = _State(len(blocks), patches, dim, heads, args)
    model.qmpp_state = state
    for i, blk in enumerate(blocks):
        blk._qmpp_state = state
        blk._qmpp_index = i
        blk.forward = types.MethodType(_block_forward, blk)
    return model


def remove(model: Any) -> Any:
    """Undoes ``timm``: the blocks run their own forward again."""
    for blk in getattr(model, "blocks", []):
        for name in ("forward", "_qmpp_state", "_qmpp_index"):
            if name in blk.__dict__:
                del blk.__dict__[name]
    if "qmpp_state" in model.__dict__:
        del model.__dict__["qmpp_state"]
    return model


def sources(model: Any) -> Any:
    """After a forward of a patched model: [B, N] int32, the row (class token = 0) that holds
    each patch after the last block, -1 where a pruning method dropped it."""
    st = getattr(model, "qmpp_state", None)
    if st is None or st.hook is None:
        raise UsageError("patch.sources: run a forward of a patched model first")
    return st.hook.sources()
