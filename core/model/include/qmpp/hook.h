// The merge hook between attention and MLP (SPEC "Model in the loop"): which block merges how
// many tokens, and each method's merge of the residual stream, with the tokens' counts and the
// source map. vitForward, the GPU forward and the Python package's timm patch all decide by it.
#pragma once

#include "qmpp/vit.h"

#include <algorithm>
#include <vector>

namespace qmpp {

struct HookNeeds {
    bool entropy = false; // QuickMerge++: per-query attention entropy
    bool clsAttn = false; // top-K: the class token's attention
};
HookNeeds hookNeeds(ModelMethod m, i64 r);

// out[i] = mean over heads of perHead [heads, T]
void meanOverHeads(const std::vector<double>& perHead, i64 nh, i64 t, double* out);
// A block's FLOPs (BlockStat::flops) when tIn tokens enter and tOut leave its merge.
double blockFlops(const VitConfig& c, i64 tIn, i64 tOut);

// QuickMerge++'s saliency of the non-class tokens from their attention entropies [T] (entry 0,
// the class token, is skipped): 1 - min-max normalized entropy; a constant row gives 0.
std::vector<float> entropySaliency(const std::vector<double>& entropy);

// One block's merge, decided: row i of the tIn rows goes to row newRow[i] of tOut (-1: pruned),
// each output row the weighted mean of its members (plain mean when the weights sum to 0).
// The CPU applies it with applyPlan, the GPU with kernels::vit::mergeRows.
struct MergePlan {
    i64 tIn = 0, tOut = 0;
    std::vector<std::int32_t> newRow; // [tIn]
    std::vector<float> weight;        // [tIn]
};
// x [tIn, d] -> out [tOut, d], sums in double (float rows: the residual stream; double rows:
// the rollout's product, explain.cpp)
template <class T> void applyPlan(const MergePlan& plan, const T* x, i64 d, std::vector<T>& out) {
    std::vector<double> acc(static_cast<std::size_t>(plan.tOut * d), 0.0), plain(acc.size(), 0.0);
    std::vector<double> wsum(static_cast<std::size_t>(plan.tOut), 0.0);
    std::vector<i64> members(wsum.size(), 0);
    for (i64 i = 0; i < plan.tIn; ++i) {
        const i64 g = plan.newRow[static_cast<std::size_t>(i)];
        if (g < 0) continue;
        const double w = plan.weight[static_cast<std::size_t>(i)];
        wsum[g] += w;
        ++members[g];
        for (i64 f = 0; f < d; ++f) {
            acc[g * d + f] += w * x[i * d + f];
            plain[g * d + f] += x[i * d + f];
        }
    }
    out.resize(acc.size());
    for (i64 g = 0; g < plan.tOut; ++g) {
        const bool weighted = wsum[g] > 0;
        const double den = weighted ? wsum[g] : double(std::max<i64>(members[g], 1));
        const double* src = (weighted ? acc.data() : plain.data()) + g * d; // d may be 0
        for (i64 f = 0; f < d; ++f)
            out[g * d + f] = static_cast<T>(src[f] / den);
    }
}

class HookState {
  public:
    HookState(const VitConfig& c, const HookParams& hp, i64 item, bool sources);
    i64 tokens() const { return m_tokens; } // class token included
    // Tokens block `block` merges away, after the method's limit: ToMe merges at most half of
    // the non-class tokens per block (its bipartite split), the others keep at least one.
    i64 mergeCount(i64 block) const;
    // ln(count) biases the attention logits once a merge made counts differ from 1.
    const float* countsOrNull() const { return m_merged ? m_counts.data() : nullptr; }
    // x [T, D] becomes [T - r, D]; qkv [T, 3D] gives the keys; entropy [T] or clsAttn [T]
    // as hookNeeds asked. The same as plan, applyPlan and commit.
    // Returns the plan it applied.
    MergePlan apply(i64 block, i64 r, std::vector<float>& x, const std::vector<float>& qkv,
                    const std::vector<double>& entropy, const std::vector<double>& clsAttn);
    // The decision alone, from the keys averaged over heads [T, dh] and what hookNeeds asked
    // (head-averaged, [T] each); then commit moves the counts and the source map along.
    MergePlan plan(i64 block, i64 r, const float* keysMean, const std::vector<double>& entropy,
                   const std::vector<double>& clsAttn) const;
    void commit(const MergePlan& plan);
    const std::vector<std::int32_t>& owner() const { return m_owner; }
    const std::vector<float>& counts() const { return m_counts; }

  private:
    const VitConfig& m_cfg;
    const HookParams& m_hp;
    i64 m_item;
    std::vector<i64> m_plan; // r per block from the schedule (budget: resolved when reached)
    i64 m_tokens;
    bool m_merged = false;
    bool m_sources;
    std::vector<float> m_counts;       // [T]
    std::vector<std::int32_t> m_owner; // [N] patch -> row, -1 dropped

    void remap(const std::vector<std::int32_t>& newRow);      // old row -> new row (-1 dropped)
    std::vector<float> blockUniforms(i64 block, i64 n) const; // the Gumbel uniforms of a block
};

} // namespace qmpp
