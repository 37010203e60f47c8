"""QuickMerge++ token merging from Python: the engine of the studio and the ``qmpp`` CLI.

``qmpp.merge(tokens, budget=0.2)`` merges a token sequence ([N, D], or a batch [B, N, D]) with
the CLI's defaults and names, and returns a :class:`MergeResult` whose numbers equal
``qmpp run`` on the same input. Tokens may be NumPy arrays, PyTorch tensors (through DLPack) or
the path of a file ``qmpp run`` takes. ``qmpp.patch.timm`` puts the merge inside a timm
VisionTransformer; ``qmpp.capture`` writes a model's tokens, hidden states and attention maps
into one file the studio opens. See docs/python.md.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _qmpp
from ._qmpp import InputError, UsageError

__all__ = [
    "merge", "merge_step", "saliency", "tome", "topk", "random", "load", "save", "eval_model",
    "trace_model",
    "MergeResult", "Loaded", "UsageError", "InputError", "gpu_available", "patch", "capture",
]
__version__ = "0.1.0"

_METHODS = ("quickmerge", "tome", "topk", "random")


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _as_array(x: Any, name: str) -> np.ndarray:
    """A NumPy array of x: NumPy as it is; a PyTorch tensor (or any DLPack producer) without a
    copy when it lives on the CPU, copied to the host from a CUDA device."""
    if isinstance(x, np.ndarray):
        return x
    if _is_torch(x):
        x = x.detach()
    if hasattr(x, "__dlpack__") and hasattr(_qmpp, "_from_dlpack"):
        return _qmpp._from_dlpack(x.__dlpack__())
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    raise UsageError(f"{name}: expected a NumPy array, a PyTorch tensor or a file path, "
                     f"got {type(x).__name__}")


def _path(x: Any) -> Optional[str]:
    return os.fspath(x) if isinstance(x, (str, os.PathLike)) else None


class MergeResult:
    """One merged token sequence. Arrays are views of the engine's result (no copies); when the
    input was a PyTorch tensor they are tensors, on the input's device.

    Attributes: ``merged`` [K, D], ``labels`` [N] (index into merged; -1 where pruning dropped
    the token), ``saliency`` [N], ``mask`` [N] (the Gumbel-softmax mask pi), ``mass`` [N],
    ``uniforms`` [N], ``foreground`` [K], ``group_sizes`` [K], ``layer_entropy`` [L, N];
    ``metrics``, ``losses`` and ``timings`` (ms per stage, then "total") as dicts; ``n``, ``d``,
    ``k``, ``method``, ``backend``, ``device``, ``precision``, ``saliency_source``, ``notes``.
    """

    _ARRAYS = ("merged", "labels", "saliency", "mask", "mass", "uniforms", "foreground",
               "group_sizes", "layer_entropy")
    _PLAIN = ("n", "d", "k", "item", "metrics", "losses", "timings", "method", "backend",
              "device", "precision", "saliency_source", "ar_heads_source", "refine_rounds",
              "notes")

    def __init__(self, raw: Any, like: Any = None):
        self._raw = raw
        self._like = like  # a torch tensor: results come back as tensors on its device

    def __getattr__(self, name: str) -> Any:
        if name in MergeResult._ARRAYS:
            a = getattr(self._raw, name)
            if self._like is not None:
                import torch
                t = torch.from_dlpack(a) if hasattr(torch, "from_dlpack") else torch.from_numpy(a)
                return t.to(self._like.device)
            return a
        if name in MergeResult._PLAIN:
            return getattr(self._raw, name)
        raise AttributeError(name)

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._ARRAYS) | set(self._PLAIN))

    def __repr__(self) -> str:
        m = self.metrics
        return (f"MergeResult({self.method}: N={self.n} -> K={self.k}, D={self.d}, on "
                f"{self.device}; reconstruction_error={m['reconstruction_error']:.4f}, "
                f"mean_cosine={m['mean_cosine']:.4f})")

    def report(self) -> Dict[str, Any]:
        """The report.json document ``qmpp run`` writes for this item."""
        return self._raw.report()

    def save(self, out: Union[str, os.PathLike], force: bool = False) -> List[str]:
        """Writes the run into folder ``out`` exactly as ``qmpp run --out`` does (merged.npy,
        labels.npy, saliency.npy, report.json, ...); refused if it holds results unless
        ``force``. Returns the file names."""
        return self._raw.save(os.fspath(out), force)


def _params(k: Optional[int], budget: float, temperature: float, epsilon: float, gamma: float,
            alpha: float, layers: int, refine: int, seed: int, method: str, cluster: str,
            backend: str, precision: str) -> Dict[str, Any]:
    if k is not None and int(k) < 1:
        raise UsageError("k (--tokens): K must be at least 1")
    return dict(k=0 if k is None else int(k), budget=float(budget),
                temperature=float(temperature), epsilon=float(epsilon), gamma=float(gamma),
                alpha=float(alpha), layers=int(layers), refine=int(refine), seed=int(seed),
                method=method, cluster=cluster, backend=backend, precision=precision)


def merge(tokens: Any, *, k: Optional[int] = None, budget: float = 0.2,
          temperature: float = 0.1, epsilon: float = 0.01, gamma: float = 0.8, alpha: float = 0.1,
          layers: int = 1, refine: int = 3, seed: int = 0, method: str = "quickmerge",
          cluster: str = "seeded", backend: str = "auto", precision: str = "fp32",
          hidden_states: Any = None, attention: Any = None, labels: Any = None,
          uniforms: Any = None, ar_weights: Optional[str] = None, batch: Optional[int] = None,
          patch: int = 16, key: Optional[str] = None, projection: Optional[str] = None,
          tokens_only: bool = False) -> Union[MergeResult, List[MergeResult]]:
    """Merges ``tokens`` into K tokens, as ``qmpp run`` (same names and defaults).

    tokens: [N, D] or [B, N, D] (NumPy, PyTorch or any DLPack producer), or the path of a
        .npy/.safetensors file or an image, loaded as ``qmpp run`` loads it (a .safetensors
        input's own hidden_states and attentions give the saliency unless ``tokens_only``).
    k: the number of merged tokens; else K = max(1, floor(budget * N)).
    method: quickmerge | tome | topk | random.  cluster: seeded | agglomerative | reference.
    backend: auto | cpu | cuda-basic | cuda.  precision: fp32 | fp16 (CUDA only).
    hidden_states [L, N, D], attention [L, N, N] or [L, H, N, N], labels (one string per
    token), uniforms [N]: arrays with array tokens, file paths with a file. ar_weights: the AR
    heads' .safetensors.  batch: merge only item I of a batch.

    Returns a MergeResult, or a list of them for a batch [B, N, D].
    Raises UsageError (a ValueError) for bad arguments and InputError (an OSError and a
    ValueError) for a bad file or array, with the CLI's messages.
    """
    p = _params(k, budget, temperature, epsilon, gamma, alpha, layers, refine, seed, method,
                cluster, backend, precision)
    path = _path(tokens)
    like = None
    if path is not None:
        extras = {"hidden_states": hidden_states, "attention": attention, "labels": labels,
                  "uniforms": uniforms}
        for name, v in extras.items():
            if v is not None and _path(v) is None:
                raise UsageError(f"{name}: with a file input, give a file path")
        opts = dict(patch=int(patch), key=key or "", batch=-1 if batch is None else int(batch),
                    hidden_states=_path(hidden_states) or "", attention=_path(attention) or "",
                    labels=_path(labels) or "", projection=_path(projection) or "",
                    uniforms=_path(uniforms) or "", ar_weights=_path(ar_weights) or "",
                    tokens_only=bool(tokens_only))
        raw = _qmpp._merge_file(path, opts, p)
    else:
        if key is not None or projection is not None:
            raise UsageError("key and projection apply to file inputs")
        if _is_torch(tokens):
            like = tokens
        arr = _as_array(tokens, "tokens")
        lab = None
        if labels is not None:
            lab = [str(s) for s in (open(labels, encoding="utf-8").read().splitlines()
                                    if _path(labels) else labels)]
        raw = _qmpp._merge_arrays(
            arr,
            None if hidden_states is None else _as_array(hidden_states, "hidden_states"),
            None if attention is None else _as_array(attention, "attention"),
            lab, None if uniforms is None else _as_array(uniforms, "uniforms"),
            _path(ar_weights) or "", p, -1 if batch is None else int(batch))
    results = [MergeResult(r, like) for r in raw]
    return results if raw[0].batched else results[0]


def saliency(tokens: Any, **kw: Any) -> Any:
    """QuickMerge++'s saliency s [N] in [0, 1] (1: focused attention, salient), as the merge
    computes it: from the tokens (multi-scale, ``layers``), or from ``hidden_states`` or
    ``attention`` when given. Takes merge's arguments."""
    kw["method"] = "quickmerge"
    r = merge(tokens, **kw)
    return [x.saliency for x in r] if isinstance(r, list) else r.saliency


def tome(tokens: Any, **kw: Any) -> Any:
    """ToMe's bipartite soft matching down to K tokens (merge(..., method="tome"))."""
    return merge(tokens, method="tome", **kw)


def topk(tokens: Any, **kw: Any) -> Any:
    """Top-K saliency pruning: the K most salient tokens, unchanged, in their order."""
    return merge(tokens, method="topk", **kw)


def random(tokens: Any, **kw: Any) -> Any:
    """Random pruning to K tokens (Philox, ``seed``)."""
    return merge(tokens, method="random", **kw)


class Loaded:
    """What ``qmpp.load`` read: ``tokens`` [N, D] or [B, N, D] float32, ``hidden_states``
    [L, N, D] or None, ``attention`` [L, H, N, N] or None, ``labels`` (token strings) or None,
    ``grid`` (rows, cols) of an image, ``kind`` ("embeddings" or "image"), ``image`` [H, W, 3]
    uint8 of an image."""

    def __init__(self, d: Dict[str, Any]):
        self.__dict__.update(d)

    def __repr__(self) -> str:
        return f"Loaded({self.kind}, tokens {list(self.tokens.shape)})"


def load(path: Union[str, os.PathLike], *, key: Optional[str] = None, patch: int = 16,
         projection: Optional[str] = None, labels: Optional[str] = None,
         tokens_only: bool = False) -> Loaded:
    """Reads what ``qmpp run`` and the studio read: tokens from .npy/.safetensors (with a
    .safetensors file's own hidden_states, attentions and "labels" metadata), or an image's
    patch tokens. Every check and message is the CLI's."""
    return Loaded(_qmpp._load(os.fspath(path), dict(
        key=key or "", patch=int(patch), projection=_path(projection) or "",
        labels=_path(labels) or "", tokens_only=bool(tokens_only))))


def save(path: Union[str, os.PathLike], tensors: Any, metadata: Optional[Dict[str, Any]] = None,
         force: bool = False) -> None:
    """Writes one array to .npy, or a dict of arrays (and string metadata; a list of strings
    under "labels" is stored as the JSON array the studio reads) to .safetensors. Refuses an
    existing file unless ``force``."""
    import json
    if not isinstance(tensors, dict):
        tensors = {"tokens": tensors}
    arrays = {str(k): np.ascontiguousarray(_as_array(v, str(k))) for k, v in tensors.items()}
    meta = {}
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    _qmpp._save(os.fspath(path), arrays, meta, bool(force))


def eval_model(model: Union[str, os.PathLike], input: Any = None, *, dataset: Any = None,
               method: str = "quickmerge", r: Optional[int] = None,
               schedule: Optional[Sequence[float]] = None, list: Optional[Sequence[int]] = None,
               budget: Optional[float] = None, at_block: int = 0, seeds: Sequence[int] = (0, 1, 2),
               temperature: float = 0.1, epsilon: float = 0.01, gumbel_scale: float = 1.0,
               refine: int = 3, limit: int = 0, heads: int = 0, backend: str = "cpu",
               out: Any = None, force: bool = False, overlays: int = 0) -> Dict[str, Any]:
    """``qmpp eval``: the model (a converted ViT .safetensors) on INPUT (an image, a folder of
    images, pixels .npy) or ``dataset`` (an IDX folder), with and without merging inside it.

    Give one of r (constant), schedule=(r, inflection) (ToMe's), list (r per block) or budget
    (keep this share at ``at_block``). Returns eval.json's document as a dict (``per_seed``:
    agreement with its 95 % interval, KL, accuracy per seed; ``summary``; ``tokens`` per block;
    ``flops``; ``time``...) with the arrays ``logits_plain`` [count, classes], ``logits_merged``
    [seeds, count, classes] (the random methods run once per seed, 0, 1 and 2 by default; the
    others once) and ``labels``. backend: cpu (default, as the CLI), cuda or auto. With
    ``out``, writes the CLI's files there (eval.json, measures.csv, predictions.csv, logits;
    ``overlays`` pictures).
    """
    if (input is None) == (dataset is None):
        raise UsageError("give INPUT (an image, a folder or pixels .npy) or --dataset DIR, "
                         "not both")
    hook = _hook_args(method, r, schedule, list, budget, at_block, temperature, epsilon,
                      gumbel_scale, refine, 0)
    return _qmpp._eval_model(os.fspath(model), os.fspath(input if dataset is None else dataset),
                             dataset is not None, hook, ",".join(str(int(s)) for s in seeds),
                             int(limit), int(heads), backend, "" if out is None else os.fspath(out),
                             bool(force), int(overlays))


def trace_model(model: Union[str, os.PathLike], pixels: Any, *, item: int = 0,
                method: str = "quickmerge", r: Optional[int] = None,
                schedule: Optional[Sequence[float]] = None, list: Optional[Sequence[int]] = None,
                budget: Optional[float] = None, at_block: int = 0, temperature: float = 0.1,
                epsilon: float = 0.01, gumbel_scale: float = 1.0, refine: int = 3,
                seed: int = 0) -> Dict[str, Any]:
    """One image (normalized pixels [C, H, W]) through the model with merging inside, with what
    each block saw and did: ``logits``, and ``blocks``, a list of dicts with ``tokens`` (entering,
    class token included), ``tokens_out``, ``attention`` [heads, T, T] (after the softmax,
    ln-count bias included), ``entropy`` [T] (each query's, mean over heads), the merge
    ``new_row`` [T] (-1: dropped) and ``weight`` [T], ``counts`` [T], ``owner`` [N] (the row that
    holds each patch on entry) and ``ms``. ``item`` picks the Gumbel noise (qmpp eval's item).
    The Model page's overlays and rollout are drawn from the same trace."""
    hook = _hook_args(method, r, schedule, list, budget, at_block, temperature, epsilon,
                      gumbel_scale, refine, seed)
    return _qmpp._trace(os.fspath(model), np.ascontiguousarray(_as_array(pixels, "pixels")),
                        hook, int(item))


def _hook_args(method: str, r: Optional[int], schedule: Optional[Sequence[float]],
               list_: Optional[Sequence[int]], budget: Optional[float], at_block: int,
               temperature: float, epsilon: float, gumbel_scale: float, refine: int,
               seed: int) -> Dict[str, Any]:
    """The merge hook's arguments as the engine takes them (the CLI's spellings)."""
    return dict(method=method, temperature=float(temperature), epsilon=float(epsilon),
                gumbel_scale=float(gumbel_scale), refine=int(refine), seed=int(seed),
                r="" if r is None else str(int(r)),
                schedule="" if schedule is None else f"{int(schedule[0])},{float(schedule[1])!r}",
                list="" if list_ is None else ",".join(str(int(v)) for v in list_),
                budget=0.0 if budget is None else float(budget), at_block=int(at_block))


def merge_step(x: Any, k: Union[int, Sequence[int]], *, metric: Any = None, counts: Any = None,
               entropy: Any = None, saliency: Any = None, method: str = "quickmerge",
               keep_first: int = 0, item_tokens: Optional[Sequence[int]] = None,
               temperature: float = 0.1, epsilon: float = 0.01, gumbel_scale: float = 1.0,
               seed: int = 0, offsets: Optional[Sequence[int]] = None,
               refine: int = 3) -> Dict[str, Any]:
    """One merge step on a batch, as a transformer calls it between blocks, where the tensors
    live: NumPy arrays or CPU tensors on the CPU, CUDA tensors on their own device (no copy to
    the host; the outputs are allocated there). The engine's batch step (qmpp/batch.h).

    x [B, N, D] float32 (float16 on CUDA); k: tokens each item keeps (an int, or one per item,
    kept-first ones included). metric [B, N, M]: what clustering compares (default x); counts
    [B, N]: tokens each row already holds; entropy [B, N]: attention entropies (saliency
    1 - minmax) or saliency [B, N] given; keep_first: leading rows never merged (a class
    token); item_tokens: each item's own N; offsets: each item's Philox offset.

    Returns merged [B, kMax, D] (rows past k_i zero), counts [B, kMax], labels [B, N] int32
    (-1: dropped or past n_i), saliency and mass [B, N], all on x's device and of x's kind.
    """
    torch_in = _is_torch(x)
    if torch_in:
        import torch
        dev = x.device
        on_cuda = dev.type == "cuda"
        if on_cuda:
            torch.cuda.current_stream(dev).synchronize()  # x is written before we read it

        def prep(t: Any, name: str, dtypes: tuple) -> Any:
            if t is None:
                return None
            if not _is_torch(t):
                t = torch.as_tensor(np.asarray(t))
            t = t.detach().to(dev)
            if t.dtype not in dtypes:
                t = t.to(dtypes[0])
            return t.contiguous()

        def empty(shape: tuple, dtype: Any) -> Any:
            return torch.zeros(shape, dtype=dtype, device=dev)

        def addr(t: Any) -> int:
            return 0 if t is None else int(t.data_ptr())
        float_types = (torch.float32, torch.float16) if on_cuda else (torch.float32,)
        f32, i32 = torch.float32, torch.int32
        device_index = (dev.index if dev.index is not None else torch.cuda.current_device()) \
            if on_cuda else -1
    else:
        def prep(t: Any, name: str, dtypes: tuple) -> Any:
            if t is None:
                return None
            return np.ascontiguousarray(_as_array(t, name), dtype=dtypes[0])

        def empty(shape: tuple, dtype: Any) -> Any:
            return np.zeros(shape, dtype=dtype)

        def addr(t: Any) -> int:
            return 0 if t is None else int(t.ctypes.data)
        float_types = (np.float32,)
        f32, i32 = np.float32, np.int32
        device_index = -1
    xs = prep(x, "x", float_types)
    if xs.ndim != 3:
        raise UsageError(f"merge_step: x must be [B, N, D], got {list(xs.shape)}")
    b, n, d = (int(v) for v in xs.shape)
    ks = [int(k)] * b if isinstance(k, (int, np.integer)) else [int(v) for v in k]
    ms = prep(metric, "metric", float_types)
    if ms is not None and (ms.ndim != 3 or tuple(ms.shape[:2]) != (b, n)):
        raise UsageError(f"merge_step: metric must be [{b}, {n}, M], got {list(ms.shape)}")
    if ms is not None and xs.dtype != ms.dtype:
        ms = ms.to(xs.dtype) if torch_in else ms.astype(xs.dtype)
    extras = {}
    for name, t in (("counts", counts), ("entropy", entropy), ("saliency", saliency)):
        t = prep(t, name, (f32,))
        if t is not None and tuple(t.shape) != (b, n):
            raise UsageError(f"merge_step: {name} must be [{b}, {n}], got {list(t.shape)}")
        extras[name] = t
    kmax = max(ks) if ks else 0
    out = {"merged": empty((b, kmax, d), xs.dtype), "counts": empty((b, kmax), f32),
           "labels": empty((b, n), i32), "saliency": empty((b, n), f32),
           "mass": empty((b, n), f32)}
    fp16 = torch_in and str(xs.dtype) == "torch.float16"
    a = dict(b=b, n=n, d=d, device=device_index, fp16=fp16, x=addr(xs), metric=addr(ms),
             metric_dim=0 if ms is None else int(ms.shape[2]), counts=addr(extras["counts"]),
             saliency=addr(extras["saliency"]), entropy=addr(extras["entropy"]),
             item_n=[] if item_tokens is None else [int(v) for v in item_tokens],
             keep_first=int(keep_first), k=ks,
             out_merged=addr(out["merged"]), out_counts=addr(out["counts"]),
             out_labels=addr(out["labels"]), out_saliency=addr(out["saliency"]),
             out_mass=addr(out["mass"]))
    p = dict(method=method, temperature=float(temperature), epsilon=float(epsilon),
             gumbel_scale=float(gumbel_scale), seed=int(seed), refine=int(refine),
             offsets=[] if offsets is None else [int(v) for v in offsets])
    _qmpp._merge_step(a, p)
    return out


def gpu_available() -> bool:
    """Whether the engine found a CUDA device (merges with backend="auto" run there)."""
    return bool(_qmpp._gpu_available()[0])


from . import patch  # noqa: E402  (qmpp.patch.timm)
from .capture import capture  # noqa: E402
