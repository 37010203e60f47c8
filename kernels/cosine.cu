// Cosine similarity of the rows of a [M, D] and b [N, D]: out [M, N], 0 where a norm is 0.
//
// | version   | idea                                                              | N = 4096 FP16 |
// |-----------|-------------------------------------------------------------------|---------------|
// | optimized | inverse norms once (warp per row); 128x128 tensor-core tiles, scaled | 0.0554 ms on
// | |           | into shared memory, stored in whole lines; FP16 two CTAs per SM (one's | Hopper's
// | |           | stores overlap the other's products); a == b: blocks on and above the  |
// warpgroup     | |           | diagonal only, each above it stored twice (the mirror read down the
// | tiles (cuBLAS | |           | staged columns). FP16 on Hopper: warpgroup tiles (wgmma.cuh),
// started  | 0.0518), else | |           | while the norms finish; elsewhere mma.sync tiles
// (tc_tile.cuh)         | 0.0914 ms     | | basic     | one thread per output; three sums over D
// | 52.8 ms       |
#include "common.cuh"
#include "tc_tile.cuh"
#include "wgmma.cuh"

#include <type_traits>

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

template <class T> __global__ void cosine_basic_kernel(CosineParams p) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)p.m * p.n) return;
    const long long i = t / p.n, j = t % p.n;
    const T* a = static_cast<const T*>(p.a);
    const T* b = static_cast<const T*>(p.b);
    float ab = 0.0f, aa = 0.0f, bb = 0.0f;
    for (int k = 0; k < p.d; ++k) {
        const float u = ld(a, i * p.d + k), w = ld(b, j * p.d + k);
        ab += u * w;
        aa += u * u;
        bb += w * w;
    }
    p.out[t] = (aa > 0.0f && bb > 0.0f) ? ab * rsqrtf(aa) * rsqrtf(bb) : 0.0f;
}

// Inverse norms of rows (0 for a zero row): one warp per row, from the stored values.
template <class T> __global__ void inv_norms_kernel(const T* x, int rows, int d, float* inv) {
    allowDependents(); // the tiles' products need no norms: they start at once
    const long long w = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (w >= rows) return;
    float ss = 0.0f;
    for (int k = lane; k < d; k += 32) {
        const float v = ld(x, w * d + k);
        ss = fmaf(v, v, ss);
    }
    ss = warpSum(ss);
    if (lane == 0) inv[w] = ss > 0.0f ? rsqrtf(ss) : 0.0f;
}

struct CosTc {
    const void* a;
    const void* b;
    int m, n, d, nbA, nbB;
    bool sym; // a == b: the symmetric schedule, each block above the diagonal stored twice
    const float* inva;
    const float* invb;
    float* out;
};

// The staged tile (scaled by the inverse norms, BM x BN, row stride BN + 1) stored row by row
// (and, above the diagonal, column by column as the mirror) in whole 128-byte lines.
template <int BN>
__device__ __forceinline__ void storeStaged(const float* tile, const CosTc& a, int I, int J) {
    constexpr int LDT = BN + 1; // odd stride: rows and columns read conflict-free
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = I * tc::BM, col0 = J * BN;
    // rows: a warp per row, blocks on or above the diagonal (all of them when a != b)
    const int lowCol = a.sym ? row0 : 0;
    for (int r = warp; r < tc::BM; r += tc::THREADS / 32) {
        if (row0 + r >= a.m) break;
        float* o = a.out + (long long)(row0 + r) * a.n;
        for (int col = lane; col < BN; col += 32)
            if (col0 + col < a.n && col0 + col >= lowCol) o[col0 + col] = tile[r * LDT + col];
    }
    if (!a.sym) return;
    // mirror: a warp per column strictly above the diagonal's block, written as a row
    const int rows = min(tc::BM, a.m - row0);
    for (int col = warp; col < BN; col += tc::THREADS / 32) {
        const int gc = col0 + col;
        if (gc >= a.n) break;
        if (gc / tc::BM <= I) continue;
        float* o = a.out + (long long)gc * a.n + row0;
        for (int r = lane; r < rows; r += 32)
            o[r] = tile[r * LDT + col];
    }
}

// Element (r, col) of tile (I, J) scaled into the staging tile (0 outside the output).
template <int BN>
__device__ __forceinline__ void stage(float* tile, const CosTc& a, int I, int J, int r, int col,
                                      float v) {
    const int gr = I * tc::BM + r, gc = J * BN + col;
    const bool ok = gr < a.m && gc < a.n;
    tile[r * (BN + 1) + col] = ok ? v * a.inva[gr] * a.invb[gc] : 0.0f; // after waitPrimary()
}

// Tensor-core tile of a b^T (mma.sync), scaled by the inverse norms into shared memory, stored.
template <class S, class T, bool VEC>
__global__ void __launch_bounds__(tc::THREADS, S::MIN_BLOCKS) cosine_tc_kernel(CosTc a) {
    extern __shared__ __align__(16) unsigned char smem[];
    static_assert(tc::BM * (S::BN + 1) * 4 <= S::PIPE_BYTES,
                  "the staged tile reuses the pipeline buffers");
    int I = blockIdx.y, J = blockIdx.x;
    if (a.sym) tc::symTile(blockIdx.x, a.nbA, S::CP, I, J);
    tc::Acc<S> acc;
    tc::tileProduct<T, VEC, S>(smem, static_cast<const T*>(a.a), a.m, static_cast<const T*>(a.b),
                               a.n, a.d, I * tc::BM, J * S::BN, acc);
    float* tile = reinterpret_cast<float*>(smem);
    waitPrimary(); // the inverse norms
    tc::forEachFrag<S>(acc,
                       [&](int r, int col, float v) { stage<S::BN>(tile, a, I, J, r, col, v); });
    __syncthreads();
    storeStaged<S::BN>(tile, a, I, J);
}

