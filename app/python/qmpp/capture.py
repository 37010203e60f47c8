"""``qmpp.capture(model, inputs, path)``: a PyTorch model's tokens, hidden states and attention
maps in one .safetensors file that the studio and ``qmpp run`` open as they are.

The file holds, for one item of the batch (``item``, default 0):
  tokens         [N, D]        what the first block receives (the embedding layer's output)
  hidden_states  [L, N, D]     each block's output
  attentions     [L, H, N, N]  each block's attention probabilities
and, for text, the token strings as the "labels" metadata (a JSON array). The batch axis and the
embedding layer are kept apart this way because the studio merges one sequence and takes its
saliency from the hidden states or attention maps of the blocks.

Two kinds of model:
  * a timm VisionTransformer (or a module with its names): ``inputs`` is the image batch;
  * a Hugging Face model: ``inputs`` is the tokenizer's output (a dict); the model is called
    with ``output_hidden_states=True, output_attentions=True``. Attention maps come back only
    from the eager attention: load the model with ``attn_implementation="eager"`` (SDPA and
    flash attention return None).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _qmpp
from ._qmpp import UsageError

__all__ = ["capture"]


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def _capture_timm(model: Any, x: Any) -> Dict[str, Any]:
    import torch

    probs: List[Any] = []
    outs: List[Any] = []
    first: List[Any] = []
    handles = []

    def attn_hook(mod: Any, args: Any, _out: Any) -> None:
        a = args[0]
        b, t, c = a.shape
        h = mod.num_heads
        qkv = mod.qkv(a).reshape(b, t, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, _ = qkv.unbind(0)
        q = getattr(mod, "q_norm", lambda v: v)(q)
        k = getattr(mod, "k_norm", lambda v: v)(k)
        probs.append(((q * mod.scale) @ k.transpose(-2, -1)).softmax(dim=-1))

    def block_pre(_mod: Any, args: Any) -> None:
        if not first:
            first.append(args[0])

    handles.append(model.blocks[0].register_forward_pre_hook(block_pre))
    for blk in model.blocks:
        handles.append(blk.attn.register_forward_hook(attn_hook))
        handles.append(blk.register_forward_hook(lambda _m, _a, out: outs.append(out)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return {"tokens": first[0], "hidden": outs, "attn": probs}


def _capture_hf(model: Any, inputs: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True, output_attentions=True)
    hidden = getattr(out, "hidden_states", None)
    attn = getattr(out, "attentions", None)
    if hidden is None:
        raise UsageError("capture: the model returned no hidden_states")
    if attn is None or any(a is None for a in attn):
        raise UsageError("capture: the model returned no attention maps; load it with "
                         "attn_implementation=\"eager\" (SDPA and flash attention do not "
                         "return them)")
    return {"tokens": hidden[0], "hidden": list(hidden[1:]), "attn": list(attn)}


def capture(model: Any, inputs: Any, path: Union[str, os.PathLike], *, item: int = 0,
            labels: Optional[Sequence[str]] = None, tokenizer: Any = None,
            force: bool = False) -> Dict[str, List[int]]:
    """Runs ``model`` on ``inputs`` and writes item ``item``'s tokens, hidden states and
    attention maps to ``path`` (.safetensors). Text: ``labels`` (one string per token), or a
    Hugging Face ``tokenizer`` to name the tokens from ``inputs["input_ids"]``. Refuses an
    existing file unless ``force``. Returns the shapes written."""
    path = os.fspath(path)
    if not path.endswith(".safetensors"):
        raise UsageError(f"{path}: capture writes a .safetensors file")
    if not force and os.path.exists(path):
        raise _qmpp.InputError(f"{path}: exists; use force=True to replace it")
    if hasattr(model, "blocks") and hasattr(model, "patch_embed"):
        got = _capture_timm(model, inputs)
    elif isinstance(inputs, dict) or hasattr(inputs, "keys"):
        got = _capture_hf(model, dict(inputs))
    else:
        raise UsageError("capture: expected a timm VisionTransformer with an image batch, or a "
                         "Hugging Face model with the tokenizer's output (a dict)")
    tokens = got["tokens"]
    if tokens.dim() != 3:
        raise UsageError(f"capture: the embedding output is {list(tokens.shape)}, not [B, N, D]")
    b, n, d = tokens.shape
    if not 0 <= item < b:
        raise UsageError(f"capture: item {item} of a batch of {b}")
    hidden = [h[0] if isinstance(h, (tuple, list)) else h for h in got["hidden"]]
    if any(tuple(h.shape) != (b, n, d) for h in hidden):
        raise UsageError("capture: the blocks' outputs change the number of tokens (a merged "
                         "model?); capture the unmerged model")
    attn = got["attn"]
    if len(attn) != len(hidden) or any(a.dim() != 4 or a.shape[-1] != n for a in attn):
        raise UsageError(f"capture: {len(attn)} attention maps for {len(hidden)} blocks, or not "
                         f"[B, H, {n}, {n}]")
    tensors = {
        "tokens": _np(tokens[item]),
        "hidden_states": np.stack([_np(h[item]) for h in hidden]),
        "attentions": np.stack([_np(a[item]) for a in attn]),
    }
    meta: Dict[str, str] = {"source": "qmpp.capture", "model": type(model).__name__}
    names = None
    if labels is not None:
        names = [str(s) for s in labels]
    elif tokenizer is not None and "input_ids" in inputs:
        ids = inputs["input_ids"][item]
        names = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    if names is not None:
        if len(names) != n:
            raise UsageError(f"capture: {len(names)} labels for N = {n} tokens")
        meta["labels"] = json.dumps(names, ensure_ascii=False)
    _qmpp._save(path, tensors, meta, True)
    return {k: list(v.shape) for k, v in tensors.items()}
