// The transformer's kernels for the model in the loop (qmpp/kernels/vit.h). Each is the plain
// version: a thread per output element, or a block per row where a row needs a reduction.
#include "common.cuh"
#include "qmpp/kernels/vit.h"

#include <cmath>

namespace qmpp::kernels::vit {
namespace {

constexpr int kThreads = 256;
constexpr int kRowThreads = 128;

// A grid-stride loop over n elements.
#define QMPP_FOR_EACH(i, n)                                                                        \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);                  \
         i += (long long)gridDim.x * blockDim.x)

unsigned gridFor(long long n) {
    const long long b = (n + kThreads - 1) / kThreads;
    return static_cast<unsigned>(b < 65535LL * 16 ? (b > 0 ? b : 1) : 65535LL * 16);
}

template <class T>
__global__ void im2colKernel(const float* px, int batch, int ch, int size, int patch, T* cols) {
    const int grid = size / patch, cpp = ch * patch * patch;
    const long long total = (long long)batch * grid * grid * cpp;
    QMPP_FOR_EACH(e, total) {
        const long long row = e / cpp;
        const int col = int(e % cpp);
        const int b = int(row / (grid * grid)), i = int(row % (grid * grid));
        const int c = col / (patch * patch), py = (col / patch) % patch, pxi = col % patch;
        const int y = (i / grid) * patch + py, x = (i % grid) * patch + pxi;
        cols[e] = fromFloat<T>(px[(((long long)b * ch + c) * size + y) * size + x]);
    }
}

template <class T>
__global__ void embedKernel(const T* emb, const float* bias, const float* cls, const float* pos,
                            int batch, int n, int d, T* x) {
    const long long total = (long long)batch * (n + 1) * d;
    QMPP_FOR_EACH(e, total) {
        const int f = int(e % d);
        const long long row = e / d;
        const int i = int(row % (n + 1));
        const long long b = row / (n + 1);
        const float v = i == 0 ? cls[f] : ld(emb, (b * n + i - 1) * d + f) + bias[f];
        x[e] = fromFloat<T>(v + pos[(long long)i * d + f]);
    }
}

template <class T>
__global__ void layerNormKernel(const T* in, long long inStride, int d, const float* w,
                                const float* b, float eps, T* out) {
    const T* row = in + blockIdx.x * inStride;
    T* dst = out + (long long)blockIdx.x * d;
    const auto sum = [](float a, float c) { return a + c; };
    float s = 0;
    for (int f = threadIdx.x; f < d; f += kRowThreads)
        s += ld(row, f);
    const float mean = blockAllReduce<kRowThreads>(s, sum) / float(d);
    float v = 0;
    for (int f = threadIdx.x; f < d; f += kRowThreads) {
        const float c = ld(row, f) - mean;
        v += c * c;
    }
    const float rstd = rsqrtf(blockAllReduce<kRowThreads>(v, sum) / float(d) + eps);
    for (int f = threadIdx.x; f < d; f += kRowThreads)
        dst[f] = fromFloat<T>((ld(row, f) - mean) * rstd * w[f] + b[f]);
}

__device__ __forceinline__ float geluErf(float v) {
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}

template <class T>
__global__ void biasActKernel(T* y, long long total, int n, const float* bias, bool gelu) {
    QMPP_FOR_EACH(e, total) {
        const float v = ld(y, e) + bias[e % n];
        y[e] = fromFloat<T>(gelu ? geluErf(v) : v);
    }
}

template <class T>
__global__ void biasResidualKernel(T* x, const T* y, long long total, int n, const float* bias) {
    QMPP_FOR_EACH(e, total) {
        x[e] = fromFloat<T>(ld(x, e) + ld(y, e) + bias[e % n]);
    }
}

template <class T>
__global__ void splitHeadsKernel(const T* qkv, int batch, int t, int heads, int dh, T* q, T* k,
                                 T* v) {
    const long long total = (long long)batch * t * 3 * heads * dh;
    QMPP_FOR_EACH(e, total) {
        const int f = int(e % dh);
        long long r = e / dh;
        const int h = int(r % heads);
        r /= heads;
        const int which = int(r % 3);
        r /= 3;
        const int i = int(r % t);
        const long long b = r / t;
        T* dst = which == 0 ? q : which == 1 ? k : v;
        dst[((b * heads + h) * t + i) * dh + f] = qkv[e];
    }
}

template <class T>
__global__ void mergeHeadsKernel(const T* o, int batch, int t, int heads, int dh, T* out) {
    const long long total = (long long)batch * t * heads * dh;
    QMPP_FOR_EACH(e, total) {
        const int f = int(e % dh);
        long long r = e / dh;
        const int h = int(r % heads);
        r /= heads;
        const int i = int(r % t);
        const long long b = r / t;
        out[e] = o[((b * heads + h) * t + i) * dh + f];
    }
}

// one block per row (b, h, i)
template <class T>
__global__ void softmaxKernel(const float* scores, int heads, int t, const float* counts,
                              const int* positions, T* probs, float* entropy, float* clsRow) {
    const long long row = blockIdx.x;
    const int i = int(row % t);
    const long long b = row / ((long long)t * heads);
    const float* s = scores + row * t;
    const float* c = counts ? counts + b * t : nullptr;
    const int* pos = positions ? positions + b * t : nullptr;
    const int mine = pos ? pos[i] : 0;
    const auto logit = [&](int j) {
        if (pos && pos[j] > mine) return -INFINITY; // the future
        return c ? s[j] + logf(c[j]) : s[j];
    };
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < t; j += kRowThreads)
        mx = fmaxf(mx, logit(j));
    mx = blockAllReduce<kRowThreads>(mx, [](float a, float q) { return fmaxf(a, q); });
    float z = 0, zs = 0; // sum e^(l - mx), sum e^(l - mx) (l - mx)
    for (int j = threadIdx.x; j < t; j += kRowThreads) {
        const float l = logit(j);
        if (l == -INFINITY) continue;
        const float u = l - mx, e = expf(u);
        z += e;
        zs += e * u;
    }
    const auto sum = [](float a, float q) { return a + q; };
    z = blockAllReduce<kRowThreads>(z, sum);
    zs = blockAllReduce<kRowThreads>(zs, sum);
    const float inv = 1.0f / z;
    const long long hrow = row / t; // (b, h)
    for (int j = threadIdx.x; j < t; j += kRowThreads) {
        const float pj = expf(logit(j) - mx) * inv;
        probs[row * t + j] = fromFloat<T>(pj);
        if (clsRow && i == 0) clsRow[hrow * t + j] = pj;
    }
    // H = -sum p ln p = ln Z - sum p (l - mx)
    if (entropy && threadIdx.x == 0) entropy[row] = logf(z) - zs * inv;
}

