// Gumbel-softmax mask and hard top-K: keys = s + g, g = -ln(-ln u); pi = softmax(keys / tau);
// mass = pi s + (1 - pi) eps; the K largest keys (ties: lower index), ascending order.
//
// | version | idea                                                        | measured      |
// |---------|-------------------------------------------------------------|---------------|
// | optimized | gumbel: one CTA of 1024 threads: keys and max, the sum (double), pi and mass  | docs/perf |
// |           | in one launch. top-K: one CTA: radix select of the K-th key (4 passes of 8-bit |           |
// |           | histograms, warp-aggregated atomics), then ordered block scans pick ties by    |           |
// |           | index and compact; founderOf written on the way                                |           |
// | basic   | one thread per token; one thread for the softmax max and sum | see docs/perf |
// |         | top-K by counting, per token, the keys that beat it (O(N^2)) |               |
#include "common.cuh"

#include <cub/block/block_scan.cuh>
#include <curand.h>

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

__global__ void gumbel_keys_basic_kernel(GumbelParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float u = fminf(fmaxf(p.u[i], 1e-7f), 1.0f - 1e-7f);
    p.keys[i] = p.s[i] - logf(-logf(u));
}

// One thread: max and sum of exp(keys / tau - max), in double for a stable denominator.
__global__ void gumbel_norm_basic_kernel(GumbelParams p) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    float mx = -INFINITY;
    for (int i = 0; i < p.n; ++i) mx = fmaxf(mx, p.keys[i] / p.tau);
    double z = 0.0;
    for (int i = 0; i < p.n; ++i) z += exp(double(p.keys[i] / p.tau - mx));
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
    for (int j = 0; j < i; ++j) slot += p.selected[j];
    p.idx[slot] = i;
}

// ---- optimized ------------------------------------------------------------------------------

constexpr int kOneCta = 1024;

__global__ void __launch_bounds__(kOneCta) gumbel_fast_kernel(GumbelParams p) {
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < p.n; i += kOneCta) {
        const float u = fminf(fmaxf(p.u[i], 1e-7f), 1.0f - 1e-7f);
        const float k = p.s[i] - logf(-logf(u));
        p.keys[i] = k;
        mx = fmaxf(mx, k / p.tau);
    }
    mx = blockAllReduce<kOneCta>(mx, [](float a, float b) { return fmaxf(a, b); });
    double z = 0.0;
    for (int i = threadIdx.x; i < p.n; i += kOneCta) z += exp(double(p.keys[i] / p.tau - mx));
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
        for (int b = tid; b < 256; b += kOneCta) hist[b] = 0;
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
            for (int j = 0; j < 8; ++j) mine += hist[255 - 8 * lane - j];
            unsigned incl = mine;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const unsigned v = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += v;
            }
            const unsigned before = incl - mine;
            const int remain = sRemain;
            const unsigned hit = __ballot_sync(0xffffffffu, before < unsigned(remain) && unsigned(remain) <= incl);
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
        topk_fast_kernel<<<1, kOneCta, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
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

void philoxUniforms(float* u, std::size_t n, unsigned long long seed, cudaStream_t s) {
    if (n == 0) return;
    thread_local CachedGenerator cache;
    auto check = [&](curandStatus_t st, const char* what) {
        if (st == CURAND_STATUS_SUCCESS) return;
        if (cache.gen) curandDestroyGenerator(cache.gen);
        cache.gen = nullptr;
        throw CudaError(std::string("cuRAND device generator: ") + what + " failed (status " +
                        std::to_string(static_cast<int>(st)) + ")");
    };
    if (!cache.gen) check(curandCreateGenerator(&cache.gen, CURAND_RNG_PSEUDO_PHILOX4_32_10), "create");
    check(curandSetStream(cache.gen, s), "stream");
    check(curandSetPseudoRandomGeneratorSeed(cache.gen, seed), "seed");
    check(curandSetGeneratorOffset(cache.gen, 0), "offset");
    check(curandGenerateUniform(cache.gen, u, n), "generate");
}

} // namespace qmpp::kernels
