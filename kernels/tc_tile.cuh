// Internal to kernels/: the tensor-core tile of the optimized kernels (attention entropy, cosine,
// assignment, AR heads). A CTA of 8 warps computes a 128 x BN tile of A B^T (BN = 128 or 256,
// see Shape) into registers through a multi-stage cp.async pipeline: FP16 with ldmatrix +
// mma.m16n8k16 (FP32 accumulate), FP32 with 3xTF32 (big/small split, three mma.m16n8k8) for
// FP32-level accuracy. Rows are padded in shared memory so fragment loads are free of bank
// conflicts. Each operation adds its own epilogue.
#pragma once

#include "common.cuh"

#include <cstdint>

namespace qmpp::kernels {
namespace tc {

constexpr int BM = 128;      // tile rows
constexpr int THREADS = 256; // 8 warps: 2 along rows x 4 along columns

// The shape of a tile kernel: BM x BN tiles (each warp 64 x BN/4), ROWB bytes of every row per
// pipeline stage, STAGES stages, MIN_BLOCKS CTAs per SM (2: at most 128 registers a thread).
template <int BN_, int ROWB_, int STAGES_, int MIN_BLOCKS_ = 1> struct Shape {
    static constexpr int BN = BN_, ROWB = ROWB_, STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_;
    static constexpr int LDB = ROWB + 16; // padded smem row stride: conflict-free fragments
    static constexpr int STAGE_BYTES = (BM + BN) * LDB; // rows of panel A, then rows of panel B
    static constexpr int PIPE_BYTES = STAGES * STAGE_BYTES;
    static constexpr int WN = BN / 4;  // columns per warp
    static constexpr int NT = WN / 8;  // n8 fragments per warp
    static constexpr int CP = BN / BM; // 128-column panels per tile
    static_assert(BN % BM == 0 && NT % 2 == 0, "tile columns: a multiple of 128");
    static_assert(PIPE_BYTES <= 227 * 1024 && PIPE_BYTES * MIN_BLOCKS <= 226 * 1024,
                  "shared memory per SM");
};
using Square = Shape<128, 256, 3>; // 128 x 128, 256-B stages (v2 of the entropy kernel)
using Wide = Shape<256, 128, 4>;   // 128 x 256, 128-B stages: a quarter less L2 traffic per product
using SquarePair = Shape<128, 128, 3, 2>; // 128 x 128, two CTAs per SM: one's epilogue overlaps the
                                          // other's products
using WidePersistent = Wide; // persistent CTAs: the next tile's loads fill all stages but the last
template <class S> using Acc = float[4][S::NT][4];

// The default shape's constants (the assignment and AR kernels).
constexpr int ROWB = Square::ROWB;
constexpr int PIPE_BYTES = Square::PIPE_BYTES;

// ---- PTX wrappers -------------------------------------------------------------------------
__device__ __forceinline__ unsigned smemAddr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddr(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cpAsyncCommit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int N> __device__ __forceinline__ void cpAsyncWait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrixX4(unsigned (&r)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void mmaF16(float (&c)[4], const unsigned (&a)[4],
                                       const unsigned (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mmaTf32(float (&c)[4], const unsigned (&a)[4],
                                        const unsigned (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// v = big + small with both TF32: three TF32 products recover FP32 accuracy (3xTF32).
__device__ __forceinline__ void splitTf32(float v, unsigned& big, unsigned& small) {
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(big) : "f"(v));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(small) : "f"(v - __uint_as_float(big)));
}
__device__ __forceinline__ float ex2(float a) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(a));
    return y;
}

template <class T> __device__ __forceinline__ T zeroOf();
template <> __device__ __forceinline__ float zeroOf<float>() {
    return 0.0f;
}
template <> __device__ __forceinline__ __half zeroOf<__half>() {
    return __float2half(0.0f);
}

// ---- main loop ------------------------------------------------------------------------------

// One pipeline stage: rows [rowA, rowA + BM) of A and [rowB, rowB + BN) of B (row stride ld),
// elements [k0, k0 + ROWB bytes); rows past the end and elements past d are zero.
template <class S, class T, bool VEC>
__device__ __forceinline__ void loadStage(unsigned char* st, const T* xa, int na, const T* xb,
                                          int nb, int d, long long ld, int rowA, int rowB, int k0,
                                          int tid) {
    constexpr int EPC = 16 / sizeof(T);      // elements per 16-byte chunk
    constexpr int KPS = S::ROWB / sizeof(T); // elements per row per stage
    constexpr int ROWS = BM + S::BN;
    if constexpr (VEC) {
        constexpr int CPR = S::ROWB / 16; // chunks per row
        static_assert(ROWS * CPR % THREADS == 0, "whole chunks per thread");
#pragma unroll
        for (int q = 0; q < ROWS * CPR / THREADS; ++q) {
            const int c = tid + q * THREADS, r = c / CPR, ch = c % CPR;
            const bool inA = r < BM;
            const int grow = inA ? rowA + r : rowB + (r - BM);
            const int k = k0 + ch * EPC;
            const bool ok = grow < (inA ? na : nb) && k < d;
            const T* src = inA ? xa : xb;
            cpAsync16(st + r * S::LDB + ch * 16, ok ? src + grow * ld + k : src, ok);
        }
    } else { // rows not 16-byte aligned: plain loads (correct for any D, slower)
        for (int e = tid; e < ROWS * KPS; e += THREADS) {
            const int r = e / KPS, kk = e % KPS;
            const bool inA = r < BM;
            const int grow = inA ? rowA + r : rowB + (r - BM);
            const int k = k0 + kk;
            const T* src = inA ? xa : xb;
            reinterpret_cast<T*>(st + r * S::LDB)[kk] =
                grow < (inA ? na : nb) && k < d ? src[grow * ld + k] : zeroOf<T>();
        }
    }
}

// acc += A_stage B_stage^T for this warp's 64 x WN sub-tile.
template <class S>
__device__ __forceinline__ void computeStage(const unsigned char* st, Acc<S>& acc, int wm, int wn,
                                             int lane, __half) {
    const unsigned base = smemAddr(st);
#pragma unroll
    for (int kk = 0; kk < S::ROWB / 32; ++kk) { // k16 steps
        unsigned a[4][4], b[S::NT][2];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
            const int row = wm * 64 + mt * 16 + (lane & 15);
            ldmatrixX4(a[mt], base + row * S::LDB + (kk * 16 + (lane >> 4) * 8) * 2);
        }
#pragma unroll
        for (int np = 0; np < S::NT / 2; ++np) {
            const int row = BM + wn * S::WN + np * 16 + (lane & 7) + ((lane >> 4) << 3);
            unsigned r[4];
            ldmatrixX4(r, base + row * S::LDB + (kk * 16 + ((lane >> 3) & 1) * 8) * 2);
            b[2 * np][0] = r[0];
            b[2 * np][1] = r[1];
            b[2 * np + 1][0] = r[2];
            b[2 * np + 1][1] = r[3];
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int nt = 0; nt < S::NT; ++nt)
                mmaF16(acc[mt][nt], a[mt], b[nt]);
    }
}

template <class S>
__device__ __forceinline__ void computeStage(const unsigned char* st, Acc<S>& acc, int wm, int wn,
                                             int lane, float) {
    const float* s = reinterpret_cast<const float*>(st);
    constexpr int LD = S::LDB / 4;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < S::ROWB / 32; ++kk) { // k8 steps
        unsigned ab[4][4], as[4][4], bb[S::NT][2], bs[S::NT][2];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
            const float* r0 = s + (wm * 64 + mt * 16 + g) * LD + kk * 8 + t;
            splitTf32(r0[0], ab[mt][0], as[mt][0]);
            splitTf32(r0[8 * LD], ab[mt][1], as[mt][1]);
            splitTf32(r0[4], ab[mt][2], as[mt][2]);
            splitTf32(r0[8 * LD + 4], ab[mt][3], as[mt][3]);
        }
#pragma unroll
        for (int nt = 0; nt < S::NT; ++nt) {
            const float* r0 = s + (BM + wn * S::WN + nt * 8 + g) * LD + kk * 8 + t;
            splitTf32(r0[0], bb[nt][0], bs[nt][0]);
            splitTf32(r0[4], bb[nt][1], bs[nt][1]);
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int nt = 0; nt < S::NT; ++nt) {
                mmaTf32(acc[mt][nt], as[mt], bb[nt]);
                mmaTf32(acc[mt][nt], ab[mt], bs[nt]);
                mmaTf32(acc[mt][nt], ab[mt], bb[nt]);
            }
    }
}

// acc (+)= A[rowA:rowA+BM] B[rowB:rowB+BN]^T over elements [0, d); both row-major with row
// stride ld (0: d). tilePrologue queues the first STAGES - 1 stages (a persistent kernel queues
// its next tile's while it finishes the current one); tileMainloop runs the rest.
template <class T, bool VEC, class S = Square>
__device__ __forceinline__ void tilePrologue(unsigned char* smem, const T* xa, int na, const T* xb,
                                             int nb, int d, int rowA, int rowB, long long ld = 0) {
    constexpr int KPS = S::ROWB / sizeof(T);
    const int nk = (d + KPS - 1) / KPS;
    if (ld == 0) ld = d;
#pragma unroll
    for (int s = 0; s < S::STAGES - 1; ++s) {
        if (s < nk)
            loadStage<S, T, VEC>(smem + s * S::STAGE_BYTES, xa, na, xb, nb, d, ld, rowA, rowB,
                                 s * KPS, threadIdx.x);
        cpAsyncCommit();
    }
}

template <class T, bool VEC, class S = Square>
__device__ __forceinline__ void tileMainloop(unsigned char* smem, const T* xa, int na, const T* xb,
                                             int nb, int d, int rowA, int rowB, Acc<S>& acc,
                                             bool zero = true, long long ld = 0) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    constexpr int KPS = S::ROWB / sizeof(T);
    const int nk = (d + KPS - 1) / KPS;
    if (ld == 0) ld = d;
    if (zero) {
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int nt = 0; nt < S::NT; ++nt)
#pragma unroll
                for (int c = 0; c < 4; ++c)
                    acc[mt][nt][c] = 0.0f;
    }
    for (int kt = 0; kt < nk; ++kt) {
        cpAsyncWait<S::STAGES - 2>();
        __syncthreads(); // stage kt landed for everyone; stage kt-1 is free to refill
        const int next = kt + S::STAGES - 1;
        if (next < nk)
            loadStage<S, T, VEC>(smem + (next % S::STAGES) * S::STAGE_BYTES, xa, na, xb, nb, d, ld,
                                 rowA, rowB, next * KPS, tid);
        cpAsyncCommit();
        computeStage<S>(smem + (kt % S::STAGES) * S::STAGE_BYTES, acc, wm, wn, lane, T{});
    }
    cpAsyncWait<0>();
    __syncthreads(); // the pipeline buffers are free (the epilogue's scratch, or the next
                     // prologue's)
}

