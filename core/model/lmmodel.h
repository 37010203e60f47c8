// The language model's weights and the prefix merge's decision (internal to core/model):
// shared by the CPU forward (lm.cpp) and the GPU one (lmgpu.cpp), so both merge alike.
#pragma once

#include "qmpp/hook.h"
#include "vitmodel.h"

#include "qmpp/lm.h"

#include <regex>

namespace qmpp {

struct LmBlock {
    Norm ln1, ln2;
    Linear qkv, proj, fc1, fc2;
};

struct LmModel {
    LmConfig cfg;
    std::vector<float> tok, pos; // [V, D], [context, D]
    Linear out;                  // the tied output embedding: tok as [V, D], no bias
    std::vector<LmBlock> blocks;
    Norm ln;
    std::regex words;
};

// InputError unless ids fit the model and the prefix merge its rules.
void checkLmInput(const LmModel& m, const std::vector<i64>& ids, const PrefixMerge& pm);
// The next word's cross-entropy of each scored row (row r at positions[r]; rows whose position
// is the last have none).
std::vector<double> nextWordLosses(const float* logits, const std::vector<i64>& positions,
                                   const std::vector<i64>& ids, i64 vocab);

// The merge at block pm.block of a sequence of t rows whose first pm.prefix are the prefix:
// from the prefix rows' attention entropies (head-averaged; QuickMerge++ only) and keys
// averaged over heads [prefix, dh], the plan that maps the prefix to pm.groups rows in order
// (by first member) and every following row to itself.
MergePlan prefixPlan(const LmConfig& c, const PrefixMerge& pm, i64 item, i64 t,
                     const std::vector<double>& entropy, const float* keysMean);
// Positions and counts after a plan: a row takes its last member's position and the sum of
// its members' counts.
void movePositions(const MergePlan& plan, std::vector<i64>& pos, std::vector<float>& counts);

} // namespace qmpp
