// Gumbel-softmax mask and hard top-K: keys = s + g, g = -ln(-ln u); pi = softmax(keys / tau);
// mass = pi s + (1 - pi) eps; the K largest keys (ties: lower index), ascending order.
//
// | version | idea                                                        | measured      |
// |---------|-------------------------------------------------------------|---------------|
// | optimized v1 | gumbel: one CTA of 1024 threads: keys and max, the sum (double), pi and   | 13 +
// 17 us| |              | mass in one launch. top-K: one CTA: radix select of the K-th key (4
// passes | (N 4096)  | |              | of 8-bit histograms, warp-aggregated atomics), then ordered
// block scans    |           | |              | per 1024-token chunk pick ties by index and
// compact; founderOf on the way  |           | | optimized v2 | N <= 16384: keys held in registers
// (blocked, 4/8/16 per thread), read      | 19.2 us   | | (this)       | once; 3 radix passes of
// 11/11/10 bits, the K-th key's bin by one block     |           | |              | scan; two block
// scans over all items; gumbelTopK fuses both in one launch  |           | | basic   | one thread
// per token; one thread for the softmax max and sum | see docs/perf | |         | top-K by
// counting, per token, the keys that beat it (O(N^2)) |               |
#include "common.cuh"

#include <cub/block/block_scan.cuh>
#include <curand.h>

#include <type_traits>

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

__global__ void gumbel_keys_basic_kernel(GumbelParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float u = fminf(fmaxf(p.u[i], 1e-7f), 1.0f - 1e-7f);
    p.keys[i] = p.s[i] - p.noise * logf(-logf(u));
}

// One thread: max and sum of exp(keys / tau - max), in double for a stable denominator.
__global__ void gumbel_norm_basic_kernel(GumbelParams p) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    float mx = -INFINITY;
    for (int i = 0; i < p.n; ++i)
        mx = fmaxf(mx, p.keys[i] / p.tau);
    double z = 0.0;
    for (int i = 0; i < p.n; ++i)
        z += exp(double(p.keys[i] / p.tau - mx));
    p.scratch[0] = mx;
    p.scratch[1] = static_cast<float>(z);
}

__global__ void gumbel_pi_basic_kernel(GumbelParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float pi = expf(p.keys[i] / p.tau - p.scratch[0]) / p.scratch[1];
    p.pi[i] = pi;
    p.mass[i] = pi * p.s[i] + (1.0f - pi) * p.eps;
}

// Token i is selected when fewer than K keys beat it (larger, or equal at a lower index).
__global__ void topk_rank_basic_kernel(TopKParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float ki = p.keys[i];
    int beaten = 0;
    for (int j = 0; j < p.n; ++j) {
        const float kj = p.keys[j];
        beaten += (kj > ki) || (kj == ki && j < i);
    }
    p.selected[i] = beaten < p.k;
}

// A selected token's slot = the number of selected tokens before it.
__global__ void topk_compact_basic_kernel(TopKParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n || !p.selected[i]) return;
    int slot = 0;
    for (int j = 0; j < i; ++j)
        slot += p.selected[j];
    p.idx[slot] = i;
}

// ---- optimized ------------------------------------------------------------------------------

constexpr int kOneCta = 1024;

__global__ void __launch_bounds__(kOneCta) gumbel_fast_kernel(GumbelParams p) {
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < p.n; i += kOneCta) {
        const float u = fminf(fmaxf(p.u[i], 1e-7f), 1.0f - 1e-7f);
        const float k = p.s[i] - p.noise * logf(-logf(u));
        p.keys[i] = k;
        mx = fmaxf(mx, k / p.tau);
    }
    mx = blockAllReduce<kOneCta>(mx, [](float a, float b) { return fmaxf(a, b); });
    double z = 0.0;
    for (int i = threadIdx.x; i < p.n; i += kOneCta)
        z += exp(double(p.keys[i] / p.tau - mx));
    z = blockAllReduce<kOneCta>(z, [](double a, double b) { return a + b; });
    const float zf = static_cast<float>(z);
    for (int i = threadIdx.x; i < p.n; i += kOneCta) {
        const float pi = expf(p.keys[i] / p.tau - mx) / zf;
        p.pi[i] = pi;
        p.mass[i] = pi * p.s[i] + (1.0f - pi) * p.eps;
    }
    if (threadIdx.x == 0) {
        p.scratch[0] = mx;
        p.scratch[1] = zf;
    }
}

