// The kernels' host API: one params struct per operation, launched by version and precision.
// Shapes are row-major; "T" storage is float (FP32) or half (FP16) per Prec, with FP32
// accumulation everywhere. Every launcher checks its launch and throws CudaError on failure.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace qmpp::kernels {

enum class Version { Basic = 0, Optimized = 1 };
enum class Prec { F32 = 0, F16 = 1 };
constexpr int kMaxLayers = 64;
constexpr int kArHidden = 256;

const char* versionName(Version v); // "basic", "optimized"
const char* precName(Prec p);       // "fp32", "fp16"

// The kernel families, as the harness and the profiler name them.
enum class Kernel {
    EntropyGram, // attention entropy from Q = K = x (tokens multi-scale, or hidden states)
    EntropyMaps, // attention entropy of supplied attention maps
    Saliency,    // per-layer min-max normalization and average: s = 1 - mean
    Cosine,      // cosine similarity, a [M, D] against b [N, D]
    Gumbel,      // g, pi = softmax((s + g) / tau), mass
    TopK,        // the K largest keys, ascending token order
    Assign,      // seeded assignment: argmax cosine against unit centres, founders fixed
    Centres,     // centre = normalized mass-weighted sum of its group
    Merge,       // saliency-weighted merge, groups ordered by first token
    ArHeads,     // AR-loss heads on prefix/suffix means: per-position errors
    Metrics,     // per-token reconstruction error, cosine and norms
};
const char* kernelName(Kernel k);
// Whether a version of a kernel exists (optimized versions land one by one).
bool available(Kernel k, Version v);
// Whether the Hopper warpgroup (wgmma) tiles run here: a build with sm_90a and an sm_90 device.
// Where they do, the optimized FP16 cosine and hidden-state entropy use them.
bool warpgroupTiles();

// ---- attention entropy ------------------------------------------------------------------
struct EntropyGramParams {
    const void* x = nullptr; // [sources, N, D] in T
    int sources = 1;         // 1 (tokens, multi-scale) or L (hidden states, one scale each)
    int n = 0, d = 0;
    int scales = 1;              // scales per source (L for multi-scale)
    float beta[kMaxLayers] = {}; // beta of each scale
    float* h = nullptr;          // out [sources * scales, N]: entropy of softmax_row(beta q.k)
    // Optimized version only: scratch of entropyGramWorkBytes(p, v) bytes, and a switch that
    // forces the O(N) row-panel schedule (tests; chosen by itself when the symmetric schedule's
    // per-tile partials would outgrow the inputs).
    void* work = nullptr;
    std::size_t workBytes = 0;
    bool rowPanels = false;
    // FP16 tile shape (tests): chosen by the problem's size, or forced to 128 x 128 tiles, to
    // 128 x 256 tiles, or to 128 x 256 tiles on persistent CTAs (symmetric schedule, one scale),
    // of mma.sync, or of warpgroups (the same, on Hopper: needs warpgroupTiles()).
    enum class Tiles { Auto, Square, Wide, WidePersistent, WarpGroup } tiles = Tiles::Auto;
};
void entropyGram(const EntropyGramParams& p, Version v, Prec prec, cudaStream_t s);
// Scratch the optimized version needs for these shapes (0 for basic).
std::size_t entropyGramWorkBytes(const EntropyGramParams& p, Version v, Prec prec);

struct EntropyMapsParams {
    const void* a = nullptr; // [L, H, N, N] in T, non-negative; rows renormalized
    int layers = 0, heads = 1, n = 0;
    float* h = nullptr; // out [L, N]: per-head entropies averaged
};
void entropyMaps(const EntropyMapsParams& p, Version v, Prec prec, cudaStream_t s);

struct SaliencyParams {
    const float* h = nullptr; // [L, N]
    int layers = 0, n = 0;
    float* minmax = nullptr; // scratch [L, 2]
    float* s = nullptr;      // out [N]: 1 - mean_l minmax(h_l)
};
void saliency(const SaliencyParams& p, Version v, cudaStream_t s);

