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


if __name__ == "__main__":
    main()
