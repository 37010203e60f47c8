// How the CUDA stages move data: see cuda_staging.h.
#include "cuda_staging.h"
#include "qmpp/array.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace qmpp::staging {

namespace {

// float -> IEEE half, round to nearest even (as __float2half_rn): F16C eight at a time where the
// CPU has it, else floatToHalf.
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) void toHalfF16c(const float* in, std::uint16_t* out,
                                                    std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; ++i)
        out[i] = floatToHalf(in[i]);
}
#endif
void toHalfHost(const float* in, std::uint16_t* out, std::size_t n) {
#if defined(__x86_64__)
    static const bool f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    if (f16c) return toHalfF16c(in, out, n);
#endif
    for (std::size_t i = 0; i < n; ++i)
        out[i] = floatToHalf(in[i]);
}

} // namespace

// Host floats to device memory in T through page-locked staging: chunks are copied (or
// converted to half) by all cores, and each chunk's DMA overlaps the next chunk's conversion.
void uploadStaged(const float* host, std::size_t count, void* dev, bool half, k::PinnedBuffer& pin,
                  cudaStream_t s) {
    if (count == 0) return;
    const std::size_t es = half ? 2 : 4;
    auto* staging = static_cast<unsigned char*>(pin.reserve(count * es));
    constexpr std::size_t kChunk = std::size_t(1) << 19, kPiece = std::size_t(1) << 15; // elements
    for (std::size_t c0 = 0; c0 < count; c0 += kChunk) {
        const std::size_t cn = std::min(kChunk, count - c0);
        const long long pieces = static_cast<long long>((cn + kPiece - 1) / kPiece);
#pragma omp parallel for schedule(static) if (pieces > 1)
        for (long long q = 0; q < pieces; ++q) {
            const std::size_t b = c0 + std::size_t(q) * kPiece, e = std::min(b + kPiece, c0 + cn);
            if (half)
                toHalfHost(host + b, reinterpret_cast<std::uint16_t*>(staging) + b, e - b);
            else
                std::memcpy(reinterpret_cast<float*>(staging) + b, host + b, (e - b) * 4);
        }
        QMPP_CUDA_CHECK(cudaMemcpyAsync(static_cast<unsigned char*>(dev) + c0 * es,
                                        staging + c0 * es, cn * es, cudaMemcpyHostToDevice, s));
    }
}

void Download::run(DeviceBuffer<std::uint8_t>& packed, k::PinnedBuffer& pin, cudaStream_t s) {
    packed.resize(std::max<std::size_t>(m_bytes, 1));
    m_pinned = static_cast<unsigned char*>(pin.reserve(m_bytes));
    for (std::size_t b = 0; b < m_segs.size(); b += k::kMaxPack)
        k::pack(m_segs.data() + b, int(std::min<std::size_t>(k::kMaxPack, m_segs.size() - b)),
                packed.get(), s);
    if (m_bytes)
        QMPP_CUDA_CHECK(
            cudaMemcpyAsync(m_pinned, packed.get(), m_bytes, cudaMemcpyDeviceToHost, s));
}
void Download::finish() const {
    constexpr std::size_t kPiece = std::size_t(1) << 16;
    std::vector<std::pair<std::size_t, std::size_t>> work; // (segment, piece start)
    for (std::size_t i = 0; i < m_segs.size(); ++i)
        for (std::size_t b = 0; b < m_segs[i].bytes; b += kPiece)
            work.emplace_back(i, b);
    const long long jobs = static_cast<long long>(work.size());
#pragma omp parallel for schedule(dynamic) if (jobs > 8)
    for (long long j = 0; j < jobs; ++j) {
        const auto [i, b] = work[std::size_t(j)];
        const std::size_t len = std::min(kPiece, m_segs[i].bytes - b);
        std::memcpy(static_cast<unsigned char*>(m_hosts[i]) + b, m_pinned + m_segs[i].offset + b,
                    len);
    }
}

bool graphsEnabled() {
    static const bool on = [] {
        const char* e = std::getenv("QMPP_CUDA_GRAPHS");
        return !(e && std::string(e) == "0");
    }();
    return on;
}

std::string keyPart(long long v) {
    return std::to_string(v);
}
std::string keyPart(const void* p) {
    return std::to_string(reinterpret_cast<std::uintptr_t>(p));
}

} // namespace qmpp::staging
