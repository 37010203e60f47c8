// Seeded clustering: assignment to the most similar unit centre (founders fixed) and centres as
// the normalized mass-weighted sums of their groups.
//
// | version | idea                                                          | measured      |
// |---------|---------------------------------------------------------------|---------------|
// | optimized | assign: tensor-core tiles of x against the centres (FP16: centres split into   |
// docs/perf | |           | high + low halves, two products, near-FP32 scores; FP32: 3xTF32),
// argmax in   |           | |           | the epilogue, one CTA per 128-token panel. centres: one
// CTA per group gathers |           | |           | its members in token order (ballots), sums,
// normalizes: no atomics, same sums |           | |           | as basic. Both skip when the
// device-side convergence flag is set.             |           | |           | FP16 on Hopper
// (whole D): warpgroup tiles (wgmma.cuh), both halves into one    | 0.032 ms  | |           |
// accumulator, the argmax within each warp's rows (mma.sync tiles: 0.060 ms)     | (N 4096)  | |
// basic   | assign: one thread per token over all centres; centres: one    | see docs/perf | | |
// thread per (centre, feature) over all tokens, then one per row |               |
#include "common.cuh"
#include "tc_tile.cuh"
#include "wgmma.cuh"

#include <algorithm>
#include <type_traits>

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
            for (int k = 0; k < p.d; ++k)
                dot += ld(x, (long long)i * p.d + k) * p.centres[(long long)c * p.d + k];
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
    for (int f = 0; f < d; ++f)
        ss += rows[(long long)c * d + f] * rows[(long long)c * d + f];
    const float inv = ss > 0.0f ? rsqrtf(ss) : 0.0f;
    for (int f = 0; f < d; ++f)
        rows[(long long)c * d + f] *= inv;
}

// ---- optimized ------------------------------------------------------------------------------

// Centres split into high and low halves: c = hi + lo to about 2^-22.
__global__ void split_half_kernel(const float* c, long long count, __half* hi, __half* lo,
                                  const int* skip) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= count || (skip && *skip)) return;
    const __half h = __float2half_rn(c[i]);
    hi[i] = h;
    lo[i] = __float2half_rn(c[i] - __half2float(h));
}

struct AssignTc {
    const void* x;
    int n, d, k;
    const void* cHi; // centres (FP32) or their high halves (FP16)
    const void* cLo; // FP16: low halves; FP32: null
    const int* skip;
    float2* partial;  // [centre panels, N]: (best score, its centre as float bits)
    int split, chunk; // split > 1: D in `split` chunks of `chunk` elements, one per blockIdx.z,
    float* scores;    // whose raw partial scores [split, K, N] a second pass adds and ranks
};

// Warpgroup tile shapes: 128 x 256 (one CTA per SM, 4 stages, a product group in flight) and
// 128 x 128 (two CTAs per SM, 3 stages).
using AssignWgWide = wg::Shape<256, 4, 1, 1>;
using AssignWgPair = wg::Shape<128, 3, 2, 0>;

// Splitting D over more CTAs when the tiles alone would leave most SMs idle (small N): the
// number of chunks of kps elements (one pipeline stage) each CTA takes.
int assignSplit(int n, int d, int k, int kps) {
    const int sms = tc::smCount();
    const int tiles = ((n + tc::BM - 1) / tc::BM) * ((k + tc::BM - 1) / tc::BM);
    const int stages = (d + kps - 1) / kps;
    if (2 * tiles > sms) return 1;
    return std::max(1, std::min(stages, sms / tiles));
}

