// Step 4: clustering tokens into K groups by cosine similarity.
#include "parallel.h"
#include "qmpp/error.h"
#include "qmpp/ops.h"
#include "qmpp/progress.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace qmpp {

namespace {

std::vector<double> rowNorms(const float* x, i64 n, i64 d) {
    std::vector<double> nrm(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) {
        double s = 0;
        for (i64 j = 0; j < d; ++j)
            s += double(x[i * d + j]) * x[i * d + j];
        nrm[i] = std::sqrt(s);
    }
    return nrm;
}

// Each token's most similar centre (ties: lower centre index); founders keep their group.
// centres: [K, D], unit length or zero.
void assign(const float* x, i64 n, i64 d, const std::vector<float>& centres, i64 k,
            const std::vector<i64>& founderOf, std::vector<i64>& labels) {
    const i64 blocks = (n + kRowBlock - 1) / kRowBlock;
    const PackedRows cp = packRows(centres.data(), k, d);
    // every thread's scratch, allocated here (see parallel.h)
    const std::size_t each = static_cast<std::size_t>(kRowBlock * k);
    std::vector<float> scoresAll(each * static_cast<std::size_t>(par::maxThreads()));
    const std::atomic<int>* const stop = stopFlag();
#pragma omp parallel
    {
        float* const scores = scoresAll.data() + each * std::size_t(par::threadId());
#pragma omp for schedule(static)
        for (i64 b = 0; b < blocks; ++b) {
            if (stopRequested(stop)) continue; // superseded: the rest is skipped
            const i64 i0 = b * kRowBlock, rows = std::min(kRowBlock, n - i0);
            // cos(x_i, c) = x_i . c / ||x_i|| for unit c: the argmax needs no division.
            gemmPacked(x + i0 * d, rows, cp, scores);
            for (i64 r = 0; r < rows; ++r) {
                const i64 i = i0 + r;
                if (founderOf[i] >= 0) {
                    labels[i] = founderOf[i];
                    continue;
                }
                const float* row = scores + r * k;
                labels[i] = std::max_element(row, row + k) - row; // first maximum: lower centre
            }
        }
    }
    throwIfStopped(); // skipped blocks left labels unset: nothing may read them
}

void normalizeRows(std::vector<double>& acc, i64 k, i64 d, std::vector<float>& out) {
    out.assign(static_cast<std::size_t>(k * d), 0.0f);
    for (i64 c = 0; c < k; ++c) {
        double s = 0;
        for (i64 j = 0; j < d; ++j)
            s += acc[c * d + j] * acc[c * d + j];
        if (s <= 0) continue; // zero centre: similarity 0 to everything
        const double inv = 1.0 / std::sqrt(s);
        for (i64 j = 0; j < d; ++j)
            out[c * d + j] = static_cast<float>(acc[c * d + j] * inv);
    }
}

std::vector<i64> cutLabels(const std::vector<std::pair<i64, i64>>& merges, i64 n, i64 k) {
    // Union-find over slots, applying the first N - K merges (in height order), as scipy's
    // label() followed by scikit-learn's _hc_cut does.
    std::vector<i64> parent(static_cast<std::size_t>(n));
    std::iota(parent.begin(), parent.end(), i64(0));
    auto find = [&](i64 a) {
        while (parent[a] != a)
            a = parent[a] = parent[parent[a]];
        return a;
    };
    for (i64 m = 0; m < n - k; ++m) {
        const i64 a = find(merges[m].first), b = find(merges[m].second);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
    }
    std::vector<i64> id(static_cast<std::size_t>(n), -1), labels(static_cast<std::size_t>(n));
    i64 next = 0;
    for (i64 i = 0; i < n; ++i) {
        const i64 r = find(i);
        if (id[r] < 0) id[r] = next++;
        labels[i] = id[r];
    }
    return labels;
}

double dotd(const float* a, const float* b, i64 d) {
    double s = 0;
    for (i64 j = 0; j < d; ++j)
        s += double(a[j]) * b[j];
    return s;
}

// Full cosine-similarity matrix [N, N] in double.
std::vector<double> cosineMatrix(const float* x, i64 n, i64 d) {
    const auto nrm = rowNorms(x, n, d);
    std::vector<double> s(static_cast<std::size_t>(n * n));
#pragma omp parallel for schedule(dynamic, 16)
    for (i64 i = 0; i < n; ++i)
        for (i64 j = i; j < n; ++j) {
            const double den = nrm[i] * nrm[j];
            const double c = den > 0 ? dotd(x + i * d, x + j * d, d) / den : 0.0;
            s[i * n + j] = s[j * n + i] = c;
        }
    return s;
}

} // namespace

void checkExactSize(i64 n, const char* method) {
    if (n > maxExactClusterN())
        throw UsageError(std::string("--cluster ") + method + " needs an N x N matrix; N = " +
                         std::to_string(n) + " exceeds its limit of " +
                         std::to_string(maxExactClusterN()) + " tokens: use --cluster seeded");
}

i64 maxExactClusterN() {
    return 16384;
} // N^2 doubles = 2 GiB

