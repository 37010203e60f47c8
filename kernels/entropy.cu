// Attention entropy: H_i = -sum_j A_ij ln A_ij for A = softmax_row(beta Q K^T), and the saliency
// s = 1 - mean_l minmax(H_l).
//
// | version | idea                                                       | measured |
// |---------|------------------------------------------------------------|----------|
// | basic   | one thread per query row; online (max, sum e, sum e z) per  | see docs/perf |
// |         | scale over every key; the N x N matrix is never stored      |          |
//
// Online form: with m the running max, S = sum e^(z-m), T = sum e^(z-m) (z-m),
// H = ln S - T / S; when the max moves to m', S and T are rescaled by e^(m-m') and T gains
// (m - m') S.
#include "common.cuh"

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

// One thread per (source, row i). x: [sources, N, D]; h: [sources * scales, N].
template <class T> __global__ void entropy_gram_basic_kernel(EntropyGramParams p) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)p.sources * p.n) return;
    const int src = static_cast<int>(t / p.n), i = static_cast<int>(t % p.n);
    const T* x = static_cast<const T*>(p.x) + (long long)src * p.n * p.d;
    float m[kMaxLayers], se[kMaxLayers], sez[kMaxLayers];
    for (int l = 0; l < p.scales; ++l) {
        m[l] = -INFINITY;
        se[l] = 0.0f;
        sez[l] = 0.0f;
    }
    for (int j = 0; j < p.n; ++j) {
        float dot = 0.0f;
        for (int k = 0; k < p.d; ++k) dot += ld(x, (long long)i * p.d + k) * ld(x, (long long)j * p.d + k);
        for (int l = 0; l < p.scales; ++l) {
            const float z = p.beta[l] * dot;
            if (z > m[l]) {
                const float r = __expf(m[l] - z); // 0 on the first key (m = -inf)
                sez[l] = r * (sez[l] + (m[l] - z) * se[l]);
                if (se[l] == 0.0f) sez[l] = 0.0f; // avoid (-inf) * 0 on the first key
                se[l] *= r;
                m[l] = z;
            }
            const float e = __expf(z - m[l]);
            se[l] += e;
            sez[l] += e * (z - m[l]);
        }
    }
    for (int l = 0; l < p.scales; ++l)
        p.h[((long long)src * p.scales + l) * p.n + i] = logf(se[l]) - sez[l] / se[l];
}

// One thread per (layer, row i): each head's row renormalized, entropies averaged over heads.
template <class T> __global__ void entropy_maps_basic_kernel(EntropyMapsParams p) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)p.layers * p.n) return;
    const int l = static_cast<int>(t / p.n), i = static_cast<int>(t % p.n);
    const T* a = static_cast<const T*>(p.a);
    float acc = 0.0f;
    for (int hd = 0; hd < p.heads; ++hd) {
        const long long row = (((long long)l * p.heads + hd) * p.n + i) * p.n;
        float sum = 0.0f;
        for (int j = 0; j < p.n; ++j) sum += ld(a, row + j);
        float e = 0.0f;
        for (int j = 0; j < p.n; ++j) {
            const float q = ld(a, row + j) / sum;
            if (q > 0.0f) e -= q * logf(q);
        }
        acc += e;
    }
    p.h[(long long)l * p.n + i] = acc / p.heads;
}

// One thread per layer: min and max over the tokens.
__global__ void minmax_basic_kernel(SaliencyParams p) {
    const int l = blockIdx.x * blockDim.x + threadIdx.x;
    if (l >= p.layers) return;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < p.n; ++i) {
        lo = fminf(lo, p.h[(long long)l * p.n + i]);
        hi = fmaxf(hi, p.h[(long long)l * p.n + i]);
    }
    p.minmax[2 * l] = lo;
    p.minmax[2 * l + 1] = hi;
}

// One thread per token: s_i = 1 - mean_l (h_li - min_l) / (max_l - min_l); constant layers add 0.
__global__ void saliency_basic_kernel(SaliencyParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    float acc = 0.0f;
    for (int l = 0; l < p.layers; ++l) {
        const float lo = p.minmax[2 * l], hi = p.minmax[2 * l + 1], range = hi - lo;
        if (range > 1e-6f * fmaxf(1.0f, fabsf(hi))) acc += (p.h[(long long)l * p.n + i] - lo) / range;
    }
    p.s[i] = 1.0f - acc / p.layers;
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchEntropyGramBasic(const EntropyGramParams& p, cudaStream_t s) {
    const long long rows = (long long)p.sources * p.n;
    entropy_gram_basic_kernel<T><<<blocksFor(rows, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

template <class T> void launchEntropyMapsBasic(const EntropyMapsParams& p, cudaStream_t s) {
    entropy_maps_basic_kernel<T><<<blocksFor((long long)p.layers * p.n, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatchers --------------------------------------------------------------------------

void entropyGram(const EntropyGramParams& p, Version v, Prec prec, cudaStream_t s) {
    if (p.scales < 1 || p.scales > kMaxLayers) throw CudaError("entropyGram: scales out of range");
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchEntropyGramBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized: unavailable(Kernel::EntropyGram, v);
    }
}

void entropyMaps(const EntropyMapsParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchEntropyMapsBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized: unavailable(Kernel::EntropyMaps, v);
    }
}

void saliency(const SaliencyParams& p, Version v, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        minmax_basic_kernel<<<blocksFor(p.layers, 64), 64, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        saliency_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    case Version::Optimized: unavailable(Kernel::Saliency, v);
    }
}

} // namespace qmpp::kernels
