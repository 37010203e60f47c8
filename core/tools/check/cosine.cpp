// Cosine similarity: the float64 reference and the kernel's check (rows against all, all pairs).
#include "harness.h"

namespace qmpp::check {

#ifdef QMPP_HAVE_CUDA
namespace {

std::vector<double> refCosine(const std::vector<float>& a, i64 m, const std::vector<float>& b,
                              i64 n, i64 d) {
    std::vector<double> out(static_cast<std::size_t>(m * n));
    for (i64 i = 0; i < m; ++i)
        for (i64 j = 0; j < n; ++j)
            out[i * n + j] = cosine(&a[i * d], &b[j * d], d);
    return out;
}

} // namespace

void KernelCase::checkCosineKernel() {
    // cosine: up to 200 rows against all, and all against all (the symmetric schedule) up to
    // N = 1000; FP16 also on the tiles Auto does not pick here
    if (!skip(kk::Kernel::Cosine)) {
        using Tiles = kk::CosineParams::Tiles;
        std::vector<std::pair<Tiles, std::string>> shapes = {{Tiles::Auto, ""}};
        if (warpgroups) shapes.push_back({Tiles::MmaSync, ", mma.sync tiles"});
        std::vector<i64> rowCounts = {std::min<i64>(n, 200)};
        if (n > 200 && n <= 1000) rowCounts.push_back(n);
        for (const i64 m : rowCounts) {
            const auto ref = refCosine(x, m, x, n, d);
            for (const auto& [tiles, label] : shapes) {
                kk::DeviceBuffer<float> out, inv(m + n);
                poison(out, m * n);
                kk::CosineParams cp =
                    kk::cosineParams(X, X, int(m), int(n), int(d), out.get(), inv.get());
                cp.tiles = tiles;
                kk::cosine(cp, v, p, nullptr);
                const auto got = fetch(out, m * n);
                Input named = {in.name +
                                   (m == n ? " (all pairs" : " (" + std::to_string(m) + " rows") +
                                   label + ")",
                               n,
                               d,
                               {}};
                pr.add("cosine", vn, pn, named,
                       compare(got.data(), ref.data(), ref.size(), Tol{tol.atol * 10, tol.rtol}),
                       tol);
            }
        }
    }
}
#endif

} // namespace qmpp::check
