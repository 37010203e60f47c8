// View data for token sequences: spans, group order, similarity, PCA, per-layer saliency.
#include "qmpp/views.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace qmpp {

std::vector<TextSpan> mergedSpans(const std::vector<i64>& labels) {
    std::vector<TextSpan> spans;
    const i64 n = static_cast<i64>(labels.size());
    for (i64 i = 0; i < n;) {
        i64 j = i + 1;
        while (j < n && labels[j] == labels[i])
            ++j;
        if (labels[i] >= 0 && j - i >= 2) spans.push_back({i, j, labels[i]});
        i = j;
    }
    return spans;
}

std::vector<i64> groupOrder(const std::vector<i64>& labels) {
    std::vector<i64> order(labels.size());
    std::iota(order.begin(), order.end(), i64(0));
    auto key = [&](i64 i) { return labels[i] < 0 ? std::numeric_limits<i64>::max() : labels[i]; };
    std::stable_sort(order.begin(), order.end(), [&](i64 a, i64 b) { return key(a) < key(b); });
    return order;
}

SimilarityView similarityView(const TokenSet& t, const std::vector<i64>& labels, i64 maxSide) {
    if (static_cast<i64>(labels.size()) != t.n)
        throw UsageError("similarityView: labels do not match N");
    SimilarityView v;
    v.order = groupOrder(labels);
    maxSide = std::max<i64>(1, maxSide);
    v.block = (t.n + maxSide - 1) / maxSide;
    v.side = (t.n + v.block - 1) / v.block;
    // The mean cosine over a block pair is the dot product of the blocks' mean unit vectors,
    // so the view costs O(N D + side^2 D), never O(N^2 D).
    std::vector<double> mean(static_cast<std::size_t>(v.side * t.d), 0.0);
    for (i64 r = 0; r < t.n; ++r) {
        const float* x = t.x.data() + v.order[r] * t.d;
        double s = 0;
        for (i64 j = 0; j < t.d; ++j)
            s += double(x[j]) * x[j];
        const double inv = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
        double* m = mean.data() + (r / v.block) * t.d;
        for (i64 j = 0; j < t.d; ++j)
            m[j] += x[j] * inv;
    }
    for (i64 b = 0; b < v.side; ++b) {
        const double count = double(std::min(t.n, (b + 1) * v.block) - b * v.block);
        for (i64 j = 0; j < t.d; ++j)
            mean[b * t.d + j] /= count;
    }
    v.values.assign(static_cast<std::size_t>(v.side * v.side), 0.0f);
#pragma omp parallel for schedule(dynamic, 8)
    for (i64 a = 0; a < v.side; ++a)
        for (i64 b = 0; b <= a; ++b) {
            double s = 0;
            for (i64 j = 0; j < t.d; ++j)
                s += mean[a * t.d + j] * mean[b * t.d + j];
            v.values[a * v.side + b] = v.values[b * v.side + a] = float(s);
        }
    for (i64 r = 1; r < t.n; ++r)
        if (labels[v.order[r]] != labels[v.order[r - 1]])
            v.bounds.push_back(double(r) / double(v.block));
    return v;
}

namespace {

// y = C v with C the covariance of the centred rows (never formed: X^T (X v)).
void covTimes(const std::vector<double>& xc, i64 n, i64 d, const std::vector<double>& v,
              std::vector<double>& y) {
    std::vector<double> xv(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
    for (i64 i = 0; i < n; ++i) {
        double s = 0;
        for (i64 j = 0; j < d; ++j)
            s += xc[i * d + j] * v[j];
        xv[i] = s;
    }
    std::fill(y.begin(), y.end(), 0.0);
    for (i64 i = 0; i < n; ++i)
        for (i64 j = 0; j < d; ++j)
            y[j] += xc[i * d + j] * xv[i];
}

double normalize(std::vector<double>& v) {
    double s = 0;
    for (double a : v)
        s += a * a;
    s = std::sqrt(s);
    if (s > 0)
        for (double& a : v)
            a /= s;
    return s;
}

void projectRow(const PcaView& v, const float* x, float* out) {
    const std::size_t d = v.mean.size();
    for (std::size_t c = 0; c < 2; ++c) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j)
            s += (x[j] - v.mean[j]) * v.axes[c * d + j];
        out[c] = float(s);
    }
}

} // namespace

