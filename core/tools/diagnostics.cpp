// Method diagnostics (qmpp/diagnostics.h).
#include "qmpp/diagnostics.h"

#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace qmpp {

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
