// One params builder per kernel: the required operands in the struct's order, the optional
// fields left at their defaults (a caller sets them after). The CUDA stages, `qmpp check` and
// `qmpp bench` fill every launch through these, so a new field is added in one place.
#pragma once

#include "qmpp/kernels/ops.h"

namespace qmpp::kernels {

// x [sources, N, D]; `scales` betas, one per scale; h out [sources * scales, N]. The optimized
// version's scratch is sized by entropyGramWorkBytes(p, v, prec) and set after.
inline EntropyGramParams entropyGramParams(const void* x, int sources, int n, int d,
                                           const float* betas, int scales, float* h) {
    EntropyGramParams p;
    p.x = x;
    p.sources = sources;
    p.n = n;
    p.d = d;
    p.scales = scales;
    for (int l = 0; l < scales; ++l)
        p.beta[l] = betas[l];
    p.h = h;
    return p;
}

inline EntropyMapsParams entropyMapsParams(const void* a, int layers, int heads, int n, float* h) {
    EntropyMapsParams p;
    p.a = a;
    p.layers = layers;
    p.heads = heads;
    p.n = n;
    p.h = h;
    return p;
}

inline SaliencyParams saliencyParams(const float* h, int layers, int n, float* minmax, float* s) {
    return SaliencyParams{h, layers, n, minmax, s};
}

inline CosineParams cosineParams(const void* a, const void* b, int m, int n, int d, float* out,
                                 float* scratch) {
    CosineParams p;
    p.a = a;
    p.b = b;
    p.m = m;
    p.n = n;
    p.d = d;
    p.out = out;
    p.scratch = scratch;
    return p;
}

inline GumbelParams gumbelParams(const float* s, const float* u, int n, float tau, float eps,
                                 float* keys, float* pi, float* mass, float* scratch) {
    return GumbelParams{s, u, n, tau, eps, keys, pi, mass, scratch};
}

inline TopKParams topKParams(const float* keys, int n, int k, int* selected, int* idx,
                             int* founderOf = nullptr) {
    return TopKParams{keys, n, k, selected, idx, founderOf};
}

// Centres from groups (labels, mass); with `founders` set after, from the founding tokens.
inline CentresParams centresParams(const void* x, int n, int d, int k, const int* labels,
                                   const float* mass, float* centres) {
    CentresParams p;
    p.x = x;
    p.n = n;
    p.d = d;
    p.k = k;
    p.labels = labels;
    p.mass = mass;
    p.centres = centres;
    return p;
}

// centresHalf: [2, K, D] halves (optimized FP16); partial: assignPartialBytes(n, d, k) bytes.
inline AssignParams assignParams(const void* x, int n, int d, int k, const float* centres,
                                 const int* founderOf, int* labels, void* centresHalf,
                                 void* partial) {
    AssignParams p;
    p.x = x;
    p.n = n;
    p.d = d;
    p.k = k;
    p.centres = centres;
    p.founderOf = founderOf;
    p.labels = labels;
    p.centresHalf = centresHalf;
    p.partial = partial;
    return p;
}

inline MergeParams mergeParams(const void* x, int n, int d, int k, const float* mass, int* labels,
                               int* first, int* rank, float* merged, int* sizes,
                               int* order = nullptr) {
    return MergeParams{x, n, d, k, mass, labels, first, rank, merged, sizes, order};
}

// Both heads' weights from one packed array in T (see bindArWeights).
inline ArParams arParams(const float* merged, int k, int d, const void* packedWeights, Prec prec,
                         float* means, float* hidden, float* err) {
    ArParams p;
    p.merged = merged;
    p.k = k;
    p.d = d;
    bindArWeights(p, packedWeights, d, prec);
    p.means = means;
    p.hidden = hidden;
    p.err = err;
    return p;
}

inline MetricsParams metricsParams(const void* x, int n, int d, int k, const int* labels,
                                   const float* merged, float* tokenTerms, float* mergedNorm,
                                   float* paddedErr = nullptr) {
    return MetricsParams{x, n, d, k, labels, merged, tokenTerms, mergedNorm, paddedErr};
}

} // namespace qmpp::kernels
