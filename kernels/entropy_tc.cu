// Optimized attention entropy from Q = K = x: a tensor-core GEMM with the entropy fused into its
// epilogue. The N x N score matrix exists only tile by tile in registers; memory is O(N D).
//
// | version   | idea                                                          | 12 x [4096, 768] FP16 | vs basic |
// |-----------|---------------------------------------------------------------|-----------------------|----------|
// | basic     | one thread per query row, scalar dot products (entropy.cu)    | 657 ms                | 1x       |
// | v1 tc-sym | 128x128 tiles, mma.sync (FP16; 3xTF32 for FP32), 3-stage      | 0.733 ms              | 896x     |
// |           | cp.async pipeline, 128-B stages; S = X X^T is symmetric, so   |                       |          |
// |           | only tiles I<=J, each updating its rows and its columns       |                       |          |
// | v2 (this) | 256-B stages: half the barriers per k (no measurable gain)    | 0.745 ms              | 882x     |
// cuBLAS's batched QK^T of the same products: 0.468 ms (1.59x faster; see the note).
// Measured times and the versions tried are in docs/perf/entropy-kernel.md.
//
// Per tile the epilogue takes each row's (and column's) maximum of the raw dot product s, then
// for every scale l, with k = beta_l log2(e) and a = (s - max) k <= 0:  S = sum 2^a,
// T = sum 2^a a. One max serves all scales (beta_l > 0). The tile's (max, S, T) go to a slot of
// a partial buffer: row i of panel R receives exactly one slot from every panel, so no atomics
// and the result does not depend on scheduling. A finalize pass merges a row's slots,
//   m = max_k m_k, d_k = (m_k - m) k, S = sum 2^d_k S_k, T = sum 2^d_k (T_k + d_k S_k),
// and H = ln 2 (log2 S - T / S). When the partial buffer (slots = N / 128) would outgrow the
// inputs, the row-panel schedule runs instead: one CTA per row panel sweeps all column tiles
// and merges into a single slot, O(N) scratch, twice the products.
#include "entropy_tc.cuh"
#include "tc_tile.cuh"

#include <algorithm>
#include <cmath>

namespace qmpp::kernels {

namespace {

using namespace tc;

constexpr int SCALE_CHUNK = 8; // scales reduced through smem at a time
constexpr int EPI_FLOATS = 4 * BM + 2 * BM + SCALE_CHUNK * (2 * 4 * BM + 2 * 2 * BM);
static_assert(EPI_FLOATS * 4 <= PIPE_BYTES, "epilogue scratch reuses the pipeline buffers");
constexpr float kMasked = -1e30f; // score of a padded row or column: 2^a == 0, finite a

struct TcArgs {
    const void* x;
    int n, d, sources, scales, nb, nslots;
    bool sym;
    float k2[kMaxLayers]; // beta_l * log2(e)
    float* pm;            // [sources, nslots, n]
    float* pS;            // [sources, scales, nslots, n]
    float* pT;
};

// One score's terms: a = s k - max k <= 0, S += 2^a, T += 2^a a.
__device__ __forceinline__ void expSums(float s, float k, float mk, float& S, float& T) {
    const float a = fmaf(s, k, -mk);
    const float e = ex2(a);
    S += e;
    T = fmaf(e, a, T);
}

// ---- epilogue -------------------------------------------------------------------------------

// Partial (max, S, T) of the tile's rows (slot J) and, off the diagonal, of its columns (slot I).
// merge: row-panel schedule, where the row's slot 0 already holds the earlier tiles' partials.
__device__ __forceinline__ void tileEntropy(float* epi, const TcArgs& a, int src, int I, int J,
                                            bool cols, bool merge, float (&acc)[4][4][4]) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    const int n = a.n;
    float* rmaxS = epi;           // [4 wn][128]
    float* cmaxS = rmaxS + 4 * BM; // [2 wm][128]
    float* rS = cmaxS + 2 * BM;   // [chunk][4 wn][128]
    float* rT = rS + SCALE_CHUNK * 4 * BM;
    float* cS = rT + SCALE_CHUNK * 4 * BM; // [chunk][2 wm][128]
    float* cT = cS + SCALE_CHUNK * 2 * BM;

