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
