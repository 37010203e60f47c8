// AR-alignment heads f(v) = W2 relu(W1 v + b1) + b2 on prefix means (forward head, predicting
// the next merged token) and suffix means (backward head, predicting the previous one).
//
// | version | idea                                                               | measured      |
// |---------|--------------------------------------------------------------------|---------------|
// | optimized v1 | prefix and suffix means by one sequential scan per feature; both heads as  |
// 0.29 ms   | |              | FFMA GEMMs (64x64 tiles, 4x4 per thread), bias+ReLU / squared-error
// | (N 4096,  | |              | epilogues; per-tile error partials summed in a fixed order | K 819
// FP16)| | optimized v2 | chunked parallel scan (32 chunks per feature); both layers on the tensor
// | 0.051 ms  | | (this)       | cores (tc_tile.cuh, 3xTF32 for FP32) with the same epilogues;
// means and    |           | |              | hidden units kept in T |           | | basic   | one
// thread per (head, position, feature) mean; per (head, position, | see docs/perf | |         |
// hidden unit); per (head, position) for the output and its error    |               |
#include "common.cuh"
#include "tc_tile.cuh"

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

// means[0][t] = mean(x_0..x_t), means[1][t] = mean(x_{t+1}..x_{K-1}) for t < K-1.
__global__ void ar_means_basic_kernel(ArParams p) {
    const long long m = p.k - 1;
    const long long t3 = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t3 >= 2 * m * p.d) return;
    const int dir = static_cast<int>(t3 / (m * p.d));
    const int t = static_cast<int>((t3 / p.d) % m), f = static_cast<int>(t3 % p.d);
    const int lo = dir == 0 ? 0 : t + 1, hi = dir == 0 ? t : p.k - 1;
    float acc = 0.0f;
    for (int s = lo; s <= hi; ++s)
        acc += p.merged[(long long)s * p.d + f];
    p.means[t3] = acc / float(hi - lo + 1);
}

template <class T> __global__ void ar_hidden_basic_kernel(ArParams p) {
    const long long m = p.k - 1;
    const long long t3 = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t3 >= 2 * m * kArHidden) return;
    const int dir = static_cast<int>(t3 / (m * kArHidden));
    const long long t = (t3 / kArHidden) % m;
    const int h = static_cast<int>(t3 % kArHidden);
    const T* w1 = static_cast<const T*>(p.w1[dir]);
    const float* v = p.means + (dir * m + t) * p.d;
    float acc = ld(static_cast<const T*>(p.b1[dir]), h);
    for (int f = 0; f < p.d; ++f)
        acc += ld(w1, (long long)h * p.d + f) * v[f];
    p.hidden[t3] = fmaxf(acc, 0.0f);
}

template <class T> __global__ void ar_error_basic_kernel(ArParams p) {
    const long long m = p.k - 1;
    const long long t2 = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (t2 >= 2 * m) return;
    const int dir = static_cast<int>(t2 / m);
    const long long t = t2 % m;
    const T* w2 = static_cast<const T*>(p.w2[dir]);
    const T* b2 = static_cast<const T*>(p.b2[dir]);
    const float* hid = p.hidden + t2 * kArHidden;
    const float* target = p.merged + (dir == 0 ? t + 1 : t) * p.d;
    float err = 0.0f;
    for (int f = 0; f < p.d; ++f) {
        float out = ld(b2, f);
        for (int h = 0; h < kArHidden; ++h)
            out += ld(w2, (long long)f * kArHidden + h) * hid[h];
        err += (out - target[f]) * (out - target[f]);
    }
    p.err[t2] = err / p.d;
}

// ---- launchers ----------------------------------------------------------------------------

