// Saliency-weighted merge: merged_k = sum_{j in G_k} m_j x_j / sum m_j, groups ordered by their
// smallest token index; labels rewritten to index the merged sequence.
//
// | version | idea                                                             | measured      |
// |---------|------------------------------------------------------------------|---------------|
// | optimized v1 | first token per group by atomicMin (order-free, exact); one CTA per group: |
// 29-33 us  | |              | its rank from the groups' first tokens, its members gathered in
// token      | (N 4096,  | |              | order with ballots (every CTA scans all N labels);
// relabel                 | K 819)    | | optimized v2 | N <= 8192: one CTA stably radix-sorts
// (label, token) and scans the tokens  | 19.5-20.1 | |              | that open a group for the
// ranks; one CTA per group sums only its segment,  | us        | |              | in token order
// (the basic order); larger N keeps v1                        |           | | optimized v3 | v2
// with 5-bit digits up to N = 4096 (two passes for K < 1024); the sums'   | 17.7 us   | | (this) |
// CTAs launched as dependents, waiting on the sort (Hopper)                  | (FP32 21.4)| | basic
// | one thread per group for its first token and rank; one thread per | see docs/perf | |         |
// (group, feature) scanning all tokens; one thread per token relabel |               |
#include "common.cuh"

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

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
    for (int h = 0; h < p.k; ++h)
        r += p.first[h] < p.first[g];
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
    p.merged[(long long)out * p.d + f] =
        msum > 0.0f ? acc / msum : plain / fmaxf(1.0f, float(count));
    if (f == 0) p.sizes[out] = count;
}

__global__ void merge_relabel_basic_kernel(MergeParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n) p.labels[i] = p.rank[p.labels[i]];
}

// ---- optimized ----------------------------------------------------------------------------

// One member's row into this thread's kPer features of the pass at f0: acc += w x_j, plain += x_j.
template <int kThreads, int kPer, class T>
__device__ __forceinline__ void addMember(const T* x, long long j, float w, int d, int f0,
                                          float (&acc)[kPer], float (&plain)[kPer]) {
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
        const int f = f0 + q * kThreads + threadIdx.x;
        if (f < d) {
            const float v = ld(x, j * d + f);
            acc[q] += w * v;
            plain[q] += v;
        }
    }
}

// The merged features: weighted mean, or the plain mean when the mass sums to 0 (as on the CPU).
template <int kThreads, int kPer>
__device__ __forceinline__ void storeMerged(float* out, int d, int f0, const float (&acc)[kPer],
                                            const float (&plain)[kPer], float msum, int count) {
#pragma unroll
    for (int q = 0; q < kPer; ++q) {
        const int f = f0 + q * kThreads + threadIdx.x;
        if (f < d) out[f] = msum > 0.0f ? acc[q] / msum : plain[q] / fmaxf(1.0f, float(count));
    }
}

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
    for (int h = tid; h < p.k; h += kThreads)
        r += p.first[h] < myFirst;
    const int rank = blockAllReduce<kThreads>(r, [](int a, int b) { return a + b; });
    const T* x = static_cast<const T*>(p.x);
    float* out = p.merged + (long long)rank * p.d;
    const int start = myFirst < p.n ? myFirst : p.n; // no member comes before the first
    for (int f0 = 0; f0 < p.d; f0 += kThreads * kPer) {
        float acc[kPer], plain[kPer];
#pragma unroll
        for (int q = 0; q < kPer; ++q)
            acc[q] = plain[q] = 0.0f;
        float msum = 0.0f;
        int count = 0;
        forGroupMembers<kThreads>(p.labels, p.n, g, start, [&](int j) {
            const float w = p.mass[j];
            msum += w;
            ++count;
            addMember<kThreads, kPer>(x, j, w, p.d, f0, acc, plain);
        });
        storeMerged<kThreads, kPer>(out, p.d, f0, acc, plain, msum, count);
        if (f0 == 0 && tid == 0) {
            p.sizes[rank] = count;
            p.rank[g] = rank;
        }
    }
}