// One CTA per (128-token panel, BN-centre panel): each token's best centre in the panel.
template <class S, class T, bool VEC>
__global__ void __launch_bounds__(tc::THREADS, 1) assign_tc_kernel(AssignTc a) {
    if (a.skip && *a.skip) return;
    extern __shared__ __align__(16) unsigned char smem[];
    float* bestS = reinterpret_cast<float*>(smem); // [4 wn][128]
    int* bestI = reinterpret_cast<int*>(bestS + 4 * tc::BM);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    const int I = blockIdx.x, J = blockIdx.y;
    const int k0 = blockIdx.z * a.chunk, dz = min(a.chunk, a.d - k0);
    const T* x = static_cast<const T*>(a.x) + k0;
    tc::Acc<S> acc;
    tc::tileProduct<T, VEC, S>(smem, x, a.n, static_cast<const T*>(a.cHi) + k0, a.k, dz, I * tc::BM,
                               J * S::BN, acc, true, a.d);
    if (a.cLo)
        tc::tileProduct<T, VEC, S>(smem, x, a.n, static_cast<const T*>(a.cLo) + k0, a.k, dz,
                                   I * tc::BM, J * S::BN, acc, false, a.d);
    if (a.split > 1) { // raw partial scores; assign_split_finalize_kernel ranks their sums
        float* out = a.scores + (long long)blockIdx.z * a.k * a.n;
        tc::forEachFrag<S>(acc, [&](int r, int col, float v) {
            const int i = I * tc::BM + r, c = J * S::BN + col;
            if (i < a.n && c < a.k) out[(long long)c * a.n + i] = v;
        });
        return;
    }
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float bs = -INFINITY;
            int bi = 0x7fffffff;
#pragma unroll
            for (int nt = 0; nt < S::NT; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int col = J * S::BN + tc::fragCol<S>(wn, nt, c, t);
                    const float v = acc[mt][nt][2 * h + c];
                    if (col < a.k && (v > bs || (v == bs && col < bi))) {
                        bs = v;
                        bi = col;
                    }
                }
#pragma unroll
            for (int o = 1; o < 4; o <<= 1) {
                const float os = __shfl_xor_sync(0xffffffffu, bs, o);
                const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
                if (os > bs || (os == bs && oi < bi)) {
                    bs = os;
                    bi = oi;
                }
            }
            if (t == 0) {
                const int r = tc::fragRow(wm, mt, 2 * h, g);
                bestS[wn * tc::BM + r] = bs;
                bestI[wn * tc::BM + r] = bi;
            }
        }
    __syncthreads();
    const int i = I * tc::BM + tid;
    if (tid < tc::BM && i < a.n) {
        float best = -INFINITY;
        int idx = 0x7fffffff;
        for (int w = 0; w < 4; ++w) { // columns ascend with w: ties keep the lower centre
            const float v = bestS[w * tc::BM + tid];
            const int c = bestI[w * tc::BM + tid];
            if (v > best || (v == best && c < idx)) {
                best = v;
                idx = c;
            }
        }
        a.partial[(long long)J * a.n + i] = make_float2(best, __int_as_float(idx));
    }
}

// The same on Hopper's warpgroup tiles (FP16, 16-byte rows, whole D): the products against the
// high and the low halves accumulate in one tile; each warp holds 16 whole rows, so a row's best
// reduces within its quad.
template <class S>
__global__ void __launch_bounds__(tc::THREADS, S::MIN_BLOCKS) assign_wg_kernel(AssignTc a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if (a.skip && *a.skip) return;
    extern __shared__ __align__(16) unsigned char smemRaw[];
    unsigned char* smem = wg::alignedSmem(smemRaw);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int I = blockIdx.x, J = blockIdx.y;
    const __half* x = static_cast<const __half*>(a.x);
    wg::Acc<S> acc;
    auto product = [&](const void* c, bool accumulate) {
        const __half* ch = static_cast<const __half*>(c);
        wg::prologue<S>(smem, x, a.n, ch, a.k, a.d, I * tc::BM, J * S::BN);
        wg::mainloop<S>(smem, x, a.n, ch, a.k, a.d, I * tc::BM, J * S::BN, acc, accumulate);
    };
    product(a.cHi, false);
    product(a.cLo, true);
    float bs[2] = {-INFINITY, -INFINITY};
    int bi[2] = {0x7fffffff, 0x7fffffff};
#pragma unroll
    for (int i = 0; i < S::ACC; ++i) {
        const int h = (i >> 1) & 1, col = J * S::BN + wg::fragCol(i, t);
        if (col < a.k && (acc[i] > bs[h] || (acc[i] == bs[h] && col < bi[h]))) {
            bs[h] = acc[i];
            bi[h] = col;
        }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int o = 1; o < 4; o <<= 1) {
            const float os = __shfl_xor_sync(0xffffffffu, bs[h], o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi[h], o);
            if (os > bs[h] || (os == bs[h] && oi < bi[h])) {
                bs[h] = os;
                bi[h] = oi;
            }
        }
        const int i = I * tc::BM + wg::fragRow(warp, 2 * h, g);
        if (t == 0 && i < a.n)
            a.partial[(long long)J * a.n + i] = make_float2(bs[h], __int_as_float(bi[h]));
    }
#endif
}

// Per token: the best over the centre panels in order (ties: lower centre), founders fixed.
__global__ void assign_finalize_kernel(AssignParams p, const float2* partial, int panels) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n || (p.skip && *p.skip)) return;
    int best = p.founderOf ? p.founderOf[i] : -1;
    if (best < 0) {
        float bs = -INFINITY;
        best = 0;
        for (int J = 0; J < panels; ++J) {
            const float2 v = partial[(long long)J * p.n + i];
            if (v.x > bs) {
                bs = v.x;
                best = __float_as_int(v.y);
            }
        }
    }
    if (p.changed && p.previous && p.previous[i] != best) atomicAdd(p.changed, 1);
    p.labels[i] = best;
}

