// Saliency-weighted merge: merged_k = sum_{j in G_k} m_j x_j / sum m_j, groups ordered by their
// smallest token index; labels rewritten to index the merged sequence.
//
// | version | idea                                                             | measured      |
// |---------|------------------------------------------------------------------|---------------|
// | optimized | first token per group by atomicMin (order-free, exact); one CTA per group:    | docs/perf |
// |           | its rank from the groups' first tokens, its members gathered in token order   |           |
// |           | with ballots, sums in the basic order; relabel                                 |           |
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

// ---- optimized ----------------------------------------------------------------------------

__global__ void merge_first_init_kernel(MergeParams p) {
    const int g = blockIdx.x * blockDim.x + threadIdx.x;
    if (g < p.k) p.first[g] = p.n + g; // empty groups sort last
}

__global__ void merge_first_fast_kernel(MergeParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n) atomicMin(&p.first[p.labels[i]], i);
}

// One CTA per group g: rank = number of groups whose first token comes earlier; members in
// token order; merged row written at its rank.
template <class T> __global__ void merge_group_fast_kernel(MergeParams p) {
    constexpr int kThreads = 256, kPer = 4; // features per thread per pass
    const int g = blockIdx.x, tid = threadIdx.x;
    const int myFirst = p.first[g];
    int r = 0;
    for (int h = tid; h < p.k; h += kThreads) r += p.first[h] < myFirst;
    const int rank = blockAllReduce<kThreads>(r, [](int a, int b) { return a + b; });
    const T* x = static_cast<const T*>(p.x);
    float* out = p.merged + (long long)rank * p.d;
    const int start = myFirst < p.n ? myFirst : p.n; // no member comes before the first
    for (int f0 = 0; f0 < p.d; f0 += kThreads * kPer) {
        float acc[kPer], plain[kPer];
#pragma unroll
        for (int q = 0; q < kPer; ++q) acc[q] = plain[q] = 0.0f;
        float msum = 0.0f;
        int count = 0;
        forGroupMembers<kThreads>(p.labels, p.n, g, start, [&](int j) {
            const float w = p.mass[j];
            msum += w;
            ++count;
#pragma unroll
            for (int q = 0; q < kPer; ++q) {
                const int f = f0 + q * kThreads + tid;
                if (f < p.d) {
                    const float v = ld(x, (long long)j * p.d + f);
                    acc[q] += w * v;
                    plain[q] += v;
                }
            }
        });
#pragma unroll
        for (int q = 0; q < kPer; ++q) {
            const int f = f0 + q * kThreads + tid;
            if (f < p.d) out[f] = msum > 0.0f ? acc[q] / msum : plain[q] / fmaxf(1.0f, float(count));
        }
        if (f0 == 0 && tid == 0) {
            p.sizes[rank] = count;
            p.rank[g] = rank;
        }
    }
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
    case Version::Optimized:
        if (p.k < 1 || p.n < 1) return;
        merge_first_init_kernel<<<blocksFor(p.k, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        merge_first_fast_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        withPrec(prec, [&](auto t) { merge_group_fast_kernel<decltype(t)><<<p.k, 256, 0, s>>>(p); });
        QMPP_CUDA_CHECK_LAUNCH();
        merge_relabel_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

} // namespace qmpp::kernels
