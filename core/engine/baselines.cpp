// Baselines on the same input, K and result type: ToMe's bipartite soft matching (as
// facebookresearch/ToMe tome/merge.py), top-K saliency pruning, and random K pruning.
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qmpp {

namespace {

struct Slot {
    std::vector<double> x;    // size-weighted sum of the tokens merged here
    double size = 1;          // tokens merged here (ToMe's `size`)
    std::vector<i64> sources; // original token indices
    i64 survivor = 0;         // the original token whose slot this is
};

} // namespace

std::vector<i64> tomeMerge(const float* x, i64 n, i64 d, i64 k, std::vector<float>& merged,
                           std::vector<i64>& sizes, std::vector<i64>& survivors) {
    std::vector<Slot> cur(static_cast<std::size_t>(n));
    for (i64 i = 0; i < n; ++i) {
        cur[i].x.assign(x + i * d, x + (i + 1) * d);
        cur[i].sources = {i};
        cur[i].survivor = i;
    }
    while (static_cast<i64>(cur.size()) > k) {
        const i64 len = static_cast<i64>(cur.size());
        const i64 r = std::min(len / 2, len - k);
        if (r <= 0) break;
        // metric: the current (merged) tokens normalized; A = [0::2], B = [1::2]
        auto unit = [&](const Slot& s) {
            std::vector<double> u(s.x.size());
            double nn = 0;
            for (std::size_t j = 0; j < s.x.size(); ++j)
                nn += (s.x[j] / s.size) * (s.x[j] / s.size);
            nn = std::sqrt(nn);
            for (std::size_t j = 0; j < s.x.size(); ++j)
                u[j] = nn > 0 ? s.x[j] / s.size / nn : 0.0;
            return u;
        };
        std::vector<i64> a, b;
        for (i64 i = 0; i < len; ++i)
            (i % 2 ? b : a).push_back(i);
        std::vector<std::vector<double>> ua, ub;
        for (i64 i : a)
            ua.push_back(unit(cur[i]));
        for (i64 i : b)
            ub.push_back(unit(cur[i]));
        // node_max, node_idx = (a @ b^T).max(dim=-1): each A token's most similar B token
        std::vector<double> nodeMax(a.size());
        std::vector<i64> nodeIdx(a.size());
        for (std::size_t i = 0; i < a.size(); ++i) {
            double best = -INFINITY;
            i64 bi = 0;
            for (std::size_t j = 0; j < b.size(); ++j) {
                double s = 0;
                for (i64 f = 0; f < d; ++f)
                    s += ua[i][f] * ub[j][f];
                if (s > best) { // first maximum, as torch.max
                    best = s;
                    bi = static_cast<i64>(j);
                }
            }
            nodeMax[i] = best;
            nodeIdx[i] = bi;
        }
        // edge_idx = node_max.argsort(descending=True); the r best edges merge
        std::vector<i64> edge(a.size());
        std::iota(edge.begin(), edge.end(), i64(0));
        std::stable_sort(edge.begin(), edge.end(),
                         [&](i64 p, i64 q) { return nodeMax[p] > nodeMax[q]; });
        std::vector<Slot> dst;
        for (i64 j : b)
            dst.push_back(std::move(cur[j]));
        for (i64 e = 0; e < r; ++e) { // src -> dst by size-weighted sum (merge_wavg)
            Slot& src = cur[a[edge[e]]];
            Slot& t = dst[nodeIdx[edge[e]]];
            for (i64 f = 0; f < d; ++f)
                t.x[f] += src.x[f];
            t.size += src.size;
            t.sources.insert(t.sources.end(), src.sources.begin(), src.sources.end());
        }
        // next round's order: unmerged A (descending best score), then B in order
        std::vector<Slot> next;
        for (std::size_t e = static_cast<std::size_t>(r); e < edge.size(); ++e)
            next.push_back(std::move(cur[a[edge[e]]]));
        for (auto& s : dst)
            next.push_back(std::move(s));
        cur.swap(next);
    }
    // final order: by smallest source index, like QuickMerge++
    for (auto& s : cur)
        std::sort(s.sources.begin(), s.sources.end());
    std::sort(cur.begin(), cur.end(),
              [](const Slot& p, const Slot& q) { return p.sources[0] < q.sources[0]; });
    const i64 kk = static_cast<i64>(cur.size());
    merged.assign(static_cast<std::size_t>(kk * d), 0.0f);
    sizes.assign(static_cast<std::size_t>(kk), 0);
    survivors.clear();
    std::vector<i64> labels(static_cast<std::size_t>(n), -1);
    for (i64 g = 0; g < kk; ++g) {
        for (i64 f = 0; f < d; ++f)
            merged[g * d + f] = static_cast<float>(cur[g].x[f] / cur[g].size);
        sizes[g] = static_cast<i64>(cur[g].sources.size());
        survivors.push_back(cur[g].survivor);
        for (i64 i : cur[g].sources)
            labels[i] = g;
    }
    std::sort(survivors.begin(), survivors.end());
    return labels;
}

std::vector<i64> pruneKeep(const float* x, i64 n, i64 d, const std::vector<i64>& keep,
                           std::vector<float>& merged, std::vector<i64>& sizes) {
    std::vector<i64> labels(static_cast<std::size_t>(n), -1);
    merged.clear();
    sizes.assign(keep.size(), 1);
    for (std::size_t g = 0; g < keep.size(); ++g) {
        labels[keep[g]] = static_cast<i64>(g);
        merged.insert(merged.end(), x + keep[g] * d, x + (keep[g] + 1) * d);
    }
    (void)n;
    return labels;
}

} // namespace qmpp

