// What a forward's attention says, from a ForwardTrace (vit.h): the class token's attention,
// attention rollout composed through the merges, QuickMerge++'s saliency per block, and how well
// the saliency agrees with the other two. The studio's Model page draws these; the tests check
// them against cases computed by hand.
#pragma once

#include "qmpp/vit.h"

#include <string>
#include <vector>

namespace qmpp {

// How a block's heads become one attention matrix.
enum class HeadFusion { Mean, Max, Min };
const char* toString(HeadFusion f);
bool parse(const std::string& s, HeadFusion& out); // mean, max, min

// The block's heads [heads, T, T] fused into [T, T].
std::vector<double> fuseHeads(const BlockTrace& b, i64 heads, HeadFusion f);

// Attention rollout (Abnar & Zuidema 2020, as jacobgil/vit-explain computes it): per block the
// fused attention loses its `discard` fraction of smallest entries (never the class token's own
// entry), gains the identity, a / 2, and each row is normalized to sum 1; the blocks multiply.
// When a block merges, rows follow its plan: a merged row is its members' weighted mean (the
// same plan the residual stream took), so the product stays [T_b, 1 + N] at every block.
struct Rollout {
    std::vector<std::vector<double>> patches; // [block][N]: the class token's row after block b
    std::vector<std::vector<double>>
        tokens; // [block][T_b]: the same summed over each row's patches
};
Rollout rollout(const ForwardTrace& tr, i64 heads, i64 patches, HeadFusion f, double discard);

// Row `row`'s attention over the block's tokens [T]: one head, or (head < 0) their mean.
std::vector<double> tokenAttention(const BlockTrace& b, i64 heads, i64 row, i64 head = -1);
// QuickMerge++'s saliency of each row at the block [T] (the class token: 0).
std::vector<double> blockSaliency(const BlockTrace& b);
// Values per row [T] to values per patch [N] through the block's source map (dropped: NaN).
std::vector<double> toPatches(const BlockTrace& b, const std::vector<double>& perRow);

// Per block, over the non-class rows: Spearman (qmpp/ops.h) of QuickMerge++'s saliency with the
// class token's attention (mean over heads), and with the rollout's per-token relevance.
struct SaliencyAgreement {
    std::vector<double> withClassAttention, withRollout; // [block]
};
SaliencyAgreement saliencyAgreement(const ForwardTrace& tr, i64 heads, const Rollout& ro);

} // namespace qmpp