    // Mask padding, then this thread's row and column maxima.
    float rmax[4][2], cmax[4][2];
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const bool rowOk = I * BM + wm * 64 + mt * 16 + h * 8 + g < n;
            rmax[mt][h] = kMasked;
#pragma unroll
            for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const bool colOk = J * BM + wn * 32 + nt * 8 + 2 * t + c < n;
                    float& v = acc[mt][nt][2 * h + c];
                    if (!rowOk || !colOk) v = kMasked;
                    rmax[mt][h] = fmaxf(rmax[mt][h], v);
                }
        }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            float m = kMasked;
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) m = fmaxf(m, fmaxf(acc[mt][nt][c], acc[mt][nt][2 + c]));
            cmax[nt][c] = m;
        }
    // rows: reduce over the quad (t); columns: over the eight g
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float& m = rmax[mt][h];
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
            if (t == 0) rmaxS[wn * BM + wm * 64 + mt * 16 + h * 8 + g] = m;
        }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            float& m = cmax[nt][c];
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 8));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 16));
            if (g == 0) cmaxS[wm * BM + wn * 32 + nt * 8 + 2 * t + c] = m;
        }
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int r = wm * 64 + mt * 16 + h * 8 + g;
            rmax[mt][h] = fmaxf(fmaxf(rmaxS[r], rmaxS[BM + r]), fmaxf(rmaxS[2 * BM + r], rmaxS[3 * BM + r]));
        }
