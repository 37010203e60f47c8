// Method diagnostics (qmpp/diagnostics.h).
#include "qmpp/diagnostics.h"

#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace qmpp {

namespace {

std::vector<double> ranks(const std::vector<double>& v) {
    std::vector<std::size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), std::size_t(0));
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (std::size_t i = 0; i < idx.size();) {
        std::size_t j = i;
        while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]])
            ++j;
        const double mean = 0.5 * double(i + j) + 1.0;
        for (std::size_t t = i; t <= j; ++t)
            r[idx[t]] = mean;
        i = j + 1;
    }
    return r;
}

} // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
    const std::size_t n = std::min(a.size(), b.size());
    if (n < 3) return std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> ra = ranks({a.begin(), a.begin() + n}),
                              rb = ranks({b.begin(), b.begin() + n});
    const double mean = 0.5 * double(n + 1);
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < n; ++i) {
        ab += (ra[i] - mean) * (rb[i] - mean);
        aa += (ra[i] - mean) * (ra[i] - mean);
        bb += (rb[i] - mean) * (rb[i] - mean);
    }
    return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : std::numeric_limits<double>::quiet_NaN();
}

MethodDiagnostics diagnose(const MergeResult& r, double epsilon) {
    MethodDiagnostics d;
    const std::size_t n = r.saliency.size();
    std::vector<double> s(r.saliency.begin(), r.saliency.end()), pos(n);
    std::iota(pos.begin(), pos.end(), 0.0);
    d.positionRankCorrelation = spearman(s, pos);
    d.followsPosition = std::abs(d.positionRankCorrelation) >= 0.5; // false for NaN
    if (r.pi.size() != n || n == 0 || r.foreground.empty()) return d;
    d.hasMask = true;
    double sq = 0;
    std::size_t atEps = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double p = r.pi[i];
        d.piMax = std::max(d.piMax, p);
        sq += p * p;
        const double m = p * s[i] + (1.0 - p) * epsilon;
        if (std::abs(m - epsilon) <= 0.01 * std::max(epsilon, 1e-12)) ++atEps;
    }
    d.piEffective = sq > 0 ? 1.0 / sq : 0.0;
    d.massAtEpsilon = double(atEps) / double(n);
    d.piDegenerate = d.piMax >= 0.5;
    const i64 k = i64(r.foreground.size());
    const std::vector<i64> f0 = topK(s, k); // ascending, as r.foreground
    std::vector<i64> changed;
    std::set_difference(r.foreground.begin(), r.foreground.end(), f0.begin(), f0.end(),
                        std::back_inserter(changed));
    d.noiseDecided = double(changed.size()) / double(k);
    d.noiseDominates = d.noiseDecided >= 0.25;
    return d;
}

std::vector<std::string> diagnosticWarnings(const MethodDiagnostics& d, double tau) {
    std::vector<std::string> out;
    char buf[320];
    if (d.piDegenerate) {
        std::snprintf(buf, sizeof buf,
                      "pi is degenerate at tau = %g: one token holds %.2f of the mask (%.1f "
                      "tokens share it), so %.0f %% of the tokens keep a mass of about epsilon; "
                      "raise tau to spread it",
                      tau, d.piMax, d.piEffective, 100.0 * d.massAtEpsilon);
        out.emplace_back(buf);
    }
    if (d.noiseDominates) {
        std::snprintf(buf, sizeof buf,
                      "the Gumbel noise chose %.0f %% of the hard foreground: with the noise off "
                      "those tokens would not be in it",
                      100.0 * d.noiseDecided);
        out.emplace_back(buf);
    }
    if (d.followsPosition) {
        std::snprintf(buf, sizeof buf,
                      "saliency follows token position (Spearman rho = %.2f with the index)",
                      d.positionRankCorrelation);
        out.emplace_back(buf);
    }
    return out;
}

} // namespace qmpp