// ---- cosine similarity -------------------------------------------------------------------
struct CosineParams {
    const void* a = nullptr; // [M, D] in T
    const void* b = nullptr; // [N, D] in T
    int m = 0, n = 0, d = 0;
    float* out = nullptr;     // [M, N]; 0 where either norm is 0
    float* scratch = nullptr; // optimized: [M + N] inverse norms
    // FP16 tiles (tests): warpgroup tiles where warpgroupTiles(), else mma.sync; or forced.
    enum class Tiles { Auto, MmaSync, WarpGroup } tiles = Tiles::Auto;
};
void cosine(const CosineParams& p, Version v, Prec prec, cudaStream_t s);

// ---- Gumbel mask and top-K ---------------------------------------------------------------
struct GumbelParams {
    const float* s = nullptr; // saliency [N]
    const float* u = nullptr; // uniforms [N] (clamped inside to [1e-7, 1 - 1e-7])
    int n = 0;
    float tau = 0.1f, eps = 0.01f;
    float* keys = nullptr;    // out [N]: s + g
    float* pi = nullptr;      // out [N]: softmax(keys / tau)
    float* mass = nullptr;    // out [N]: pi s + (1 - pi) eps
    float* scratch = nullptr; // [2]: max and sum of the softmax
    float noise = 1.0f;       // G: keys = s + G g (1: the seed's method; 0: deterministic)
};
void gumbel(const GumbelParams& p, Version v, cudaStream_t s);
// Uniforms from cuRAND's device Philox4_32_10 generator (seed, offset): the CPU path's numbers.
void philoxUniforms(float* u, std::size_t n, unsigned long long seed, cudaStream_t s,
                    unsigned long long offset = 0);

struct TopKParams {
    const float* keys = nullptr; // [N]
    int n = 0, k = 0;
    int* selected = nullptr;  // scratch [N]: 1 when among the K largest (ties: lower index)
    int* idx = nullptr;       // out [K], ascending token index
    int* founderOf = nullptr; // optional out [N]: c where idx[c] = i, else -1 (optimized only)
};
void topK(const TopKParams& p, Version v, cudaStream_t s);
// gumbel then topK on its keys (t.keys == g.keys); the optimized version does both in one
// launch for N <= 16,384.
void gumbelTopK(const GumbelParams& g, const TopKParams& t, Version v, cudaStream_t s);

// ---- seeded clustering -------------------------------------------------------------------
struct AssignParams {
    const void* x = nullptr; // tokens [N, D] in T
    int n = 0, d = 0, k = 0;
    const float* centres = nullptr; // [K, D] unit length (or zero)
    const int* founderOf = nullptr; // [N]: the centre a token founded, or -1
    int* labels = nullptr;          // out [N]: argmax_c x_i . c (ties: lower c)
    const int* previous = nullptr;  // optional [N]: labels of the last round
    int* changed = nullptr;         // optional [1]: += number of labels that differ
    const int* skip = nullptr;      // optional [1]: nothing happens while *skip != 0 (converged)
    // optimized FP16 only: scratch [2, K, D] halves for the centres' high and low parts
    void* centresHalf = nullptr;
    // optimized: scratch of assignPartialBytes(n, d, k) bytes (each centre panel's best per token,
    // or at small N the partial scores of D split over more CTAs)
    void* partial = nullptr;
    // FP16 tile shape (tests): chosen by the problem's size, or forced to 128 x 128 or 128 x 256
    // mma.sync tiles, or to warpgroup tiles (Hopper: needs warpgroupTiles())
    enum class Tiles { Auto, Square, Wide, WarpGroup } tiles = Tiles::Auto;
};
std::size_t assignPartialBytes(int n, int d, int k);
void assign(const AssignParams& p, Version v, Prec prec, cudaStream_t s);

struct CentresParams {
    const void* x = nullptr; // tokens [N, D] in T
    int n = 0, d = 0, k = 0;
    const int* labels = nullptr;   // [N] group of each token (or null with `founders`)
    const float* mass = nullptr;   // [N] weights (ignored with `founders`)
    const int* founders = nullptr; // optional [K]: centre c = x[founders[c]] instead
    float* centres = nullptr;      // out [K, D], normalized (zero stays zero)
    const int* skip = nullptr;     // optional [1]: nothing happens while *skip != 0 (converged)
};
void centres(const CentresParams& p, Version v, Prec prec, cudaStream_t s);
// Device-side refinement without host round trips. state: [0] converged flag, [1] rounds run,
// [2 + r] labels changed in round r (all zero before round 0). Round r's commit copies the new
// labels over the old unless already converged, then counts the round and sets the flag when
// nothing changed.
void refineCommit(int* state, int round, int* labels, const int* newLabels, int n, cudaStream_t s);

