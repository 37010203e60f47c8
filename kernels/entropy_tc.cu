// Optimized attention entropy from Q = K = x: a tensor-core GEMM with the entropy fused into its
// epilogue. The N x N score matrix exists only tile by tile in registers; memory is O(N D).
//
// | version   | idea                                                          | 12 x [4096, 768]
// FP16 | vs basic |
// |-----------|---------------------------------------------------------------|-----------------------|----------|
// | basic     | one thread per query row, scalar dot products (entropy.cu)    | 657 ms | 1x       |
// | v1 tc-sym | 128x128 tiles, mma.sync (FP16; 3xTF32 for FP32), 3-stage      | 0.733 ms | 896x |
// |           | cp.async pipeline, 128-B stages; S = X X^T is symmetric, so   | |          | | |
// only tiles I<=J, each updating its rows and its columns       |                       | | | v2 |
// 256-B stages: half the barriers per k (no measurable gain)    | 0.742 ms              | 885x | |
// v3        | FP16, one scale: 128x256 tiles (warp 64x64), 4 x 128-B stages | 0.681 ms | 965x     |
// |           | (a quarter less L2 traffic per product); small, single and    | |          | | |
// multi-scale products keep 128x128 (fewer waves decides)       |                       | | | v3p
// | v3 on persistent CTAs: the next tile's first stages queued    | 0.667 ms              | 985x |
// |           | before the epilogue (which uses the last stage's buffer)      | |          | | v4
// (this) | Hopper: v3p on two warpgroups issuing wgmma from swizzled     | 0.419 ms              |
// 1568x    | |           | shared memory (wgmma.cuh); columns reduce-scattered; small    | | | | |
// and multi-scale products keep v3's 128x128 mma.sync tiles     |                       | |
// cuBLAS's batched QK^T of the same products in the same run: 0.433 ms (v4: 0.97x its time).
// Measured times and the versions tried are in docs/perf/entropy-kernel.md.
//
// Per tile the epilogue takes each row's (and column's) maximum of the raw dot product s, then
// for every scale l, with k = beta_l log2(e) and a = (s - max) k <= 0:  S = sum 2^a,
// T = sum 2^a a. One max serves all scales (beta_l > 0). The tile's (max, S, T) go to a slot of
// a partial buffer: row i of panel R receives exactly one slot from every panel at or below R
// and from every later tile (with 128 x 256 tiles the second panel's slot stays unwritten and is
// skipped), so no atomics and the result does not depend on scheduling. A finalize pass merges
// a row's slots,
//   m = max_k m_k, d_k = (m_k - m) k, S = sum 2^d_k S_k, T = sum 2^d_k (T_k + d_k S_k),
// and H = ln 2 (log2 S - T / S). When the partial buffer (slots = N / 128) would outgrow the
// inputs, the row-panel schedule runs instead: one CTA per row panel sweeps all column tiles
// and merges into a single slot, O(N) scratch, twice the products.
#include "entropy_tc.cuh"
#include "tc_tile.cuh"
#include "wgmma.cuh"

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace qmpp::kernels {

namespace {

using namespace tc;

constexpr int SCALE_CHUNK = 8; // scales reduced through smem at a time
template <class S, int CHUNK = SCALE_CHUNK> constexpr int epiFloats() {
    return 4 * BM + 2 * S::BN + CHUNK * (2 * 4 * BM + 2 * 2 * S::BN);
}
static_assert(epiFloats<Square>() * 4 <= Square::PIPE_BYTES,
              "epilogue scratch reuses the pipeline buffers");
static_assert(epiFloats<Wide>() * 4 <= Wide::PIPE_BYTES,
              "epilogue scratch reuses the pipeline buffers");
// the persistent kernel (one scale): its epilogue's scratch is the last stage's buffer, which
// the next tile's first loads leave free
constexpr int PERSIST_BYTES = WidePersistent::PIPE_BYTES;
static_assert(epiFloats<WidePersistent, 1>() * 4 <= WidePersistent::STAGE_BYTES,
              "epilogue scratch in one stage");
constexpr float kMasked = -1e30f; // score of a padded or mirrored entry: 2^a == 0, finite a

struct TcArgs {
    const void* x;
    int n, d, sources, scales, nb, nslots, cp; // cp: 128-column panels per tile
    int groupScales;                           // scales per CTA (blockIdx.z: the group)
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

// Partial (max, S, T) of tile (I, J): of its rows (slot max(CP J, I)) and, in the symmetric
// schedule, of its columns above the diagonal (slot I). Columns below lowCol are masked (the
// symmetric schedule's mirrored blocks). merge: row-panel schedule, where the row's slot 0
// already holds the earlier tiles' partials.
template <class Sh, int CHUNK = SCALE_CHUNK>
__device__ __forceinline__ void tileEntropy(float* epi, const TcArgs& a, int src, int I, int J,
                                            bool sym, bool merge, Acc<Sh>& acc) {
    constexpr int BN = Sh::BN, NT = Sh::NT, EMIT = (BM + BN + THREADS - 1) / THREADS;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    const int n = a.n, col0 = J * BN, lowCol = sym ? I * BM : 0;
    float* rmaxS = epi;            // [4 wn][BM]
    float* cmaxS = rmaxS + 4 * BM; // [2 wm][BN]
    float* rS = cmaxS + 2 * BN;    // [chunk][4 wn][BM]
    float* rT = rS + CHUNK * 4 * BM;
    float* cS = rT + CHUNK * 4 * BM; // [chunk][2 wm][BN]
    float* cT = cS + CHUNK * 2 * BN;
    // column partials: the tile has blocks strictly above the diagonal
    const bool cols = sym && J * Sh::CP + Sh::CP - 1 > I;

    // Mask padding and mirrored blocks, then this thread's row and column maxima.
    float rmax[4][2], cmax[NT][2];
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const bool rowOk = I * BM + fragRow(wm, mt, 2 * h, g) < n;
            rmax[mt][h] = kMasked;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int col = col0 + fragCol<Sh>(wn, nt, c, t);
                    float& v = acc[mt][nt][2 * h + c];
                    if (!rowOk || col >= n || col < lowCol) v = kMasked;
                    rmax[mt][h] = fmaxf(rmax[mt][h], v);
                }
        }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            float m = kMasked;
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
                m = fmaxf(m, fmaxf(acc[mt][nt][c], acc[mt][nt][2 + c]));
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
            if (t == 0) rmaxS[wn * BM + fragRow(wm, mt, 2 * h, g)] = m;
        }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            float& m = cmax[nt][c];
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 8));
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 16));
            if (g == 0) cmaxS[wm * BN + fragCol<Sh>(wn, nt, c, t)] = m;
        }
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int r = fragRow(wm, mt, 2 * h, g);
            rmax[mt][h] =
                fmaxf(fmaxf(rmaxS[r], rmaxS[BM + r]), fmaxf(rmaxS[2 * BM + r], rmaxS[3 * BM + r]));
        }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            const int col = fragCol<Sh>(wn, nt, c, t);
            cmax[nt][c] = fmaxf(cmaxS[col], cmaxS[BN + col]);
        }

    // Emitters e in [0, BM + BN): e < BM owns row e of panel I, else column e - BM of the tile
    // (a row of a later panel). Thread tid owns e = tid + q THREADS.
    bool emits[EMIT];
    int grow[EMIT], slot[EMIT];
    float mTile[EMIT], mOld[EMIT], mNew[EMIT];
