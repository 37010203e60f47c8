// Per-token terms of the label-free metrics (the host sums them in double): squared
// reconstruction error, squared norm, cosine to the merged vector, norm; and merged norms.
//
// | version | idea                                            | measured      |
// |---------|-------------------------------------------------|---------------|
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
    for (int f = 0; f < p.d; ++f) s += p.merged[(long long)g * p.d + f] * p.merged[(long long)g * p.d + f];
    p.mergedNorm[g] = sqrtf(s);
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
    case Version::Basic: withPrec(prec, [&](auto t) { launchMetricsBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized: unavailable(Kernel::Metrics, v);
    }
}

} // namespace qmpp::kernels