// Order-preserving map of floats to unsigned: larger key, larger code.
__device__ __forceinline__ unsigned ordKey(float f) {
    const unsigned u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__global__ void __launch_bounds__(kOneCta) topk_fast_kernel(TopKParams p) {
    using Scan = cub::BlockScan<int, kOneCta>;
    __shared__ typename Scan::TempStorage scanTmp;
    __shared__ unsigned hist[256];
    __shared__ unsigned sPrefix, sMask;
    __shared__ int sRemain;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    if (tid == 0) {
        sPrefix = 0;
        sMask = 0;
        sRemain = p.k;
    }
    for (int pass = 0; pass < 4; ++pass) {
        const int shift = 24 - 8 * pass;
        for (int b = tid; b < 256; b += kOneCta)
            hist[b] = 0;
        __syncthreads();
        const unsigned prefix = sPrefix, mask = sMask;
        for (int base = 0; base < p.n; base += kOneCta) {
            const int i = base + tid;
            const unsigned u = i < p.n ? ordKey(p.keys[i]) : 0u;
            const bool live = i < p.n && (u & mask) == prefix;
            const unsigned bin = live ? (u >> shift) & 255u : 256u;
            const unsigned peers = __match_any_sync(0xffffffffu, bin);
            if (live && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], __popc(peers));
        }
        __syncthreads();
        if (warp == 0) { // bins in descending order: lane L holds 255 - 8L - j, j = 0..7
            unsigned mine = 0;
#pragma unroll
            for (int j = 0; j < 8; ++j)
                mine += hist[255 - 8 * lane - j];
            unsigned incl = mine;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned v = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += v;
            }
            const unsigned before = incl - mine;
            const int remain = sRemain;
            const unsigned hit =
                __ballot_sync(0xffffffffu, before < unsigned(remain) && unsigned(remain) <= incl);
            __syncwarp(); // every lane has read sRemain before one lane rewrites it
            if (hit && lane == __ffs(hit) - 1) {
                unsigned cum = before;
                for (int j = 0; j < 8; ++j) {
                    const unsigned b = 255 - 8 * lane - j;
                    if (cum + hist[b] >= unsigned(remain)) {
                        sPrefix = prefix | (b << shift);
                        sMask = mask | (255u << shift);
                        sRemain = remain - int(cum);
                        break;
                    }
                    cum += hist[b];
                }
            }
        }
        __syncthreads();
    }
    const unsigned thr = sPrefix;
    const int remain = sRemain; // keys equal to the K-th one that are taken, lowest index first
    int carryEq = 0, carrySel = 0;
    for (int base = 0; base < p.n; base += kOneCta) {
        const int i = base + tid;
        const unsigned u = i < p.n ? ordKey(p.keys[i]) : 0u;
        const int eq = i < p.n && u == thr, gt = i < p.n && u > thr;
        int eqRank, eqTotal, pos, selTotal;
        Scan(scanTmp).ExclusiveSum(eq, eqRank, eqTotal);
        __syncthreads();
        const int sel = gt || (eq && carryEq + eqRank < remain);
        Scan(scanTmp).ExclusiveSum(sel, pos, selTotal);
        __syncthreads();
        if (i < p.n) {
            p.selected[i] = sel;
            if (sel) p.idx[carrySel + pos] = i;
            if (p.founderOf) p.founderOf[i] = sel ? carrySel + pos : -1;
        }
        carryEq += eqTotal;
        carrySel += selTotal;
    }
}

// ---- register-resident versions (N <= 1024 * 16) -------------------------------------------
// Thread t holds tokens t*ITEMS .. t*ITEMS + ITEMS - 1 (blocked: token order = thread order),
// so keys are read once, and block scans over the items give token-ordered ranks.

// Keys s + g, pi and mass of this thread's tokens (written out); key[q] = -inf past N.
template <int ITEMS> __device__ void gumbelItems(const GumbelParams& p, float (&key)[ITEMS]) {
    const int tid = threadIdx.x;
    float mx = -INFINITY;
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) {
        const int i = tid * ITEMS + q;
        key[q] = -INFINITY;
        if (i < p.n) {
            const float u = fminf(fmaxf(p.u[i], 1e-7f), 1.0f - 1e-7f);
            key[q] = p.s[i] - p.noise * logf(-logf(u));
            p.keys[i] = key[q];
            mx = fmaxf(mx, key[q] / p.tau);
        }
    }
    mx = blockAllReduce<kOneCta>(mx, [](float a, float b) { return fmaxf(a, b); });
    double z = 0.0;