#pragma unroll
    for (int q = 0; q < EMIT; ++q) {
        const int e = tid + q * THREADS;
        const bool rowEmitter = e < BM;
        grow[q] = rowEmitter ? I * BM + e : col0 + (e - BM);
        // a column emits above the diagonal only (its block was not computed as rows)
        emits[q] = e < BM + BN && grow[q] < n && (rowEmitter || (sym && grow[q] / BM > I));
        slot[q] = merge ? 0 : rowEmitter ? max(J * Sh::CP, I) : I;
        mTile[q] = 0.0f;
        mOld[q] = -INFINITY;
        mNew[q] = 0.0f;
        if (emits[q]) {
            const int c = e - BM;
            mTile[q] = rowEmitter ? fmaxf(fmaxf(rmaxS[e], rmaxS[BM + e]),
                                          fmaxf(rmaxS[2 * BM + e], rmaxS[3 * BM + e]))
                                  : fmaxf(cmaxS[c], cmaxS[BN + c]);
            const long long mi = ((long long)src * a.nslots + slot[q]) * n + grow[q];
            if (merge && J > 0) mOld[q] = a.pm[mi];
            mNew[q] = fmaxf(mOld[q], mTile[q]);
        }
    }

    // this CTA's scales (a group of them when few tiles would leave SMs idle)
    const int lBegin = blockIdx.z * a.groupScales, lEnd = min(a.scales, lBegin + a.groupScales);
    for (int l0 = lBegin; l0 < lEnd; l0 += CHUNK) {
        const int lc = min(CHUNK, lEnd - l0);
        for (int li = 0; li < lc; ++li) {
            const float k = a.k2[l0 + li];
            // rows (mt, h) reduce over the quad (t), columns (nt, c) over the eight g, each
            // scattered so that every lane stores a share of the sums
            float rs[8], rt[8];
#pragma unroll
            for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const float mk = rmax[mt][h] * k;
                    float S = 0.0f, T = 0.0f;
#pragma unroll
                    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                        for (int c = 0; c < 2; ++c)
                            expSums(acc[mt][nt][2 * h + c], k, mk, S, T);
                    rs[2 * mt + h] = S;
                    rt[2 * mt + h] = T;
                }
            reduceScatter4(rs, lane, Sum{});
            reduceScatter4(rt, lane, Sum{});
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int p = 2 * t + i; // (mt, h) = (p / 2, p % 2)
                const int r = (li * 4 + wn) * BM + fragRow(wm, p / 2, 2 * (p % 2), g);
                rS[r] = rs[i];
                rT[r] = rt[i];
            }
            if (cols) {
                float cs[2 * NT], ct[2 * NT];
#pragma unroll
                for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                    for (int c = 0; c < 2; ++c) {
                        const float mk = cmax[nt][c] * k;
                        float S = 0.0f, T = 0.0f;
#pragma unroll
                        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
                            for (int h = 0; h < 2; ++h)
                                expSums(acc[mt][nt][2 * h + c], k, mk, S, T);
                        cs[2 * nt + c] = S;
                        ct[2 * nt + c] = T;
                    }
                reduceScatter8(cs, lane, Sum{});
                reduceScatter8(ct, lane, Sum{});
#pragma unroll
                for (int i = 0; i < NT / 4; ++i) {
                    const int p = NT / 4 * g + i; // (nt, c) = (p / 2, p % 2)
                    const int r = (li * 2 + wm) * BN + fragCol<Sh>(wn, p / 2, p % 2, t);
                    cS[r] = cs[i];
                    cT[r] = ct[i];
                }
            }
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < EMIT; ++q) {
            if (!emits[q]) continue;
            const int e = tid + q * THREADS;
            for (int li = 0; li < lc; ++li) {
                const int l = l0 + li;
                float S, T;
                if (e < BM) {
                    const float* s4 = rS + li * 4 * BM + e;
                    const float* t4 = rT + li * 4 * BM + e;
                    S = (s4[0] + s4[BM]) + (s4[2 * BM] + s4[3 * BM]);
                    T = (t4[0] + t4[BM]) + (t4[2 * BM] + t4[3 * BM]);
                } else {
                    const int c = e - BM;
                    S = cS[li * 2 * BN + c] + cS[(li * 2 + 1) * BN + c];
                    T = cT[li * 2 * BN + c] + cT[(li * 2 + 1) * BN + c];
                }
                const long long pi =
                    (((long long)src * a.scales + l) * a.nslots + slot[q]) * n + grow[q];
                if (mOld[q] > -INFINITY) { // merge with the earlier tiles of this row panel
                    const float k = a.k2[l];
                    const float dOld = (mOld[q] - mNew[q]) * k, dNew = (mTile[q] - mNew[q]) * k;
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
    if (blockIdx.z != 0) return; // every group has the same maxima; the first stores them
#pragma unroll
    for (int q = 0; q < EMIT; ++q)
        if (emits[q]) a.pm[((long long)src * a.nslots + slot[q]) * n + grow[q]] = mNew[q];
}

template <class S, class T, bool VEC>
__global__ void __launch_bounds__(THREADS, S::MIN_BLOCKS) entropy_gram_tc_kernel(TcArgs a) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int src = blockIdx.y;
    const T* xs = static_cast<const T*>(a.x) + (long long)src * a.n * a.d;
    Acc<S> acc;
    if (a.sym) {
        int I, J;
        symTile(blockIdx.x, a.nb, S::CP, I, J);
        tileProduct<T, VEC, S>(smem, xs, a.n, xs, a.n, a.d, I * BM, J * S::BN, acc);
        tileEntropy<S>(reinterpret_cast<float*>(smem), a, src, I, J, true, false, acc);
    } else {
        const int I = blockIdx.x;
        for (int J = 0; J * S::BN < a.n; ++J) {
            tileProduct<T, VEC, S>(smem, xs, a.n, xs, a.n, a.d, I * BM, J * S::BN, acc);
            tileEntropy<S>(reinterpret_cast<float*>(smem), a, src, I, J, false, true, acc);
        }
    }
}

// The symmetric schedule with one scale, persistent: each CTA walks tiles gridDim.x apart (over
// all sources). queue(src, I, J) starts a tile's first loads, finish(...) completes its products
// and epilogue(...) its partials; the next tile's loads are queued before the current tile's
// epilogue (which works in the last stage's buffer), so the loads of one overlap the
// exponentials of the other.
template <int CP, class Queue, class Finish, class Epilogue>
__device__ __forceinline__ void persistentTiles(const TcArgs& a, int tiles, Queue&& queue,
                                                Finish&& finish, Epilogue&& epilogue) {
    const int total = tiles * a.sources;
    int idx = blockIdx.x;
    if (idx >= total) return;
    int src = idx / tiles, I, J;
    symTile(idx % tiles, a.nb, CP, I, J);
    queue(src, I, J);
    for (;;) {
        finish(src, I, J);
        const int next = idx + gridDim.x;
        int nsrc = 0, nI = 0, nJ = 0;
        if (next < total) {
            nsrc = next / tiles;
            symTile(next % tiles, a.nb, CP, nI, nJ);
            queue(nsrc, nI, nJ);
        }
        epilogue(src, I, J);
        if (next >= total) break;
        idx = next;
        src = nsrc;
        I = nI;
        J = nJ;
    }
}

template <class T, bool VEC>
__global__ void __launch_bounds__(THREADS, 1) entropy_gram_persistent_kernel(TcArgs a, int tiles) {
    using S = WidePersistent;
    extern __shared__ __align__(16) unsigned char smem[];
    float* epi = reinterpret_cast<float*>(smem + (S::STAGES - 1) * S::STAGE_BYTES);
    auto operand = [&](int src) { return static_cast<const T*>(a.x) + (long long)src * a.n * a.d; };
    Acc<S> acc;
    persistentTiles<S::CP>(
        a, tiles,
        [&](int src, int I, int J) {
            tilePrologue<T, VEC, S>(smem, operand(src), a.n, operand(src), a.n, a.d, I * BM,
                                    J * S::BN);
        },
        [&](int src, int I, int J) {
            tileMainloop<T, VEC, S>(smem, operand(src), a.n, operand(src), a.n, a.d, I * BM,
                                    J * S::BN, acc);
        },
        [&](int src, int I, int J) { tileEntropy<S, 1>(epi, a, src, I, J, true, false, acc); });
}

// ---- Hopper: warpgroup tiles ----------------------------------------------------------------

using WgWide = wg::Shape<256, 4, 1, 1>; // 128 x 256, four 48 KB stages, one product group in flight
constexpr int WG_GJ = 8;                // 8-column chunks whose column sums reduce at a time
template <class S> constexpr int wgEpiFloats() {
    return 3 * 8 * S::BN + S::BN + 3 * BM;
}
static_assert(wgEpiFloats<WgWide>() * 4 <= WgWide::STAGE_BYTES, "epilogue scratch in one stage");

// The columns of chunks [j0, j0 + WG_GJ) after reduceScatter8: this lane's v[i] is column
// 8 (j0 + p / 2) + 2 t + p % 2 with p = WG_GJ / 4 g + i, reduced over the warp's 16 rows.
template <int GJ = WG_GJ>
__device__ __forceinline__ void putWarpCols(const float (&v)[2 * GJ], int j0, int g, int t,
                                            float* dst) {
#pragma unroll
    for (int i = 0; i < GJ / 4; ++i) {
        const int p = GJ / 4 * g + i;
        dst[8 * (j0 + p / 2) + 2 * t + p % 2] = v[i];
    }
}

// tileEntropy (one scale, symmetric schedule) on the warpgroup layout, where each warp holds 16
// whole rows of the tile: a row reduces within its quad; a column over the warp's eight g
// (reduce-scatter) and then over the eight warps through shared memory.
template <class S>
__device__ __forceinline__ void tileEntropyWg(float* epi, const TcArgs& a, int src, int I, int J,
                                              wg::Acc<S>& acc) {
    constexpr int BN = S::BN, EMIT = (BM + BN + THREADS - 1) / THREADS;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int n = a.n, col0 = J * BN, lowCol = I * BM;
    const float k = a.k2[0];
    float* wPart = epi;                // [max, S, T][8 warps][BN]: per column, of each warp's rows
    float* cmaxS = wPart + 3 * 8 * BN; // [BN]
    float* rowS = cmaxS + BN;          // [max, S, T][BM]
    const bool cols = J * S::CP + S::CP - 1 > I; // blocks strictly above the diagonal

    // mask padding and mirrored blocks; row maxima (whole rows: over the quad)
    float rmax[2] = {kMasked, kMasked};
    bool rowOk[2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
        rowOk[h] = I * BM + warp * 16 + 8 * h + g < n;
#pragma unroll
    for (int i = 0; i < S::ACC; ++i) {
        const int h = (i >> 1) & 1, col = col0 + wg::fragCol(i, t);
        if (!rowOk[h] || col >= n || col < lowCol) acc[i] = kMasked;
        rmax[h] = fmaxf(rmax[h], acc[i]);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        rmax[h] = fmaxf(rmax[h], __shfl_xor_sync(0xffffffffu, rmax[h], 1));
        rmax[h] = fmaxf(rmax[h], __shfl_xor_sync(0xffffffffu, rmax[h], 2));
        if (t == 0) rowS[wg::fragRow(warp, 2 * h, g)] = rmax[h];
    }
    // column maxima of this warp's rows, then of the tile's
    if (cols) {
#pragma unroll
        for (int j0 = 0; j0 < BN / 8; j0 += WG_GJ) {
            float v[2 * WG_GJ];
#pragma unroll
            for (int p = 0; p < 2 * WG_GJ; ++p) {
                const int i = 4 * (j0 + p / 2) + p % 2;
                v[p] = fmaxf(acc[i], acc[i + 2]);
            }
            reduceScatter8(v, lane, Max{});
            putWarpCols(v, j0, g, t, wPart + warp * BN);
        }
    }
    __syncthreads();
    if (cols)
        for (int c = tid; c < BN; c += THREADS) {
            float m = wPart[c];
#pragma unroll
            for (int w = 1; w < 8; ++w)
                m = fmaxf(m, wPart[w * BN + c]);
            cmaxS[c] = m;
        }
    __syncthreads();

    // S = sum 2^a, T = sum 2^a a of rows (over the quad) and of columns (as the maxima)
    float rs[2] = {0.0f, 0.0f}, rt[2] = {0.0f, 0.0f}, mk[2];
#pragma unroll
    for (int h = 0; h < 2; ++h)
        mk[h] = rmax[h] * k;
#pragma unroll
    for (int i = 0; i < S::ACC; ++i) {
        const int h = (i >> 1) & 1;
        expSums(acc[i], k, mk[h], rs[h], rt[h]);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int o = 1; o < 4; o <<= 1) {
            rs[h] += __shfl_xor_sync(0xffffffffu, rs[h], o);
            rt[h] += __shfl_xor_sync(0xffffffffu, rt[h], o);
        }
        if (t == 0) {
            const int r = wg::fragRow(warp, 2 * h, g);
            rowS[BM + r] = rs[h];
            rowS[2 * BM + r] = rt[h];
        }
    }
    if (cols) {
#pragma unroll
        for (int j0 = 0; j0 < BN / 8; j0 += WG_GJ) {
            float vs[2 * WG_GJ], vt[2 * WG_GJ];
#pragma unroll
            for (int p = 0; p < 2 * WG_GJ; ++p) {
                const int i = 4 * (j0 + p / 2) + p % 2;
                const float mc = cmaxS[wg::fragCol(i, t)] * k;
                vs[p] = 0.0f;
                vt[p] = 0.0f;
                expSums(acc[i], k, mc, vs[p], vt[p]);
                expSums(acc[i + 2], k, mc, vs[p], vt[p]);
            }
            reduceScatter8(vs, lane, Sum{});
            reduceScatter8(vt, lane, Sum{});
            putWarpCols(vs, j0, g, t, wPart + (8 + warp) * BN);
            putWarpCols(vt, j0, g, t, wPart + (16 + warp) * BN);
        }
    }
    __syncthreads();

    // Emitters as in tileEntropy: e < BM row e of panel I (slot max(CP J, I)), else column
    // e - BM of the tile above the diagonal (slot I).
#pragma unroll
    for (int q = 0; q < EMIT; ++q) {
        const int e = tid + q * THREADS;
        if (e >= BM + BN) continue;
        const bool rowEmitter = e < BM;
        const int grow = rowEmitter ? I * BM + e : col0 + (e - BM);
        if (grow >= n || (!rowEmitter && grow / BM <= I)) continue;
        const int slot = rowEmitter ? max(J * S::CP, I) : I;
        float m, Se, Te;
        if (rowEmitter) {
            m = rowS[e];
            Se = rowS[BM + e];
            Te = rowS[2 * BM + e];
        } else {
            const int c = e - BM;
            m = cmaxS[c];
            Se = 0.0f;
            Te = 0.0f;
#pragma unroll
            for (int w = 0; w < 8; ++w) {
                Se += wPart[(8 + w) * BN + c];
                Te += wPart[(16 + w) * BN + c];
            }
        }
        const long long mi = ((long long)src * a.nslots + slot) * n + grow; // one scale: S, T alike
        a.pm[mi] = m;
        a.pS[mi] = Se;
        a.pT[mi] = Te;
    }
}

// entropy_gram_persistent_kernel on warpgroup tiles.
__global__ void __launch_bounds__(THREADS, 1) entropy_gram_wg_kernel(TcArgs a, int tiles) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using S = WgWide;
    extern __shared__ __align__(16) unsigned char smemRaw[];
    unsigned char* pipe = wg::alignedSmem(smemRaw);
    float* epi = reinterpret_cast<float*>(pipe + (S::STAGES - 1) * S::STAGE_BYTES);
    static_assert(S::PREFETCH <= S::STAGES - 1, "the next tile's loads leave the last buffer free");
    auto operand = [&](int src) {
        return static_cast<const __half*>(a.x) + (long long)src * a.n * a.d;
    };
    wg::Acc<S> acc;
    persistentTiles<S::CP>(
        a, tiles,
        [&](int src, int I, int J) {
            wg::prologue<S>(pipe, operand(src), a.n, operand(src), a.n, a.d, I * BM, J * S::BN);
        },
        [&](int src, int I, int J) {
            wg::mainloop<S>(pipe, operand(src), a.n, operand(src), a.n, a.d, I * BM, J * S::BN,
                            acc);
        },
        [&](int src, int I, int J) { tileEntropyWg<S>(epi, a, src, I, J, acc); });
#endif
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
    // row i's slots: one per panel up to its own, then the first panel of each later tile (the
    // loads are unconditional so that they overlap; a slot not written is discarded)
    const int p = i / BM, odd = a.cp - 1;
    float m = -INFINITY;
#pragma unroll 8
    for (int k = 0; k < a.nslots; ++k) {
        const float v = pm[(long long)k * a.n];
        if (k <= p || (k & odd) == 0) m = fmaxf(m, v);
    }
    const float kl = a.k2[l];
    float S = 0.0f, T = 0.0f;
#pragma unroll 8
    for (int k = 0; k < a.nslots; ++k) {
        const float mk = pm[(long long)k * a.n], Sk = a.pS[base + (long long)k * a.n],
                    Tk = a.pT[base + (long long)k * a.n];
        if (k > p && (k & odd) != 0) continue;
        const float dk = (mk - m) * kl, r = ex2(dk);
        S = fmaf(r, Sk, S);
        T = fmaf(r, fmaf(dk, Sk, Tk), T);
    }
    h[t] = 0.69314718f * (__log2f(S) - T / S);
}

