// The saliency-weighted merge: the CPU step against a float64 reference, and the kernel against
// the CPU step (labels and sizes exact, merged tokens within the tolerance).
#include "harness.h"

#include <numeric>

namespace qmpp::check {

std::vector<float> checkMergeCpu(const Input& in, std::mt19937_64& rng, Printer& pr) {
    const i64 n = in.n, d = in.d;
    const Tol tol = kF32;
    const i64 k = std::max<i64>(1, n / 5);
    std::vector<int> groups;
    std::vector<float> mass;
    randomGroups(n, k, rng, groups, mass);
    std::vector<i64> labels(groups.begin(), groups.end());
    std::vector<float> merged;
    std::vector<i64> sizes;
    mergeWeighted(in.x.data(), n, d, mass, labels, k, merged, sizes);
    // reference: groups reordered by first token
    std::vector<i64> first(static_cast<std::size_t>(k), n);
    for (i64 i = 0; i < n; ++i)
        first[groups[i]] = std::min(first[groups[i]], i);
    std::vector<i64> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), i64(0));
    std::sort(order.begin(), order.end(), [&](i64 a, i64 b) { return first[a] < first[b]; });
    std::vector<double> mref(static_cast<std::size_t>(k * d), 0.0),
        msum(static_cast<std::size_t>(k), 0.0);
    std::vector<i64> rank(static_cast<std::size_t>(k));
    for (i64 r = 0; r < k; ++r)
        rank[order[r]] = r;
    bool labelsOk = true;
    for (i64 i = 0; i < n; ++i) {
        labelsOk &= labels[i] == rank[groups[i]];
        msum[rank[groups[i]]] += mass[i];
        for (i64 f = 0; f < d; ++f)
            mref[rank[groups[i]] * d + f] += double(mass[i]) * in.x[i * d + f];
    }
    for (i64 g = 0; g < k; ++g)
        for (i64 f = 0; f < d; ++f)
            mref[g * d + f] /= msum[g];
    Cmp c = compare(merged.data(), mref.data(), mref.size(), tol);
    if (!labelsOk) c = {c.maxRel, false, "labels not in first-token order"};
    pr.add("merge", "cpu", "fp32", in, c, tol);

    return merged;
}

#ifdef QMPP_HAVE_CUDA
void KernelCase::checkMergeKernel() {
    if (!skip(kk::Kernel::Merge)) {
        // optimized: with the segment scratch (sorted segments, N <= 8192), then with one group
        // left empty, then without the scratch (v1)
        for (const int variant : {0, 1, 2}) {
            if (variant > 0 && v != kk::Version::Optimized) continue;
            const bool segments = variant < 2;
            std::vector<int> gin = groups;
            if (variant == 1)
                for (auto& g : gin)
                    g = g == k / 2 ? 0 : g;
            kk::DeviceBuffer<int> lab, first, rank, sizes, order;
            lab.upload(gin.data(), gin.size());
            first.resize(k);
            rank.resize(k);
            order.resize(n);
            poison(sizes, k);
            kk::DeviceBuffer<float> merged;
            poison(merged, k * d);
            kk::merge(kk::mergeParams(X, int(n), int(d), int(k), dmass.get(), lab.get(),
                                      first.get(), rank.get(), merged.get(), sizes.get(),
                                      segments ? order.get() : nullptr),
                      v, p, nullptr);
            const auto got = fetch(merged, k * d);
            const auto gotLabels = fetch(lab, n);
            const auto gotSizes = fetch(sizes, k);
            std::vector<i64> refLabels(gin.begin(), gin.end());
            std::vector<float> refMerged;
            std::vector<i64> refSizes;
            // mergeWeighted is the CPU step checked above against its own double reference
            mergeWeighted(x.data(), n, d, mass, refLabels, k, refMerged, refSizes);
            std::vector<double> mref(refMerged.begin(), refMerged.end());
            Cmp c = compare(got.data(), mref.data(), mref.size(),
                            Tol{tol.atol, std::max(tol.rtol, 1e-5)});
            if (!std::equal(gotLabels.begin(), gotLabels.end(), refLabels.begin()))
                c = {c.maxRel, false, "labels differ"};
            if (!std::equal(gotSizes.begin(), gotSizes.end(), refSizes.begin()))
                c = {c.maxRel, false, "sizes differ"};
            const char* what[] = {"", " (empty group)", " (v1 path)"};
            pr.row({"merge", vn, pn, in.name + what[variant], in.n, in.d, c.maxRel, tol.rtol,
                    tol.atol, c.pass, c.note});
        }
    }
}
#endif

} // namespace qmpp::check