template <class T>
__global__ void embedTokensKernel(const int* ids, int n, const T* table, const float* pos, int d,
                                  T* x) {
    QMPP_FOR_EACH(e, (long long)n * d) {
        const long long i = e / d;
        const int f = int(e % d);
        x[e] = fromFloat<T>(ld(table, (long long)ids[i] * d + f) + pos[e]);
    }
}

template <class T>
__global__ void keysMeanKernel(const T* k, int batch, int heads, int t, int dh, float* out) {
    const long long total = (long long)batch * t * dh;
    QMPP_FOR_EACH(e, total) {
        const int f = int(e % dh);
        const long long r = e / dh;
        const int i = int(r % t);
        const long long b = r / t;
        float acc = 0;
        for (int h = 0; h < heads; ++h)
            acc += ld(k, ((b * heads + h) * t + i) * dh + f);
        out[e] = acc / float(heads);
    }
}

// one block per output row (g, b); threads over features
template <class T>
__global__ void mergeRowsKernel(const T* x, int tIn, int tOut, int d, const int* offsets,
                                const int* members, const float* weight, T* out) {
    const long long b = blockIdx.y;
    const long long g = b * tOut + blockIdx.x;
    const int m0 = offsets[g], m1 = offsets[g + 1];
    float wsum = 0;
    for (int m = m0; m < m1; ++m)
        wsum += weight[m];
    const bool weighted = wsum > 0;
    const float den = weighted ? wsum : float(m1 > m0 ? m1 - m0 : 1);
    for (int f = threadIdx.x; f < d; f += kThreads) {
        float acc = 0;
        for (int m = m0; m < m1; ++m)
            acc += (weighted ? weight[m] : 1.0f) * ld(x, (b * tIn + members[m]) * d + f);
        out[g * d + f] = fromFloat<T>(acc / den);
    }
}

template <class T> __global__ void toPrecKernel(const float* in, long long n, T* out) {
    QMPP_FOR_EACH(e, n) {
        out[e] = fromFloat<T>(in[e]);
    }
}
template <class T> __global__ void toFloatKernel(const T* in, long long n, float* out) {
    QMPP_FOR_EACH(e, n) {
        out[e] = ld(in, e);
    }
}

} // namespace

