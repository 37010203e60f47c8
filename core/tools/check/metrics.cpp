// The metrics' per-token terms, merged norms and the fidelity loss's padded rows, against
// float64 sums computed here.
#include "harness.h"

#include <numeric>

namespace qmpp::check {

#ifdef QMPP_HAVE_CUDA
void KernelCase::checkMetricsKernel() {
    if (!skip(kk::Kernel::Metrics)) {
        std::vector<int> lab = groups;
        for (i64 i = 0; i < n; i += 9)
            lab[i] = -1; // dropped tokens reconstruct as zero
        std::vector<float> mk(centresF.size());
        for (std::size_t i = 0; i < mk.size(); ++i)
            mk[i] = centresF[i] * 3.0f + 0.1f;
        kk::DeviceBuffer<int> dl;
        dl.upload(lab.data(), lab.size());
        kk::DeviceBuffer<float> dm, terms, mn;
        dm.upload(mk.data(), mk.size());
        poison(terms, 4 * n);
        poison(mn, k);
        kk::DeviceBuffer<float> pad;
        poison(pad, n);
        kk::metrics(kk::metricsParams(X, int(n), int(d), int(k), dl.get(), dm.get(), terms.get(),
                                      mn.get(), pad.get()),
                    v, p, nullptr);
        auto got = fetch(terms, 4 * n);
        const auto gotN = fetch(mn, k), gotP = fetch(pad, n);
        got.insert(got.end(), gotN.begin(), gotN.end());
        got.insert(got.end(), gotP.begin(), gotP.end());
        std::vector<double> ref;
        for (i64 i = 0; i < n; ++i) {
            double e2 = 0, x2 = 0;
            for (i64 f = 0; f < d; ++f) {
                const double u = lab[i] >= 0 ? mk[lab[i] * d + f] : 0.0;
                e2 += (x[i * d + f] - u) * (x[i * d + f] - u);
                x2 += double(x[i * d + f]) * x[i * d + f];
            }
            ref.insert(
                ref.end(),
                {e2, x2, lab[i] >= 0 ? cosine(&x[i * d], &mk[lab[i] * d], d) : 0.0, std::sqrt(x2)});
        }
        for (i64 g = 0; g < k; ++g)
            ref.push_back(
                std::sqrt(std::inner_product(&mk[g * d], &mk[(g + 1) * d], &mk[g * d], 0.0)));
        for (i64 i = 0; i < n; ++i) { // the fidelity loss's rows: merged padded with zeros to N
            double r = 0;
            for (i64 f = 0; f < d; ++f) {
                const double q = x[i * d + f] - (i < k ? double(mk[i * d + f]) : 0.0);
                r += q * q;
            }
            ref.push_back(r);
        }
        pr.add("metrics", vn, pn, in,
               compare(got.data(), ref.data(), ref.size(), Tol{tol.atol * 10, tol.rtol}), tol);
    }
}
#endif

} // namespace qmpp::check
