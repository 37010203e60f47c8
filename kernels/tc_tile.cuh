// Internal to kernels/: the tensor-core tile of the optimized kernels (attention entropy, cosine,
// assignment). A CTA of 8 warps computes a 128 x 128 tile of A B^T into registers through a
// 3-stage cp.async pipeline: FP16 with ldmatrix + mma.m16n8k16 (FP32 accumulate), FP32 with
// 3xTF32 (big/small split, three mma.m16n8k8) for FP32-level accuracy. Rows are padded in shared
// memory so fragment loads are free of bank conflicts. Each operation adds its own epilogue.
#pragma once

#include "common.cuh"

#include <cstdint>

namespace qmpp::kernels {
namespace tc {

constexpr int BM = 128;                     // tile rows (= tile columns)
constexpr int THREADS = 256;                // 8 warps: 2 along rows x 4 along columns
constexpr int STAGES = 3;                   // cp.async pipeline depth
constexpr int ROWB = 256;                   // bytes of one row per stage (128 halves, 64 floats)
constexpr int LDB = ROWB + 16;              // padded smem row stride: conflict-free fragments
constexpr int STAGE_BYTES = 2 * BM * LDB;   // rows of panel I, then rows of panel J
constexpr int PIPE_BYTES = STAGES * STAGE_BYTES;

// ---- PTX wrappers -------------------------------------------------------------------------
__device__ __forceinline__ unsigned smemAddr(const void* p) {
    return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddr(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cpAsyncWait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrixX4(unsigned (&r)[4], unsigned addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void mmaF16(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
                 "{%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
__device__ __forceinline__ void mmaTf32(float (&c)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
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
template <> __device__ __forceinline__ float zeroOf<float>() { return 0.0f; }
template <> __device__ __forceinline__ __half zeroOf<__half>() { return __float2half(0.0f); }

// ---- main loop ------------------------------------------------------------------------------

// One pipeline stage: rows [rowA, rowA + 128) of A and [rowB, rowB + 128) of B, elements
// [k0, k0 + ROWB bytes); rows past the end and elements past D are zero.
template <class T, bool VEC>
__device__ __forceinline__ void loadStage(unsigned char* st, const T* xa, int na, const T* xb, int nb,
                                          int d, int rowA, int rowB, int k0, int tid) {
    constexpr int EPC = 16 / sizeof(T);  // elements per 16-byte chunk
    constexpr int KPS = ROWB / sizeof(T); // elements per row per stage
    if constexpr (VEC) {
        constexpr int CPR = ROWB / 16; // chunks per row
#pragma unroll
        for (int q = 0; q < 2 * BM * CPR / THREADS; ++q) {
            const int c = tid + q * THREADS, r = c / CPR, ch = c % CPR;
            const bool inA = r < BM;
            const int grow = inA ? rowA + r : rowB + (r - BM);
            const int k = k0 + ch * EPC;
            const bool ok = grow < (inA ? na : nb) && k < d;
            const T* src = inA ? xa : xb;
            cpAsync16(st + r * LDB + ch * 16, ok ? src + (long long)grow * d + k : src, ok);
        }
    } else { // rows not 16-byte aligned: plain loads (correct for any D, slower)
        for (int e = tid; e < 2 * BM * KPS; e += THREADS) {
            const int r = e / KPS, kk = e % KPS;
            const bool inA = r < BM;
            const int grow = inA ? rowA + r : rowB + (r - BM);
            const int k = k0 + kk;
            const T* src = inA ? xa : xb;
            reinterpret_cast<T*>(st + r * LDB)[kk] =
                grow < (inA ? na : nb) && k < d ? src[(long long)grow * d + k] : zeroOf<T>();
        }
    }
}

// acc += A_stage B_stage^T for this warp's 64 x 32 sub-tile.
__device__ __forceinline__ void computeStage(const unsigned char* st, float (&acc)[4][4][4], int wm,
                                             int wn, int lane, __half) {
    const unsigned base = smemAddr(st);
#pragma unroll
    for (int kk = 0; kk < ROWB / 32; ++kk) { // k16 steps
        unsigned a[4][4], b[4][2];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
            const int row = wm * 64 + mt * 16 + (lane & 15);
            ldmatrixX4(a[mt], base + row * LDB + (kk * 16 + (lane >> 4) * 8) * 2);
        }
#pragma unroll
        for (int np = 0; np < 2; ++np) {
            const int row = BM + wn * 32 + np * 16 + (lane & 7) + ((lane >> 4) << 3);
            unsigned r[4];
            ldmatrixX4(r, base + row * LDB + (kk * 16 + ((lane >> 3) & 1) * 8) * 2);
            b[2 * np][0] = r[0];
            b[2 * np][1] = r[1];
            b[2 * np + 1][0] = r[2];
            b[2 * np + 1][1] = r[3];
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) mmaF16(acc[mt][nt], a[mt], b[nt]);
    }
}

__device__ __forceinline__ void computeStage(const unsigned char* st, float (&acc)[4][4][4], int wm,
                                             int wn, int lane, float) {
    const float* s = reinterpret_cast<const float*>(st);
    constexpr int LD = LDB / 4;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int kk = 0; kk < ROWB / 32; ++kk) { // k8 steps
        unsigned ab[4][4], as[4][4], bb[4][2], bs[4][2];
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
            const float* r0 = s + (wm * 64 + mt * 16 + g) * LD + kk * 8 + t;
            splitTf32(r0[0], ab[mt][0], as[mt][0]);
            splitTf32(r0[8 * LD], ab[mt][1], as[mt][1]);
            splitTf32(r0[4], ab[mt][2], as[mt][2]);
            splitTf32(r0[8 * LD + 4], ab[mt][3], as[mt][3]);
        }
#pragma unroll
        for (int nt = 0; nt < 4; ++nt) {
            const float* r0 = s + (BM + wn * 32 + nt * 8 + g) * LD + kk * 8 + t;
            splitTf32(r0[0], bb[nt][0], bs[nt][0]);
            splitTf32(r0[4], bb[nt][1], bs[nt][1]);
        }
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int nt = 0; nt < 4; ++nt) {
                mmaTf32(acc[mt][nt], as[mt], bb[nt]);
                mmaTf32(acc[mt][nt], ab[mt], bs[nt]);
                mmaTf32(acc[mt][nt], ab[mt], bb[nt]);
            }
    }
}

// acc (+)= A[rowA:rowA+128] B[rowB:rowB+128]^T, both [rows, d] row-major.
template <class T, bool VEC>
__device__ __forceinline__ void tileProduct(unsigned char* smem, const T* xa, int na, const T* xb, int nb,
                                            int d, int rowA, int rowB, float (&acc)[4][4][4], bool zero = true) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    constexpr int KPS = ROWB / sizeof(T);
    const int nk = (d + KPS - 1) / KPS;
    if (zero) {
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                for (int c = 0; c < 4; ++c) acc[mt][nt][c] = 0.0f;
    }
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < nk) loadStage<T, VEC>(smem + s * STAGE_BYTES, xa, na, xb, nb, d, rowA, rowB, s * KPS, tid);
        cpAsyncCommit();
    }
    for (int kt = 0; kt < nk; ++kt) {
        cpAsyncWait<STAGES - 2>();
        __syncthreads(); // stage kt landed for everyone; stage kt-1 is free to refill
        const int next = kt + STAGES - 1;
        if (next < nk)
            loadStage<T, VEC>(smem + (next % STAGES) * STAGE_BYTES, xa, na, xb, nb, d, rowA, rowB, next * KPS, tid);
        cpAsyncCommit();
        computeStage(smem + (kt % STAGES) * STAGE_BYTES, acc, wm, wn, lane, T{});
    }
    cpAsyncWait<0>();
    __syncthreads(); // the pipeline buffers become the epilogue's scratch
}

// Where accumulator element acc[mt][nt][c] lies in the 128 x 128 tile.
__device__ __forceinline__ int fragRow(int wm, int mt, int c, int g) { return wm * 64 + mt * 16 + (c >> 1) * 8 + g; }
__device__ __forceinline__ int fragCol(int wn, int nt, int c, int t) { return wn * 32 + nt * 8 + 2 * t + (c & 1); }

// Tile t of the upper triangle (I <= J) of an nb x nb tile grid, row-major: consecutive CTAs
// share their row panel.
__device__ __forceinline__ void upperTile(int t, int nb, int& I, int& J) {
    I = 0;
    while (t >= nb - I) {
        t -= nb - I;
        ++I;
    }
    J = I + t;
}

// Whether rows of d elements at p suit 16-byte cp.async.
inline bool rowsAligned(const void* p, int d, std::size_t elemBytes) {
    return (std::size_t(d) * elemBytes) % 16 == 0 && reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// Sets the dynamic shared memory limit of a tile kernel, once per kernel.
template <auto Kernel> void allowPipeSmem() {
    static const bool done = [] {
        QMPP_CUDA_CHECK(cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, PIPE_BYTES));
        return true;
    }();
    (void)done;
}

} // namespace tc
} // namespace qmpp::kernels