// ---- merge --------------------------------------------------------------------------------
struct MergeParams {
    const void* x = nullptr; // tokens [N, D] in T
    int n = 0, d = 0, k = 0;
    const float* mass = nullptr; // [N]
    int* labels = nullptr;       // in: group ids 0..K-1; out: index into merged (first-token order)
    int* first = nullptr;        // scratch [K]: smallest token index of each group
    int* rank = nullptr;         // scratch [K]: merged position of each group
    float* merged = nullptr;     // out [K, D]
    int* sizes = nullptr;        // out [K]
    int* order = nullptr;        // optimized, optional scratch [N]: members sorted by group
};
void merge(const MergeParams& p, Version v, Prec prec, cudaStream_t s);

// ---- AR heads -----------------------------------------------------------------------------
struct ArParams {
    const float* merged = nullptr; // [K, D]
    int k = 0, d = 0;
    const void* w1[2] = {};  // [256, D] in T; [0] forward head, [1] backward head
    const void* b1[2] = {};  // [256]
    const void* w2[2] = {};  // [D, 256]
    const void* b2[2] = {};  // [D]
    float* means = nullptr;  // scratch [2, K-1, D]: prefix means, then suffix means
    float* hidden = nullptr; // scratch [2, K-1, 256]
    float* err = nullptr;    // out [2, K-1]: forward then backward per-position errors
};
void arHeads(const ArParams& p, Version v, Prec prec, cudaStream_t s);
// Points w1/b1/w2/b2 of both heads into one packed array in T: fw1 [256, D], fb1, fw2 [D, 256],
// fb2, then the backward head's four in the same order.
void bindArWeights(ArParams& p, const void* packed, int d, Prec prec);

// ---- metrics ------------------------------------------------------------------------------
struct MetricsParams {
    const void* x = nullptr; // tokens [N, D] in T
    int n = 0, d = 0, k = 0;
    const int* labels = nullptr;   // [N] index into merged, or -1 (dropped: reconstructs as 0)
    const float* merged = nullptr; // [K, D]
    float* tokenTerms = nullptr;   // out [N, 4]: ||x - u||^2, ||x||^2, cos(x, u), ||x||
    float* mergedNorm = nullptr;   // out [K]: ||merged_k||
    float* paddedErr = nullptr;    // optional out [N]: ||x_i - merged_i||^2, merged padded with
                                   // zero rows to N (the fidelity loss's rows)
};
void metrics(const MetricsParams& p, Version v, Prec prec, cudaStream_t s);

// ---- merge step (a model's hook) --------------------------------------------------------
// w = mass * counts (counts null: w = mass).
void stepWeights(const float* mass, const float* counts, float* w, int n, cudaStream_t s);
// out[labels[i]] += counts[i] (null: 1); out zeroed by the caller.
void stepGroupCounts(const int* labels, const float* counts, int n, float* out, cudaStream_t s);
// The kept-first tokens: labels[i] = i and countsOut[i] = countsIn[i] (null: 1), i < p.
void stepFront(int* labels, float* countsOut, const float* countsIn, int p, cudaStream_t s);
// out[i] = in[i] + shift.
void stepShiftLabels(const int* in, int* out, int n, int shift, cudaStream_t s);

// Converts float to half on the device (n elements).
void toHalf(const float* in, void* out, std::size_t n, cudaStream_t s);
// Gathers up to kMaxPack device arrays (sizes in whole 4-byte words) into one buffer in one
// launch, so a result comes back in a single copy.
constexpr int kMaxPack = 16;
struct PackSegment {
    const void* src = nullptr;
    std::size_t bytes = 0;  // a multiple of 4
    std::size_t offset = 0; // in dst, a multiple of 4
};
void pack(const PackSegment* segs, int count, void* dst, cudaStream_t s);

} // namespace qmpp::kernels