int panels(int n) {
    return (n + BM - 1) / BM;
}

// The symmetric schedule unless its partials would outgrow max(32 MiB, twice the inputs).
bool useSym(const EntropyGramParams& p, Prec prec) {
    if (p.rowPanels) return false;
    const double nb = panels(p.n);
    const double symBytes = 4.0 * p.sources * nb * p.n * (1 + 2.0 * p.scales);
    const double inBytes = double(p.sources) * p.n * p.d * (prec == Prec::F16 ? 2 : 4);
    return symBytes <= std::max(32.0 * (1 << 20), 2 * inBytes);
}

// Whether 128 x 256 tiles finish sooner: one scale (the epilogue of many scales gains nothing
// from them) and fewer waves (tc::wideFewerWaves), so small or single products keep square tiles.
bool wideWins(const TcArgs& a) {
    if (a.scales != 1) return false;
    if (!a.sym) return true; // row panels: each CTA sweeps all columns, half the tiles
    return wideFewerWaves((long long)a.sources * symTiles(a.nb, Square::CP),
                          (long long)a.sources * symTiles(a.nb, Wide::CP));
}

// Whether Hopper's warpgroup tiles (128 x 256, persistent) win: when they keep at least a
// quarter of the SMs busy. Smaller products are launch-bound and finish sooner on 128 x 128
// mma.sync tiles, three times the CTAs (H100: N = 196 0.021 vs 0.022 ms; N = 1024 equal;
// N = 4096, one product 0.063 vs 0.084 ms).
bool wgWins(const TcArgs& a) {
    return 4LL * a.sources * symTiles(a.nb, WgWide::CP) >= smCount();
}

