// Cosine similarity of the rows of a [M, D] and b [N, D]: out [M, N], 0 where a norm is 0.
//
// | version | idea                                         | measured      |
// |---------|----------------------------------------------|---------------|
// | optimized | inverse norms once (warp per row); 128x128 tensor-core tiles (tc_tile.cuh),  | docs/perf |
// |           | scaled on the way out; a == b: upper-triangle tiles only, each stored twice    |           |
// | basic   | one thread per output; three sums over D     | see docs/perf |
#include "common.cuh"
#include "tc_tile.cuh"

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
    bool sym; // a == b: upper-triangle tiles, each stored twice
    const float* inva;
    const float* invb;
    float* out;
};

// Tensor-core tile of a b^T, scaled by the inverse norms on the way out.
template <class T, bool VEC> __global__ void __launch_bounds__(tc::THREADS, 1) cosine_tc_kernel(CosTc a) {
    extern __shared__ __align__(16) unsigned char smem[];
    int I = blockIdx.y, J = blockIdx.x;
    if (a.sym) tc::upperTile(blockIdx.x, a.nbA, I, J);
    float acc[4][4][4];
    tc::tileProduct<T, VEC>(smem, static_cast<const T*>(a.a), a.m, static_cast<const T*>(a.b), a.n, a.d,
                            I * tc::BM, J * tc::BM, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    const bool mirror = a.sym && I != J;
    const bool pairs = (a.n & 1) == 0; // (c, c + 1) pairs are 8-byte aligned
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int r = I * tc::BM + tc::fragRow(wm, mt, 2 * h, g), col = J * tc::BM + tc::fragCol(wn, nt, 0, t);
                if (r >= a.m || col >= a.n) continue;
                const float ir = a.inva[r];
                const float v0 = acc[mt][nt][2 * h] * ir * a.invb[col];
                const bool has1 = col + 1 < a.n;
                const float v1 = has1 ? acc[mt][nt][2 * h + 1] * ir * a.invb[col + 1] : 0.0f;
                float* o = a.out + (long long)r * a.n + col;
                if (pairs && has1) *reinterpret_cast<float2*>(o) = make_float2(v0, v1);
                else {
                    o[0] = v0;
                    if (has1) o[1] = v1;
                }
                if (mirror) {
                    a.out[(long long)col * a.n + r] = v0;
                    if (has1) a.out[(long long)(col + 1) * a.n + r] = v1;
                }
            }
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchCosineBasic(const CosineParams& p, cudaStream_t s) {
    cosine_basic_kernel<T><<<blocksFor((long long)p.m * p.n, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatcher ---------------------------------------------------------------------------

void cosine(const CosineParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic: withPrec(prec, [&](auto t) { launchCosineBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized:
        if (!p.scratch) throw CudaError("cosine (optimized): needs scratch for M + N inverse norms");
        withPrec(prec, [&](auto t) {
            using T = decltype(t);
            CosTc a{p.a, p.b, p.m, p.n, p.d, (p.m + tc::BM - 1) / tc::BM, (p.n + tc::BM - 1) / tc::BM,
                    p.a == p.b && p.m == p.n, p.scratch, p.scratch + p.m, p.out};
            if (p.m < 1 || p.n < 1) return;
            inv_norms_kernel<T><<<blocksFor(32LL * p.m, 256), 256, 0, s>>>(static_cast<const T*>(p.a), p.m, p.d, p.scratch);
            QMPP_CUDA_CHECK_LAUNCH();
            if (a.sym) a.invb = a.inva;
            else {
                inv_norms_kernel<T><<<blocksFor(32LL * p.n, 256), 256, 0, s>>>(static_cast<const T*>(p.b), p.n, p.d, p.scratch + p.m);
                QMPP_CUDA_CHECK_LAUNCH();
            }
            const bool vec = tc::rowsAligned(p.a, p.d, sizeof(T)) && tc::rowsAligned(p.b, p.d, sizeof(T));
            const dim3 grid = a.sym ? dim3(unsigned(a.nbA) * unsigned(a.nbA + 1) / 2, 1) : dim3(a.nbB, a.nbA);
            if (vec) {
                tc::allowPipeSmem<cosine_tc_kernel<T, true>>();
                cosine_tc_kernel<T, true><<<grid, tc::THREADS, tc::PIPE_BYTES, s>>>(a);
            } else {
                tc::allowPipeSmem<cosine_tc_kernel<T, false>>();
                cosine_tc_kernel<T, false><<<grid, tc::THREADS, tc::PIPE_BYTES, s>>>(a);
            }
            QMPP_CUDA_CHECK_LAUNCH();
        });
        return;
    }
}

} // namespace qmpp::kernels
