// The bundled causal language model (SPEC "Model in the loop", the language model): a
// pre-LayerNorm word-level transformer with tied embeddings, LayerNorm eps from its file (1e-5),
// trained by scripts/train-text-model.py. Merging compresses a prefix: at block l, after
// attention and before the MLP, the hidden states of the first T tokens become K groups in
// order; a merged token takes the position of its last member, so no query sees the future,
// and the following tokens attend to the compressed prefix with the ln c bias.
#pragma once

#include "qmpp/vit.h"

#include <memory>
#include <string>
#include <vector>

namespace qmpp {

struct LmConfig {
    std::string name;
    i64 vocab = 0, dim = 0, depth = 0, heads = 0, hidden = 0, context = 0;
    double eps = 1e-5;
    std::vector<std::string> vocabulary; // id -> word; id 0 is the unknown word
    std::string tokenizer;               // the regular expression words are cut with
    bool lowercase = true;
};

struct LmModel;
// Reads and checks a language model file (.safetensors, metadata "kind" = "causal-lm"); every
// problem is an InputError naming the file and the tensor or the metadata field.
std::shared_ptr<const LmModel> loadLm(const std::string& path);
const LmConfig& config(const LmModel& m);
// Whether a .safetensors file holds a language model (its metadata says so).
bool isLanguageModel(const std::string& path);
// The words of `text` as the model's ids (unknown words: 0), and the words themselves.
std::vector<i64> tokenizeLm(const LmModel& m, const std::string& text,
                            std::vector<std::string>* words = nullptr);

// How a prefix is compressed (method None: not at all).
struct PrefixMerge {
    ModelMethod method = ModelMethod::None; // QuickMerge, Random (pruning) or None
    i64 block = 0;                          // l
    i64 prefix = 0;                         // T: the first T tokens
    i64 groups = 0;                         // K: what they become
    HookParams params;                      // tau, epsilon, Gumbel scale, refine, seed
};

struct LmResult {
    std::vector<float> logits;  // [n, vocab] (merged run: the following tokens' rows only)
    std::vector<double> nll;    // next-token cross-entropy (nats) of each row that has one
    std::vector<i64> positions; // the position of each row of the last block
    std::vector<i64> groupOf;   // merged run: prefix token -> its group (size T)
    double flops = 0;
};
// ids [n], n <= context. Unmerged: every position's next-token loss (n - 1 of them). Merged:
// the rows of the following tokens T..n-1 only, and the losses of T..n-2. `item` picks the
// Gumbel offsets as vitForward's item does.
LmResult lmForward(const LmModel& m, const std::vector<i64>& ids, const PrefixMerge& merge = {},
                   i64 item = 0);

} // namespace qmpp

namespace qmpp {

// `qmpp eval` on a text: the text's words cut into windows of `window` tokens (the last,
// shorter one kept when it has following tokens); in each, the first `prefix` tokens compressed
// to `groups` at block `merge.block`. Measured on the following tokens against the unmerged
// run of the same window, per seed.
struct LmEvalSeed {
    std::uint64_t seed = 0;
    double ceMerged = 0;     // mean next-token cross-entropy (nats) of the following tokens
    double agreement = 0;    // share of following positions whose top-1 word is unchanged
    double klMean = 0;       // KL(p_plain || p_merged) averaged over those positions
    std::vector<double> nll; // [positions] in window order
};
struct LmEvalRun {
    i64 windows = 0, positions = 0; // scored positions over all windows
    i64 window = 0, prefix = 0, groups = 0;
    double cePlain = 0;           // the same positions, unmerged
    std::vector<double> nllPlain; // [positions]
    std::vector<i64> scoredWord;  // [positions] the text's word each loss predicts
    // the first seed's groups: per window, its prefix tokens' groups (what the studio draws)
    std::vector<std::vector<i64>> prefixGroups;
    std::vector<i64> windowStart; // per window, its first word in the text
    std::vector<LmEvalSeed> seeds;
    double flopsPlain = 0, flopsMerged = 0; // per window (the first)
    double msPlain = 0, msMerged = 0;       // per window
    i64 unknownWords = 0, words = 0;
    std::string backend = "cpu", precision = "fp32", device;
};
class LmGpu;
// gpu: run the forwards there instead of on the CPU.
LmEvalRun evaluateLm(const LmModel& m, const std::vector<i64>& ids, i64 window,
                     const PrefixMerge& merge, const std::vector<std::uint64_t>& seeds,
                     LmGpu* gpu = nullptr);
std::string lmEvalJson(const LmEvalRun& run, const LmConfig& c, const PrefixMerge& merge,
                       const std::string& modelPath, const std::string& textPath);
std::string lmMeasuresCsv(const LmEvalRun& run);

} // namespace qmpp