#pragma unroll
    for (int q = 0; q < ITEMS; ++q)
        if (tid * ITEMS + q < p.n) z += exp(double(key[q] / p.tau - mx));
    z = blockAllReduce<kOneCta>(z, [](double a, double b) { return a + b; });
    const float zf = static_cast<float>(z);
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) {
        const int i = tid * ITEMS + q;
        if (i < p.n) {
            const float pi = expf(key[q] / p.tau - mx) / zf;
            p.pi[i] = pi;
            p.mass[i] = pi * p.s[i] + (1.0f - pi) * p.eps;
        }
    }
    if (tid == 0) {
        p.scratch[0] = mx;
        p.scratch[1] = zf;
    }
}

// The K largest keys (ties: lower index): radix select of the K-th key's code in three passes
// of 11, 11 and 10 bits (shared histogram, warp-aggregated atomics; the bin holding the K-th
// found by one block scan over the bins in descending order), then two block scans take the
// keys above it and the lowest-index ties, in token order.
template <int ITEMS> __device__ void selectItems(const TopKParams& p, const float (&key)[ITEMS]) {
    using Scan = cub::BlockScan<int, kOneCta>;
    __shared__ typename Scan::TempStorage scanTmp;
    __shared__ unsigned hist[2048];
    __shared__ unsigned sPrefix, sMask;
    __shared__ int sRemain;
    const int tid = threadIdx.x, lane = tid & 31;
    unsigned code[ITEMS];
#pragma unroll
    for (int q = 0; q < ITEMS; ++q)
        code[q] = ordKey(key[q]);
    unsigned prefix = 0, mask = 0;
    int remain = p.k;
#pragma unroll
    for (int pass = 0; pass < 3; ++pass) {
        const int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
        const unsigned binMask = pass == 2 ? 0x3ffu : 0x7ffu;
        hist[tid] = 0;
        hist[tid + kOneCta] = 0;
        __syncthreads();
#pragma unroll
        for (int q = 0; q < ITEMS; ++q) {
            const bool live = tid * ITEMS + q < p.n && (code[q] & mask) == prefix;
            const unsigned bin = live ? (code[q] >> shift) & binMask : 0xffffffffu;
            const unsigned peers = __match_any_sync(0xffffffffu, bin);
            if (live && lane == __ffs(peers) - 1) atomicAdd(&hist[bin], __popc(peers));
        }
        __syncthreads();
        // descending bins: thread t holds bins 2047 - 2t and 2046 - 2t
        const int hi = 2047 - 2 * tid;
        const int c0 = int(hist[hi]), c1 = int(hist[hi - 1]);
        int before, total;
        Scan(scanTmp).ExclusiveSum(c0 + c1, before, total);
        if (before < remain && remain <= before + c0 + c1) {
            const bool first = remain <= before + c0;
            const unsigned b = first ? hi : hi - 1;
            sPrefix = prefix | (b << shift);
            sMask = mask | (binMask << shift);
            sRemain = remain - (first ? before : before + c0);
        }
        __syncthreads();
        prefix = sPrefix;
        mask = sMask;
        remain = sRemain;
        __syncthreads(); // the scan storage and the shared results are reused by the next pass
    }
    // prefix is now the K-th key's code; `remain` keys equal to it are taken, lowest index first
    int eq[ITEMS], eqRank[ITEMS], sel[ITEMS], pos[ITEMS], eqTotal, selTotal;
#pragma unroll
    for (int q = 0; q < ITEMS; ++q)
        eq[q] = tid * ITEMS + q < p.n && code[q] == prefix;
    Scan(scanTmp).ExclusiveSum(eq, eqRank, eqTotal);
    __syncthreads();
#pragma unroll
    for (int q = 0; q < ITEMS; ++q)
        sel[q] = tid * ITEMS + q < p.n && (code[q] > prefix || (eq[q] && eqRank[q] < remain));
    Scan(scanTmp).ExclusiveSum(sel, pos, selTotal);
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) {
        const int i = tid * ITEMS + q;
        if (i >= p.n) continue;
        p.selected[i] = sel[q];
        if (sel[q]) p.idx[pos[q]] = i;
        if (p.founderOf) p.founderOf[i] = sel[q] ? pos[q] : -1;
    }
}

