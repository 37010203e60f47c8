// Step 1: saliency from attention entropy, never materializing an N x N matrix per layer.
#include "parallel.h"
#include "qmpp/ops.h"
#include "qmpp/progress.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qmpp {

namespace {

// Entropy of softmax(z) from a streaming (max, sum e, sum e*z): H = m + ln S - (sum e z) / S.
double softmaxEntropy(const double* z, i64 n) {
    double m = -std::numeric_limits<double>::infinity();
    for (i64 j = 0; j < n; ++j)
        m = std::max(m, z[j]);
    double se = 0, sez = 0;
    for (i64 j = 0; j < n; ++j) {
        const double e = std::exp(z[j] - m);
        se += e;
        sez += e * (z[j] - m); // shifted by m to keep the terms small; H is shift invariant
    }
    return std::log(se) - sez / se;
}

// Entropies [layers, N] of softmax_row(beta_l * q_i . k_j) for q = k = rows of x [N, D].
std::vector<double> gramEntropies(const float* x, i64 n, i64 d, const std::vector<double>& betas) {
    const i64 layers = static_cast<i64>(betas.size());
    std::vector<double> h(static_cast<std::size_t>(layers * n));
    const i64 blocks = (n + kRowBlock - 1) / kRowBlock;
    const PackedRows xp = packRows(x, n, d);
    // every thread's scratch, allocated here (see parallel.h)
    const std::size_t dotsEach = static_cast<std::size_t>(kRowBlock * n);
    std::vector<float> dotsAll(dotsEach * static_cast<std::size_t>(par::maxThreads()));
    std::vector<double> zAll(static_cast<std::size_t>(n) * std::size_t(par::maxThreads()));
    const std::atomic<int>* const stop = stopFlag();
#pragma omp parallel
    {
        float* const dotsMine = dotsAll.data() + dotsEach * std::size_t(par::threadId());
        double* const z = zAll.data() + std::size_t(n) * std::size_t(par::threadId());
#pragma omp for schedule(static)
        for (i64 b = 0; b < blocks; ++b) {
            if (stopRequested(stop)) continue; // superseded: the rest is skipped
            const i64 i0 = b * kRowBlock, rows = std::min(kRowBlock, n - i0);
            gemmPacked(x + i0 * d, rows, xp, dotsMine);
            // One row of the Gram product serves every layer's scale.
            for (i64 r = 0; r < rows; ++r)
                for (i64 l = 0; l < layers; ++l) {
                    const float* row = dotsMine + r * n;
                    for (i64 j = 0; j < n; ++j)
                        z[j] = betas[l] * row[j];
                    h[l * n + i0 + r] = softmaxEntropy(z, n);
                }
        }
    }
    throwIfStopped();
    return h;
}

} // namespace

double multiScaleFactor(int l, int layers) {
    if (layers <= 1) return 1.0;
    return std::pow(4.0, 2.0 * l / (layers - 1) - 1.0);
}

std::vector<double> multiScaleBetas(int layers, i64 d) {
    std::vector<double> betas(static_cast<std::size_t>(std::max(layers, 0)));
    for (int l = 0; l < layers; ++l)
        betas[l] = multiScaleFactor(l, layers) / std::sqrt(double(d));
    return betas;
}

std::vector<double> entropyMultiScale(const float* x, i64 n, i64 d, int layers) {
    return gramEntropies(x, n, d, multiScaleBetas(layers, d));
}

std::vector<double> entropyHidden(const float* h, i64 layers, i64 n, i64 d) {
    std::vector<double> out;
    out.reserve(static_cast<std::size_t>(layers * n));
    const std::vector<double> beta{1.0 / std::sqrt(double(d))};
    for (i64 l = 0; l < layers; ++l) {
        auto hl = gramEntropies(h + l * n * d, n, d, beta);
        out.insert(out.end(), hl.begin(), hl.end());
    }
    return out;
}

std::vector<double> entropyMaps(const float* a, i64 layers, i64 heads, i64 n) {
    std::vector<double> out(static_cast<std::size_t>(layers * n), 0.0);
#pragma omp parallel for collapse(2) schedule(static)
    for (i64 l = 0; l < layers; ++l)
        for (i64 i = 0; i < n; ++i) {
            double acc = 0;
            for (i64 hd = 0; hd < heads; ++hd) {
                const float* row = a + ((l * heads + hd) * n + i) * n;
                double sum = 0;
                for (i64 j = 0; j < n; ++j)
                    sum += row[j];
                double e = 0;
                for (i64 j = 0; j < n; ++j) {
                    const double p = row[j] / sum; // rows renormalized to sum 1
                    if (p > 0) e -= p * std::log(p);
                }
                acc += e;
            }
            out[l * n + i] = acc / double(heads);
        }
    return out;
}

std::vector<float> saliencyFromEntropy(const std::vector<double>& h, i64 layers, i64 n) {
    std::vector<double> acc(static_cast<std::size_t>(n), 0.0);
    for (i64 l = 0; l < layers; ++l) {
        const double* hl = h.data() + l * n;
        const auto [lo, hi] = std::minmax_element(hl, hl + n);
        const double range = *hi - *lo;
        // A constant layer (range at rounding level) normalizes to 0.
        if (!(range > 1e-12 * std::max(1.0, std::abs(*hi)))) continue;
        for (i64 i = 0; i < n; ++i)
            acc[i] += (hl[i] - *lo) / range;
    }
    std::vector<float> s(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i)
        s[i] = static_cast<float>(1.0 - acc[i] / double(layers));
    return s;
}

} // namespace qmpp
