// Saliency-weighted merge: merged_k = sum_{j in G_k} m_j x_j / sum m_j, groups ordered by their
// smallest token index; labels rewritten to index the merged sequence.
//
// | version | idea                                                             | measured      |
// |---------|------------------------------------------------------------------|---------------|
// | basic   | one thread per group for its first token and rank; one thread per | see docs/perf |
// |         | (group, feature) scanning all tokens; one thread per token relabel |               |
#include "common.cuh"

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

__global__ void merge_first_basic_kernel(MergeParams p) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= p.k) return;
    int first = p.n + g; // an empty group sorts last, after every real one
    for (int i = 0; i < p.n; ++i)
        if (p.labels[i] == g) {
            first = i;
            break;
        }
    p.first[g] = first;
}

__global__ void merge_rank_basic_kernel(MergeParams p) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= p.k) return;
    int r = 0;
    for (int h = 0; h < p.k; ++h) r += p.first[h] < p.first[g];
    p.rank[g] = r;
}

template <class T> __global__ void merge_sum_basic_kernel(MergeParams p) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)p.k * p.d) return;
    const int g = static_cast<int>(t / p.d), f = static_cast<int>(t % p.d);
    const T* x = static_cast<const T*>(p.x);
    float acc = 0.0f, plain = 0.0f, msum = 0.0f;
    int count = 0;
    for (int i = 0; i < p.n; ++i)
        if (p.labels[i] == g) {
            const float v = ld(x, (long long)i * p.d + f);
            acc += p.mass[i] * v;
            plain += v;
            msum += p.mass[i];
            ++count;
        }
    const int out = p.rank[g];
    // a group whose mass sums to 0 is averaged plainly, as on the CPU
    p.merged[(long long)out * p.d + f] = msum > 0.0f ? acc / msum : plain / fmaxf(1.0f, float(count));
    if (f == 0) p.sizes[out] = count;
}

__global__ void merge_relabel_basic_kernel(MergeParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n) p.labels[i] = p.rank[p.labels[i]];
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchMergeBasic(const MergeParams& p, cudaStream_t s) {
    merge_first_basic_kernel<<<blocksFor(p.k, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    merge_rank_basic_kernel<<<blocksFor(p.k, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    merge_sum_basic_kernel<T><<<blocksFor((long long)p.k * p.d, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    merge_relabel_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatcher ---------------------------------------------------------------------------

void merge(const MergeParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic: withPrec(prec, [&](auto t) { launchMergeBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized: unavailable(Kernel::Merge, v);
    }
}

} // namespace qmpp::kernels