std::vector<i64> clusterSeeded(const float* x, i64 n, i64 d, const std::vector<float>& mass,
                               const std::vector<i64>& foreground, int refine, int* rounds) {
    const i64 k = static_cast<i64>(foreground.size());
    std::vector<i64> founderOf(static_cast<std::size_t>(n), -1);
    std::vector<double> acc(static_cast<std::size_t>(k * d));
    for (i64 c = 0; c < k; ++c) {
        founderOf[foreground[c]] = c;
        for (i64 j = 0; j < d; ++j)
            acc[c * d + j] = x[foreground[c] * d + j];
    }
    std::vector<float> centres;
    normalizeRows(acc, k, d, centres);
    std::vector<i64> labels(static_cast<std::size_t>(n));
    assign(x, n, d, centres, k, founderOf, labels);
    if (rounds) *rounds = 0;
    for (int r = 0; r < refine; ++r) {
        if (rounds) *rounds = r + 1;
        // Centre = normalized mass-weighted mean of its group (the direction of its merge).
        std::fill(acc.begin(), acc.end(), 0.0);
        for (i64 i = 0; i < n; ++i)
            for (i64 j = 0; j < d; ++j)
                acc[labels[i] * d + j] += double(mass[i]) * x[i * d + j];
        normalizeRows(acc, k, d, centres);
        std::vector<i64> next(labels.size());
        assign(x, n, d, centres, k, founderOf, next);
        const bool same = next == labels;
        labels.swap(next);
        if (same) break; // converged: further rounds change nothing
    }
    return labels;
}

std::vector<i64> averageLinkageCut(std::vector<double>& dist, i64 n, i64 k) {
    // scipy.cluster.hierarchy's nn_chain, step for step, so that ties resolve as there.
    std::vector<i64> size(static_cast<std::size_t>(n), 1), chain;
    struct Merge {
        i64 x, y;
        double h;
    };
    std::vector<Merge> merges;
    merges.reserve(static_cast<std::size_t>(std::max<i64>(n - 1, 0)));
    chain.reserve(static_cast<std::size_t>(n));
    for (i64 step = 0; step + 1 < n; ++step) {
        if (step % 64 == 0) throwIfStopped();
        if (chain.empty())
            for (i64 i = 0; i < n; ++i)
                if (size[i] > 0) {
                    chain.push_back(i);
                    break;
                }
        i64 x = 0, y = 0;
        double cur = 0;
        for (;;) {
            x = chain.back();
            if (chain.size() > 1) {
                y = chain[chain.size() - 2]; // prefer the previous element: no cycles
                cur = dist[x * n + y];
            } else {
                y = -1;
                cur = std::numeric_limits<double>::infinity();
            }
            const double* row = dist.data() + x * n;
            for (i64 i = 0; i < n; ++i) {
                if (size[i] == 0 || i == x) continue;
                if (row[i] < cur) {
                    cur = row[i];
                    y = i;
                }
            }
            if (chain.size() > 1 && y == chain[chain.size() - 2]) break;
            chain.push_back(y);
        }
        chain.resize(chain.size() - 2);
        if (x > y) std::swap(x, y);
        const i64 nx = size[x], ny = size[y];
        merges.push_back({x, y, cur});
        size[x] = 0;
        size[y] = nx + ny;
        for (i64 i = 0; i < n; ++i) {
            if (size[i] == 0 || i == y) continue;
            const double v =
                (double(nx) * dist[i * n + x] + double(ny) * dist[i * n + y]) / double(nx + ny);
            dist[i * n + y] = dist[y * n + i] = v;
        }
    }
    std::stable_sort(merges.begin(), merges.end(),
                     [](const Merge& a, const Merge& b) { return a.h < b.h; });
    std::vector<std::pair<i64, i64>> pairs;
    pairs.reserve(merges.size());
    for (const auto& m : merges)
        pairs.emplace_back(m.x, m.y);
    return cutLabels(pairs, n, k);
}

std::vector<i64> clusterAgglomerative(const float* x, i64 n, i64 d, i64 k) {
    checkExactSize(n, "agglomerative");
    std::vector<double> dist = cosineMatrix(x, n, d);
    for (auto& v : dist)
        v = 1.0 - v;
    return averageLinkageCut(dist, n, k);
}

std::vector<i64> clusterReference(const float* x, i64 n, i64 d, i64 k) {
    checkExactSize(n, "reference");
    const std::vector<double> s = cosineMatrix(x, n, d);
    // Rows of S are the feature vectors; Euclidean distance between them, as pdist computes it.
    std::vector<double> dist(static_cast<std::size_t>(n * n), 0.0);
#pragma omp parallel for schedule(dynamic, 8)
    for (i64 i = 0; i < n; ++i)
        for (i64 j = i + 1; j < n; ++j) {
            double acc = 0;
            const double* a = s.data() + i * n;
            const double* b = s.data() + j * n;
            for (i64 t = 0; t < n; ++t)
                acc += (a[t] - b[t]) * (a[t] - b[t]);
            dist[i * n + j] = dist[j * n + i] = std::sqrt(acc);
        }
    return averageLinkageCut(dist, n, k);
}

} // namespace qmpp
