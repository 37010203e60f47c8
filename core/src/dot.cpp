// The one hot inner loop of the CPU backend. Cloned for AVX2+FMA and baseline x86-64; the
// loader picks the clone the processor runs (no -march needed, binaries stay portable).
#include "qmpp/ops.h"

namespace qmpp {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("arch=haswell", "default")))
#endif
float dotf(const float* a, const float* b, i64 d) {
    // 16 independent lanes: the compiler keeps them in vector registers without -ffast-math.
    float acc[16] = {};
    i64 j = 0;
    for (; j + 16 <= d; j += 16)
        for (int l = 0; l < 16; ++l) acc[l] += a[j + l] * b[j + l];
    float tail = 0;
    for (; j < d; ++j) tail += a[j] * b[j];
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
    return acc[0] + tail;
}

} // namespace qmpp
