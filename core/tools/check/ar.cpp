// The AR heads: the float64 reference of the per-position errors, and the CPU step's and the
// kernel's checks.
#include "harness.h"

namespace qmpp::check {

namespace {

// Per-position AR errors [2, K-1] in double.
std::vector<double> refAr(const std::vector<float>& merged, i64 k, i64 d, const ArHeads& h,
                          bool half) {
    const i64 m = k - 1, hd = ArHeads::kHidden;
    auto w = [&](const std::vector<float>& v) { return half ? roundHalf(v) : v; };
    const std::vector<float> W1[2] = {w(h.fw1), w(h.bw1)}, B1[2] = {w(h.fb1), w(h.bb1)};
    const std::vector<float> W2[2] = {w(h.fw2), w(h.bw2)}, B2[2] = {w(h.fb2), w(h.bb2)};
    std::vector<double> err(static_cast<std::size_t>(2 * std::max<i64>(m, 0)));
    std::vector<double> v(static_cast<std::size_t>(d)), hid(static_cast<std::size_t>(hd));
    for (int dir = 0; dir < 2; ++dir)
        for (i64 t = 0; t < m; ++t) {
            const i64 lo = dir == 0 ? 0 : t + 1, hi = dir == 0 ? t : k - 1;
            for (i64 f = 0; f < d; ++f) {
                double s = 0;
                for (i64 q = lo; q <= hi; ++q)
                    s += merged[q * d + f];
                v[f] = s / double(hi - lo + 1);
            }
            for (i64 u = 0; u < hd; ++u) {
                double s = B1[dir][u];
                for (i64 f = 0; f < d; ++f)
                    s += double(W1[dir][u * d + f]) * v[f];
                hid[u] = std::max(0.0, s);
            }
            const i64 target = dir == 0 ? t + 1 : t;
            double e = 0;
            for (i64 f = 0; f < d; ++f) {
                double o = B2[dir][f];
                for (i64 u = 0; u < hd; ++u)
                    o += double(W2[dir][f * hd + u]) * hid[u];
                e += (o - merged[target * d + f]) * (o - merged[target * d + f]);
            }
            err[dir * m + t] = e / double(d);
        }
    return err;
}

} // namespace

void checkArCpu(const Input& in, const std::vector<float>& merged, Printer& pr) {
    const i64 d = in.d, k = std::max<i64>(1, in.n / 5);
    const Tol tol = kF32;
    if (k >= 2) {
        std::vector<float> mk(merged.begin(), merged.end());
        const auto heads = defaultArHeads(d);
        Losses l;
        std::vector<double> ef, eb;
        arLoss(mk, k, d, *heads, l, ef, eb);
        ef.insert(ef.end(), eb.begin(), eb.end());
        const auto aref = refAr(mk, k, d, *heads, false);
        pr.add("ar_heads", "cpu", "fp32", in, compare(ef.data(), aref.data(), aref.size(), tol),
               tol);
    }
}

#ifdef QMPP_HAVE_CUDA
void KernelCase::checkArKernel() {
    if (!skip(kk::Kernel::ArHeads) && k >= 2) {
        const auto heads = defaultArHeads(d);
        Dev dw;
        const std::size_t hd = ArHeads::kHidden;
        std::vector<float> mk(std::size_t(k * d));
        for (i64 i = 0; i < k * d; ++i)
            mk[i] = in.x[(i * 7919) % (n * d)]; // merged-like rows
        kk::DeviceBuffer<float> dm, means, hidden, err;
        dm.upload(mk.data(), mk.size());
        means.resize(2 * (k - 1) * d);
        hidden.resize(2 * (k - 1) * hd);
        poison(err, 2 * (k - 1));
        kk::arHeads(kk::arParams(dm.get(), int(k), int(d), dw.put(packArHeads(*heads), p), p,
                                 means.get(), hidden.get(), err.get()),
                    v, p, nullptr);
        const auto got = fetch(err, 2 * (k - 1));
        const auto ref = refAr(mk, k, d, *heads, p == kk::Prec::F16);
        pr.add("ar_heads", vn, pn, in, compare(got.data(), ref.data(), ref.size(), tol), tol);
    }
}
#endif

} // namespace qmpp::check
