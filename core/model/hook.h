// The merge hook between attention and MLP (SPEC "Model in the loop"), internal to core/model:
// which block merges how many tokens, and each method's merge of the residual stream, with the
// tokens' counts and the source map.
#pragma once

#include "qmpp/vit.h"

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

// One block's merge, decided: row i of the tIn rows goes to row newRow[i] of tOut (-1: pruned),
// each output row the weighted mean of its members (plain mean when the weights sum to 0).
// The CPU applies it with applyPlan, the GPU with kernels::vit::mergeRows.
struct MergePlan {
    i64 tIn = 0, tOut = 0;
    std::vector<std::int32_t> newRow; // [tIn]
    std::vector<float> weight;        // [tIn]
};
// x [tIn, d] -> out [tOut, d]
void applyPlan(const MergePlan& plan, const float* x, i64 d, std::vector<float>& out);

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
    void apply(i64 block, i64 r, std::vector<float>& x, const std::vector<float>& qkv,
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
