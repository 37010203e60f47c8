// explain.h: class attention, rollout through merges, saliency and its rank agreement.
#include "qmpp/explain.h"

#include "qmpp/hook.h"
#include "qmpp/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace qmpp {

const char* toString(HeadFusion f) {
    switch (f) {
    case HeadFusion::Mean:
        return "mean";
    case HeadFusion::Max:
        return "max";
    case HeadFusion::Min:
        return "min";
    }
    return "?";
}

bool parse(const std::string& s, HeadFusion& out) {
    for (HeadFusion f : {HeadFusion::Mean, HeadFusion::Max, HeadFusion::Min})
        if (s == toString(f)) {
            out = f;
            return true;
        }
    return false;
}

std::vector<double> fuseHeads(const BlockTrace& b, i64 heads, HeadFusion f) {
    const i64 t = b.tokens, tt = t * t;
    std::vector<double> out(static_cast<std::size_t>(tt));
    for (i64 k = 0; k < tt; ++k) {
        double v = b.attention[static_cast<std::size_t>(k)];
        for (i64 h = 1; h < heads; ++h) {
            const double a = b.attention[static_cast<std::size_t>(h * tt + k)];
            v = f == HeadFusion::Mean  ? v + a
                : f == HeadFusion::Max ? std::max(v, a)
                                       : std::min(v, a);
        }
        out[static_cast<std::size_t>(k)] = f == HeadFusion::Mean ? v / double(heads) : v;
    }
    return out;
}

Rollout rollout(const ForwardTrace& tr, i64 heads, i64 patches, HeadFusion f, double discard) {
    Rollout ro;
    const i64 cols = patches + 1;
    // rows of the running product, one per token entering the block: [T, 1 + N]
    std::vector<double> r(static_cast<std::size_t>(cols * cols), 0.0);
    for (i64 i = 0; i < cols; ++i)
        r[i * cols + i] = 1.0;
    for (const BlockTrace& b : tr.blocks) {
        const i64 t = b.tokens;
        std::vector<double> a = fuseHeads(b, heads, f);
        const i64 drop = static_cast<i64>(double(t * t) * std::clamp(discard, 0.0, 1.0));
        if (drop > 0) {
            std::vector<i64> idx(static_cast<std::size_t>(t * t));
            std::iota(idx.begin(), idx.end(), 0);
            std::partial_sort(idx.begin(), idx.begin() + drop, idx.end(),
                              [&](i64 x, i64 y) { return a[x] < a[y] || (a[x] == a[y] && x < y); });
            for (i64 k = 0; k < drop; ++k)
                if (idx[k] != 0) a[idx[k]] = 0.0;
        }
        for (i64 i = 0; i < t; ++i) {
            double sum = 0;
            for (i64 j = 0; j < t; ++j) {
                double& v = a[i * t + j];
                v = (v + (i == j ? 1.0 : 0.0)) / 2.0;
                sum += v;
            }
            for (i64 j = 0; j < t; ++j)
                a[i * t + j] /= sum;
        }
        std::vector<double> next(static_cast<std::size_t>(t * cols), 0.0);
        for (i64 i = 0; i < t; ++i)
            for (i64 k = 0; k < t; ++k) {
                const double w = a[i * t + k];
                if (w == 0) continue;
                for (i64 j = 0; j < cols; ++j)
                    next[i * cols + j] += w * r[k * cols + j];
            }
        ro.patches.emplace_back(next.begin() + 1, next.begin() + cols);
        std::vector<double> tok(static_cast<std::size_t>(t), 0.0);
        for (i64 p = 0; p < patches && p < i64(b.owner.size()); ++p)
            if (b.owner[p] >= 0) tok[b.owner[p]] += ro.patches.back()[p];
        ro.tokens.push_back(std::move(tok));
        // the merge: merged rows are their members' weighted means, as in the residual stream
        MergePlan plan;
        plan.tIn = t;
        plan.tOut = b.tokensOut;
        plan.newRow = b.newRow;
        plan.weight = b.weight;
        std::vector<double> merged;
        applyPlan(plan, next.data(), cols, merged);
        r.swap(merged);
    }
    return ro;
}

std::vector<double> tokenAttention(const BlockTrace& b, i64 heads, i64 row, i64 head) {
    const i64 t = b.tokens;
    std::vector<double> out(static_cast<std::size_t>(t), 0.0);
    if (row < 0 || row >= t) return out;
    const i64 h0 = head < 0 ? 0 : head, h1 = head < 0 ? heads : head + 1;
    for (i64 h = h0; h < h1; ++h)
        for (i64 j = 0; j < t; ++j)
            out[j] += b.attention[static_cast<std::size_t>((h * t + row) * t + j)];
    for (double& v : out)
        v /= double(h1 - h0);
    return out;
}

std::vector<double> blockSaliency(const BlockTrace& b) {
    const std::vector<float> s = entropySaliency(b.entropy);
    std::vector<double> out(static_cast<std::size_t>(b.tokens), 0.0);
    for (std::size_t i = 0; i < s.size(); ++i)
        out[i + 1] = s[i];
    return out;
}

std::vector<double> toPatches(const BlockTrace& b, const std::vector<double>& perRow) {
    std::vector<double> out(b.owner.size(), std::numeric_limits<double>::quiet_NaN());
    for (std::size_t p = 0; p < b.owner.size(); ++p)
        if (b.owner[p] >= 0 && std::size_t(b.owner[p]) < perRow.size())
            out[p] = perRow[static_cast<std::size_t>(b.owner[p])];
    return out;
}

SaliencyAgreement saliencyAgreement(const ForwardTrace& tr, i64 heads, const Rollout& ro) {
    SaliencyAgreement out;
    for (std::size_t l = 0; l < tr.blocks.size(); ++l) {
        const BlockTrace& b = tr.blocks[l];
        const std::vector<double> s = blockSaliency(b), cls = tokenAttention(b, heads, 0);
        const std::vector<double> sal(s.begin() + 1, s.end()), ca(cls.begin() + 1, cls.end());
        out.withClassAttention.push_back(spearman(sal, ca));
        const std::vector<double>& rt = ro.tokens[l];
        out.withRollout.push_back(spearman(sal, {rt.begin() + 1, rt.end()}));
    }
    return out;
}

} // namespace qmpp
