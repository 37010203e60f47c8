// Plain structs of the engine: what goes in (TokenSet, MergeParams) and what comes out
// (MergeResult). Matrices are row-major float32 in std::vector, shapes in the comments.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace qmpp {

using i64 = std::int64_t;

enum class Method { QuickMerge, ToMe, TopK, Random };
enum class ClusterMethod { Seeded, Agglomerative, Reference };
enum class BackendKind { Auto, Cpu, CudaBasic, Cuda };
enum class Precision { FP32, FP16 };

const char* toString(Method m);
const char* toString(ClusterMethod m);
const char* toString(BackendKind b);
const char* toString(Precision p);
// Parse the CLI spellings ("seeded", "cuda-basic", "fp16"...); false when unknown.
bool parse(const std::string& s, Method& out);
bool parse(const std::string& s, ClusterMethod& out);
bool parse(const std::string& s, BackendKind& out);
bool parse(const std::string& s, Precision& out);

// One token sequence and what may come with it.
struct TokenSet {
    i64 n = 0, d = 0;
    std::vector<float> x; // tokens [N, D]

    i64 hiddenLayers = 0;
    std::vector<float> hidden; // hidden states [L, N, D] (empty when not supplied)

    i64 attnLayers = 0, attnHeads = 0;
    std::vector<float> attention; // attention maps [L, H, N, N] (H = 1 for [L, N, N])

    int gridRows = 0, gridCols = 0;  // image token grid (0 when not an image or video)
    int gridFrames = 1;              // video: temporal slots; tokens ordered (slot, row, col),
                                     // frames * rows * cols == N
    std::vector<std::string> labels; // text tokens, one per token (optional)

    // Non-zero: an identity of this set's contents. A GPU backend that last staged the tokens
    // or hidden states of the same revision and size keeps its device copies instead of
    // uploading them again (the slider loop re-runs one input). 0: always uploaded.
    std::uint64_t revision = 0;
};

// Weights of the two AR heads f(x) = W2 relu(W1 x + b1) + b2, as the seed's state_dict.
struct ArHeads {
    static constexpr i64 kHidden = 256;
    i64 d = 0;
    std::vector<float> fw1, fb1, fw2, fb2; // forward head: [256, D], [256], [D, 256], [D]
    std::vector<float> bw1, bb1, bw2, bb2; // backward head, same shapes
    std::string source;                    // file path, or "default init (seed 0)"
};

struct MergeParams {
    i64 k = 0;           // target tokens; 0 = use budget
    double budget = 0.2; // K = max(1, floor(budget * N)) when k == 0
    double temperature = 0.1;
    double epsilon = 0.01; // background weight in the mass
    double gamma = 0.8;    // norm-mass ratio the fidelity check asks for
    double alpha = 0.1;    // AR-loss weight in the total
    int layers = 1;        // multi-scale layers when saliency comes from the tokens alone
    int refine = 3;        // refinements of the seeded clustering
    std::uint64_t seed = 0;
    std::vector<float> uniforms; // supplied Gumbel uniforms [N] (empty: cuRAND Philox, seed)
    Method method = Method::QuickMerge;
    ClusterMethod cluster = ClusterMethod::Seeded;
    BackendKind backend = BackendKind::Auto;
    Precision precision = Precision::FP32;
    std::shared_ptr<const ArHeads> arHeads; // null: default init for the token dimension
    // Called between the pipeline's stages with (stages done, stages in all); returning false
    // stops the run there (qmpp::Cancelled). Superseded work in the studio stops this way.
    std::function<bool(i64, i64)> progress;
};

struct Losses {
    double arForward = 0, arBackward = 0, ar = 0; // L_AR = forward + backward
    double fidelity = 0;                          // the seed's norm-based fidelity loss
    double total = 0;                             // alpha * L_AR + L_fid
};

// The label-free metrics of SPEC step 7.
struct Metrics {
    double reconstructionError = 0; // ||X - U(merged)||_F / ||X||_F; a dropped token as zero
    double meanCosine = 0;          // mean_i cos(x_i, merged[label_i]); a dropped token as 0
    // The same with each dropped token reconstructed by its most similar kept token (cosine),
    // the fair figure for pruning; equal to the two above when nothing was dropped.
    double reconstructionErrorNearestKept = 0;
    double meanCosineNearestKept = 0;
    double normMassTopK = 0;      // gamma_actual
    double normMassRetention = 0; // sum_k |G_k| ||merged_k|| / sum_i ||x_i||
    bool fidelityOk = false;      // normMassRetention >= gamma
    double saliencyRetention = 0; // sum_{i in F} s_i / sum_i s_i
    i64 groupSizeMin = 0, groupSizeMax = 0;
    double groupSizeMedian = 0;
    std::vector<i64> groupSizeHistogram; // bin b: groups of size in [2^b, 2^(b+1))
    std::vector<double> arErrorForward;  // [K-1] per-position AR prediction error
    std::vector<double> arErrorBackward; // [K-1]
};

struct StageTiming {
    std::string stage;
    double ms = 0;
};

struct MergeResult {
    i64 n = 0, d = 0, k = 0, layers = 0;
    std::vector<float> saliency;     // s [N] in [0, 1]
    std::vector<float> layerEntropy; // raw entropies H [L, N]
    std::vector<float> uniforms;     // u [N] as used (clamped)
    std::vector<float> pi;           // Gumbel-softmax mask [N], sums to 1
    std::vector<i64> foreground;     // hard foreground F [K], ascending token index (baselines:
                                     // the kept tokens, or ToMe's surviving slots)
    std::vector<float> mass;         // m [N]
    std::vector<i64> labels;         // [N] index into merged; -1 for a token pruning dropped
    std::vector<float> merged;       // [K, D], ordered by each group's smallest token index
    std::vector<i64> groupSizes;     // [K]
    int refineRounds = 0;            // seeded: refinements run (fewer than R once converged)
    Losses losses;
    Metrics metrics;
    std::vector<StageTiming> timings; // per stage, then "total"
    std::string method = "quickmerge";
    std::string backend, device, precision;
    std::string saliencySource; // "tokens (multi-scale, L=..)", "hidden states", "attention maps"
    std::string arHeadsSource;
    std::vector<std::string> notes; // e.g. why the CPU was chosen
};

} // namespace qmpp