template <class T, bool VEC, class S = Square>
__device__ __forceinline__ void tileProduct(unsigned char* smem, const T* xa, int na, const T* xb,
                                            int nb, int d, int rowA, int rowB, Acc<S>& acc,
                                            bool zero = true, long long ld = 0) {
    tilePrologue<T, VEC, S>(smem, xa, na, xb, nb, d, rowA, rowB, ld);
    tileMainloop<T, VEC, S>(smem, xa, na, xb, nb, d, rowA, rowB, acc, zero, ld);
}

// Where accumulator element acc[mt][nt][c] lies in the BM x BN tile.
__device__ __forceinline__ int fragRow(int wm, int mt, int c, int g) {
    return wm * 64 + mt * 16 + (c >> 1) * 8 + g;
}
template <class S = Square> __device__ __forceinline__ int fragCol(int wn, int nt, int c, int t) {
    return wn * S::WN + nt * 8 + 2 * t + (c & 1);
}

// f(row, col, value) for each of this thread's accumulator elements, at its place in the tile.
template <class S, class F> __device__ __forceinline__ void forEachFrag(Acc<S>& acc, F&& f) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < S::NT; ++nt)
#pragma unroll
            for (int c = 0; c < 4; ++c)
                f(fragRow(wm, mt, c, g), fragCol<S>(wn, nt, c, t), acc[mt][nt][c]);
}

