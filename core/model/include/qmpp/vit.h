// A Vision Transformer in timm's layout and names, with token merging inside it (SPEC "Model in
// the loop"): the weights, their metadata, the preprocessing, and the forward pass with a merge
// hook between attention and MLP in every block. CPU, FP32.
#pragma once

#include "qmpp/types.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qmpp {

// What the model file says: the shapes give the sizes, the metadata the rest.
struct VitConfig {
    std::string name;             // metadata "name", else the file's stem
    i64 channels = 3;             // C
    i64 imageSize = 0;            // H = W
    i64 patch = 0;                // P
    i64 grid = 0;                 // H / P
    i64 patches = 0;              // N = grid^2 (the class token comes on top)
    i64 dim = 0;                  // D
    i64 depth = 0;                // blocks
    i64 heads = 0;                // from metadata "num_heads" or the caller
    i64 hidden = 0;               // MLP width
    i64 classes = 0;              // head rows
    std::vector<float> mean, std; // per channel
    std::string interpolation = "bilinear";
    std::vector<std::string> classNames; // `classes` names ("class i" when the file has none)
    std::string weightsDtype;            // of the file's tensors: F32, F16, BF16 or F64
};

struct VitModel;
// Reads and checks a model file (.safetensors, timm names). heads > 0 overrides the metadata.
// Every problem is an InputError naming the file and the tensor (missing, wrong shape, heads
// that do not divide D, a NaN weight...).
std::shared_ptr<const VitModel> loadVit(const std::string& path, i64 heads = 0);
const VitConfig& config(const VitModel& m);

// How many tokens each block merges away (the class token never counts).
struct Schedule {
    enum class Kind { None, Constant, Inflect, List, Budget } kind = Kind::None;
    i64 r = 0;             // Constant, Inflect
    double inflection = 0; // Inflect: ToMe's (r, inflection)
    std::vector<i64> list; // List: r per block (missing blocks merge nothing)
    double budget = 1.0;   // Budget: keep max(1, floor(budget * N_l)) tokens at block `atBlock`
    i64 atBlock = 0;
    // r per block before any clamp: ToMe's parse_r for Constant and Inflect.
    std::vector<i64> perBlock(i64 depth) const;
    std::string
    describe() const; // "r=8", "r=8,inflect=-0.5", "list 4,4,0", "budget 0.25 at block 3"
};
// "8", "8,-0.5", a list "4,4,8,0" (needs --list), parsed by the CLI; these build them.
Schedule constantSchedule(i64 r);
Schedule inflectSchedule(i64 r, double inflection);
Schedule listSchedule(std::vector<i64> r);
Schedule budgetSchedule(double budget, i64 atBlock);
// The CLI's spellings, with its messages (UsageError): r "8", schedule "8,-0.5" (ToMe's r and
// inflection), list "4,4,0", or budget in (0, 1] at block atBlock; at most one given (empty
// strings and budget <= 0 are not given). None given: Kind::None.
Schedule scheduleFrom(const std::string& r, const std::string& schedule, const std::string& list,
                      double budget, i64 atBlock, i64 depth);
// "0,1,2": comma-separated whole numbers, at least one.
std::vector<std::uint64_t> parseSeeds(const std::string& s);

enum class ModelMethod { None, QuickMerge, ToMe, TopK, Random };
const char* toString(ModelMethod m);
bool parse(const std::string& s, ModelMethod& out); // none, quickmerge, tome, topk, random
bool isRandom(ModelMethod m);                       // results depend on the seed

struct HookParams {
    ModelMethod method = ModelMethod::None;
    Schedule schedule;
    double temperature = 0.1; // QuickMerge++
    double epsilon = 0.01;
    double gumbelScale = 1.0; // noise x G; 0 is deterministic (a documented deviation)
    int refine = 3;
    std::uint64_t seed = 0;
};
// UsageError unless temperature > 0, epsilon in [0, 1], gumbelScale >= 0 and refine in 0..100.
void validate(const HookParams& hp);

// Per block: tokens (class token included) entering, and after the merge.
struct BlockStat {
    i64 tokensIn = 0, tokensOut = 0;
    double flops = 0; // 2 per multiply-add: qkv, attention, proj at tokensIn; MLP at tokensOut
};

// What a block saw and did, kept when ForwardOptions::trace asks (the studio's Model page and
// explain.h read it): enough to draw sources, saliency, attention and rollout at any block.
struct BlockTrace {
    i64 tokens = 0;                   // T entering (class token included)
    std::vector<std::int32_t> owner;  // [N] patch -> row at entry, -1 dropped earlier
    std::vector<float> counts;        // [T] patches per row at entry
    std::vector<float> attention;     // [heads, T, T] after softmax, ln-count bias included
    std::vector<double> entropy;      // [T] each query's attention entropy, mean over heads
    std::vector<std::int32_t> newRow; // [T] the merge: row -> row after it (-1 pruned)
    std::vector<float> weight;        // [T] its weights (applyPlan's)
    i64 tokensOut = 0;
    double ms = 0; // wall clock of the block (attention, merge, MLP)
};
struct ForwardTrace {
    std::vector<BlockTrace> blocks;
};

struct ForwardOptions {
    bool keepSources = false;      // fill ForwardResult::owner
    int threads = 0;               // 1: this thread only (callers that run items in parallel)
    ForwardTrace* trace = nullptr; // filled per block when given (implies keepSources)
};

struct ForwardResult {
    std::vector<float> logits; // [classes]
    std::vector<BlockStat> blocks;
    double flops = 0; // patch embedding, blocks, head
    // owner[p]: the token (row, class token = 0) that holds patch p after the last block;
    // -1 when a pruning method dropped it.
    std::vector<std::int32_t> owner;
    std::vector<float> counts; // patches per final token (class token: 1)
};

// One image, pixels [C, H, W] already normalized. `item` picks the Gumbel offset: uniforms of
// block l come from seed S at offset ((item * depth) + l) * N, so items and blocks never share
// noise. Thread-safe on one model.
ForwardResult vitForward(const VitModel& m, const float* pixels, const HookParams& hp, i64 item = 0,
                         const ForwardOptions& opt = {});

// FLOPs of a forward that sees these tokens per block (tokensIn, tokensOut per block).
double vitFlops(const VitConfig& c, const std::vector<BlockStat>& blocks);

} // namespace qmpp