// A persistent kernel (mma.sync or warpgroup tiles, CP column panels wide): a CTA per SM, or per
// tile when there are fewer.
template <auto Kernel, int CP, int Bytes> void launchPersistent(const TcArgs& a, cudaStream_t s) {
    const int tiles = int(symTiles(a.nb, CP));
    const long long total = (long long)tiles * a.sources;
    TcArgs g = a;
    g.groupScales = 1;
    launchTile<Kernel, Bytes>(dim3(unsigned(std::min<long long>(total, smCount()))), s, g, tiles);
}

template <class S, class T, bool VEC> void launchTc(const TcArgs& a, cudaStream_t s) {
    const unsigned tiles = a.sym ? symTiles(a.nb, S::CP) : unsigned(a.nb);
    // Few tiles and many scales (small N, multi-scale): the scales split over CTAs that each
    // compute the tile (symmetric schedule only: the row-panel one merges its maxima in place).
    TcArgs g = a;
    const long long busy = (long long)tiles * a.sources, sms = smCount();
    const int groups = a.sym && a.scales > 1 && 2 * busy <= sms
                           ? int(std::min<long long>(a.scales, sms / busy))
                           : 1;
    g.groupScales = (a.scales + groups - 1) / groups;
    const unsigned z = unsigned((a.scales + g.groupScales - 1) / g.groupScales);
    launchTile<entropy_gram_tc_kernel<S, T, VEC>, S::PIPE_BYTES>(dim3(tiles, a.sources, z), s, g);
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
        throw CudaError("entropyGram (optimized): needs " + std::to_string(need) +
                        " bytes of scratch, got " + std::to_string(p.workBytes));
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
    using Tiles = EntropyGramParams::Tiles;
    const bool wide = p.tiles == Tiles::Auto ? wideWins(a) : p.tiles != Tiles::Square;
    // one scale in the symmetric schedule: Hopper's warpgroup tiles (16-byte rows) unless the
    // product is small (wgWins); wide mma.sync tiles run on persistent CTAs
    const bool oneScaleSym = a.sym && a.scales == 1;
    const bool persistent =
        oneScaleSym && (p.tiles == Tiles::Auto || p.tiles == Tiles::WidePersistent);
    const bool warpgroups = prec == Prec::F16 && oneScaleSym && vec && wg::available() &&
                            (p.tiles == Tiles::Auto ? wgWins(a) : p.tiles == Tiles::WarpGroup);
    if (p.tiles == Tiles::WarpGroup && !warpgroups)
        throw CudaError("entropyGram: warpgroup tiles need FP16, one scale, the symmetric "
                        "schedule, 16-byte rows "
                        "and an sm_90 device with a build for sm_90a");
    a.cp = prec == Prec::F16 && (wide || warpgroups) ? Wide::CP : Square::CP;
    withPrec(prec, [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_same_v<T, __half>) {
            if (warpgroups) {
                launchPersistent<entropy_gram_wg_kernel, WgWide::CP, WgWide::SMEM_BYTES>(a, s);
                return;
            }
            if (a.cp == Wide::CP) {
                if (persistent) {
                    if (vec)
                        launchPersistent<entropy_gram_persistent_kernel<T, true>,
                                         WidePersistent::CP, PERSIST_BYTES>(a, s);
                    else
                        launchPersistent<entropy_gram_persistent_kernel<T, false>,
                                         WidePersistent::CP, PERSIST_BYTES>(a, s);
                } else if (vec) {
                    launchTc<Wide, T, true>(a, s);
                } else {
                    launchTc<Wide, T, false>(a, s);
                }
                return;
            }
        }
        if (vec)
            launchTc<Square, T, true>(a, s);
        else
            launchTc<Square, T, false>(a, s);
    });
    const long long outs = (long long)p.sources * p.scales * p.n;
    entropy_finalize_kernel<<<blocksFor(outs, 256), 256, 0, s>>>(a, p.h);
    QMPP_CUDA_CHECK_LAUNCH();
}

} // namespace qmpp::kernels