void im2col(Prec p, const float* pixels, int batch, int channels, int size, int patch, void* cols,
            cudaStream_t s) {
    const long long total =
        (long long)batch * channels * (size / patch) * (size / patch) * patch * patch;
    withPrec(p, [&](auto t) {
        using T = decltype(t);
        im2colKernel<T><<<gridFor(total), kThreads, 0, s>>>(pixels, batch, channels, size, patch,
                                                            static_cast<T*>(cols));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void embed(Prec p, const void* emb, const float* bias, const float* cls, const float* pos,
           int batch, int n, int d, void* x, cudaStream_t s) {
    withPrec(p, [&](auto t) {
        using T = decltype(t);
        embedKernel<T><<<gridFor((long long)batch * (n + 1) * d), kThreads, 0, s>>>(
            static_cast<const T*>(emb), bias, cls, pos, batch, n, d, static_cast<T*>(x));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void layerNorm(Prec p, const void* in, long long inStride, int rows, int d, const float* w,
               const float* b, float eps, void* out, cudaStream_t s) {
    if (rows <= 0) return;
    withPrec(p, [&](auto t) {
        using T = decltype(t);
        layerNormKernel<T><<<rows, kRowThreads, 0, s>>>(static_cast<const T*>(in), inStride, d, w,
                                                        b, eps, static_cast<T*>(out));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void biasAct(Prec p, void* y, int rows, int n, const float* bias, bool gelu, cudaStream_t s) {
    const long long total = (long long)rows * n;
    withPrec(p, [&](auto t) {
        using T = decltype(t);
        biasActKernel<T>
            <<<gridFor(total), kThreads, 0, s>>>(static_cast<T*>(y), total, n, bias, gelu);
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void biasResidual(Prec p, void* x, const void* y, int rows, int n, const float* bias,
                  cudaStream_t s) {
    const long long total = (long long)rows * n;
    withPrec(p, [&](auto t) {
        using T = decltype(t);
        biasResidualKernel<T><<<gridFor(total), kThreads, 0, s>>>(
            static_cast<T*>(x), static_cast<const T*>(y), total, n, bias);
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void splitHeads(Prec p, const void* qkv, int batch, int t, int heads, int dh, void* q, void* k,
                void* v, cudaStream_t s) {
    const long long total = (long long)batch * t * 3 * heads * dh;
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        splitHeadsKernel<T><<<gridFor(total), kThreads, 0, s>>>(
            static_cast<const T*>(qkv), batch, t, heads, dh, static_cast<T*>(q), static_cast<T*>(k),
            static_cast<T*>(v));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void mergeHeads(Prec p, const void* o, int batch, int t, int heads, int dh, void* out,
                cudaStream_t s) {
    const long long total = (long long)batch * t * heads * dh;
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        mergeHeadsKernel<T><<<gridFor(total), kThreads, 0, s>>>(static_cast<const T*>(o), batch, t,
                                                                heads, dh, static_cast<T*>(out));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void softmaxRows(Prec p, const float* scores, int batch, int heads, int t, const float* counts,
                 const int* positions, void* probs, float* entropy, float* clsRow, cudaStream_t s) {
    const long long rows = (long long)batch * heads * t;
    if (rows <= 0) return;
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        softmaxKernel<T><<<static_cast<unsigned>(rows), kRowThreads, 0, s>>>(
            scores, heads, t, counts, positions, static_cast<T*>(probs), entropy, clsRow);
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void embedTokens(Prec p, const int* ids, int n, const void* table, const float* pos, int d, void* x,
                 cudaStream_t s) {
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        embedTokensKernel<T><<<gridFor((long long)n * d), kThreads, 0, s>>>(
            ids, n, static_cast<const T*>(table), pos, d, static_cast<T*>(x));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void keysMean(Prec p, const void* k, int batch, int heads, int t, int dh, float* out,
              cudaStream_t s) {
    const long long total = (long long)batch * t * dh;
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        keysMeanKernel<T><<<gridFor(total), kThreads, 0, s>>>(static_cast<const T*>(k), batch,
                                                              heads, t, dh, out);
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void mergeRows(Prec p, const void* x, int batch, int tIn, int tOut, int d, const int* offsets,
               const int* members, const float* weight, void* out, cudaStream_t s) {
    if (batch <= 0 || tOut <= 0) return;
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        mergeRowsKernel<T><<<dim3(tOut, batch), kThreads, 0, s>>>(
            static_cast<const T*>(x), tIn, tOut, d, offsets, members, weight, static_cast<T*>(out));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void toPrec(Prec p, const float* in, long long n, void* out, cudaStream_t s) {
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        toPrecKernel<T><<<gridFor(n), kThreads, 0, s>>>(in, n, static_cast<T*>(out));
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

void toFloat(Prec p, const void* in, long long n, float* out, cudaStream_t s) {
    withPrec(p, [&](auto z) {
        using T = decltype(z);
        toFloatKernel<T><<<gridFor(n), kThreads, 0, s>>>(static_cast<const T*>(in), n, out);
    });
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace qmpp::kernels::vit
