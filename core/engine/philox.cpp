// Philox4x32-10 (Salmon et al., SC'11) laid out exactly as cuRAND's generator API lays out
// CURAND_RNG_PSEUDO_PHILOX4_32_10 with the default ordering: 65,536 streams, stream t is
// subsequence t, and the i-th number is word i % 4 of stream (i % 2^18) / 4 at counter i / 2^18.
// An offset o starts the output at number o of that sequence (as curandSetGeneratorOffset does).
// The uniform is cuRAND's: x * 2^-32 + 2^-33, in float. The CPU path therefore needs no CUDA
// toolkit, and tst_steps checks it bit for bit against cuRAND's host generator wherever cuRAND is
// installed.
#include "qmpp/ops.h"

#include <algorithm>
#include <cstdint>

namespace qmpp {

namespace {

constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;    // round multipliers
constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;    // key schedule (Weyl)
constexpr std::uint64_t kStreams = 65536, kBlock = 4 * kStreams; // numbers per counter step

struct Words {
    std::uint32_t v[4];
};

// Ten rounds on counter c with key k.
Words philox4x32x10(Words c, std::uint32_t k0, std::uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
        const std::uint64_t p0 = std::uint64_t(kM0) * c.v[0], p1 = std::uint64_t(kM1) * c.v[2];
        c = {{std::uint32_t(p1 >> 32) ^ c.v[1] ^ k0, std::uint32_t(p1),
              std::uint32_t(p0 >> 32) ^ c.v[3] ^ k1, std::uint32_t(p0)}};
        k0 += kW0;
        k1 += kW1;
    }
    return c;
}

// curand_uniform's conversion; two statements so that no compiler contracts them into an FMA.
float toUniform(std::uint32_t x) {
    constexpr float kInv = 2.3283064e-10f; // CURAND_2POW32_INV
    const float scaled = float(x) * kInv;
    return scaled + kInv / 2.0f;
}

} // namespace

void philoxGenerate(std::uint64_t seed, float* out, i64 n, std::uint64_t offset) {
    const auto k0 = std::uint32_t(seed), k1 = std::uint32_t(seed >> 32);
    const std::uint64_t first = offset, last = offset + static_cast<std::uint64_t>(n);
    // number i of the sequence: word i % 4 of stream (i % 2^18) / 4 at counter i / 2^18
    for (std::uint64_t i = first - first % 4; i < last; i += 4) {
        const std::uint64_t ctr = i / kBlock, stream = (i % kBlock) / 4;
        const Words w = philox4x32x10(
            {{std::uint32_t(ctr), std::uint32_t(ctr >> 32), std::uint32_t(stream), 0u}}, k0, k1);
        for (std::uint64_t j = 0; j < 4; ++j)
            if (i + j >= first && i + j < last) out[i + j - first] = toUniform(w.v[j]);
    }
}

std::vector<float> philoxUniforms(i64 n, std::uint64_t seed, std::uint64_t offset) {
    std::vector<float> u(static_cast<std::size_t>(std::max<i64>(n, 0)));
    philoxGenerate(seed, u.data(), n, offset);
    for (auto& v : u)
        v = std::clamp(v, 1e-7f, 1.0f - 1e-7f);
    return u;
}

} // namespace qmpp
