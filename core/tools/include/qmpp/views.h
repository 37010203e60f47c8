// What the studio's token views show, computed without Qt so the CLI and the tests see the same
// numbers: merged spans of a token sequence, the group order, the group-ordered similarity
// matrix, a 2-D PCA of tokens and merged tokens, and one layer's saliency.
#pragma once

#include "qmpp/types.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qmpp {

// A run of two or more consecutive tokens [begin, end) that merged into the same group. A group
// whose tokens are not contiguous makes a span for each such run; its lone tokens make none.
struct TextSpan {
    i64 begin = 0, end = 0;
    i64 group = 0;
};
std::vector<TextSpan> mergedSpans(const std::vector<i64>& labels);

// Token indices sorted by group (dropped tokens, label -1, last), then by position.
std::vector<i64> groupOrder(const std::vector<i64>& labels);

// The cosine-similarity matrix of the tokens with rows and columns in group order, averaged
// over blocks of ceil(N / maxSide) consecutive ordered tokens when N > maxSide.
struct SimilarityView {
    i64 side = 0;               // rows = columns of `values`
    i64 block = 1;              // ordered tokens per row
    std::vector<float> values;  // [side, side], row-major
    std::vector<i64> order;     // groupOrder(labels) [N]
    std::vector<double> bounds; // where one group ends and the next starts, in rows (side units)
};
SimilarityView similarityView(const TokenSet& t, const std::vector<i64>& labels,
                              i64 maxSide = 1024);

// The tokens' first two principal components (centred on the token mean, by power iteration
// with a fixed start, so deterministic), with the merged tokens projected on the same axes.
struct PcaView {
    std::vector<float> tokens;      // [N, 2]
    std::vector<float> merged;      // [K, 2]
    double explained[2] = {0, 0};   // fraction of the tokens' variance along each axis
    std::vector<double> mean, axes; // [D] and [2, D]: what projectMerged uses
};
PcaView pcaView(const TokenSet& t, const std::vector<float>& merged, i64 k);
// Replaces v.merged with these merged tokens [K, D] on v's axes (the axes depend on the tokens
// only, so a new merge of the same tokens reuses them).
void projectMerged(PcaView& v, const std::vector<float>& merged, i64 k);

// Layer `layer`'s entropies from MergeResult::layerEntropy [L, N] as a saliency in [0, 1]
// (low entropy = salient, min-max normalized like the combined saliency); layer -1 returns
// the combined saliency the pipeline used.
std::vector<float> layerSaliency(const MergeResult& r, i64 layer);

// A group's display colour, 0xRRGGBB: hues spaced by the golden ratio (saturation 0.75, value
// 1), shared by the studio and the HTML report.
std::uint32_t groupRgb(i64 group);

// Token strings and merged spans for report.json: {"tokens": [...], "spans": [{begin, end,
// group, text}], "groups": [{group, size, text}]}. Labels may be empty (indices are used).
struct TextGroup {
    i64 group = 0, size = 0;
    std::string text; // member tokens in order, joined by spaces
};
std::vector<TextGroup> textGroups(const std::vector<std::string>& tokens,
                                  const std::vector<i64>& labels, i64 k);
// How much each token's group changed between two labellings of the same tokens: 1 − the
// Jaccard index of its group in `a` and in `b` (0: the same members, 1: none shared). A token
// dropped (-1) in both is unchanged; dropped in one only, changed.
std::vector<float> groupChange(const std::vector<i64>& a, const std::vector<i64>& b);

std::string spanText(const std::vector<std::string>& tokens, const TextSpan& s);

} // namespace qmpp