// The reductions' operations.
struct Sum {
    __device__ float operator()(float x, float y) const { return x + y; }
};
struct Max {
    __device__ float operator()(float x, float y) const { return fmaxf(x, y); }
};

// Reductions of N values per lane over groups of lanes, scattered: each step halves the values a
// lane keeps (the half its lane bit MASK selects) and adds the partner's copy of them, so the
// group's sum of every value ends in one lane, in N / 2 + N / 4 + ... shuffles instead of
// log2(lanes) N. reduceScatter8: over the eight lanes of equal t (lane bits 2..4), afterwards
// v[0, N / 8) holds elements [N / 8 g, N / 8 (g + 1)); reduceScatter4: over the quad (lane bits
// 0..1), v[0, N / 4) holds elements [N / 4 t, N / 4 (t + 1)).
template <int HALF, int MASK, int N, class Op>
__device__ __forceinline__ void reduceScatterStep(float (&v)[N], int lane, Op op) {
    const bool upper = lane & MASK;
#pragma unroll
    for (int i = 0; i < HALF; ++i) {
        const float keep = upper ? v[i + HALF] : v[i], send = upper ? v[i] : v[i + HALF];
        v[i] = op(keep, __shfl_xor_sync(0xffffffffu, send, MASK));
    }
}
template <int N, class Op>
__device__ __forceinline__ void reduceScatter8(float (&v)[N], int lane, Op op) {
    static_assert(N % 8 == 0, "eight lanes");
    reduceScatterStep<N / 2, 16>(v, lane, op);
    reduceScatterStep<N / 4, 8>(v, lane, op);
    reduceScatterStep<N / 8, 4>(v, lane, op);
}