// Single-CTA segmentation (N <= 8192): a stable radix sort of (label, token) pairs gives every
// group's members in token order as one segment; a scan over the tokens that open a group gives
// each group's rank (groups ordered by first token; empty groups after them, by id). Writes the
// segments (order, first = segment start), rank, sizes and the relabelled labels.
template <int ITEMS> struct MergeSortTypes {
    static constexpr int kThreads = 1024;
    // 5-bit digits where shared memory allows: K < 1024 sorts in two passes instead of three
    using Sort = cub::BlockRadixSort<int, kThreads, ITEMS, int, ITEMS <= 4 ? 5 : 4>;
    using Scan = cub::BlockScan<int, kThreads>;
    union Temp {
        typename Sort::TempStorage sort;
        typename Scan::TempStorage scan;
    };
    // dynamic shared memory: Temp, then opens [ITEMS * kThreads] and per-group start, rank, end [k]
    static std::size_t bytes(int k) {
        return sizeof(Temp) + 4 * (std::size_t(ITEMS) * kThreads + 3 * std::size_t(k));
    }
};

template <int ITEMS>
__global__ void __launch_bounds__(1024) merge_segments_kernel(MergeParams p, int bits) {
    allowDependents(); // the segment sums' CTAs take their places and wait for this one to end
    using Ty = MergeSortTypes<ITEMS>;
    constexpr int kThreads = Ty::kThreads, kCap = ITEMS * kThreads;
    extern __shared__ __align__(16) unsigned char raw[];
    auto& temp = *reinterpret_cast<typename Ty::Temp*>(raw);
    int* opens =
        reinterpret_cast<int*>(raw + sizeof(typename Ty::Temp)); // [kCap]: token opens its group
    int* startOf = opens + kCap;                                 // [k]: segment start
    int* rankOf = startOf + p.k;                                 // [k]
    int* endOf = rankOf + p.k;                                   // [k]: segment end
    const int tid = threadIdx.x, n = p.n, k = p.k;
    const int pad = (1 << bits) - 1; // >= k: padding sorts last
    int label[ITEMS], key[ITEMS], tok[ITEMS];
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) { // blocked: thread t holds tokens t*ITEMS.. in order
        const int i = tid * ITEMS + q;
        label[q] = i < n ? p.labels[i] : pad;
        key[q] = label[q];
        tok[q] = i;
        opens[i] = 0;
    }
    for (int g = tid; g < k; g += kThreads)
        startOf[g] = -1;
    typename Ty::Sort(temp.sort).Sort(key, tok, 0, bits); // stable: members stay in token order
    __syncthreads();
    // segments: a key differing from the one before it opens one, from the one after closes it
    __shared__ int firstKey[kThreads], lastKey[kThreads];
    firstKey[tid] = key[0];
    lastKey[tid] = key[ITEMS - 1];
    __syncthreads();
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) {
        const int pos = tid * ITEMS + q;
        if (pos >= n) continue;
        const int prev = q > 0 ? key[q - 1] : tid > 0 ? lastKey[tid - 1] : -1;
        const int next = q + 1 < ITEMS ? key[q + 1] : tid + 1 < kThreads ? firstKey[tid + 1] : -1;
        if (key[q] != prev) {
            startOf[key[q]] = pos;
            opens[tok[q]] = 1;
        }
        if (key[q] != next) endOf[key[q]] = pos + 1; // past N the keys are padding
        p.order[pos] = tok[q];
    }
    __syncthreads();
    // rank of a non-empty group = the number of groups opened by an earlier token
    int flag[ITEMS], before[ITEMS], opened;
#pragma unroll
    for (int q = 0; q < ITEMS; ++q)
        flag[q] = opens[tid * ITEMS + q];
    typename Ty::Scan(temp.scan).ExclusiveSum(flag, before, opened);