// Split D: a warp per token sums the chunks' scores of its centres (lanes over centres), then
// the best (ties: lower centre), founders fixed.
__global__ void assign_split_finalize_kernel(AssignParams p, const float* scores, int split) {
    const int i = static_cast<int>((blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5),
              lane = threadIdx.x & 31;
    if (i >= p.n || (p.skip && *p.skip)) return;
    int best = p.founderOf ? p.founderOf[i] : -1;
    if (best < 0) {
        float bs = -INFINITY;
        best = 0x7fffffff;
        const long long plane = (long long)p.k * p.n;
        for (int c = lane; c < p.k; c += 32) {
            float v = 0.0f;
            for (int z = 0; z < split; ++z)
                v += scores[z * plane + (long long)c * p.n + i];
            if (v > bs) { // c ascends within a lane: ties keep the lower centre
                bs = v;
                best = c;
            }
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float os = __shfl_xor_sync(0xffffffffu, bs, o);
            const int oi = __shfl_xor_sync(0xffffffffu, best, o);
            if (os > bs || (os == bs && oi < best)) {
                bs = os;
                best = oi;
            }
        }
        if (best == 0x7fffffff) best = 0; // every score NaN
    }
    if (lane != 0) return;
    if (p.changed && p.previous && p.previous[i] != best) atomicAdd(p.changed, 1);
    p.labels[i] = best;
}

// One CTA per centre: members gathered in token order, mass-weighted sum, normalized.
template <class T> __global__ void centres_fast_kernel(CentresParams p) {
    if (p.skip && *p.skip) return;
    constexpr int kThreads = 256, kPer = 8; // up to 8 * 256 = 2048 features per thread group pass
    const int c = blockIdx.x, tid = threadIdx.x;
    const T* x = static_cast<const T*>(p.x);
    float* out = p.centres + (long long)c * p.d;
    for (int f0 = 0; f0 < p.d; f0 += kThreads * kPer) {
        float acc[kPer];
#pragma unroll
        for (int q = 0; q < kPer; ++q)
            acc[q] = 0.0f;
        if (p.founders) {
            const long long row = (long long)p.founders[c] * p.d;
#pragma unroll
            for (int q = 0; q < kPer; ++q) {
                const int f = f0 + q * kThreads + tid;
                if (f < p.d) acc[q] = ld(x, row + f);
            }
        } else {
            forGroupMembers<kThreads>(p.labels, p.n, c, 0, [&](int j) { // ascending order, as basic
                const float w = p.mass[j];
#pragma unroll
                for (int q = 0; q < kPer; ++q) {
                    const int f = f0 + q * kThreads + tid;
                    if (f < p.d) acc[q] += w * ld(x, (long long)j * p.d + f);
                }
            });
        }
#pragma unroll
        for (int q = 0; q < kPer; ++q) {
            const int f = f0 + q * kThreads + tid;
            if (f < p.d) out[f] = acc[q];
        }
    }
    // normalize (the block reads back what it wrote)
    __syncthreads();
    float ss = 0.0f;
    for (int f = tid; f < p.d; f += kThreads)
        ss = fmaf(out[f], out[f], ss);
    const float tot = blockAllReduce<kThreads>(ss, [](float a, float b) { return a + b; });
    const float inv = tot > 0.0f ? rsqrtf(tot) : 0.0f;
    for (int f = tid; f < p.d; f += kThreads)
        out[f] *= inv;
}

__global__ void refine_commit_kernel(int* state, int round, int* labels, const int* newLabels,
                                     int n) {
    __shared__ int converged;
    if (threadIdx.x == 0) converged = state[0];
    __syncthreads();
    if (converged) return;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        labels[i] = newLabels[i];
    __syncthreads();
    if (threadIdx.x == 0) {
        state[1] = round + 1;
        if (state[2 + round] == 0) state[0] = 1;
    }
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
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchAssignBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        if (p.n < 1 || p.k < 1) return;
        withPrec(prec, [&](auto t) {
            using T = decltype(t);
            if (!p.partial) throw CudaError("assign (optimized): needs partial scratch");
            AssignTc a{p.x,       p.n,     p.d,    p.k,
                       p.centres, nullptr, p.skip, static_cast<float2*>(p.partial),
                       1,         p.d,     nullptr};
            using Tiles = AssignParams::Tiles;
            constexpr int kps = tc::ROWB / sizeof(T);
            a.split = p.tiles == Tiles::Auto ? assignSplit(p.n, p.d, p.k, kps)
                                             : 1; // a forced shape: whole D
            if (a.split > 1) {
                const int stages = (p.d + kps - 1) / kps, per = (stages + a.split - 1) / a.split;
                a.chunk = per * kps;
                a.split = (stages + per - 1) / per; // no empty chunk
                a.scores = static_cast<float*>(p.partial);
            }
            bool vec = tc::rowsAligned(p.x, p.d, sizeof(T));
            if constexpr (std::is_same_v<T, __half>) {
                if (!p.centresHalf)
                    throw CudaError("assign (optimized, fp16): needs centresHalf scratch");
                const long long count = (long long)p.k * p.d;
                __half* hi = static_cast<__half*>(p.centresHalf);
                split_half_kernel<<<blocksFor(count, 256), 256, 0, s>>>(p.centres, count, hi,
                                                                        hi + count, p.skip);
                QMPP_CUDA_CHECK_LAUNCH();
                a.cHi = hi;
                a.cLo = hi + count;
                vec = vec && tc::rowsAligned(hi + count, p.d, 2);
            }
            // FP16: 128 x 256 tiles when they take fewer waves (tc::wideFewerWaves), e.g. N = 4096,
            // K = 819: 128 tiles in one wave instead of 224 in two
            const long long rowPanels = (p.n + tc::BM - 1) / tc::BM;
            auto tiles = [&](int bn) { return rowPanels * ((p.k + bn - 1) / bn); };
            const bool wide = std::is_same_v<T, __half> && a.split == 1 &&
                              (p.tiles == Tiles::Auto || p.tiles == Tiles::WarpGroup
                                   ? tc::wideFewerWaves(tiles(tc::BM), tiles(tc::Wide::BN))
                                   : p.tiles == Tiles::Wide);
            // Hopper: warpgroup tiles of the same shape for the whole-D products
            const bool warpgroups = std::is_same_v<T, __half> && a.split == 1 && vec &&
                                    wg::available() &&
                                    (p.tiles == Tiles::Auto || p.tiles == Tiles::WarpGroup);
            if (p.tiles == Tiles::WarpGroup && !warpgroups)
                throw CudaError("assign: warpgroup tiles need FP16, 16-byte rows and an sm_90 "
                                "device with a build for sm_90a");
            const int panels =
                (p.k + (wide ? tc::Wide::BN : tc::BM) - 1) / (wide ? tc::Wide::BN : tc::BM);
            const dim3 grid(unsigned(rowPanels), panels, a.split);
            auto launch = [&](auto shape) {
                using S = decltype(shape);
                if (vec)
                    tc::launchTile<assign_tc_kernel<S, T, true>, S::PIPE_BYTES>(grid, s, a);
                else
                    tc::launchTile<assign_tc_kernel<S, T, false>, S::PIPE_BYTES>(grid, s, a);
            };
            auto launchWg = [&](auto shape) {
                using S = decltype(shape);
                tc::launchTile<assign_wg_kernel<S>, S::SMEM_BYTES>(grid, s, a);
            };
            if constexpr (std::is_same_v<T, __half>) {
                if (warpgroups && wide)
                    launchWg(AssignWgWide{});
                else if (warpgroups)
                    launchWg(AssignWgPair{});
                else if (wide)
                    launch(tc::Wide{});
                else
                    launch(tc::Square{});
            } else {
                launch(tc::Square{});
            }
            if (a.split > 1)
                assign_split_finalize_kernel<<<blocksFor(32LL * p.n, 256), 256, 0, s>>>(p, a.scores,
                                                                                        a.split);
            else
                assign_finalize_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p, a.partial, panels);
            QMPP_CUDA_CHECK_LAUNCH();
        });
        return;
    }
}

void centres(const CentresParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchCentresBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        if (p.k < 1) return;
        withPrec(prec, [&](auto t) { centres_fast_kernel<decltype(t)><<<p.k, 256, 0, s>>>(p); });
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    }
}

std::size_t assignPartialBytes(int n, int d, int k) {
    const std::size_t best =
        sizeof(float2) * std::size_t((k + tc::BM - 1) / tc::BM) * std::size_t(n);
    const int split =
        std::max(assignSplit(n, d, k, tc::ROWB / 4), assignSplit(n, d, k, tc::ROWB / 2));
    const std::size_t scores =
        split > 1 ? sizeof(float) * std::size_t(split) * std::size_t(k) * std::size_t(n) : 0;
    return std::max(best, scores);
}

void refineCommit(int* state, int round, int* labels, const int* newLabels, int n, cudaStream_t s) {
    refine_commit_kernel<<<1, 1024, 0, s>>>(state, round, labels, newLabels, n);
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace qmpp::kernels