// The same on Hopper's warpgroup tiles (FP16, 16-byte rows).
template <class S>
__global__ void __launch_bounds__(tc::THREADS, S::MIN_BLOCKS) cosine_wg_kernel(CosTc a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(16) unsigned char smemRaw[];
    unsigned char* smem = wg::alignedSmem(smemRaw);
    static_assert(tc::BM * (S::BN + 1) * 4 <= S::PIPE_BYTES,
                  "the staged tile reuses the pipeline buffers");
    int I = blockIdx.y, J = blockIdx.x;
    if (a.sym) tc::symTile(blockIdx.x, a.nbA, S::CP, I, J);
    const __half* xa = static_cast<const __half*>(a.a);
    const __half* xb = static_cast<const __half*>(a.b);
    wg::Acc<S> acc;
    wg::prologue<S>(smem, xa, a.m, xb, a.n, a.d, I * tc::BM, J * S::BN);
    wg::mainloop<S>(smem, xa, a.m, xb, a.n, a.d, I * tc::BM, J * S::BN, acc);
    float* tile = reinterpret_cast<float*>(smem);
    waitPrimary(); // the inverse norms
    wg::forEachFrag<S>(acc,
                       [&](int r, int col, float v) { stage<S::BN>(tile, a, I, J, r, col, v); });
    __syncthreads();
    storeStaged<S::BN>(tile, a, I, J);
#endif
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchCosineBasic(const CosineParams& p, cudaStream_t s) {
    cosine_basic_kernel<T><<<blocksFor((long long)p.m * p.n, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// A tile kernel over the symmetric schedule (a == b) or the whole grid, BN columns a tile,
// launched to start while the inverse norms finish.
template <auto Kernel, int BN, int Bytes> void launchCosineKernel(CosTc a, cudaStream_t s) {
    a.nbB = (a.n + BN - 1) / BN;
    const dim3 grid = a.sym ? dim3(tc::symTiles(a.nbA, BN / tc::BM), 1) : dim3(a.nbB, a.nbA);
    tc::allowPipeSmem<Kernel, Bytes>();
    launchDependent(Kernel, grid, tc::THREADS, Bytes, s, a);
}

// FP16 on Hopper: 128 x 128 warpgroup tiles, two CTAs per SM, three stages. Else mma.sync: FP16
// two 128 x 128 CTAs per SM (of the shapes tried, the fastest: docs/perf); FP32 (3xTF32, three
// times the fragments) one 128 x 128 CTA per SM.
using WgPair = wg::Shape<128, 3, 2, 0>;
template <class S, class T, bool VEC> void launchCosineShape(const CosTc& a, cudaStream_t s) {
    launchCosineKernel<cosine_tc_kernel<S, T, VEC>, S::BN, S::PIPE_BYTES>(a, s);
}

template <class T, bool VEC>
void launchCosineTc(const CosTc& a, CosineParams::Tiles tiles, cudaStream_t s) {
    if constexpr (std::is_same_v<T, __half>) {
        using Tiles = CosineParams::Tiles;
        const bool warpgroups = VEC && wg::available() && tiles != Tiles::MmaSync;
        if (tiles == Tiles::WarpGroup && !warpgroups)
            throw CudaError("cosine: warpgroup tiles need 16-byte rows and an sm_90 device with a "
                            "build for sm_90a");
        if (warpgroups)
            launchCosineKernel<cosine_wg_kernel<WgPair>, WgPair::BN, WgPair::SMEM_BYTES>(a, s);
        else
            launchCosineShape<tc::SquarePair, T, VEC>(a, s);
    } else {
        (void)tiles;
        launchCosineShape<tc::Square, T, VEC>(a, s);
    }
}

// ---- dispatcher ---------------------------------------------------------------------------

void cosine(const CosineParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchCosineBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        if (!p.scratch)
            throw CudaError("cosine (optimized): needs scratch for M + N inverse norms");
        withPrec(prec, [&](auto t) {
            using T = decltype(t);
            CosTc a{p.a,
                    p.b,
                    p.m,
                    p.n,
                    p.d,
                    (p.m + tc::BM - 1) / tc::BM,
                    (p.n + tc::BM - 1) / tc::BM,
                    p.a == p.b && p.m == p.n,
                    p.scratch,
                    p.scratch + p.m,
                    p.out};
            if (p.m < 1 || p.n < 1) return;
            inv_norms_kernel<T><<<blocksFor(32LL * p.m, 256), 256, 0, s>>>(
                static_cast<const T*>(p.a), p.m, p.d, p.scratch);
            QMPP_CUDA_CHECK_LAUNCH();
            if (a.sym)
                a.invb = a.inva;
            else {
                inv_norms_kernel<T><<<blocksFor(32LL * p.n, 256), 256, 0, s>>>(
                    static_cast<const T*>(p.b), p.n, p.d, p.scratch + p.m);
                QMPP_CUDA_CHECK_LAUNCH();
            }
            const bool vec =
                tc::rowsAligned(p.a, p.d, sizeof(T)) && tc::rowsAligned(p.b, p.d, sizeof(T));
            if (vec)
                launchCosineTc<T, true>(a, p.tiles, s);
            else
                launchCosineTc<T, false>(a, p.tiles, s);
            QMPP_CUDA_CHECK_LAUNCH();
        });
        return;
    }
}

} // namespace qmpp::kernels
