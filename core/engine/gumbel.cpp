// Steps 2 and 3: Gumbel-softmax mask (uniforms from philox.cpp), hard top-K, mass.
#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qmpp {

void gumbelSoftmax(const std::vector<float>& s, const std::vector<float>& u, double tau,
                   std::vector<float>& pi, std::vector<double>& keys, double noise) {
    const std::size_t n = s.size();
    keys.resize(n);
    pi.resize(n);
    double mx = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
        const double ui = std::clamp(double(u[i]), 1e-7, 1.0 - 1e-7);
        keys[i] = double(s[i]) - noise * std::log(-std::log(ui));
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
