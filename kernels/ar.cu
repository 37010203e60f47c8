// AR-alignment heads f(v) = W2 relu(W1 v + b1) + b2 on prefix means (forward head, predicting
// the next merged token) and suffix means (backward head, predicting the previous one).
//
// | version | idea                                                               | measured      |
// |---------|--------------------------------------------------------------------|---------------|
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
    case Version::Optimized: unavailable(Kernel::ArHeads, v);
    }
}

} // namespace qmpp::kernels
