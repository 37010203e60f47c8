// The hot inner loop of the CPU backend: a packed, register-blocked A.B^T product (the BLIS
// micro-kernel layout). Cloned for AVX2+FMA and baseline x86-64; the loader
// picks the clone the processor runs (no -march needed, binaries stay portable).
//
// Every output element is one sequential sum over k, whatever the tile or thread it falls in,
// so results never depend on the thread count.
#include "clones.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cstring>

#define QMPP_INLINE inline __attribute__((always_inline))

namespace qmpp {

namespace {

typedef float v8 __attribute__((vector_size(32)));
constexpr int kPanel = 16; // columns per packed panel: two 8-wide vectors
constexpr int kRows = 6;   // rows per micro-tile: 12 accumulators + 2 loads + 1 broadcast

QMPP_INLINE v8 load8(const float* p) {
    v8 v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// c[r][0..cols) = sum_k a[r][k] * panel[k][0..cols) for R rows of a [R, d].
template <int R>
QMPP_INLINE void micro(const float* a, i64 d, const float* panel, float* c, i64 ldc, int cols) {
    v8 acc[R][2] = {};
    for (i64 k = 0; k < d; ++k) {
        const v8 b0 = load8(panel + k * kPanel), b1 = load8(panel + k * kPanel + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            const float s = a[r * d + k];
            const v8 av = {s, s, s, s, s, s, s, s};
            acc[r][0] += av * b0;
            acc[r][1] += av * b1;
        }
    }
    for (int r = 0; r < R; ++r) {
        float out[kPanel];
        std::memcpy(out, &acc[r][0], sizeof(v8));
        std::memcpy(out + 8, &acc[r][1], sizeof(v8));
        std::memcpy(c + r * ldc, out, sizeof(float) * cols);
    }
}

template <int R> QMPP_INLINE void rowBlock(const float* a, i64 d, const PackedRows& p, float* c) {
    for (i64 j0 = 0, pi = 0; j0 < p.n; j0 += kPanel, ++pi)
        micro<R>(a, d, p.data.data() + pi * d * kPanel, c + j0, p.n,
                 static_cast<int>(std::min<i64>(kPanel, p.n - j0)));
}

} // namespace

PackedRows packRows(const float* b, i64 n, i64 d) {
    PackedRows p;
    p.n = n;
    p.d = d;
    const i64 panels = (n + kPanel - 1) / kPanel;
    p.data.assign(static_cast<std::size_t>(panels * d * kPanel), 0.0f);
    for (i64 j = 0; j < n; ++j) {
        float* dst = p.data.data() + (j / kPanel) * d * kPanel + j % kPanel;
        const float* src = b + j * d;
        for (i64 k = 0; k < d; ++k)
            dst[k * kPanel] = src[k];
    }
    return p;
}

std::vector<float> unpackRows(const PackedRows& p) {
    std::vector<float> b(static_cast<std::size_t>(p.n * p.d));
    for (i64 j = 0; j < p.n; ++j) {
        const float* src = p.data.data() + (j / kPanel) * p.d * kPanel + j % kPanel;
        for (i64 k = 0; k < p.d; ++k)
            b[j * p.d + k] = src[k * kPanel];
    }
    return b;
}

QMPP_CLONES
void gemmPacked(const float* a, i64 m, const PackedRows& p, float* c) {
    const i64 d = p.d;
    i64 i = 0;
    for (; i + kRows <= m; i += kRows)
        rowBlock<kRows>(a + i * d, d, p, c + i * p.n);
    switch (m - i) {
    case 5:
        rowBlock<5>(a + i * d, d, p, c + i * p.n);
        break;
    case 4:
        rowBlock<4>(a + i * d, d, p, c + i * p.n);
        break;
    case 3:
        rowBlock<3>(a + i * d, d, p, c + i * p.n);
        break;
    case 2:
        rowBlock<2>(a + i * d, d, p, c + i * p.n);
        break;
    case 1:
        rowBlock<1>(a + i * d, d, p, c + i * p.n);
        break;
    default:
        break;
    }
}

} // namespace qmpp