namespace qmpp {

void tomeRound(const float* metric, i64 dm, const float* x, i64 d, const float* counts, i64 n,
               i64 r, bool classToken, float* merged, float* mergedCounts, std::int32_t* slot) {
    // a, b = metric[::2], metric[1::2], normalized; scores = a b^T, the class token's row -inf
    const i64 na = (n + 1) / 2, nb = n / 2;
    auto unit = [&](i64 i) {
        std::vector<double> u(static_cast<std::size_t>(dm));
        double nn = 0;
        for (i64 f = 0; f < dm; ++f)
            nn += double(metric[i * dm + f]) * metric[i * dm + f];
        nn = std::sqrt(nn);
        for (i64 f = 0; f < dm; ++f)
            u[f] = nn > 0 ? metric[i * dm + f] / nn : 0.0;
        return u;
    };
    std::vector<std::vector<double>> ub;
    for (i64 j = 0; j < nb; ++j)
        ub.push_back(unit(2 * j + 1));
    std::vector<double> nodeMax(static_cast<std::size_t>(na), -INFINITY);
    std::vector<i64> nodeIdx(static_cast<std::size_t>(na), 0);
    for (i64 i = 0; i < na; ++i) {
        const auto ua = unit(2 * i);
        for (i64 j = 0; j < nb; ++j) {
            double s = 0;
            for (i64 f = 0; f < dm; ++f)
                s += ua[f] * ub[j][f];
            if (classToken && i == 0) s = -INFINITY;
            if (j == 0 || s > nodeMax[i]) { // first maximum, as torch.max
                nodeMax[i] = s;
                nodeIdx[i] = j;
            }
        }
    }
    std::vector<i64> edge(static_cast<std::size_t>(na));
    std::iota(edge.begin(), edge.end(), i64(0));
    std::stable_sort(edge.begin(), edge.end(),
                     [&](i64 p, i64 q) { return nodeMax[p] > nodeMax[q]; });
    std::vector<i64> unm(edge.begin() + r, edge.end());
    if (classToken) std::sort(unm.begin(), unm.end()); // the class token stays first
    // output rows: unmerged A, then B; merged A tokens go to their B
    const i64 nu = static_cast<i64>(unm.size());
    for (i64 u = 0; u < nu; ++u)
        slot[2 * unm[u]] = static_cast<std::int32_t>(u);
    for (i64 j = 0; j < nb; ++j)
        slot[2 * j + 1] = static_cast<std::int32_t>(nu + j);
    for (i64 e = 0; e < r; ++e)
        slot[2 * edge[e]] = static_cast<std::int32_t>(nu + nodeIdx[edge[e]]);
    // merge_wavg: sums of x * size and of size, then the division
    const i64 k = n - r;
    std::vector<double> acc(static_cast<std::size_t>(k * d), 0.0), size(k, 0.0);
    for (i64 i = 0; i < n; ++i) {
        const double c = counts ? counts[i] : 1.0;
        size[slot[i]] += c;
        for (i64 f = 0; f < d; ++f)
            acc[slot[i] * d + f] += c * x[i * d + f];
    }
    for (i64 g = 0; g < k; ++g) {
        mergedCounts[g] = static_cast<float>(size[g]);
        for (i64 f = 0; f < d; ++f)
            merged[g * d + f] = static_cast<float>(size[g] > 0 ? acc[g * d + f] / size[g] : 0.0);
    }
}

} // namespace qmpp
