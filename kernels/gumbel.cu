// Gumbel-softmax mask and hard top-K: keys = s + g, g = -ln(-ln u); pi = softmax(keys / tau);
// mass = pi s + (1 - pi) eps; the K largest keys (ties: lower index), ascending order.
//
// | version | idea                                                        | measured      |
// |---------|-------------------------------------------------------------|---------------|
// | basic   | one thread per token; one thread for the softmax max and sum | see docs/perf |
// |         | top-K by counting, per token, the keys that beat it (O(N^2)) |               |
#include "common.cuh"

#include <curand.h>

namespace qmpp::kernels {

// ---- kernels ------------------------------------------------------------------------------

__global__ void gumbel_keys_basic_kernel(GumbelParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float u = fminf(fmaxf(p.u[i], 1e-7f), 1.0f - 1e-7f);
    p.keys[i] = p.s[i] - logf(-logf(u));
}

// One thread: max and sum of exp(keys / tau - max), in double for a stable denominator.
__global__ void gumbel_norm_basic_kernel(GumbelParams p) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    float mx = -INFINITY;
    for (int i = 0; i < p.n; ++i) mx = fmaxf(mx, p.keys[i] / p.tau);
    double z = 0.0;
    for (int i = 0; i < p.n; ++i) z += exp(double(p.keys[i] / p.tau - mx));
    p.scratch[0] = mx;
    p.scratch[1] = static_cast<float>(z);
}

__global__ void gumbel_pi_basic_kernel(GumbelParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float pi = expf(p.keys[i] / p.tau - p.scratch[0]) / p.scratch[1];
    p.pi[i] = pi;
    p.mass[i] = pi * p.s[i] + (1.0f - pi) * p.eps;
}

// Token i is selected when fewer than K keys beat it (larger, or equal at a lower index).
__global__ void topk_rank_basic_kernel(TopKParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n) return;
    const float ki = p.keys[i];
    int beaten = 0;
    for (int j = 0; j < p.n; ++j) {
        const float kj = p.keys[j];
        beaten += (kj > ki) || (kj == ki && j < i);
    }
    p.selected[i] = beaten < p.k;
}

// A selected token's slot = the number of selected tokens before it.
__global__ void topk_compact_basic_kernel(TopKParams p) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= p.n || !p.selected[i]) return;
    int slot = 0;
    for (int j = 0; j < i; ++j) slot += p.selected[j];
    p.idx[slot] = i;
}

// ---- dispatchers --------------------------------------------------------------------------

void gumbel(const GumbelParams& p, Version v, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        gumbel_keys_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        gumbel_norm_basic_kernel<<<1, 1, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        gumbel_pi_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    case Version::Optimized: unavailable(Kernel::Gumbel, v);
    }
}

void topK(const TopKParams& p, Version v, cudaStream_t s) {
    switch (v) {
    case Version::Basic:
        topk_rank_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        topk_compact_basic_kernel<<<blocksFor(p.n, 256), 256, 0, s>>>(p);
        QMPP_CUDA_CHECK_LAUNCH();
        return;
    case Version::Optimized: unavailable(Kernel::TopK, v);
    }
}

void philoxUniforms(float* u, std::size_t n, unsigned long long seed, cudaStream_t s) {
    if (n == 0) return;
    curandGenerator_t gen = nullptr;
    auto check = [&](curandStatus_t st, const char* what) {
        if (st == CURAND_STATUS_SUCCESS) return;
        if (gen) curandDestroyGenerator(gen);
        throw CudaError(std::string("cuRAND device generator: ") + what + " failed (status " +
                        std::to_string(static_cast<int>(st)) + ")");
    };
    check(curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10), "create");
    check(curandSetStream(gen, s), "stream");
    check(curandSetPseudoRandomGeneratorSeed(gen, seed), "seed");
    check(curandSetGeneratorOffset(gen, 0), "offset");
    check(curandGenerateUniform(gen, u, n), "generate");
    curandDestroyGenerator(gen);
}

} // namespace qmpp::kernels
