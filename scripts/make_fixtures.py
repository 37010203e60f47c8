#!/usr/bin/python3
"""Regenerates tests/fixtures/ from the real scikit-learn (Debian's python3-sklearn).

For each case: tokens X [N, D] float32, and the labels scikit-learn gives for
  - the `reference` mode: AgglomerativeClustering(n_clusters=K, linkage='average') fitted on the
    rows of the N x N cosine-similarity matrix (Euclidean distance between rows);
  - the `agglomerative` mode: average linkage on cosine distance, cut at K.
Run: /usr/bin/python3 scripts/make_fixtures.py
"""
import os
import numpy as np
import sklearn
from sklearn.cluster import AgglomerativeClustering

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures")

CASES = [(40, 8, 5, 1), (100, 16, 12, 2), (64, 24, 7, 3), (150, 32, 20, 4)]


def tokens(n, d, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(2, n // 10), d))
    x = centres[rng.integers(0, len(centres), size=n)] + 0.35 * rng.normal(size=(n, d))
    x[::13] *= 6.0  # outliers
    return x.astype(np.float32)


def tome(x, k):
    """tome/merge.py's bipartite_soft_matching + merge_wavg, repeated until K tokens remain,
    written with numpy. Returns labels (index into the merged tokens ordered by smallest source)
    and the merged tokens."""
    xs = x.astype(np.float64)
    size = np.ones((len(xs), 1))
    src = [[i] for i in range(len(xs))]
    while len(xs) > k:
        n = len(xs)
        r = min(n // 2, n - k)
        if r <= 0:
            break
        metric = xs / np.linalg.norm(xs, axis=-1, keepdims=True)
        a, b = metric[::2], metric[1::2]
        scores = a @ b.T
        node_max, node_idx = scores.max(axis=-1), scores.argmax(axis=-1)
        edge_idx = np.argsort(-node_max, kind="stable")
        unm_idx, src_idx = edge_idx[r:], edge_idx[:r]
        xw = xs * size
        A, B = xw[::2], xw[1::2].copy()
        sa, sb = size[::2], size[1::2].copy()
        srcA, srcB = src[::2], [list(s) for s in src[1::2]]
        for e in src_idx:  # scatter_reduce(sum) of each merged A token into its B token
            j = node_idx[e]
            B[j] += A[e]
            sb[j] += sa[e]
            srcB[j] += srcA[e]
        new_w = np.concatenate([A[unm_idx], B])
        size = np.concatenate([sa[unm_idx], sb])
        xs = new_w / size
        src = [srcA[i] for i in unm_idx] + srcB
    order = sorted(range(len(src)), key=lambda g: min(src[g]))
    labels = np.full(len(x), -1, dtype=np.int64)
    for rank, g in enumerate(order):
        labels[src[g]] = rank
    return labels, xs[order].astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    for n, d, k, seed in CASES:
        x = tokens(n, d, seed)
        x64 = x.astype(np.float64)
        nrm = np.linalg.norm(x64, axis=1, keepdims=True)
        s = (x64 / nrm) @ (x64 / nrm).T
        ref = AgglomerativeClustering(n_clusters=k, linkage="average").fit(s).labels_
        agg = AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit(x64).labels_
        base = os.path.join(OUT, f"cluster_n{n}_d{d}_k{k}")
        np.save(base + "_x.npy", x)
        np.save(base + "_reference.npy", ref.astype(np.int64))
        np.save(base + "_agglomerative.npy", agg.astype(np.int64))
        print(base, "sklearn", sklearn.__version__)
    for n, d, k, seed in [(50, 8, 10, 11), (97, 16, 13, 12), (128, 24, 40, 13)]:
        x = tokens(n, d, seed)
        labels, merged = tome(x, k)
        base = os.path.join(OUT, f"tome_n{n}_d{d}_k{k}")
        np.save(base + "_x.npy", x)
        np.save(base + "_labels.npy", labels)
        np.save(base + "_merged.npy", merged)
        print(base, "ToMe (numpy port of tome/merge.py)")


if __name__ == "__main__":
    main()
