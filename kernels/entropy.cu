// Attention entropy: H_i = -sum_j A_ij ln A_ij for A = softmax_row(beta Q K^T), and the saliency
// s = 1 - mean_l minmax(H_l).
//
// | version | idea                                                       | measured |
// |---------|------------------------------------------------------------|----------|
// | basic   | one thread per query row; online (max, sum e, sum e z) per  | see docs/perf |
// |         | scale over every key; the N x N matrix is never stored      |          |
// | optimized | tensor-core tiles with the entropy in the epilogue: entropy_tc.cu |
// docs/perf/entropy-kernel.md |
//
// Supplied maps (optimized): one warp per (layer, row), 16-byte loads, one pass using
// H = ln s - (sum a ln a) / s with s = sum a, so the row is read once. Saliency (optimized):
// one block per layer for its min and max, then one thread per token.
//
// Online form: with m the running max, S = sum e^(z-m), T = sum e^(z-m) (z-m),
// H = ln S - T / S; when the max moves to m', S and T are rescaled by e^(m-m') and T gains
// (m - m') S.
#include "common.cuh"
#include "entropy_tc.cuh"

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
        for (int k = 0; k < p.d; ++k)
            dot += ld(x, (long long)i * p.d + k) * ld(x, (long long)j * p.d + k);
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
        for (int j = 0; j < p.n; ++j)
            sum += ld(a, row + j);
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
        if (range > 1e-6f * fmaxf(1.0f, fabsf(hi)))
            acc += (p.h[(long long)l * p.n + i] - lo) / range;
    }
    p.s[i] = 1.0f - acc / p.layers;
}

// One warp per (layer, row i): each head's row read once with 16-byte loads when aligned.
template <class T> struct Vec16;
template <> struct Vec16<float> {
    using V = float4;
    static constexpr int kN = 4;
};
template <> struct Vec16<__half> {
    using V = uint4;
    static constexpr int kN = 8;
};

__device__ __forceinline__ void accEnt(float a, float& sum, float& sal) {
    sum += a;
    if (a > 0.0f) sal = fmaf(a, __log2f(a), sal);
}
__device__ __forceinline__ void accEntVec(const float4& v, float& sum, float& sal) {
    accEnt(v.x, sum, sal);
    accEnt(v.y, sum, sal);
    accEnt(v.z, sum, sal);
    accEnt(v.w, sum, sal);
}
__device__ __forceinline__ void accEntVec(const uint4& v, float& sum, float& sal) {
    const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const float2 f = __half22float2(h[q]);
        accEnt(f.x, sum, sal);
        accEnt(f.y, sum, sal);
    }
}

template <class T, bool VEC> __global__ void entropy_maps_fast_kernel(EntropyMapsParams p) {
    const long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= (long long)p.layers * p.n) return;
    const int l = static_cast<int>(w / p.n), i = static_cast<int>(w % p.n);
    const T* a = static_cast<const T*>(p.a);
    float acc = 0.0f;
    for (int hd = 0; hd < p.heads; ++hd) {
        const long long row = (((long long)l * p.heads + hd) * p.n + i) * p.n;
        float sum = 0.0f, sal = 0.0f; // sum a, sum a log2 a
        if constexpr (VEC) {
            using V = typename Vec16<T>::V;
            const V* v = reinterpret_cast<const V*>(a + row);
            const int nv = p.n / Vec16<T>::kN;
#pragma unroll 4
            for (int j = lane; j < nv; j += 32)
                accEntVec(v[j], sum, sal);
        } else {
            for (int j = lane; j < p.n; j += 32)
                accEnt(ld(a, row + j), sum, sal);
        }
        sum = warpSum(sum);
        sal = warpSum(sal);
        if (sum > 0.0f) acc += 0.69314718f * (__log2f(sum) - sal / sum); // zero rows: as basic
    }
    if (lane == 0) p.h[w] = acc / p.heads;
}

// One block per layer: min and max over the tokens.
constexpr int kMinMaxThreads = 512;
__global__ void __launch_bounds__(kMinMaxThreads) minmax_fast_kernel(SaliencyParams p) {
    const int l = blockIdx.x;
    float a = INFINITY, b = -INFINITY;
    for (int i = threadIdx.x; i < p.n; i += kMinMaxThreads) {
        const float v = p.h[(long long)l * p.n + i];
        a = fminf(a, v);
        b = fmaxf(b, v);
    }
    a = blockAllReduce<kMinMaxThreads>(a, [](float x, float y) { return fminf(x, y); });
    b = blockAllReduce<kMinMaxThreads>(b, [](float x, float y) { return fmaxf(x, y); });
    if (threadIdx.x == 0) {
        p.minmax[2 * l] = a;
        p.minmax[2 * l + 1] = b;
    }
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
    case Version::Optimized:
        entropyGramTc(p, prec, s);
        return;
    }
}

std::size_t entropyGramWorkBytes(const EntropyGramParams& p, Version v, Prec prec) {
    return v == Version::Optimized ? entropyGramTcWorkBytes(p, prec) : 0;
}

void entropyMaps(const EntropyMapsParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchEntropyMapsBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        withPrec(prec, [&](auto t) {
            using T = decltype(t);
            const unsigned blocks = blocksFor((long long)p.layers * p.n * 32, 256);
            if (p.n % Vec16<T>::kN == 0 && reinterpret_cast<std::uintptr_t>(p.a) % 16 == 0)
                entropy_maps_fast_kernel<T, true><<<blocks, 256, 0, s>>>(p);
            else
                entropy_maps_fast_kernel<T, false><<<blocks, 256, 0, s>>>(p);
            QMPP_CUDA_CHECK_LAUNCH();
        });
        return;
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
    case Version::Optimized:
        minmax_fast_kernel<<<p.layers, kMinMaxThreads, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        saliency_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

} // namespace qmpp::kernels
