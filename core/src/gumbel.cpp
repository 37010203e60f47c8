// Steps 2 and 3: Gumbel-softmax mask from cuRAND's host Philox generator, hard top-K, mass.
#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <curand.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>

namespace qmpp {

namespace {

// One host generator for the process. Re-seeding it costs about 5 ms of fixed set-up inside
// cuRAND, so the last seed's sequence is kept: Philox is counter based, and the first n numbers
// of a longer run from offset 0 are exactly the n numbers of a shorter one.
struct UniformCache {
    std::mutex mu;
    curandGenerator_t gen = nullptr;
    bool valid = false;
    std::uint64_t seed = 0;
    std::vector<float> values; // unclamped, as cuRAND produced them
    ~UniformCache() {
        if (gen) curandDestroyGenerator(gen);
    }
};

void curandCheck(curandStatus_t st, const char* what) {
    if (st != CURAND_STATUS_SUCCESS)
        throw RuntimeFailure(std::string("cuRAND host generator: ") + what + " failed (status " +
                             std::to_string(static_cast<int>(st)) + ")");
}

} // namespace

std::vector<float> philoxUniforms(i64 n, std::uint64_t seed) {
    std::vector<float> u(static_cast<std::size_t>(n));
    if (n == 0) return u;
    static UniformCache cache;
    std::lock_guard<std::mutex> lock(cache.mu);
    if (!cache.valid || cache.seed != seed || static_cast<i64>(cache.values.size()) < n) {
        if (!cache.gen)
            curandCheck(curandCreateGeneratorHost(&cache.gen, CURAND_RNG_PSEUDO_PHILOX4_32_10),
                        "create");
        cache.valid = false;
        cache.values.resize(static_cast<std::size_t>(n));
        curandCheck(curandSetPseudoRandomGeneratorSeed(cache.gen, seed), "seed");
        curandCheck(curandSetGeneratorOffset(cache.gen, 0), "offset");
        curandCheck(curandGenerateUniform(cache.gen, cache.values.data(), cache.values.size()),
                    "generate");
        cache.seed = seed;
        cache.valid = true;
    }
    for (i64 i = 0; i < n; ++i)
        u[i] = std::clamp(cache.values[i], 1e-7f, 1.0f - 1e-7f);
    return u;
}

void gumbelSoftmax(const std::vector<float>& s, const std::vector<float>& u, double tau,
                   std::vector<float>& pi, std::vector<double>& keys) {
    const std::size_t n = s.size();
    keys.resize(n);
    pi.resize(n);
    double mx = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
        const double ui = std::clamp(double(u[i]), 1e-7, 1.0 - 1e-7);
        keys[i] = double(s[i]) - std::log(-std::log(ui));
        mx = std::max(mx, keys[i] / tau);
    }
    double z = 0;
    std::vector<double> e(n);
    for (std::size_t i = 0; i < n; ++i)
        z += (e[i] = std::exp(keys[i] / tau - mx));
    for (std::size_t i = 0; i < n; ++i)
        pi[i] = static_cast<float>(e[i] / z);
}

std::vector<i64> topK(const std::vector<double>& keys, i64 k) {
    std::vector<i64> idx(keys.size());
    std::iota(idx.begin(), idx.end(), i64(0));
    auto before = [&](i64 a, i64 b) { return keys[a] > keys[b] || (keys[a] == keys[b] && a < b); };
    std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
    idx.resize(static_cast<std::size_t>(k));
    std::sort(idx.begin(), idx.end());
    return idx;
}

std::vector<float> saliencyMass(const std::vector<float>& pi, const std::vector<float>& s,
                                double eps) {
    std::vector<float> m(pi.size());
    for (std::size_t i = 0; i < pi.size(); ++i)
        m[i] = static_cast<float>(double(pi[i]) * s[i] + (1.0 - double(pi[i])) * eps);
    return m;
}

} // namespace qmpp