#pragma unroll
    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            const int col = wn * 32 + nt * 8 + 2 * t + c;
            cmax[nt][c] = fmaxf(cmaxS[col], cmaxS[BM + col]);
        }

    // The emitting threads: 0..127 own a row of panel I, 128..255 a column (= row) of panel J.
    const bool rowEmitter = tid < BM;
    const int er = rowEmitter ? tid : tid - BM;
    const int grow = rowEmitter ? I * BM + er : J * BM + er;
    const bool emits = grow < n && (rowEmitter || cols);
    const int slot = merge ? 0 : rowEmitter ? J : I;
    float mTile = 0.0f, mOld = -INFINITY, mNew = 0.0f;
    if (emits) {
        mTile = rowEmitter ? fmaxf(fmaxf(rmaxS[er], rmaxS[BM + er]), fmaxf(rmaxS[2 * BM + er], rmaxS[3 * BM + er]))
                           : fmaxf(cmaxS[er], cmaxS[BM + er]);
        const long long mi = ((long long)src * a.nslots + slot) * n + grow;
        if (merge && J > 0) mOld = a.pm[mi];
        mNew = fmaxf(mOld, mTile);
    }

    for (int l0 = 0; l0 < a.scales; l0 += SCALE_CHUNK) {
        const int lc = min(SCALE_CHUNK, a.scales - l0);
        for (int li = 0; li < lc; ++li) {
            const float k = a.k2[l0 + li];
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const float mk = rmax[mt][h] * k;
                    float S = 0.0f, T = 0.0f;
#pragma unroll
                    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                        for (int c = 0; c < 2; ++c) expSums(acc[mt][nt][2 * h + c], k, mk, S, T);
                    S += __shfl_xor_sync(0xffffffffu, S, 1);
                    T += __shfl_xor_sync(0xffffffffu, T, 1);
                    S += __shfl_xor_sync(0xffffffffu, S, 2);
                    T += __shfl_xor_sync(0xffffffffu, T, 2);
                    if (t == 0) {
                        const int r = (li * 4 + wn) * BM + wm * 64 + mt * 16 + h * 8 + g;
                        rS[r] = S;
                        rT[r] = T;
                    }
                }
            if (cols) {
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int c = 0; c < 2; ++c) {
                        const float mk = cmax[nt][c] * k;
                        float S = 0.0f, T = 0.0f;
#pragma unroll
                        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                            for (int h = 0; h < 2; ++h) expSums(acc[mt][nt][2 * h + c], k, mk, S, T);
#pragma unroll
                        for (int o = 4; o < 32; o <<= 1) {
                            S += __shfl_xor_sync(0xffffffffu, S, o);
                            T += __shfl_xor_sync(0xffffffffu, T, o);
                        }
                        if (g == 0) {
                            const int r = (li * 2 + wm) * BM + wn * 32 + nt * 8 + 2 * t + c;
                            cS[r] = S;
                            cT[r] = T;
                        }
                    }
            }
        }
        __syncthreads();
        if (emits) {
            for (int li = 0; li < lc; ++li) {
                const int l = l0 + li;
                float S, T;
                if (rowEmitter) {
                    const float* s4 = rS + li * 4 * BM + er;
                    const float* t4 = rT + li * 4 * BM + er;
                    S = (s4[0] + s4[BM]) + (s4[2 * BM] + s4[3 * BM]);
                    T = (t4[0] + t4[BM]) + (t4[2 * BM] + t4[3 * BM]);
                } else {
                    S = cS[li * 2 * BM + er] + cS[(li * 2 + 1) * BM + er];
                    T = cT[li * 2 * BM + er] + cT[(li * 2 + 1) * BM + er];
                }
                const long long pi = (((long long)src * a.scales + l) * a.nslots + slot) * n + grow;
                if (mOld > -INFINITY) { // merge with the earlier tiles of this row panel
                    const float k = a.k2[l];
                    const float dOld = (mOld - mNew) * k, dNew = (mTile - mNew) * k;
                    const float rOld = ex2(dOld), rNew = ex2(dNew);
                    const float So = a.pS[pi], To = a.pT[pi];
                    T = rOld * fmaf(dOld, So, To) + rNew * fmaf(dNew, S, T);
                    S = rOld * So + rNew * S;
                }
                a.pS[pi] = S;
                a.pT[pi] = T;
            }
        }
        __syncthreads(); // the scratch is rewritten by the next chunk (or the next tile)
    }
    if (emits) a.pm[((long long)src * a.nslots + slot) * n + grow] = mNew;
}

template <class T, bool VEC>
__global__ void __launch_bounds__(THREADS, 1) entropy_gram_tc_kernel(TcArgs a) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int src = blockIdx.y;
    const T* xs = static_cast<const T*>(a.x) + (long long)src * a.n * a.d;
    float acc[4][4][4];
    if (a.sym) {
        int I, J;
        upperTile(blockIdx.x, a.nb, I, J);
        tileProduct<T, VEC>(smem, xs, a.n, xs, a.n, a.d, I * BM, J * BM, acc);
        tileEntropy(reinterpret_cast<float*>(smem), a, src, I, J, I != J, false, acc);
    } else {
        const int I = blockIdx.x;
        for (int J = 0; J < a.nb; ++J) {
            tileProduct<T, VEC>(smem, xs, a.n, xs, a.n, a.d, I * BM, J * BM, acc);
            tileEntropy(reinterpret_cast<float*>(smem), a, src, I, J, false, true, acc);
        }
    }
}

// H = ln 2 (log2 S - T / S) after merging a row's slots.
__global__ void entropy_finalize_kernel(TcArgs a, float* h) {
    const long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t >= (long long)a.sources * a.scales * a.n) return;
    const int i = static_cast<int>(t % a.n);
    const int l = static_cast<int>((t / a.n) % a.scales);
    const int src = static_cast<int>(t / ((long long)a.n * a.scales));
    const float* pm = a.pm + (long long)src * a.nslots * a.n + i;
    const long long base = ((long long)src * a.scales + l) * a.nslots * a.n + i;
    float m = -INFINITY;
    for (int k = 0; k < a.nslots; ++k) m = fmaxf(m, pm[(long long)k * a.n]);
    const float kl = a.k2[l];
    float S = 0.0f, T = 0.0f;
    for (int k = 0; k < a.nslots; ++k) {
        const float dk = (pm[(long long)k * a.n] - m) * kl, r = ex2(dk);
        const float Sk = a.pS[base + (long long)k * a.n];
        S = fmaf(r, Sk, S);
        T = fmaf(r, fmaf(dk, Sk, a.pT[base + (long long)k * a.n]), T);
    }
    h[t] = 0.69314718f * (__log2f(S) - T / S);
}

