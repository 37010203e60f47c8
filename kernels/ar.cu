// AR-alignment heads f(v) = W2 relu(W1 v + b1) + b2 on prefix means (forward head, predicting
// the next merged token) and suffix means (backward head, predicting the previous one).
//
// | version | idea                                                               | measured      |
// |---------|--------------------------------------------------------------------|---------------|
// | optimized | prefix and suffix means by one scan per feature; both heads as tiled FFMA    | docs/perf |
// |           | GEMMs (64x64 tiles, 4x4 per thread) with bias+ReLU and bias+squared-error     |           |
// |           | epilogues; per-tile error partials summed in a fixed order                   |           |
// | basic   | one thread per (head, position, feature) mean; per (head, position, | see docs/perf |
// |         | hidden unit); per (head, position) for the output and its error    |               |
#include "common.cuh"

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
    for (int s = lo; s <= hi; ++s) acc += p.merged[(long long)s * p.d + f];
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
    for (int f = 0; f < p.d; ++f) acc += ld(w1, (long long)h * p.d + f) * v[f];
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
        for (int h = 0; h < kArHidden; ++h) out += ld(w2, (long long)f * kArHidden + h) * hid[h];
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

// One thread per (direction, feature): running prefix (forward) or suffix (backward) sums.
__global__ void ar_means_scan_kernel(ArParams p) {
    const int m = p.k - 1;
    const int t2 = blockIdx.x * blockDim.x + threadIdx.x;
    if (t2 >= 2 * p.d) return;
    const int dir = t2 / p.d, f = t2 % p.d;
    float acc = 0.0f;
    if (dir == 0) {
        for (int t = 0; t < m; ++t) {
            acc += p.merged[(long long)t * p.d + f];
            p.means[(long long)t * p.d + f] = acc / float(t + 1);
        }
    } else {
        for (int t = m - 1; t >= 0; --t) {
            acc += p.merged[(long long)(t + 1) * p.d + f];
            p.means[((long long)m + t) * p.d + f] = acc / float(m - t);
        }
    }
}

constexpr int kGT = 64, kGK = 16; // GEMM tile and depth

// C = A B^T per direction (blockIdx.z): A [m, kd] float, B [nc, kd] in T.
// Mode 0: hidden = relu(C + b1). Mode 1: partial[row][tile] = sum over the tile's columns of
// (C + b2 - target)^2.
template <class T, int MODE> __global__ void __launch_bounds__(256) ar_gemm_kernel(ArParams p) {
    __shared__ float As[kGK][kGT + 4], Bs[kGK][kGT + 4];
    const int m = p.k - 1, dir = blockIdx.z;
    const int kd = MODE == 0 ? p.d : kArHidden, nc = MODE == 0 ? kArHidden : p.d;
    const float* A = MODE == 0 ? p.means + (long long)dir * m * p.d : p.hidden + (long long)dir * m * kArHidden;
    const T* B = static_cast<const T*>(MODE == 0 ? p.w1[dir] : p.w2[dir]);
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int row0 = blockIdx.y * kGT, col0 = blockIdx.x * kGT;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < kd; k0 += kGK) {
#pragma unroll
        for (int q = 0; q < 4; ++q) { // 64 x 16 of each, transposed into smem
            const int e = tid + q * 256, r = e >> 4, kk = e & 15;
            const int ar = row0 + r, bc = col0 + r, k = k0 + kk;
            As[kk][r] = ar < m && k < kd ? A[(long long)ar * kd + k] : 0.0f;
            Bs[kk][r] = bc < nc && k < kd ? ld(B, (long long)bc * kd + k) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kGK; ++kk) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                a[i] = As[kk][ty * 4 + i];
                b[i] = Bs[kk][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    const T* bias = static_cast<const T*>(MODE == 0 ? p.b1[dir] : p.b2[dir]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int r = row0 + ty * 4 + i;
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int c = col0 + tx * 4 + j;
            if (r >= m || c >= nc) continue;
            const float v = acc[i][j] + ld(bias, c);
            if (MODE == 0) {
                p.hidden[((long long)dir * m + r) * kArHidden + c] = fmaxf(v, 0.0f);
            } else {
                const float e = v - p.merged[(long long)(dir == 0 ? r + 1 : r) * p.d + c];
                part = fmaf(e, e, part);
            }
        }
        if (MODE == 1) { // the 16 threads of a row are 16 consecutive lanes
#pragma unroll
            for (int o = 1; o < 16; o <<= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
            if (tx == 0 && r < m) p.means[((long long)dir * m + r) * gridDim.x + blockIdx.x] = part;
        }
    }
}

// err = the row's partials in tile order / D.
__global__ void ar_err_sum_kernel(ArParams p, int tiles) {
    const int m = p.k - 1;
    const int t2 = blockIdx.x * blockDim.x + threadIdx.x;
    if (t2 >= 2 * m) return;
    float e = 0.0f;
    for (int c = 0; c < tiles; ++c) e += p.means[(long long)t2 * tiles + c];
    p.err[t2] = e / p.d;
}

template <class T> void launchArFast(const ArParams& p, cudaStream_t s) {
    const int m = p.k - 1;
    if (m <= 0) return;
    ar_means_scan_kernel<<<blocksFor(2LL * p.d, 128), 128, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    const unsigned rows = (m + kGT - 1) / kGT;
    ar_gemm_kernel<T, 0><<<dim3((kArHidden + kGT - 1) / kGT, rows, 2), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    const unsigned tiles = (p.d + kGT - 1) / kGT; // partials reuse the means scratch
    ar_gemm_kernel<T, 1><<<dim3(tiles, rows, 2), 256, 0, s>>>(p);
    QMPP_CUDA_CHECK_LAUNCH();
    ar_err_sum_kernel<<<blocksFor(2LL * m, 128), 128, 0, s>>>(p, int(tiles));
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
    case Version::Basic: withPrec(prec, [&](auto t) { launchArBasic<decltype(t)>(p, s); }); return;
    case Version::Optimized: withPrec(prec, [&](auto t) { launchArFast<decltype(t)>(p, s); }); return;
    }
}

} // namespace qmpp::kernels
