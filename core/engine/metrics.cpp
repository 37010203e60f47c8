// Step 7: label-free metrics. A token with label -1 (dropped by pruning) reconstructs as zero.
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace qmpp {

double cosine(const float* a, const float* b, i64 d) {
    double ab = 0, aa = 0, bb = 0;
    for (i64 j = 0; j < d; ++j) {
        ab += double(a[j]) * b[j];
        aa += double(a[j]) * a[j];
        bb += double(b[j]) * b[j];
    }
    return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

void computeMetrics(const TokenSet& t, const MergeParams& p, MergeResult& r) {
    const i64 n = t.n, d = t.d, k = r.k;
    const float* x = t.x.data();
    MetricSums sums;
    sums.norms.resize(static_cast<std::size_t>(n));
    // each row's sums in parallel (each one sequential over d), then added in row order: the
    // result does not depend on the thread count
    std::vector<double> err2(static_cast<std::size_t>(n)), x2(err2.size()), cos(err2.size());
#pragma omp parallel for schedule(static)
    for (i64 i = 0; i < n; ++i) {
        const i64 g = r.labels[i];
        const float* xi = x + i * d;
        double nx = 0, e = 0;
        for (i64 j = 0; j < d; ++j) {
            const double u = g >= 0 ? r.merged[g * d + j] : 0.0;
            e += (xi[j] - u) * (xi[j] - u);
            nx += double(xi[j]) * xi[j];
        }
        err2[i] = e;
        x2[i] = nx;
        sums.norms[i] = std::sqrt(nx);
        cos[i] = g >= 0 ? cosine(xi, &r.merged[g * d], d) : 0.0;
    }
    for (i64 i = 0; i < n; ++i) {
        sums.err2 += err2[i];
        sums.x2 += x2[i];
        sums.cosSum += cos[i];
    }
    sums.mergedNorms.resize(static_cast<std::size_t>(k));
    for (i64 g = 0; g < k; ++g) {
        double s = 0;
        for (i64 j = 0; j < d; ++j)
            s += double(r.merged[g * d + j]) * r.merged[g * d + j];
        sums.mergedNorms[g] = std::sqrt(s);
    }
    finishMetrics(sums, p, r);
}

void nearestKeptMetrics(const TokenSet& t, MergeResult& r) {
    Metrics& m = r.metrics;
    const i64 n = t.n, d = t.d, k = r.k;
    m.reconstructionErrorNearestKept = m.reconstructionError;
    m.meanCosineNearestKept = m.meanCosine;
    if (k < 1 || std::none_of(r.labels.begin(), r.labels.end(), [](i64 g) { return g < 0; }))
        return;
    const float* x = t.x.data();
    std::vector<double> mnorm(static_cast<std::size_t>(k));
    for (i64 g = 0; g < k; ++g) {
        double s = 0;
        for (i64 j = 0; j < d; ++j)
            s += double(r.merged[g * d + j]) * r.merged[g * d + j];
        mnorm[g] = std::sqrt(s);
    }
    std::vector<double> err2(static_cast<std::size_t>(n)), x2(err2.size()), cos(err2.size());
#pragma omp parallel for schedule(dynamic, 16)
    for (i64 i = 0; i < n; ++i) {
        const float* xi = x + i * d;
        i64 g = r.labels[i];
        if (g < 0) { // the kept token of largest cosine (first one on ties)
            double best = -std::numeric_limits<double>::infinity();
            for (i64 c = 0; c < k; ++c) {
                const float* mc = &r.merged[c * d];
                double dot = 0;
                for (i64 j = 0; j < d; ++j)
                    dot += double(xi[j]) * mc[j];
                const double score = mnorm[c] > 0 ? dot / mnorm[c] : 0.0;
                if (score > best) {
                    best = score;
                    g = c;
                }
            }
        }
        double e = 0, nx = 0;
        for (i64 j = 0; j < d; ++j) {
            const double u = r.merged[g * d + j];
            e += (xi[j] - u) * (xi[j] - u);
            nx += double(xi[j]) * xi[j];
        }
        err2[i] = e;
        x2[i] = nx;
        cos[i] = cosine(xi, &r.merged[g * d], d);
    }
    double e = 0, nx = 0, c = 0;
    for (i64 i = 0; i < n; ++i) {
        e += err2[i];
        nx += x2[i];
        c += cos[i];
    }
    m.reconstructionErrorNearestKept = nx > 0 ? std::sqrt(e / nx) : 0.0;
    m.meanCosineNearestKept = c / double(n);
}

void finishMetrics(const MetricSums& sums, const MergeParams& p, MergeResult& r) {
    Metrics& m = r.metrics;
    const i64 n = static_cast<i64>(sums.norms.size()), k = r.k;
    m.reconstructionError = sums.x2 > 0 ? std::sqrt(sums.err2 / sums.x2) : 0.0;
    m.meanCosine = sums.cosSum / double(n);
    m.normMassTopK = normMassTopKFromNorms(sums.norms, k);
    double normSum = 0, kept = 0;
    for (double v : sums.norms)
        normSum += v;
    for (i64 g = 0; g < k; ++g)
        kept += double(r.groupSizes[g]) * sums.mergedNorms[g];
    m.normMassRetention = normSum > 0 ? kept / normSum : 0.0;
    m.fidelityOk = m.normMassRetention >= p.gamma;
    double sAll = 0, sFg = 0;
    for (float s : r.saliency)
        sAll += s;
    for (i64 i : r.foreground)
        sFg += r.saliency[i];
    m.saliencyRetention = sAll > 0 ? sFg / sAll : 0.0;

    std::vector<i64> sizes = r.groupSizes;
    std::sort(sizes.begin(), sizes.end());
    m.groupSizeMin = sizes.empty() ? 0 : sizes.front();
    m.groupSizeMax = sizes.empty() ? 0 : sizes.back();
    const std::size_t h = sizes.size() / 2;
    m.groupSizeMedian = sizes.empty()      ? 0.0
                        : sizes.size() % 2 ? double(sizes[h])
                                           : 0.5 * double(sizes[h - 1] + sizes[h]);
    m.groupSizeHistogram.clear();
    for (i64 s : sizes) {
        if (s <= 0) continue;
        std::size_t b = 0;
        while ((i64(2) << b) <= s)
            ++b; // bin b holds sizes in [2^b, 2^(b+1))
        if (m.groupSizeHistogram.size() <= b) m.groupSizeHistogram.resize(b + 1, 0);
        ++m.groupSizeHistogram[b];
    }
}

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

} // namespace qmpp
