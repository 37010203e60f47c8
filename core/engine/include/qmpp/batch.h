// One merge step on a batch of token sequences, as a transformer calls it between blocks (SPEC
// "Model in the loop"): tokens [B, N, D] with a count per token and each item's own N, on the
// host or already on the device. The flow (mergeStep, engine.cpp) is the pipeline's own order,
// saliency -> mask -> mass -> clusters -> merge, over BatchStages that a backend implements.
#pragma once

#include "qmpp/types.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qmpp {

enum class Memory { Host, Device };
const char* toString(Memory m);

// The step's input. Every pointer lives in `memory`; x and metric are stored in `precision`
// (FP16: IEEE half, device only), every other array in float.
struct TokenBatch {
    i64 b = 0, n = 0, d = 0; // [B, N, D]; item i holds its first itemN[i] rows
    Memory memory = Memory::Host;
    Precision precision = Precision::FP32;
    const void* x = nullptr;         // [B, N, D]: the tokens merged
    const void* metric = nullptr;    // [B, N, metricDim]: what clustering compares (null: x)
    i64 metricDim = 0;               // 0: D
    const float* counts = nullptr;   // [B, N]: original tokens each holds (null: all 1)
    const float* saliency = nullptr; // [B, N] in [0, 1]: given (the model's), or null
    const float* entropy = nullptr;  // [B, N]: attention entropies; s = 1 - minmax over the item
    std::vector<i64> itemN;          // [B] on the host; empty: every item has N
    // The first keepFirst tokens of every item (a ViT's class token) are never merged or
    // pruned: they keep their rows at the front. ToMe still pairs them, as its patch does.
    i64 keepFirst = 0;
    i64 itemTokens(i64 i) const { return itemN.empty() ? n : itemN[std::size_t(i)]; }
};

struct StepParams {
    Method method = Method::QuickMerge;
    std::vector<i64> k; // [B]: tokens item i keeps, kept-first ones included; k_i <= n_i
    double temperature = 0.1, epsilon = 0.01;
    double gumbelScale = 1.0; // G: keys = s + G g (1: the seed's method; 0: deterministic)
    std::uint64_t seed = 0;
    std::vector<std::uint64_t> offset; // [B]: Philox offset of item i's uniforms (empty: 0)
    int refine = 3;
    i64 kMax() const;
};

// The step's output, allocated by the caller in the batch's memory.
struct StepOutput {
    void* merged = nullptr;         // [B, kMax, D] in the batch's precision; rows past k_i are zero
    float* counts = nullptr;        // [B, kMax]: the counts each merged token holds (0 past k_i)
    std::int32_t* labels = nullptr; // [B, N]: row of item i's merged tokens, -1 when dropped
                                    // (pruning) or past n_i
    float* saliency = nullptr;      // optional [B, N]: s as used (0 past n_i)
    float* mass = nullptr;          // optional [B, N]: m = pi s + (1 - pi) eps (QuickMerge)
};

class BatchStages {
  public:
    virtual ~BatchStages() = default;
    virtual std::string name() const = 0;
    virtual Memory memory() const = 0; // where its inputs and outputs live
    virtual void begin(const TokenBatch& in, const StepParams& p, const StepOutput& out) = 0;
    // s per item: given, or 1 - minmax(entropy) over the item's tokens; top-K pruning and
    // QuickMerge++ read it.
    virtual void saliency() = 0;
    // Uniforms at each item's offset, keys s + G g, pi, the hard foreground F, and the mass.
    virtual void mask() = 0;
    // K groups by cosine similarity of the metric, seeded from F, refined with weights m c.
    virtual void cluster() = 0;
    // Weighted means (weights m c) in first-token order; counts summed per group.
    virtual void merge() = 0;
    // ToMe (one bipartite round per call, sizes = counts), top-K or random pruning.
    virtual void baseline() = 0;
    virtual void finish() = 0; // outputs complete (the device stages synchronize)
};

std::unique_ptr<BatchStages> makeCpuBatchStages();

// UsageError naming the first thing wrong with a step's shapes or parameters.
void validateStep(const TokenBatch& in, const StepParams& p, const StepOutput& out, Memory stages);
// Validates the shapes (UsageError) and runs the step: every item merged to its k_i tokens.
void mergeStep(BatchStages& stages, const TokenBatch& in, const StepParams& p,
               const StepOutput& out);

} // namespace qmpp
