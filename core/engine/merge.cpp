// Step 5: saliency-weighted merge, merged tokens in the order of each group's first token.
#include "qmpp/ops.h"

#include <algorithm>
#include <numeric>

namespace qmpp {

void mergeWeighted(const float* x, i64 n, i64 d, const std::vector<float>& mass,
                   std::vector<i64>& labels, i64 k, std::vector<float>& merged,
                   std::vector<i64>& sizes) {
    // Order groups by their smallest token index, so the merged sequence keeps left-to-right
    // order for autoregressive decoding.
    std::vector<i64> first(static_cast<std::size_t>(k), n);
    for (i64 i = 0; i < n; ++i)
        first[labels[i]] = std::min(first[labels[i]], i);
    std::vector<i64> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), i64(0));
    std::sort(order.begin(), order.end(), [&](i64 a, i64 b) { return first[a] < first[b]; });
    std::vector<i64> rank(static_cast<std::size_t>(k));
    for (i64 r = 0; r < k; ++r)
        rank[order[r]] = r;
    for (auto& l : labels)
        l = rank[l];

    std::vector<double> acc(static_cast<std::size_t>(k * d), 0.0), plain(acc.size(), 0.0);
    std::vector<double> msum(static_cast<std::size_t>(k), 0.0);
    sizes.assign(static_cast<std::size_t>(k), 0);
    for (i64 i = 0; i < n; ++i) {
        const i64 g = labels[i];
        ++sizes[g];
        msum[g] += mass[i];
        for (i64 j = 0; j < d; ++j) {
            acc[g * d + j] += double(mass[i]) * x[i * d + j];
            plain[g * d + j] += x[i * d + j];
        }
    }
    merged.assign(static_cast<std::size_t>(k * d), 0.0f);
    for (i64 g = 0; g < k; ++g) {
        const bool weighted = msum[g] > 0;
        const double den = weighted ? msum[g] : double(std::max<i64>(sizes[g], 1));
        const double* src = (weighted ? acc.data() : plain.data()) + g * d; // d may be 0
        for (i64 j = 0; j < d; ++j)
            merged[g * d + j] = static_cast<float>(src[j] / den);
    }
}

} // namespace qmpp