template <int N, class Op>
__device__ __forceinline__ void reduceScatter4(float (&v)[N], int lane, Op op) {
    static_assert(N % 4 == 0, "four lanes");
    reduceScatterStep<N / 2, 2>(v, lane, op);
    reduceScatterStep<N / 4, 1>(v, lane, op);
}

// The symmetric schedule of X X^T over 128-row panels (nb of them) with tiles CP panels wide:
// tile (I, J) covers column panels CP J .. CP J + CP - 1 for I <= CP J + CP - 1, so every block
// (I, q) with I <= q is computed once (blocks with I > q in a tile are masked). Tiles are
// numbered row panel by row panel: consecutive CTAs share their row panel.
__host__ __device__ inline int symCols(int nb, int cp) {
    return (nb + cp - 1) / cp;
}
__host__ __device__ inline void symTile(int t, int nb, int cp, int& I, int& J) {
    const int nJ = symCols(nb, cp);
    I = 0;
    while (t >= nJ - I / cp) {
        t -= nJ - I / cp;
        ++I;
    }
    J = I / cp + t;
}
inline unsigned symTiles(int nb, int cp) {
    unsigned tiles = 0;
    for (int I = 0; I < nb; ++I)
        tiles += unsigned(symCols(nb, cp) - I / cp);
    return tiles;
}

// Whether rows of d elements at p suit 16-byte cp.async.
inline bool rowsAligned(const void* p, int d, std::size_t elemBytes) {
    return (std::size_t(d) * elemBytes) % 16 == 0 && reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// The current device's SM count.
inline int smCount() {
    return currentDeviceInfo().smCount;
}

// Whether 128 x 256 tiles finish sooner than 128 x 128 ones: fewer whole waves over the SMs at
// the measured cost of a wide tile (1.66 square tiles on the H100).
inline bool wideFewerWaves(long long squareTiles, long long wideTiles) {
    const long long sms = smCount();
    auto waves = [&](long long tiles) { return double((tiles + sms - 1) / sms); };
    return 1.66 * waves(wideTiles) < waves(squareTiles);
}

// Sets the dynamic shared memory limit of a tile kernel, once per kernel.
template <auto Kernel, int Bytes = PIPE_BYTES> void allowPipeSmem() {
    static const bool done = [] {
        QMPP_CUDA_CHECK(
            cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Bytes));
        return true;
    }();
    (void)done;
}

// Launches a tile kernel with Bytes of dynamic shared memory (its limit raised once).
template <auto Kernel, int Bytes, class... Args>
void launchTile(dim3 grid, cudaStream_t s, const Args&... args) {
    allowPipeSmem<Kernel, Bytes>();
    Kernel<<<grid, THREADS, Bytes, s>>>(args...);
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace tc
} // namespace qmpp::kernels