PcaView pcaView(const TokenSet& t, const std::vector<float>& merged, i64 k) {
    const i64 n = t.n, d = t.d;
    std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
    for (i64 i = 0; i < n; ++i)
        for (i64 j = 0; j < d; ++j)
            mean[j] += t.x[i * d + j];
    for (double& m : mean)
        m /= double(std::max<i64>(1, n));
    std::vector<double> xc(static_cast<std::size_t>(n * d));
    double total = 0;
    for (i64 i = 0; i < n; ++i)
        for (i64 j = 0; j < d; ++j) {
            xc[i * d + j] = t.x[i * d + j] - mean[j];
            total += xc[i * d + j] * xc[i * d + j];
        }
    std::vector<std::vector<double>> axes;
    PcaView v;
    for (int c = 0; c < 2; ++c) {
        std::vector<double> a(static_cast<std::size_t>(d)), y(static_cast<std::size_t>(d));
        for (i64 j = 0; j < d; ++j)
            a[j] = 1.0 + 0.01 * double((j * 7919 + c * 104729) % 101); // fixed start
        double lambda = 0;
        for (int it = 0; it < 200; ++it) {
            for (const auto& b : axes) { // deflate: stay orthogonal to the axes found
                double p = 0;
                for (i64 j = 0; j < d; ++j)
                    p += a[j] * b[j];
                for (i64 j = 0; j < d; ++j)
                    a[j] -= p * b[j];
            }
            if (normalize(a) == 0) break;
            covTimes(xc, n, d, a, y);
            for (const auto& b : axes) {
                double p = 0;
                for (i64 j = 0; j < d; ++j)
                    p += y[j] * b[j];
                for (i64 j = 0; j < d; ++j)
                    y[j] -= p * b[j];
            }
            const double next = normalize(y);
            double change = 0;
            for (i64 j = 0; j < d; ++j)
                change = std::max(change, std::abs(y[j] - a[j]));
            a.swap(y);
            lambda = next;
            if (change < 1e-8) break;
        }
        // a fixed sign: the largest component positive
        const auto big = std::max_element(
            a.begin(), a.end(), [](double p, double q) { return std::abs(p) < std::abs(q); });
        if (big != a.end() && *big < 0)
            for (double& e : a)
                e = -e;
        v.explained[c] = total > 0 ? lambda / total : 0.0;
        axes.push_back(std::move(a));
    }
    v.mean = std::move(mean);
    v.axes = axes[0];
    v.axes.insert(v.axes.end(), axes[1].begin(), axes[1].end());
    v.tokens.resize(static_cast<std::size_t>(n * 2));
    for (i64 i = 0; i < n; ++i)
        projectRow(v, t.x.data() + i * d, v.tokens.data() + i * 2);
    projectMerged(v, merged, k);
    return v;
}

void projectMerged(PcaView& v, const std::vector<float>& merged, i64 k) {
    v.merged.resize(static_cast<std::size_t>(k * 2));
    for (i64 g = 0; g < k; ++g)
        projectRow(v, merged.data() + g * v.mean.size(), v.merged.data() + g * 2);
}

std::vector<float> layerSaliency(const MergeResult& r, i64 layer) {
    if (layer < 0) return r.saliency;
    if (layer >= r.layers || static_cast<i64>(r.layerEntropy.size()) < r.layers * r.n)
        throw UsageError("layerSaliency: layer " + std::to_string(layer) + " of " +
                         std::to_string(r.layers));
    std::vector<double> h(r.layerEntropy.begin() + layer * r.n,
                          r.layerEntropy.begin() + (layer + 1) * r.n);
    return saliencyFromEntropy(h, 1, r.n);
}

std::uint32_t groupRgb(i64 group) {
    const double h = std::fmod(0.618033988749895 * double(group), 1.0) * 6, s = 0.75, v = 1.0;
    const int i = int(h) % 6;
    const double f = h - std::floor(h), p = v * (1 - s), q = v * (1 - s * f),
                 t = v * (1 - s * (1 - f));
    const double rgb[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    auto byte = [](double c) { return std::uint32_t(std::lround(std::clamp(c, 0.0, 1.0) * 255)); };
    return byte(rgb[i][0]) << 16 | byte(rgb[i][1]) << 8 | byte(rgb[i][2]);
}

std::vector<float> groupChange(const std::vector<i64>& a, const std::vector<i64>& b) {
    if (a.size() != b.size()) throw UsageError("groupChange: labellings of different lengths");
    const std::size_t n = a.size();
    // members of each group, in token order
    auto members = [n](const std::vector<i64>& l) {
        std::map<i64, std::vector<i64>> g;
        for (std::size_t i = 0; i < n; ++i)
            if (l[i] >= 0) g[l[i]].push_back(i64(i));
        return g;
    };
    const auto ga = members(a), gb = members(b);
    std::map<std::pair<i64, i64>, float> done; // (group in a, group in b) -> change
    std::vector<float> out(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i) {
        if (a[i] < 0 || b[i] < 0) {
            out[i] = (a[i] < 0) == (b[i] < 0) ? 0.0f : 1.0f;
            continue;
        }
        const auto key = std::make_pair(a[i], b[i]);
        if (auto it = done.find(key); it != done.end()) {
            out[i] = it->second;
            continue;
        }
        const auto& x = ga.at(a[i]);
        const auto& y = gb.at(b[i]);
        std::vector<i64> both;
        std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(both));
        const double jaccard = double(both.size()) / double(x.size() + y.size() - both.size());
        out[i] = done[key] = float(1.0 - jaccard);
    }
    return out;
}

std::string spanText(const std::vector<std::string>& tokens, const TextSpan& s) {
    std::string out;
    for (i64 i = s.begin; i < s.end; ++i) {
        if (!out.empty()) out += ' ';
        out += tokens.empty() ? std::to_string(i) : tokens[i];
    }
    return out;
}

std::vector<TextGroup> textGroups(const std::vector<std::string>& tokens,
                                  const std::vector<i64>& labels, i64 k) {
    std::vector<TextGroup> g(static_cast<std::size_t>(k));
    for (i64 i = 0; i < k; ++i)
        g[i].group = i;
    for (i64 i = 0; i < static_cast<i64>(labels.size()); ++i) {
        const i64 l = labels[i];
        if (l < 0 || l >= k) continue;
        if (!g[l].text.empty()) g[l].text += ' ';
        g[l].text += tokens.empty() ? std::to_string(i) : tokens[i];
        ++g[l].size;
    }
    return g;
}

} // namespace qmpp
