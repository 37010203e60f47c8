// Internal to kernels/: the Hopper (sm_90a) tensor-core tile of FP16 A B^T. A CTA of two
// warpgroups computes a 128 x BN tile: warpgroup w multiplies rows [64 w, 64 w + 64) by all BN
// columns with asynchronous wgmma instructions that read both operands from shared memory, so
// no fragment passes through registers and the products of one stage overlap the issue of the
// next. Stages hold 64 elements (128 bytes) of every row in the 128-byte swizzle the descriptors
// name: the 16-byte chunk c of row r sits at chunk c ^ (r mod 8), so rows and fragments are free
// of bank conflicts without padding. cp.async fills them (rows of D elements, D a multiple of 8,
// 16-byte aligned), STAGES deep; WAIT product groups stay in flight across a stage boundary.
//
// Accumulator element i of a thread (lane = 4 g + t of warp w) lies at row 16 w + 8 ((i >> 1) & 1)
// + g and column 8 (i >> 2) + 2 t + (i & 1): each warp holds 16 whole rows of the tile.
//
// The kernels using this compile to a trap on other architectures; available() says at run time
// whether the device and this build have them.
#pragma once

#include "tc_tile.cuh"
#include "wgmma_ops.cuh"

namespace qmpp::kernels::wg {

using tc::BM;
using tc::THREADS;
constexpr int ROWB = 128; // bytes of each row per stage: one 128-byte swizzle atom

template <int BN_, int STAGES_, int MIN_BLOCKS_, int WAIT_> struct Shape {
    static constexpr int BN = BN_, STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_, WAIT = WAIT_;
    static constexpr int STAGE_BYTES = (BM + BN) * ROWB;
    static constexpr int PIPE_BYTES = STAGES * STAGE_BYTES;
    static constexpr int SMEM_BYTES =
        PIPE_BYTES + 1024;                             // the swizzle wants 1024-byte aligned stages
    static constexpr int PREFETCH = STAGES - 1 - WAIT; // stages loaded ahead of the one in use
    static constexpr int CP = BN / BM;
    static constexpr int ACC = BN / 2; // accumulators per thread
    static_assert(PREFETCH >= 1 && (BN == 128 || BN == 256), "shape");
    // per CTA at most 227 KB; per SM 228 KB, of which the system keeps 1 KB for each CTA
    static_assert(SMEM_BYTES <= 227 * 1024 && MIN_BLOCKS * (SMEM_BYTES + 1024) <= 228 * 1024,
                  "shared memory per SM");
};
template <class S> using Acc = float[S::ACC];

// Whether this build carries the sm_90a kernels and the current device runs them.
inline bool available() {
#if defined(QMPP_SM90A)
    const DeviceInfo& info = currentDeviceInfo();
    return info.major == 9 && info.minor == 0;
#else
    return false;
#endif
}

// ---- PTX wrappers -------------------------------------------------------------------------
__device__ __forceinline__ void fence() {
    asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// shared memory written through cp.async, read next by the tensor cores (the async proxy)
__device__ __forceinline__ void fenceProxyAsync() {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving accumulator reads or writes across a wgmma boundary.
template <int N> __device__ __forceinline__ void pin(float (&d)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i)
        asm volatile("" : "+f"(d[i])::"memory");
}

// Descriptor of a K-major operand at p (1024-byte aligned swizzle atoms of 8 rows x 128 bytes):
// start address, leading offset 16 (unused with the swizzle), stride 1024 between 8-row groups,
// 128-byte swizzle.
__device__ __forceinline__ std::uint64_t desc(const void* p) {
    const std::uint64_t a = tc::smemAddr(p);
    return ((a & 0x3FFFF) >> 4) | (std::uint64_t(16 >> 4) << 16) |
           (std::uint64_t(1024 >> 4) << 32) | (std::uint64_t(1) << 62);
}

// The pipeline's base: the dynamic shared memory rounded up to 1024 bytes.
__device__ __forceinline__ unsigned char* alignedSmem(unsigned char* smem) {
    const unsigned off = tc::smemAddr(smem) & 1023u;
    return smem + (off ? 1024 - off : 0);
}

// ---- main loop ------------------------------------------------------------------------------

// One stage: rows [rowA, rowA + BM) of A, then [rowB, rowB + BN) of B (row stride ld), elements
// [k0, k0 + 64), swizzled; rows past the end and elements past d are zero.
template <class S>
__device__ __forceinline__ void loadStage(unsigned char* st, const __half* xa, int na,
                                          const __half* xb, int nb, int d, long long ld, int rowA,
                                          int rowB, int k0, int tid) {
    constexpr int CPR = ROWB / 16, RPP = THREADS / CPR; // chunks per row, rows per pass
    static_assert(BM % RPP == 0 && S::BN % RPP == 0, "whole passes per operand");
    // a thread loads chunk ch of rows r0 + RPP q: the same swizzled chunk in each
    const int ch = tid % CPR, r0 = tid / CPR, k = k0 + ch * 8;
    unsigned char* dst = st + r0 * ROWB + ((ch ^ (r0 & 7)) << 4);
    const bool kOk = k < d;
#pragma unroll
    for (int q = 0; q < BM / RPP; ++q) {
        const int grow = rowA + r0 + q * RPP;
        const bool ok = kOk && grow < na;
        tc::cpAsync16(dst + q * RPP * ROWB, ok ? xa + grow * ld + k : xa, ok);
    }
#pragma unroll
    for (int q = 0; q < S::BN / RPP; ++q) {
        const int grow = rowB + r0 + q * RPP;
        const bool ok = kOk && grow < nb;
        tc::cpAsync16(dst + (BM + q * RPP) * ROWB, ok ? xb + grow * ld + k : xb, ok);
    }
}

// Queues the tile's first PREFETCH stages (a persistent kernel queues its next tile's while it
// finishes the current one: they go to the first PREFETCH buffers).
template <class S>
__device__ __forceinline__ void prologue(unsigned char* pipe, const __half* xa, int na,
                                         const __half* xb, int nb, int d, int rowA, int rowB) {
    const int nk = (d + 63) / 64;
#pragma unroll
    for (int s = 0; s < S::PREFETCH; ++s) {
        if (s < nk)
            loadStage<S>(pipe + s * S::STAGE_BYTES, xa, na, xb, nb, d, d, rowA, rowB, s * 64,
                         threadIdx.x);
        tc::cpAsyncCommit();
    }
}

// acc (+)= A[rowA:rowA+BM] B[rowB:rowB+BN]^T over elements [0, d), after prologue(). On return
// no load or product is in flight and every buffer is free.
template <class S>
__device__ __forceinline__ void mainloop(unsigned char* pipe, const __half* xa, int na,
                                         const __half* xb, int nb, int d, int rowA, int rowB,
                                         Acc<S>& acc, bool accumulate = false) {
    const int tid = threadIdx.x, wgi = tid >> 7;
    const int nk = (d + 63) / 64;
    for (int kt = 0; kt < nk; ++kt) {
        tc::cpAsyncWait<S::PREFETCH - 1>();
        fenceProxyAsync();
        __syncthreads(); // stage kt landed for everyone; the products of stage kt - 1 - WAIT are
                         // done
        const int next = kt + S::PREFETCH;
        if (next < nk)
            loadStage<S>(pipe + (next % S::STAGES) * S::STAGE_BYTES, xa, na, xb, nb, d, d, rowA,
                         rowB, next * 64, tid);
        tc::cpAsyncCommit();
        const unsigned char* st = pipe + (kt % S::STAGES) * S::STAGE_BYTES;
        const std::uint64_t da = desc(st + wgi * 64 * ROWB), db = desc(st + BM * ROWB);
        pin(acc);
        fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) // +32 bytes a k16 step
            mmaAsync<S::BN>(acc, da + 2 * kk, db + 2 * kk, accumulate || kt > 0 || kk > 0);
        commit();
        wait<S::WAIT>();
        pin(acc);
    }
    wait<0>();
    pin(acc);
    tc::cpAsyncWait<0>();
    __syncthreads();
}

// Where accumulator element i lies in the tile.
__device__ __forceinline__ int fragRow(int warp, int i, int g) {
    return warp * 16 + ((i >> 1) & 1) * 8 + g;
}
__device__ __forceinline__ int fragCol(int i, int t) {
    return (i >> 2) * 8 + 2 * t + (i & 1);
}

// f(row, col, value) for each of this thread's accumulator elements.
template <class S, class F> __device__ __forceinline__ void forEachFrag(Acc<S>& acc, F&& f) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < S::ACC; ++i)
        f(fragRow(warp, i, g), fragCol(i, t), acc[i]);
}

} // namespace qmpp::kernels::wg
