// Seeded clustering: assignment to the most similar unit centre (founders fixed) and centres as
// the normalized mass-weighted sums of their groups.
//
// | version | idea                                                          | measured      |
// |---------|---------------------------------------------------------------|---------------|
// | basic   | assign: one thread per token over all centres; centres: one    | see docs/perf |
// |         | thread per (centre, feature) over all tokens, then one per row |               |
#include "common.cuh"

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

template <class T> __global__ void assign_basic_kernel(AssignParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    int best = p.founderOf ? p.founderOf[i] : -1;
    if (best < 0) {
        const T* x = static_cast<const T*>(p.x);
        float bestScore = -INFINITY;
        best = 0;
        for (int c = 0; c < p.k; ++c) {
            float dot = 0.0f; // x_i . c / ||x_i||: the argmax needs no division
            for (int k = 0; k < p.d; ++k) dot += ld(x, (long long)i * p.d + k) * p.centres[(long long)c * p.d + k];
            if (dot > bestScore) {
                bestScore = dot;
                best = c;
            }
        }
    }
    if (p.changed && p.previous && p.previous[i] != best) atomicAdd(p.changed, 1);
    p.labels[i] = best;
}

// centres[c][f] = sum over the group (or the founder alone) before normalization.
template <class T> __global__ void centres_sum_basic_kernel(CentresParams p) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)p.k * p.d) return;
    const int c = static_cast<int>(t / p.d), f = static_cast<int>(t % p.d);
    const T* x = static_cast<const T*>(p.x);
    float acc = 0.0f;
    if (p.founders) {
        acc = ld(x, (long long)p.founders[c] * p.d + f);
    } else {
        for (int i = 0; i < p.n; ++i)
            if (p.labels[i] == c) acc += p.mass[i] * ld(x, (long long)i * p.d + f);
    }
    p.centres[t] = acc;
}

__global__ void normalize_rows_basic_kernel(float* rows, int k, int d) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= k) return;
    float ss = 0.0f;
    for (int f = 0; f < d; ++f) ss += rows[(long long)c * d + f] * rows[(long long)c * d + f];
    const float inv = ss > 0.0f ? rsqrtf(ss) : 0.0f;
    for (int f = 0; f < d; ++f) rows[(long long)c * d + f] *= inv;
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchAssignBasic(const AssignParams& p, cudaStream_t s) {
    assign_basic_kernel<T><<<blocksFor(p.n, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

template <class T> void launchCentresBasic(const CentresParams& p, cudaStream_t s) {
    centres_sum_basic_kernel<T><<<blocksFor((long long)p.k * p.d, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    normalize_rows_basic_kernel<<<blocksFor(p.k, 128), 128, 0, s>>>(p.centres, p.k, p.d);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatchers --------------------------------------------------------------------------

void assign(const AssignParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic: withPrec(prec, [&](auto t) { launchAssignBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized: unavailable(Kernel::Assign, v);
    }
}

void centres(const CentresParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic: withPrec(prec, [&](auto t) { launchCentresBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized: unavailable(Kernel::Centres, v);
    }
}

} // namespace qmpp::kernels
