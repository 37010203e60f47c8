// Per-token terms of the label-free metrics (the host sums them in double): squared
// reconstruction error, squared norm, cosine to the merged vector, norm; and merged norms.
//
// | version | idea                                            | measured      |
// |---------|-------------------------------------------------|---------------|
// | optimized | one warp per token and per merged row, one launch, coalesced rows | docs/perf |
// | basic   | one thread per token; one thread per merged row | see docs/perf |
#include "common.cuh"

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

template <class T> __global__ void metrics_token_basic_kernel(MetricsParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const T* x = static_cast<const T*>(p.x);
    const int g = p.labels[i];
    float e2 = 0.0f, x2 = 0.0f, u2 = 0.0f, xu = 0.0f;
    for (int f = 0; f < p.d; ++f) {
        const float v = ld(x, (long long)i * p.d + f);
        const float u = g >= 0 ? p.merged[(long long)g * p.d + f] : 0.0f;
        e2 += (v - u) * (v - u);
        x2 += v * v;
        u2 += u * u;
        xu += v * u;
    }
    if (p.paddedErr) {
        float r = 0.0f;
        for (int f = 0; f < p.d; ++f) {
            const float v =
                ld(x, (long long)i * p.d + f) - (i < p.k ? p.merged[(long long)i * p.d + f] : 0.0f);
            r += v * v;
        }
        p.paddedErr[i] = r;
    }
    float* out = p.tokenTerms + 4LL * i;
    out[0] = e2;
    out[1] = x2;
    out[2] = (x2 > 0.0f && u2 > 0.0f) ? xu * rsqrtf(x2) * rsqrtf(u2) : 0.0f;
    out[3] = sqrtf(x2);
}

__global__ void metrics_merged_basic_kernel(MetricsParams p) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= p.k) return;
    float s = 0.0f;
    for (int f = 0; f < p.d; ++f)
        s += p.merged[(long long)g * p.d + f] * p.merged[(long long)g * p.d + f];
    p.mergedNorm[g] = sqrtf(s);
}

// One warp per token (then one per merged row): the four sums in one pass over the row.
template <class T> __global__ void metrics_fast_kernel(MetricsParams p) {
    const long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= (long long)p.n + p.k) return;
    if (w >= p.n) {
        const float* m = p.merged + (w - p.n) * p.d;
        float s = 0.0f;
        for (int f = lane; f < p.d; f += 32)
            s = fmaf(m[f], m[f], s);
        s = warpSum(s);
        if (lane == 0) p.mergedNorm[w - p.n] = sqrtf(s);
        return;
    }
    const T* x = static_cast<const T*>(p.x);
    const int g = p.labels[w];
    float e2 = 0.0f, x2 = 0.0f, u2 = 0.0f, xu = 0.0f, pe = 0.0f;
    for (int f = lane; f < p.d; f += 32) {
        const float v = ld(x, w * p.d + f);
        const float u = g >= 0 ? p.merged[(long long)g * p.d + f] : 0.0f;
        const float q = v - (w < p.k ? p.merged[w * p.d + f] : 0.0f);
        pe = fmaf(q, q, pe);
        e2 = fmaf(v - u, v - u, e2);
        x2 = fmaf(v, v, x2);
        u2 = fmaf(u, u, u2);
        xu = fmaf(v, u, xu);
    }
    e2 = warpSum(e2);
    x2 = warpSum(x2);
    u2 = warpSum(u2);
    xu = warpSum(xu);
    pe = warpSum(pe);
    if (lane == 0) {
        if (p.paddedErr) p.paddedErr[w] = pe;
        float* out = p.tokenTerms + 4 * w;
        out[0] = e2;
        out[1] = x2;
        out[2] = (x2 > 0.0f && u2 > 0.0f) ? xu * rsqrtf(x2) * rsqrtf(u2) : 0.0f;
        out[3] = sqrtf(x2);
    }
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchMetricsBasic(const MetricsParams& p, cudaStream_t s) {
    metrics_token_basic_kernel<T><<<blocksFor(p.n, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    metrics_merged_basic_kernel<<<blocksFor(p.k, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatcher ---------------------------------------------------------------------------

void metrics(const MetricsParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchMetricsBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        withPrec(prec, [&](auto t) {
            metrics_fast_kernel<decltype(t)><<<blocksFor(32LL * (p.n + p.k), 256), 256, 0, s>>>(p);
        });
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

} // namespace qmpp::kernels