int panels(int n) { return (n + BM - 1) / BM; }

// The symmetric schedule unless its partials would outgrow max(32 MiB, twice the inputs).
bool useSym(const EntropyGramParams& p, Prec prec) {
    if (p.rowPanels) return false;
    const double nb = panels(p.n);
    const double symBytes = 4.0 * p.sources * nb * p.n * (1 + 2.0 * p.scales);
    const double inBytes = double(p.sources) * p.n * p.d * (prec == Prec::F16 ? 2 : 4);
    return symBytes <= std::max(32.0 * (1 << 20), 2 * inBytes);
}

template <class T, bool VEC> void launchTc(const TcArgs& a, cudaStream_t s) {
    allowPipeSmem<entropy_gram_tc_kernel<T, VEC>>();
    const unsigned tiles = a.sym ? unsigned(a.nb) * unsigned(a.nb + 1) / 2 : unsigned(a.nb);
    entropy_gram_tc_kernel<T, VEC><<<dim3(tiles, a.sources), THREADS, PIPE_BYTES, s>>>(a);
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace

std::size_t entropyGramTcWorkBytes(const EntropyGramParams& p, Prec prec) {
    const std::size_t slots = useSym(p, prec) ? std::size_t(panels(p.n)) : 1;
    return 4 * std::size_t(p.sources) * slots * std::size_t(p.n) * (1 + 2 * std::size_t(p.scales));
}

void entropyGramTc(const EntropyGramParams& p, Prec prec, cudaStream_t s) {
    if (p.n < 1 || p.d < 1 || p.sources < 1) throw CudaError("entropyGram: empty input");
    if (p.sources > 65535) throw CudaError("entropyGram: more than 65,535 sources");
    const std::size_t need = entropyGramTcWorkBytes(p, prec);
    if (!p.work || p.workBytes < need)
        throw CudaError("entropyGram (optimized): needs " + std::to_string(need) + " bytes of scratch, got " +
                        std::to_string(p.workBytes));
    TcArgs a{};
    a.x = p.x;
    a.n = p.n;
    a.d = p.d;
    a.sources = p.sources;
    a.scales = p.scales;
    a.nb = panels(p.n);
    a.sym = useSym(p, prec);
    a.nslots = a.sym ? a.nb : 1;
    for (int l = 0; l < p.scales; ++l) {
        if (!(p.beta[l] > 0)) throw CudaError("entropyGram: beta must be positive");
        a.k2[l] = p.beta[l] * 1.4426950408889634f;
    }
    a.pm = static_cast<float*>(p.work);
    a.pS = a.pm + std::size_t(p.sources) * a.nslots * p.n;
    a.pT = a.pS + std::size_t(p.sources) * p.scales * a.nslots * p.n;
    // 16-byte rows for cp.async: D a multiple of 8 halves / 4 floats and an aligned base
    const bool vec = rowsAligned(p.x, p.d, prec == Prec::F16 ? 2 : 4);
    withPrec(prec, [&](auto t) {
        using T = decltype(t);
        if (vec) launchTc<T, true>(a, s);
        else launchTc<T, false>(a, s);
    });
    const long long outs = (long long)p.sources * p.scales * p.n;
    entropy_finalize_kernel<<<blocksFor(outs, 256), 256, 0, s>>>(a, p.h);
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace qmpp::kernels