template <class T> void launchArBasic(const ArParams& p, cudaStream_t s) {
    const long long m = p.k - 1;
    if (m <= 0) return;
    ar_means_basic_kernel<<<blocksFor(2 * m * p.d, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    ar_hidden_basic_kernel<T><<<blocksFor(2 * m * kArHidden, 256), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    ar_error_basic_kernel<T><<<blocksFor(2 * m, 64), 64, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- optimized ----------------------------------------------------------------------------

// Prefix (forward) and suffix (backward) means of the merged rows, stored in T for the tensor
// cores. Block (32 features, 32 row chunks) per (feature panel, direction): each chunk's sum,
// an exclusive scan over the chunks in shared memory, then the chunk's running means. Along a
// direction, q is the position in summation order: forward reads row q, backward row m - q.
template <class T> __global__ void __launch_bounds__(1024) ar_means_scan_kernel(ArParams p) {
    __shared__ float tot[32][33];
    const int m = p.k - 1, dir = blockIdx.y, tx = threadIdx.x, ty = threadIdx.y;
    const int f = blockIdx.x * 32 + tx;
    const int chunk = (m + 31) / 32, q0 = ty * chunk, q1 = min(m, q0 + chunk);
    const float* x = p.merged + f;
    auto src = [&](int q) { return (long long)(dir == 0 ? q : m - q) * p.d; };
    float s = 0.0f;
    if (f < p.d)
        for (int q = q0; q < q1; ++q)
            s += x[src(q)];
    tot[ty][tx] = s;
    __syncthreads();
    if (f >= p.d) return;
    float acc = 0.0f;
    for (int c = 0; c < ty; ++c)
        acc += tot[c][tx];
    T* means = reinterpret_cast<T*>(p.means) + (long long)dir * m * p.d + f;
    for (int q = q0; q < q1; ++q) {
        acc += x[src(q)];
        const int out = dir == 0 ? q : m - 1 - q;
        means[(long long)out * p.d] = fromFloat<T>(acc / float(q + 1));
    }
}

// Both heads' layers as tensor-core tiles (tc_tile.cuh): C = A B^T per direction (blockIdx.z).
// Mode 0: A = means [m, D], B = W1 [256, D]; hidden = relu(C + b1) in T.
// Mode 1: A = hidden [m, 256], B = W2 [D, 256]; per (row, column tile) the sum of
// (C + b2 - target)^2 over the tile's columns, into the partials that ar_err_sum_kernel adds in
// order.
template <class T, bool VEC, int MODE>
__global__ void __launch_bounds__(tc::THREADS, 1) ar_tc_kernel(ArParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    const int m = p.k - 1, dir = blockIdx.z;
    const int kd = MODE == 0 ? p.d : kArHidden, nc = MODE == 0 ? kArHidden : p.d;
    const T* A =
        reinterpret_cast<const T*>(MODE == 0 ? static_cast<const void*>(p.means) : p.hidden) +
        (long long)dir * m * kd;
    const T* B = static_cast<const T*>(MODE == 0 ? p.w1[dir] : p.w2[dir]);
    const T* bias = static_cast<const T*>(MODE == 0 ? p.b1[dir] : p.b2[dir]);
    const int row0 = blockIdx.y * tc::BM, col0 = blockIdx.x * tc::BM;
    float acc[4][4][4];
    tc::tileProduct<T, VEC>(smem, A, m, B, nc, kd, row0, col0, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    float* rowPart =
        reinterpret_cast<float*>(smem); // [4 warp columns][128 rows]: the pipeline is done
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int r = row0 + tc::fragRow(wm, mt, 2 * h, g);
            float part = 0.0f;
#pragma unroll
            for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    const int col = col0 + tc::fragCol(wn, nt, c, t);
                    if (r >= m || col >= nc) continue;
                    const float v = acc[mt][nt][2 * h + c] + ld(bias, col);
                    if (MODE == 0) {
                        reinterpret_cast<T*>(p.hidden)[((long long)dir * m + r) * kArHidden + col] =
                            fromFloat<T>(fmaxf(v, 0.0f));
                    } else {
                        const float e = v - p.merged[(long long)(dir == 0 ? r + 1 : r) * p.d + col];
                        part = fmaf(e, e, part);
                    }
                }
            if (MODE == 1) { // the quad of lanes t = 0..3 shares the row; then the 4 warp columns
                part += __shfl_xor_sync(0xffffffffu, part, 1);
                part += __shfl_xor_sync(0xffffffffu, part, 2);
                if (t == 0) rowPart[wn * tc::BM + tc::fragRow(wm, mt, 2 * h, g)] = part;
            }
        }
    if (MODE == 1) {
        __syncthreads();
        const int r = row0 + threadIdx.x;
        if (threadIdx.x < tc::BM && r < m) {
            const float* q = rowPart + threadIdx.x;
            p.means[((long long)dir * m + r) * gridDim.x + blockIdx.x] =
                ((q[0] + q[tc::BM]) + q[2 * tc::BM]) + q[3 * tc::BM];
        }
    }
}

// err = the row's partials in column order / D.
__global__ void ar_err_sum_kernel(ArParams p, int parts) {
    const int m = p.k - 1;
    const int t2 = blockIdx.x * blockDim.x + threadIdx.x;
    if (t2 >= 2 * m) return;
    float e = 0.0f;
    for (int c = 0; c < parts; ++c)
        e += p.means[(long long)t2 * parts + c];
    p.err[t2] = e / p.d;
}

template <class T, int MODE>
void launchArTc(const ArParams& p, bool vec, dim3 grid, cudaStream_t s) {
    if (vec) {
        tc::allowPipeSmem<ar_tc_kernel<T, true, MODE>>();
        ar_tc_kernel<T, true, MODE><<<grid, tc::THREADS, tc::PIPE_BYTES, s>>>(p);
    } else {
        tc::allowPipeSmem<ar_tc_kernel<T, false, MODE>>();
        ar_tc_kernel<T, false, MODE><<<grid, tc::THREADS, tc::PIPE_BYTES, s>>>(p);
    }
    QMPP_CUDA_CHECK_LAUNCH();
}

template <class T> void launchArFast(const ArParams& p, cudaStream_t s) {
    const int m = p.k - 1;
    if (m <= 0) return;
    // the error partials (one per row and column tile, ceil(D / 128) <= D) reuse the means scratch
    const unsigned colTiles = (p.d + tc::BM - 1) / tc::BM;
    ar_means_scan_kernel<T><<<dim3((p.d + 31) / 32, 2), dim3(32, 32), 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    const unsigned rows = (m + tc::BM - 1) / tc::BM;
    const std::size_t es = sizeof(T);
    bool vec1 = true, vec2 = true;
    for (int dir = 0; dir < 2; ++dir) {
        const auto* means =
            reinterpret_cast<const unsigned char*>(p.means) + std::size_t(dir) * m * p.d * es;
        const auto* hidden = reinterpret_cast<const unsigned char*>(p.hidden) +
                             std::size_t(dir) * m * kArHidden * es;
        vec1 = vec1 && tc::rowsAligned(means, p.d, es) && tc::rowsAligned(p.w1[dir], p.d, es);
        vec2 = vec2 && tc::rowsAligned(hidden, kArHidden, es) &&
               tc::rowsAligned(p.w2[dir], kArHidden, es);
    }
    launchArTc<T, 0>(p, vec1, dim3((kArHidden + tc::BM - 1) / tc::BM, rows, 2), s);
    launchArTc<T, 1>(p, vec2, dim3(colTiles, rows, 2), s);
    ar_err_sum_kernel<<<blocksFor(2LL * m, 128), 128, 0, s>>>(p, int(colTiles));
    QMPP_CUDA_CHECK_LAUNCH();
}

// ---- dispatcher ---------------------------------------------------------------------------

void bindArWeights(ArParams& p, const void* packed, int d, Prec prec) {
    const std::size_t es = prec == Prec::F16 ? 2 : 4, hd = kArHidden, D = std::size_t(d);
    const std::size_t sizes[4] = {hd * D, hd, D * hd, D};
    const auto* base = static_cast<const unsigned char*>(packed);
    std::size_t off = 0;
    for (int dir = 0; dir < 2; ++dir) {
        const void** slots[4] = {&p.w1[dir], &p.b1[dir], &p.w2[dir], &p.b2[dir]};
        for (int i = 0; i < 4; ++i) {
            *slots[i] = base + off * es;
            off += sizes[i];
        }
    }
}

void arHeads(const ArParams& p, Version v, Prec prec, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        withPrec(prec, [&](auto t) { launchArBasic<decltype(t)>(p, s); });
        return;
    case Version::Optimized:
        withPrec(prec, [&](auto t) { launchArFast<decltype(t)>(p, s); });
        return;
    }
}

} // namespace qmpp::kernels
