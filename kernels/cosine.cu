// Cosine similarity of the rows of a [M, D] and b [N, D]: out [M, N], 0 where a norm is 0.
//
// | version | idea                                         | measured      |
// |---------|----------------------------------------------|---------------|
// | basic   | one thread per output; three sums over D     | see docs/perf |
#include "common.cuh"

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

template <class T> __global__ void cosine_basic_kernel(CosineParams p) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)p.m * p.n) return;
    const long long i = t / p.n, j = t % p.n;
    const T* a = static_cast<const T*>(p.a);
    const T* b = static_cast<const T*>(p.b);
    float ab = 0.0f, aa = 0.0f, bb = 0.0f;
    for (int k = 0; k < p.d; ++k) {
        const float u = ld(a, i * p.d + k), w = ld(b, j * p.d + k);
        ab += u * w;
        aa += u * u;
        bb += w * w;
    }
    p.out[t] = (aa > 0.0f && bb > 0.0f) ? ab * rsqrtf(aa) * rsqrtf(bb) : 0.0f;
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchCosineBasic(const CosineParams& p, cudaStream_t s) {
    cosine_basic_kernel<T><<<blocksFor((long long)p.m * p.n, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatcher ---------------------------------------------------------------------------

void cosine(const CosineParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic: withPrec(prec, [&](auto t) { launchCosineBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized: unavailable(Kernel::Cosine, v);
    }
}

} // namespace qmpp::kernels
