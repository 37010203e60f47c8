// Seeded clustering's kernels, centres and assignment, on random groups: the float64 reference
// centres and the checks (assignment: each token at its best centre within 1e-5, founders fixed).
#include "harness.h"

namespace qmpp::check {

#ifdef QMPP_HAVE_CUDA
namespace {

// Normalized mass-weighted group sums [K, D].
std::vector<double> refCentres(const std::vector<float>& x, i64 n, i64 d,
                               const std::vector<int>& labels, const std::vector<float>& mass,
                               i64 k) {
    std::vector<double> c(static_cast<std::size_t>(k * d), 0.0);
    for (i64 i = 0; i < n; ++i)
        for (i64 f = 0; f < d; ++f)
            c[labels[i] * d + f] += double(mass[i]) * x[i * d + f];
    for (i64 g = 0; g < k; ++g) {
        double ss = 0;
        for (i64 f = 0; f < d; ++f)
            ss += c[g * d + f] * c[g * d + f];
        for (i64 f = 0; f < d; ++f)
            c[g * d + f] = ss > 0 ? c[g * d + f] / std::sqrt(ss) : 0.0;
    }
    return c;
}

} // namespace

void KernelCase::makeGroups() {
    randomGroups(n, k, rng, groups, mass);
    dgroups.upload(groups.data(), groups.size());
    dmass.upload(mass.data(), mass.size());
    centresRef = refCentres(x, n, d, groups, mass, k);
    centresF.assign(centresRef.begin(), centresRef.end());
}

void KernelCase::checkCentresKernel() {
    if (!skip(kk::Kernel::Centres)) {
        kk::DeviceBuffer<float> out;
        poison(out, k * d);
        kk::centres(
            kk::centresParams(X, int(n), int(d), int(k), dgroups.get(), dmass.get(), out.get()), v,
            p, nullptr);
        const auto got = fetch(out, k * d);
        pr.add("centres", vn, pn, in,
               compare(got.data(), centresRef.data(), centresRef.size(), tol), tol);
    }
}

void KernelCase::checkAssignKernel() {
    if (!skip(kk::Kernel::Assign)) {
        // founders: the first member of each group
        std::vector<int> founderOf(static_cast<std::size_t>(n), -1);
        std::vector<bool> seen(static_cast<std::size_t>(k), false);
        for (i64 i = 0; i < n; ++i)
            if (!seen[groups[i]]) {
                seen[groups[i]] = true;
                founderOf[i] = groups[i];
            }
        kk::DeviceBuffer<float> dc;
        dc.upload(centresF.data(), centresF.size());
        kk::DeviceBuffer<int> dfo, lab;
        dfo.upload(founderOf.data(), founderOf.size());
        kk::DeviceBuffer<std::uint16_t> halves(2 * k * d);
        kk::DeviceBuffer<std::uint8_t> part(kk::assignPartialBytes(int(n), int(d), int(k)));
        // each token's cosine to every centre, and its best (the reference of every tile kind)
        std::vector<double> sim(static_cast<std::size_t>(n * k)),
            best(static_cast<std::size_t>(n), -INFINITY);
        for (i64 i = 0; i < n; ++i) {
            double nx = 0;
            for (i64 f = 0; f < d; ++f)
                nx += double(x[i * d + f]) * x[i * d + f];
            nx = std::max(std::sqrt(nx), 1e-30);
            for (i64 cc = 0; cc < k; ++cc) {
                double s = 0;
                for (i64 f = 0; f < d; ++f)
                    s += double(x[i * d + f]) * centresF[cc * d + f];
                sim[i * k + cc] = s / nx;
                best[i] = std::max(best[i], sim[i * k + cc]);
            }
        }
        using Tiles = kk::AssignParams::Tiles;
        auto runAssign = [&](Tiles tiles, const std::string& name) {
            poison(lab, n);
            kk::AssignParams ap = kk::assignParams(X, int(n), int(d), int(k), dc.get(), dfo.get(),
                                                   lab.get(), halves.get(), part.get());
            ap.tiles = tiles;
            kk::assign(ap, v, p, nullptr);
            const auto got = fetch(lab, n);
            Cmp c;
            for (i64 i = 0; i < n; ++i) {
                if (founderOf[i] >= 0) {
                    if (got[i] != founderOf[i])
                        c = {1.0, false, "founder " + std::to_string(i) + " moved"};
                    continue;
                }
                if (got[i] < 0 || got[i] >= k) {
                    c = {INFINITY, false, "label out of range at " + std::to_string(i)};
                    break;
                }
                const double gap = best[i] - sim[i * k + got[i]];
                c.maxRel = std::max(c.maxRel, gap);
                if (gap > 1e-5 && c.pass)
                    c = {gap, false, "token " + std::to_string(i) + " not at its best centre"};
            }
            pr.row({"assign", vn, pn, name, n, d, c.maxRel, 1e-5, 0, c.pass,
                    c.note.empty() ? "max cosine gap to the best" : c.note});
        };
        runAssign(Tiles::Auto, in.name);
        // FP16's 128 x 256 tiles (the sizes here pick 128 x 128 by themselves)
        if (v == kk::Version::Optimized && p == kk::Prec::F16)
            runAssign(Tiles::Wide, in.name + " (128x256 tiles)");
        if (warpgroups) runAssign(Tiles::WarpGroup, in.name + " (warpgroup tiles)");
    }
}
#endif

} // namespace qmpp::check
