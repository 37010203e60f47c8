// A model evaluated with and without merging (SPEC "Model in the loop", Measures): logits,
// agreement, KL, accuracy with confidence intervals, tokens and FLOPs per block, time.
#pragma once

#include "qmpp/modelinput.h"
#include "qmpp/progress.h"
#include "qmpp/vit.h"

namespace qmpp {

// A proportion with its 95 % Wilson interval.
struct Proportion {
    i64 hits = 0, total = 0;
    double value = 0, lo = 0, hi = 0;
};
Proportion wilson(i64 hits, i64 total);

// One merged run against the plain run of the same items.
struct EvalMeasures {
    Proportion agreement;                     // top-1 of merged == top-1 of plain
    double klMean = 0, klLo = 0, klHi = 0;    // KL(p_plain || p_merged), nats; 95 % CI of the mean
    double maxLogitChange = 0;                // largest |logit_merged - logit_plain|
    Proportion accuracyPlain, accuracyMerged; // over labelled items (total 0 without labels)
};
EvalMeasures measure(const float* plain, const float* merged, const std::vector<i64>& labels,
                     i64 count, i64 classes);
// KL(softmax(a) || softmax(b)) in double.
double klDivergence(const float* a, const float* b, i64 classes);

struct EvalRun {
    std::vector<float> plainLogits;               // [count, classes]
    std::vector<std::uint64_t> seeds;             // one per merged run (deterministic: one)
    std::vector<std::vector<float>> mergedLogits; // per seed [count, classes]
    std::vector<EvalMeasures> measures;           // per seed
    std::vector<BlockStat> plainBlocks, blocks;   // tokens and FLOPs per block (item 0, seed 0)
    double flopsPlain = 0, flopsMerged = 0;       // per image
    double msPlain = 0, msMerged = 0;             // per image, wall clock over the whole set
    int threads = 1;
    std::string backend = "cpu", precision = "fp32", device; // where the forwards ran
};

// One measure of a run over its seeds: the mean, and an interval spanning every seed's 95 %
// interval (what sweeps plot as bands).
enum class EvalMeasure { Agreement, Kl, AccuracyMerged };
struct SeedSummary {
    double value = 0, lo = 0, hi = 0;
};
SeedSummary overSeeds(const EvalRun& run, EvalMeasure m);

class VitGpu;
// Where the forwards run: the CPU (gpu null), or a GPU in batches of `batch` items.
struct EvalDevice {
    VitGpu* gpu = nullptr;
    i64 batch = 64;
};
// Runs every item through the plain model and the merged one (once per seed for methods that
// depend on it; item i uses Gumbel offsets of item i). Items run in parallel, one thread each.
// progress(done, total) counts forwards; returning false stops with Cancelled.
// `plain`: an earlier run on the same items whose plain forward is reused (a sweep runs it once).
EvalRun evaluate(const VitModel& m, const EvalItems& items, const HookParams& hp,
                 std::vector<std::uint64_t> seeds, const Progress& progress = {},
                 const EvalRun* plain = nullptr, const EvalDevice& dev = {});

} // namespace qmpp

namespace qmpp {

// Every item through the model with `hp` (items in parallel, one thread each); returns the
// wall-clock milliseconds. logits [count, classes].
double forwardAll(const VitModel& m, const EvalItems& items, const HookParams& hp,
                  std::vector<float>& logits, const EvalDevice& dev = {});

// The files `qmpp eval` writes: eval.json (everything), measures.csv (a row per seed),
// predictions.csv (a row per item: label, plain and merged classes and probabilities, KL).
std::string evalJson(const EvalRun& run, const VitConfig& c, const EvalItems& items,
                     const HookParams& hp, const std::string& modelPath);
std::string measuresCsv(const EvalRun& run);
std::string predictionsCsv(const EvalRun& run, const VitConfig& c, const EvalItems& items);

} // namespace qmpp