#pragma unroll
    for (int q = 0; q < ITEMS; ++q)
        if (flag[q]) rankOf[label[q]] = before[q];
    __syncthreads();
    // empty groups follow, by id (one chunk of the block per kThreads groups)
    int emptyBefore = 0;
    for (int g0 = 0; g0 < k; g0 += kThreads) {
        const int g = g0 + tid;
        const int empty = g < k && startOf[g] < 0;
        int at, total;
        typename Ty::Scan(temp.scan).ExclusiveSum(empty, at, total);
        if (empty) rankOf[g] = opened + emptyBefore + at;
        emptyBefore += total;
        __syncthreads();
    }
    // per group: segment start, rank and size; then the tokens' new labels
    for (int g = tid; g < k; g += kThreads) {
        const int st = startOf[g];
        const int size = st < 0 ? 0 : endOf[g] - st;
        p.first[g] = st < 0 ? 0 : st;
        p.rank[g] = rankOf[g];
        p.sizes[rankOf[g]] = size;
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) {
        const int i = tid * ITEMS + q;
        if (i < n) p.labels[i] = rankOf[label[q]];
    }
}

// One CTA per group: its members' rows, in token order from the segment, summed as the basic
// kernel sums them; the merged row written at the group's rank.
template <class T> __global__ void __launch_bounds__(128) merge_segment_sum_kernel(MergeParams p) {
    constexpr int kThreads = 128, kChunk = 128;
    __shared__ int members[kChunk];
    __shared__ float weights[kChunk];
    const int g = blockIdx.x, tid = threadIdx.x;
    waitPrimary(); // the segments
    const int rank = p.rank[g], start = p.first[g], size = p.sizes[rank];
    const T* x = static_cast<const T*>(p.x);
    float* out = p.merged + (long long)rank * p.d;
    for (int f0 = 0; f0 < p.d; f0 += kThreads * 8) {
        float acc[8], plain[8];
#pragma unroll
        for (int q = 0; q < 8; ++q)
            acc[q] = plain[q] = 0.0f;
        float msum = 0.0f;
        for (int c0 = 0; c0 < size; c0 += kChunk) {
            const int cn = min(kChunk, size - c0);
            __syncthreads();
            if (tid < cn) {
                const int j = p.order[start + c0 + tid];
                members[tid] = j;
                weights[tid] = p.mass[j];
            }
            __syncthreads();
            for (int c = 0; c < cn; ++c) {
                const int j = members[c];
                const float w = weights[c];
                msum += w;
                addMember<kThreads, 8>(x, j, w, p.d, f0, acc, plain);
            }
        }
        storeMerged<kThreads, 8>(out, p.d, f0, acc, plain, msum, size);
    }
}

template <int ITEMS> void launchSegments(const MergeParams& p, cudaStream_t s) {
    int bits = 1;
    while ((1 << bits) - 1 < p.k)
        ++bits;
    const std::size_t smem = MergeSortTypes<ITEMS>::bytes(p.k);
    static const bool allowed = [] { // once, for the largest K this layout takes (K <= N)
        QMPP_CUDA_CHECK(cudaFuncSetAttribute(merge_segments_kernel<ITEMS>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             int(MergeSortTypes<ITEMS>::bytes(ITEMS * 1024))));
        return true;
    }();
    (void)allowed;
    merge_segments_kernel<ITEMS><<<1, 1024, smem, s>>>(p, bits);
    QMPP_CUDA_CHECK_LAUNCH();
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
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchMergeBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        if (p.k < 1 || p.n < 1) return;
        if (p.order && p.n <= 8192 &&
            p.k <= p.n) { // sorted segments: each group reads only its members
            if (p.n <= 4096)
                launchSegments<4>(p, s);
            else
                launchSegments<8>(p, s);
            withPrec(prec, [&](auto t) {
                launchDependent(merge_segment_sum_kernel<decltype(t)>, p.k, 128, 0, s, p);
            });
            return;
        }
        merge_first_init_kernel<<<blocksFor(p.k, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        merge_first_fast_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        withPrec(prec,
                 [&](auto t) { merge_group_fast_kernel<decltype(t)><<<p.k, 256, 0, s>>>(p); });
        QMPP_CUDA_CHECK_LAUNCH();
        merge_relabel_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

} // namespace qmpp::kernels