template <int ITEMS>
__global__ void __launch_bounds__(kOneCta) gumbel_items_kernel(GumbelParams p) {
    float key[ITEMS];
    gumbelItems<ITEMS>(p, key);
}

template <int ITEMS> __global__ void __launch_bounds__(kOneCta) topk_items_kernel(TopKParams p) {
    float key[ITEMS];
#pragma unroll
    for (int q = 0; q < ITEMS; ++q) {
        const int i = threadIdx.x * ITEMS + q;
        key[q] = i < p.n ? p.keys[i] : -INFINITY;
    }
    selectItems<ITEMS>(p, key);
}

template <int ITEMS>
__global__ void __launch_bounds__(kOneCta) gumbel_topk_kernel(GumbelParams g, TopKParams t) {
    float key[ITEMS];
    gumbelItems<ITEMS>(g, key);
    selectItems<ITEMS>(t, key);
}

// Calls f(std::integral_constant<int, ITEMS>) for the smallest register layout that holds n
// tokens; false when n needs more than 16 per thread.
template <class F> bool withItems(int n, F&& f) {
    if (n <= kOneCta * 4)
        f(std::integral_constant<int, 4>{});
    else if (n <= kOneCta * 8)
        f(std::integral_constant<int, 8>{});
    else if (n <= kOneCta * 16)
        f(std::integral_constant<int, 16>{});
    else
        return false;
    return true;
}

// ---- dispatchers --------------------------------------------------------------------------

void gumbel(const GumbelParams& p, Version v, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        gumbel_keys_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        gumbel_norm_basic_kernel<<<1, 1, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        gumbel_pi_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    case Version::Optimized:
        if (p.n < 1) return;
        if (!withItems(p.n, [&](auto items) {
                gumbel_items_kernel<decltype(items)::value><<<1, kOneCta, 0, s>>>(p);
            }))
            gumbel_fast_kernel<<<1, kOneCta, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

void topK(const TopKParams& p, Version v, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        topk_rank_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        topk_compact_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    case Version::Optimized:
        if (p.n < 1 || p.k < 1) return;
        if (p.k > p.n)
            throw CudaError("topK: K = " + std::to_string(p.k) +
                            " exceeds N = " + std::to_string(p.n));
        if (!withItems(p.n, [&](auto items) {
                topk_items_kernel<decltype(items)::value><<<1, kOneCta, 0, s>>>(p);
            }))
            topk_fast_kernel<<<1, kOneCta, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

void gumbelTopK(const GumbelParams& g, const TopKParams& t, Version v, cudaStream_t s) {
    if (t.k > t.n)
        throw CudaError("topK: K = " + std::to_string(t.k) + " exceeds N = " + std::to_string(t.n));
    if (v == Version::Optimized && g.n == t.n && g.keys == t.keys && g.n >= 1 && t.k >= 1 &&
        withItems(g.n, [&](auto items) {
            gumbel_topk_kernel<decltype(items)::value><<<1, kOneCta, 0, s>>>(g, t);
        })) {
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
    gumbel(g, v, s);
    topK(t, v, s);
}

namespace {
// Creating a cuRAND generator costs far more than a live update: one per thread, reused.
struct CachedGenerator {
    curandGenerator_t gen = nullptr;
    ~CachedGenerator() {
        if (gen) curandDestroyGenerator(gen); // at thread exit; a failure here is moot
    }
};
} // namespace

void philoxUniforms(float* u, std::size_t n, unsigned long long seed, cudaStream_t s,
                    unsigned long long offset) {
    if (n == 0) return;
    thread_local CachedGenerator cache;
    auto check = [&](curandStatus_t st, const char* what) {
        if (st == CURAND_STATUS_SUCCESS) return;
        if (cache.gen) curandDestroyGenerator(cache.gen);
        cache.gen = nullptr;
        throw CudaError(std::string("cuRAND device generator: ") + what + " failed (status " +
                        std::to_string(static_cast<int>(st)) + ")");
    };
    if (!cache.gen)
        check(curandCreateGenerator(&cache.gen, CURAND_RNG_PSEUDO_PHILOX4_32_10), "create");
    check(curandSetStream(cache.gen, s), "stream");
    check(curandSetPseudoRandomGeneratorSeed(cache.gen, seed), "seed");
    check(curandSetGeneratorOffset(cache.gen, offset), "offset");
    check(curandGenerateUniform(cache.gen, u, n), "generate");
}

} // namespace qmpp::kernels
