# Type stubs of the qmpp package (see __init__.py and docs/python.md).
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import patch as patch

PathLike = Union[str, os.PathLike]
__version__: str

class UsageError(ValueError): ...
class InputError(OSError, ValueError): ...

class MergeResult:
    n: int
    d: int
    k: int
    item: int
    merged: Any  # [K, D] float32 (a tensor when the input was one)
    labels: Any  # [N] int64
    saliency: Any  # [N] float32
    mask: Any  # [N] float32
    mass: Any  # [N] float32
    uniforms: Any  # [N] float32
    foreground: Any  # [K] int64
    group_sizes: Any  # [K] int64
    layer_entropy: Any  # [L, N] float32
    metrics: Dict[str, Any]
    losses: Dict[str, float]
    timings: Dict[str, float]
    method: str
    backend: str
    device: str
    precision: str
    saliency_source: str
    ar_heads_source: str
    refine_rounds: int
    notes: List[str]
    def report(self) -> Dict[str, Any]: ...
    def save(self, out: PathLike, force: bool = ...) -> List[str]: ...

def merge(tokens: Any, *, k: Optional[int] = ..., budget: float = ..., temperature: float = ...,
          epsilon: float = ..., gamma: float = ..., alpha: float = ..., layers: int = ...,
          refine: int = ..., seed: int = ..., method: str = ..., cluster: str = ...,
          backend: str = ..., precision: str = ..., hidden_states: Any = ...,
          attention: Any = ..., labels: Any = ..., uniforms: Any = ...,
          ar_weights: Optional[str] = ..., batch: Optional[int] = ..., patch: int = ...,
          key: Optional[str] = ..., projection: Optional[str] = ...,
          tokens_only: bool = ...) -> Union[MergeResult, List[MergeResult]]: ...
def saliency(tokens: Any, **kw: Any) -> Any: ...
def tome(tokens: Any, **kw: Any) -> Union[MergeResult, List[MergeResult]]: ...
def topk(tokens: Any, **kw: Any) -> Union[MergeResult, List[MergeResult]]: ...
def random(tokens: Any, **kw: Any) -> Union[MergeResult, List[MergeResult]]: ...

class Loaded:
    tokens: np.ndarray
    hidden_states: Optional[np.ndarray]
    attention: Optional[np.ndarray]
    labels: Optional[List[str]]
    grid: Optional[Tuple[int, int]]
    kind: str
    image: Optional[np.ndarray]

def load(path: PathLike, *, key: Optional[str] = ..., patch: int = ...,
         projection: Optional[str] = ..., labels: Optional[str] = ...,
         tokens_only: bool = ...) -> Loaded: ...
def save(path: PathLike, tensors: Any, metadata: Optional[Dict[str, Any]] = ...,
         force: bool = ...) -> None: ...
def eval_model(model: PathLike, input: Any = ..., *, dataset: Any = ..., method: str = ...,
               r: Optional[int] = ..., schedule: Optional[Sequence[float]] = ...,
               list: Optional[Sequence[int]] = ..., budget: Optional[float] = ...,
               at_block: int = ..., seeds: Sequence[int] = ..., temperature: float = ...,
               epsilon: float = ..., gumbel_scale: float = ..., refine: int = ...,
               limit: int = ..., heads: int = ..., backend: str = ..., out: Any = ...,
               force: bool = ..., overlays: int = ...) -> Dict[str, Any]: ...
def trace_model(model: PathLike, pixels: Any, *, item: int = ..., method: str = ...,
                r: Optional[int] = ..., schedule: Optional[Sequence[float]] = ...,
                list: Optional[Sequence[int]] = ..., budget: Optional[float] = ...,
                at_block: int = ..., temperature: float = ..., epsilon: float = ...,
                gumbel_scale: float = ..., refine: int = ..., seed: int = ...) -> Dict[str, Any]: ...
def merge_step(x: Any, k: Union[int, Sequence[int]], *, metric: Any = ..., counts: Any = ...,
               entropy: Any = ..., saliency: Any = ..., method: str = ..., keep_first: int = ...,
               item_tokens: Optional[Sequence[int]] = ..., temperature: float = ...,
               epsilon: float = ..., gumbel_scale: float = ..., seed: int = ...,
               offsets: Optional[Sequence[int]] = ..., refine: int = ...) -> Dict[str, Any]: ...
def gpu_available() -> bool: ...
def capture(model: Any, inputs: Any, path: PathLike, *, item: int = ...,
            labels: Optional[Sequence[str]] = ..., tokenizer: Any = ...,
            force: bool = ...) -> Dict[str, List[int]]: ...
