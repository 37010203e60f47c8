// The QuickMerge++ steps as small free functions, one job each (SPEC "The pipeline").
// These are the CPU implementations; accumulation is in double unless a comment says otherwise.
#pragma once

#include "qmpp/types.h"

namespace qmpp {

// Step 1. Attention entropies H [L, N] from one of the three sources.
// tokens x [N, D]: L layers of self-attention with beta_l = c_l / sqrt(D),
// c_l = 4^(2l/(L-1) - 1) (c = 1 for L = 1). One Gram product serves every layer.
std::vector<double> entropyMultiScale(const float* x, i64 n, i64 d, int layers);
double multiScaleFactor(int l, int layers); // c_l
// beta_l = c_l / sqrt(D) for each of `layers` scales.
std::vector<double> multiScaleBetas(int layers, i64 d);
// hidden states h [L, N, D]: Q = K = h_l, beta = 1/sqrt(D).
std::vector<double> entropyHidden(const float* h, i64 layers, i64 n, i64 d);
// attention maps a [L, H, N, N]: rows renormalized; per-head entropies averaged.
std::vector<double> entropyMaps(const float* a, i64 layers, i64 heads, i64 n);
// s_i = 1 - (1/L) sum_l minmax_i(H_li); a constant layer normalizes to 0.
std::vector<float> saliencyFromEntropy(const std::vector<double>& h, i64 layers, i64 n);

// Step 2. Uniforms of cuRAND's Philox4_32_10 generator (seed, offset, default ordering),
// computed by the engine itself and bit-identical to cuRAND's host and device generators:
// philoxGenerate writes them as cuRAND does, philoxUniforms clamps them to [1e-7, 1 - 1e-7].
void philoxGenerate(std::uint64_t seed, float* out, i64 n, std::uint64_t offset = 0);
std::vector<float> philoxUniforms(i64 n, std::uint64_t seed, std::uint64_t offset = 0);
// pi = softmax((s + G g) / tau) with g = -ln(-ln u) and G the noise scale (1: the seed's method;
// 0: deterministic); keys = s + G g.
void gumbelSoftmax(const std::vector<float>& s, const std::vector<float>& u, double tau,
                   std::vector<float>& pi, std::vector<double>& keys, double noise = 1.0);
// The k largest keys (ties: lower index first), returned in ascending token order.
std::vector<i64> topK(const std::vector<double>& keys, i64 k);

// Step 3. m_i = pi_i s_i + (1 - pi_i) eps.
std::vector<float> saliencyMass(const std::vector<float>& pi, const std::vector<float>& s,
                                double eps);

// Step 4. Group id per token, in 0..K-1 (ids are not yet in merged order).
// seeded: centres = foreground tokens (in ascending index order), argmax cosine (ties: lower
// centre), then `refine` rounds of centre = normalized mass-weighted mean; founders stay.
// `rounds` (optional) receives the refinements run before the labels stopped changing.
std::vector<i64> clusterSeeded(const float* x, i64 n, i64 d, const std::vector<float>& mass,
                               const std::vector<i64>& foreground, int refine,
                               int* rounds = nullptr);
// agglomerative: average linkage on cosine distance 1 - cos, cut at K (nearest-neighbour chain).
std::vector<i64> clusterAgglomerative(const float* x, i64 n, i64 d, i64 k);
// reference: scikit-learn AgglomerativeClustering(n_clusters=K, linkage='average') on the rows
// of the N x N cosine-similarity matrix (Euclidean distance between rows). O(N^3).
std::vector<i64> clusterReference(const float* x, i64 n, i64 d, i64 k);
// Average linkage over a full symmetric distance matrix dist [N, N] (overwritten), cut at K;
// scipy's nn_chain merge order and tie rules.
std::vector<i64> averageLinkageCut(std::vector<double>& dist, i64 n, i64 k);
// Largest N the O(N^2)-memory methods accept (a message suggests `seeded` beyond it).
i64 maxExactClusterN();
// UsageError naming `method` when N is over that limit (validate() calls it before any work).
void checkExactSize(i64 n, const char* method);

// Step 5. x~_k = sum_{j in G_k} m_j x_j / sum m_j, groups ordered by smallest token index.
// Relabels `labels` in place to index the merged sequence. A group whose mass sums to 0 is
// averaged plainly.
void mergeWeighted(const float* x, i64 n, i64 d, const std::vector<float>& mass,
                   std::vector<i64>& labels, i64 k, std::vector<float>& merged,
                   std::vector<i64>& sizes);

// Baselines (same K, same result type). ToMe's bipartite soft matching as tome/merge.py does it:
// rounds of r = min(floor(n/2), n - K) on the normalized current tokens, A = [0::2], B = [1::2],
// each A token's best B, the r best edges merged into their B by size-weighted average, the next
// round ordered (unmerged A by descending score, then B). Returns labels; merged tokens ordered
// by smallest source index; `survivors` = each final slot's surviving token, ascending.
std::vector<i64> tomeMerge(const float* x, i64 n, i64 d, i64 k, std::vector<float>& merged,
                           std::vector<i64>& sizes, std::vector<i64>& survivors);
// One round of ToMe's bipartite soft matching as its timm patch runs it inside a block: metric
// [N, Dm] normalized, A = [0::2], B = [1::2], each A token's most similar B, the r best edges
// merged by count-weighted average (merge_wavg; counts null = 1). With `classToken`, A's first
// token never merges and the unmerged A keep their order (ToMe sorts them). Output rows in
// ToMe's order, unmerged A then B: merged [N - r, D], mergedCounts [N - r], and each token's row
// in slot [N]. Needs r <= number of B tokens.
void tomeRound(const float* metric, i64 dm, const float* x, i64 d, const float* counts, i64 n,
               i64 r, bool classToken, float* merged, float* mergedCounts, std::int32_t* slot);
// Pruning: `keep` (ascending) stay unchanged in order; every other token gets label -1.
std::vector<i64> pruneKeep(const float* x, i64 n, i64 d, const std::vector<i64>& keep,
                           std::vector<float>& merged, std::vector<i64>& sizes);

// Step 6. AR heads: the default init (PyTorch's nn.Linear init, from Philox with seed 0); a
// file's heads come from loadArHeads (qmpp/inputs.h).
std::shared_ptr<const ArHeads> defaultArHeads(i64 d);
// All head weights in one array, in the order the kernels bind them (kernels::bindArWeights):
// fw1, fb1, fw2, fb2, bw1, bb1, bw2, bb2.
std::vector<float> packArHeads(const ArHeads& h);
// L_forward, L_backward and their per-position errors (each [K-1]); K = 1 gives zeros.
void arLoss(const std::vector<float>& merged, i64 k, i64 d, const ArHeads& heads, Losses& losses,
            std::vector<double>& errFwd, std::vector<double>& errBwd);
// gamma_actual = sum of the min(K, floor(N/2)) largest token norms / sum of norms.
double normMassTopK(const float* x, i64 n, i64 d, i64 k);
// The seed's fidelity loss (almost always 0: its threshold dwarfs the residuals).
double fidelityLoss(const float* x, i64 n, i64 d, const std::vector<float>& merged, i64 k,
                    double gammaActual);
// The same from its per-row squared residuals (a GPU computes those) and fro2 = sum of x^2.
double fidelityLossFromRows(const double* rowErr, i64 n, i64 d, double fro2, double gammaActual);

// Step 7. Every metric of SPEC step 7 that does not come from the AR heads.
void computeMetrics(const TokenSet& t, const MergeParams& p, MergeResult& r);
// Spearman's rho of two equally long series (ties: mean ranks); NaN below 3 items or if either
// is constant.
double spearman(const std::vector<double>& a, const std::vector<double>& b);
// The sums computeMetrics gathers (a GPU backend gathers them on the device), and the rest.
struct MetricSums {
    double err2 = 0, x2 = 0, cosSum = 0; // sum ||x_i - u_i||^2, sum ||x_i||^2, sum cos(x_i, u_i)
    std::vector<double> norms;           // ||x_i|| [N]
    std::vector<double> mergedNorms;     // ||merged_k|| [K]
};
void finishMetrics(const MetricSums& sums, const MergeParams& p, MergeResult& r);
double normMassTopKFromNorms(std::vector<double> norms, i64 k);

// Cosine similarity, 0 when either norm is 0.
double cosine(const float* a, const float* b, i64 d);
// Metrics::reconstructionErrorNearestKept and meanCosineNearestKept of a finished result (the
// zero-fill figures copied when no token was dropped).
void nearestKeptMetrics(const TokenSet& t, MergeResult& r);
// The rows of b [N, D] packed into 16-column panels [ceil(N/16), D, 16] for gemmPacked.
struct PackedRows {
    i64 n = 0, d = 0;
    std::vector<float> data;
};
PackedRows packRows(const float* b, i64 n, i64 d);
// b [n, d] back from its packed form (a GPU uploads the weights the CPU packed).
std::vector<float> unpackRows(const PackedRows& p);
// c [M, N] = a [M, D] . b^T in float, register-blocked and vectorized; single-threaded
// (callers split rows across threads, so results never depend on the thread count).
void gemmPacked(const float* a, i64 m, const PackedRows& b, float* c);
// Rows per block when callers split a product across threads.
constexpr i64 kRowBlock = 48;

} // namespace qmpp
